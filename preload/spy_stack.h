/* spy_stack.h: call stacks, captured with libunwind and interned: a stack
 * is written to the trace once (TRACE_STACK) and then named by its id.
 * Safe inside hooks (the caller holds the guard); never allocates.
 */
#ifndef SPY_STACK_H
#define SPY_STACK_H

#include <stdint.h>

/* Prepares the unwinder and the intern table; called once at start. */
void spy_stack_init(void);

/* The calling thread's current stack, without libspy's own frames, as an
 * id (writing its definition to the trace the first time); 0 when stacks
 * are off or the stack cannot be had. */
uint32_t spy_stack_capture(void);

/* Forgets every interned stack (a forked child starts a new trace). */
void spy_stack_reset(void);

/* Tells the capture which addresses are libspy's own code. */
void spy_stack_set_self(uintptr_t start, uintptr_t end);

#endif
