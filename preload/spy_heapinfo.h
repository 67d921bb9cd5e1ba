/* spy_heapinfo.h: the allocator's own view of the heap (glibc's
 * mallinfo2), the process's memory and its address-space limit, written as
 * a HEAP_INFO record: after an allocation fails, and at exit. Never
 * allocates; takes the allocator's own locks briefly (mallinfo2), so it is
 * never called from a signal handler.
 */
#ifndef SPY_HEAPINFO_H
#define SPY_HEAPINFO_H

/* Writes one HEAP_INFO record; reason is 0 at exit, 1 after a failure. */
void spy_heapinfo_write(unsigned reason);

#endif
