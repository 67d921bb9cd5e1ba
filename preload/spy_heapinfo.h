/* spy_heapinfo.h: the allocator's own view of the heap (glibc's
 * mallinfo2, and jemalloc's statistics when jemalloc is the allocator),
 * the process's memory and its address-space limit, written as a
 * HEAP_INFO record: after an allocation fails, at exit, and every
 * heap_every milliseconds when that option is set. Never allocates; takes
 * the allocator's own locks briefly, so it is never called from a signal
 * handler.
 */
#ifndef SPY_HEAPINFO_H
#define SPY_HEAPINFO_H

#include "spy_core.h"
#include "spy_options.h"

/* Writes one HEAP_INFO record; reason is 0 at exit, 1 after a failure, 2
 * for a snapshot at an interval. */
void spy_heapinfo_write(unsigned reason);

void spy_heapinfo_tick_slow(void);

/* Called by the malloc-family hooks after their record, with the guard
 * held: writes an interval snapshot when one is due. Costs one load and
 * a branch while heap_every is 0. */
static inline void spy_heapinfo_tick(void)
{
	if (SPY_UNLIKELY(spy_opt.heap_every))
		spy_heapinfo_tick_slow();
}

#endif
