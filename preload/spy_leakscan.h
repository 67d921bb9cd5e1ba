/* spy_leakscan.h: where an address lies, and the leak scan at exit.
 * Both read /proc/self/maps into memory of their own (mmap); they never
 * allocate with the program's allocator, never use stdio.
 */
#ifndef SPY_LEAKSCAN_H
#define SPY_LEAKSCAN_H

#include <stddef.h>
#include <stdint.h>

/* What a pointer passed to free is, when it is not a block in the map:
 * a trace_bad_free value (TRACE_BAD_INTERIOR with *base set to the block
 * it points into, TRACE_BAD_STACK, TRACE_BAD_GLOBAL, TRACE_BAD_WILD), or
 * -1 when it may be a block libspy did not see handed out (the free is
 * then passed on). Slow; for error paths only. */
int spy_leakscan_place(uintptr_t addr, uintptr_t *base);

/* At exit, with the guard held: checks every quarantined block, then (with
 * leaks=1) classes every live block as definitely lost, indirectly lost or
 * still reachable from the roots (writable data of loaded modules, thread
 * stacks, other writable private mappings, the caller's stack from its
 * current frame up), writing LEAK records and one LEAK_SCAN. Other threads
 * that allocate or free meanwhile wait until it is done. */
void spy_leakscan_at_exit(void);

/* main returned; frame is main's caller's frame. The main thread's stack
 * below it held main's locals, which are gone: the scan starts above. */
void spy_leakscan_main_returned(void *frame);

#endif
