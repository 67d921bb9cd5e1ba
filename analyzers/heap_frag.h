/* heap_frag.h: the heap at one moment, replayed from a trace: live
 * blocks, the holes between them on the brk heap (free memory the program
 * cannot use for a bigger request), the largest hole, a histogram of hole
 * sizes, external fragmentation (1 - largest free region / free bytes),
 * the heap's footprint, and the allocator's own figures (HEAP_INFO) when
 * the trace has them.
 * Holes are computed from glibc's chunk layout (16 bytes of header before
 * each block, chunks of at least 32 bytes, 16-byte granules); on another
 * allocator (jemalloc) only its own figures describe the heap.
 */
#ifndef SPY_HEAP_FRAG_H
#define SPY_HEAP_FRAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_format.h"
#include "trace_reader.h"

#define HEAP_FRAG_STRIP 64
#define HEAP_FRAG_BUCKETS TRACE_HOLE_BUCKETS
/* the most interval snapshots heap_frag_series returns (evenly picked) */
#define HEAP_FRAG_SERIES_MAX 1000

enum heap_allocator { HEAP_GLIBC = 0, HEAP_JEMALLOC = 1 };

/* One HEAP_INFO record: glibc's mallinfo2, the process's memory, and
 * jemalloc's statistics when jemalloc was the allocator. */
struct heap_info {
	bool valid;
	uint64_t reason, arena, ordblks, fordblks, hblks, hblkhd, uordblks,
		keepcost, rss, as_limit, vm_size;
	uint64_t allocator;  /* enum heap_allocator */
	uint64_t je_allocated, je_active, je_metadata, je_resident, je_mapped,
		je_retained;
	/* jemalloc's free space, when recorded: free regions of its slabs,
	 * free extents of pages, and both as one histogram of hole sizes */
	bool je_holes;
	uint64_t je_regions, je_region_bytes, je_largest_region;
	uint64_t je_extents, je_extent_bytes, je_largest_extent;
	uint64_t je_hist[HEAP_FRAG_BUCKETS];
};

enum heap_frag_when { HEAP_FRAG_END, HEAP_FRAG_FAILURE, HEAP_FRAG_INTERVAL };

struct heap_frag {
	uint64_t ts;                 /* the moment (absolute ns) */
	enum heap_frag_when when;
	const struct trace_event *fail; /* the failed call, or NULL */
	uint64_t live_bytes, live_blocks;         /* every live block */
	uint64_t heap_start, heap_end;            /* the brk heap looked at */
	uint64_t heap_live_bytes, heap_live_blocks;
	uint64_t free_bytes;         /* in holes between blocks */
	uint64_t holes, largest_hole;
	uint64_t top_bytes;          /* after the last block */
	uint64_t hist[HEAP_FRAG_BUCKETS]; /* holes of [2^b, 2^(b+1)) bytes */
	double external;             /* 0..1 */
	char strip[HEAP_FRAG_STRIP + 1]; /* '#' live .. '.' free */
	/* Memory the allocator holds (glibc: its arenas and mmapped blocks;
	 * jemalloc: its mapped extents; without HEAP_INFO: the brk heap) and
	 * how much of it no live block fills. */
	uint64_t footprint, footprint_free;
	/* The other threads' arenas (glibc gives each a heap of its own, in
	 * 64 MiB-aligned spans): how many spans hold blocks, their live
	 * bytes, and the holes between their blocks, counted as on the brk
	 * heap (what lies before a span's first block and after its last is
	 * not a hole). */
	uint64_t arena_spans, arena_live_bytes;
	uint64_t arena_holes, arena_free_bytes, arena_largest_hole;
	struct heap_info info;       /* the allocator's view, if recorded */
};

/* The heap just before event upto (an ALLOC_FAIL), or at the end of the
 * trace when upto is NULL. 0, or -1 when memory ran out. */
int heap_frag_at(const struct trace_model *m, const struct trace_event *upto,
		 struct heap_frag *out);

/* The heap at each interval snapshot (heap_every=, HEAP_INFO records of
 * reason 2) in time order, at most HEAP_FRAG_SERIES_MAX of them: *out is
 * malloc'd (NULL when there are none; the caller frees it), *n their
 * number, *total how many the trace holds. 0, or -1 when memory ran out. */
int heap_frag_series(const struct trace_model *m, struct heap_frag **out,
		     size_t *n, size_t *total);

/* 1 when the holes are known: glibc's layout of a brk heap, or the free
 * space jemalloc itself counted. */
bool heap_frag_has_holes(const struct heap_frag *f);

/* 1 when the brk heap is laid out block by block (glibc): its strip,
 * its top and its picture. */
bool heap_frag_has_layout(const struct heap_frag *f);

/* "glibc" or "jemalloc": the allocator the snapshot describes. Cannot
 * fail. */
const char *heap_frag_allocator(const struct heap_frag *f);

/* 1 if the snapshot is badly fragmented. glibc: at least 1 MiB free in
 * at least 16 holes, that free memory is at least a quarter of the heap,
 * and the largest free region is at most half of it (external >= 0.5).
 * jemalloc: heap_frag_slabs_bad. */
bool heap_frag_is_bad(const struct heap_frag *f);

/* jemalloc's slabs badly used: at least 1 MiB of free regions, at least
 * 16 of them, and at least a quarter of the memory jemalloc has in use
 * (its active pages: slabs and large blocks). A slab serves one size
 * class and goes back only when every block in it is freed. */
bool heap_frag_slabs_bad(const struct heap_frag *f);

#endif
