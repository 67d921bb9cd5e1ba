/* proc_map.h: the process's address space as the trace saw it, at the
 * start and at the end of the run: regions named by kind (text, data, bss,
 * heap, stacks and their guards, mmap), pieces of one thing merged, each
 * thread's stack labelled with its thread, and the recorded heap blocks
 * counted in the region of the end map that holds them. `analyze map` and
 * `analyze where` render it.
 */
#ifndef SPY_PROC_MAP_H
#define SPY_PROC_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "threads_model.h"
#include "trace_reader.h"

#define MAP_MAX_TIDS 4

/* One line of /proc/self/maps. */
struct map_piece {
	uint64_t start, end, prot, file_offset;
};

/* Blocks counted in a region, and the threads that allocated them. */
struct map_blocks {
	uint64_t live, live_bytes, freed, freed_bytes;
	uint64_t big;                   /* blocks of 128 KiB or more */
	uint32_t tids[MAP_MAX_TIDS];    /* allocating threads, most first */
	uint64_t tid_blocks[MAP_MAX_TIDS];
	size_t n_tids;
	uint64_t other_tid_blocks;      /* by threads past MAP_MAX_TIDS */
};

struct map_region {
	uint64_t start, end, prot;      /* prot: r=4 w=2 x=1, p=8 private */
	uint64_t file_offset;           /* of the first piece */
	struct trace_str path;          /* "" for anonymous memory */
	struct trace_str owner;         /* bss: the file it belongs to */
	/* "text", "read-only data", "data", "bss", "heap", "stack", "guard",
	 * "reserved", "mmap" or "kernel" */
	const char *kind;
	size_t piece_from, n_pieces;    /* into proc_map.pieces */
	uint32_t tids[MAP_MAX_TIDS];    /* stack, guard: whose stack */
	size_t n_tids;
	bool main_stack;                /* the [stack] of the main thread */
	bool from_threads;              /* a thread's start record, not a map */
	bool before_main;               /* anonymous, there when libspy
					 * started: the loader's or an early
					 * library's, not the program's */
	struct map_blocks blocks;       /* end map only */
};

struct proc_map {
	struct map_region *v;           /* sorted by start */
	size_t n, cap;
	struct map_piece *pieces;
	size_t n_pieces, cap_pieces;
};

struct proc_maps {
	struct proc_map start;          /* the first module snapshot */
	struct proc_map end;            /* the end-map records, or the last
					 * snapshots and the threads' stacks */
	bool end_recorded;              /* end came from end-map records */
	uint32_t main_tid;
	struct map_blocks outside;      /* blocks in no region of end */
};

/* Builds pm from m, with the threads of tm (may be NULL) and the heap
 * blocks of m's events counted into the regions of the end map (memory
 * for the blocks live at a time, not for every block). Returns 0, or -1
 * when memory ran out (pm is then empty). pm points into m, which must
 * outlive it. */
int proc_maps_build(const struct trace_model *m, const struct threads_model *tm,
		    struct proc_maps *pm);

void proc_maps_release(struct proc_maps *pm);

/* The region holding addr, or NULL. */
const struct map_region *proc_map_find(const struct proc_map *mp, uint64_t addr);

/* What a region is, in a few words for people ("stack of thread 12",
 * "malloc arena of thread 12", "bss of libc.so.6", a file's path, ...),
 * written into buf. Returns buf. */
const char *proc_map_describe(const struct map_region *r, uint32_t main_tid,
			      char *buf, size_t len);

#endif
