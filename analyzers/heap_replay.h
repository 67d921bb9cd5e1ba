/* heap_replay.h: replays the malloc-family events of a trace in time order
 * with a map from address to size, to know the live heap at every moment:
 * its peak, what is still live at the end, and the calls by function.
 */
#ifndef SPY_HEAP_REPLAY_H
#define SPY_HEAP_REPLAY_H

#include <stdbool.h>
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

/* What one malloc-family event does to the heap, the rule every replay
 * follows: the block it ends (its address, 0 for none) and the block it
 * starts (address and size; address 0 for none). A realloc that returned
 * NULL with a size failed and changes nothing; realloc(p, 0) that
 * returned NULL ended p. false for any other kind of event. */
struct heap_change {
	uint64_t ended;
	uint64_t started, size;
};

static inline bool heap_change_of(const struct trace_event *e,
				  struct heap_change *c)
{
	switch (e->kind) {
	case TRACE_ALLOC:
		*c = (struct heap_change){ 0, e->a, e->c };
		return true;
	case TRACE_FREE:
		*c = (struct heap_change){ e->a, 0, 0 };
		return true;
	case TRACE_REALLOC:
		if (!e->b && e->c)
			*c = (struct heap_change){ 0, 0, 0 };
		else
			*c = (struct heap_change){ e->a, e->b, e->c };
		return true;
	default:
		return false;
	}
}

/* Replays m's events into *st. When live is not NULL it receives the
 * blocks live at the end (address -> size; the caller releases it).
 * Returns 0 or -1 when memory ran out. */
int heap_replay(const struct trace_model *m, struct heap_stats *st,
		struct u64map *live);

#endif
