/* heap_frag.h: the brk heap at one moment, replayed from a trace: live
 * blocks, the holes between them (free memory the program cannot use for
 * a bigger request), the largest hole, a histogram of hole sizes, external
 * fragmentation (1 - largest free region / free bytes), and the
 * allocator's own figures (HEAP_INFO) when the trace has them.
 * Holes are computed from glibc's chunk layout (16 bytes of header before
 * each block, chunks of at least 32 bytes, 16-byte granules).
 */
#ifndef SPY_HEAP_FRAG_H
#define SPY_HEAP_FRAG_H

#include <stdbool.h>
#include <stdint.h>

#include "trace_reader.h"

#define HEAP_FRAG_STRIP 64
#define HEAP_FRAG_BUCKETS 40

struct heap_info {
	bool valid;
	uint64_t reason, arena, ordblks, fordblks, hblks, hblkhd, uordblks,
		keepcost, rss, as_limit, vm_size;
};

struct heap_frag {
	uint64_t ts;                 /* the moment (absolute ns) */
	const struct trace_event *fail; /* the failed call, or NULL (exit) */
	uint64_t live_bytes, live_blocks;         /* every live block */
	uint64_t heap_start, heap_end;            /* the brk heap looked at */
	uint64_t heap_live_bytes, heap_live_blocks;
	uint64_t free_bytes;         /* in holes between blocks */
	uint64_t holes, largest_hole;
	uint64_t top_bytes;          /* after the last block */
	uint64_t hist[HEAP_FRAG_BUCKETS]; /* holes of [2^b, 2^(b+1)) bytes */
	double external;             /* 0..1 */
	char strip[HEAP_FRAG_STRIP + 1]; /* '#' live .. '.' free */
	struct heap_info info;       /* the allocator's view, if recorded */
};

/* The heap just before event upto (an ALLOC_FAIL), or at the end of the
 * trace when upto is NULL. 0, or -1 when memory ran out. */
int heap_frag_at(const struct trace_model *m, const struct trace_event *upto,
		 struct heap_frag *out);

/* 1 if the snapshot is badly fragmented: at least 1 MiB free in at least
 * 16 holes, that free memory is at least a quarter of the heap, and the
 * largest free region is at most half of it (external >= 0.5). */
bool heap_frag_is_bad(const struct heap_frag *f);

#endif
