/* heap_replay.h: replays the malloc-family events of a trace in time order
 * with a map from address to size, to know the live heap at every moment:
 * its peak, what is still live at the end, and the calls by function.
 */
#ifndef SPY_HEAP_REPLAY_H
#define SPY_HEAP_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "trace_format.h"
#include "trace_reader.h"
#include "u64map.h"

struct heap_stats {
	uint64_t calls[TRACE_FN_MAX + 1]; /* by trace_alloc_fn; last: others */
	uint64_t allocated_bytes;  /* sum of sizes handed out */
	uint64_t live_blocks, live_bytes;       /* at the end */
	uint64_t peak_bytes, peak_blocks;       /* largest live_bytes */
	uint64_t peak_ts;          /* absolute time it was reached */
	uint64_t unknown_frees;    /* free of an address never handed out */
	uint64_t null_frees;       /* free(NULL) */
	uint64_t failed_reallocs;  /* realloc that returned NULL */
	uint64_t reused_live;      /* an address handed out while live */
};

/* Replays m's events into *st. When live is not NULL it receives the
 * blocks live at the end (address -> size; the caller releases it).
 * Returns 0 or -1 when memory ran out. */
int heap_replay(const struct trace_model *m, struct heap_stats *st,
		struct u64map *live);

#endif
