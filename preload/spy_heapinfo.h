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

#include <stdint.h>

#include "spy_core.h"
#include "spy_options.h"
#include "spy_writer.h"

/* Writes one HEAP_INFO record; reason is 0 at exit, 1 after a failure, 2
 * for a snapshot at an interval. */
void spy_heapinfo_write(unsigned reason);

/* Looks up jemalloc's statistics calls when jemalloc is loaded; once, at
 * start. */
void spy_heapinfo_init(void);

/* When the next interval snapshot is due (ns; 0 before the first). */
extern uint64_t spy_heapinfo_next_due;

void spy_heapinfo_tick_slow(void);

/* Called by the malloc-family hooks after their record, with the guard
 * held: writes an interval snapshot when one is due, judged by the time
 * stamp of the record just written (no clock read). Costs one load and a
 * branch while heap_every is 0. */
static inline void spy_heapinfo_tick(void)
{
	if (SPY_UNLIKELY(spy_opt.heap_every) && spy_self.buf &&
	    spy_self.buf->last_ns >=
	    __atomic_load_n(&spy_heapinfo_next_due, __ATOMIC_RELAXED))
		spy_heapinfo_tick_slow();
}

#endif
