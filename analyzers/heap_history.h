/* heap_history.h: every heap block a trace recorded, from its allocation
 * to its free (or the end of the run), with the stacks and threads of
 * both: what `analyze map` places on the regions and `analyze where` looks
 * an address up in.
 */
#ifndef SPY_HEAP_HISTORY_H
#define SPY_HEAP_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_reader.h"

/* One block from its allocation to its free (or the end of the run). */
struct heap_life {
	uint64_t addr, size;
	uint64_t alloc_ts, free_ts;     /* absolute ns; free_ts 0 while live */
	uint32_t alloc_stack, free_stack; /* index + 1 into model.stacks */
	uint32_t alloc_tid, free_tid;
	uint8_t alloc_fn, free_fn;      /* enum trace_alloc_fn */
	bool freed;                     /* false: live at the end */
};

struct heap_history {
	struct heap_life *v;   /* in order of allocation */
	size_t n, cap;
};

/* Replays m's malloc-family events into h (a realloc ends the old block
 * and starts a new one). Returns 0, or -1 when memory ran out (h is then
 * empty). Release with heap_history_release. */
int heap_history_build(const struct trace_model *m, struct heap_history *h);

/* The same, keeping only the blocks that held addr (what `analyze where`
 * shows): memory for those, not for every block of the run. */
int heap_history_build_at(const struct trace_model *m, uint64_t addr,
			  struct heap_history *h);

void heap_history_release(struct heap_history *h);

/* 1 if addr lies in b (a block of size 0 holds its first byte only). */
int heap_life_holds(const struct heap_life *b, uint64_t addr);

#endif
