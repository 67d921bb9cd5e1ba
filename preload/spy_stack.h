/* spy_stack.h: call stacks, captured with libunwind and interned: a stack
 * is written to the trace once (TRACE_STACK) and then named by its id.
 * Safe inside hooks (the caller holds the guard); never allocates.
 */
#ifndef SPY_STACK_H
#define SPY_STACK_H

#include <stdint.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "spy_options.h"
#include "trace_format.h"

/* Prepares the unwinder and the intern table; called once at start. */
void spy_stack_init(void);

/* Around every use of libunwind, which takes locks of its own (its
 * memory pool's) while it unwinds: a fork while another thread held one
 * leaves the child's copy locked, and the child hung at its first new
 * stack. A fork child whose parent had another thread inside libunwind
 * at the fork (spy_stack_reset sees the count) does without it: its
 * events keep their innermost frame. Nothing waits. */
void spy_stack_unwind_enter(void);
void spy_stack_unwind_leave(void);

/* 0 in such a child: libunwind must not be entered. */
int spy_stack_unwinder_usable(void);

/* 1 when pc is in the unwinder's (libunwind's) code. */
int spy_stack_unwinder_owns(const void *pc);

/* Frames fetched beyond stack_depth, for libspy's own frames on top. */
#define SPY_STACK_SLACK 8

/* Interns frames[0..n) as captured (libspy's own frames are dropped here);
 * returns the id, writing the definition the first time; 0 if none. */
uint32_t spy_stack_intern(void **frames, int n);

/* The stack of the caller whose call returns to ra with its stack pointer
 * at cfa (the hook's own return address and canonical frame address), as
 * an id; served from the thread's cache when that caller's frames are
 * provably the ones seen before. */
uint32_t spy_stack_capture_from(uintptr_t ra, uintptr_t cfa);

/* The calling thread's current stack, without libspy's own frames, as an
 * id (writing its definition to the trace the first time); 0 when stacks
 * are off or the stack cannot be had. Expanded in the hook itself, whose
 * return address and frame key the cache. */
#define spy_stack_capture() spy_stack_capture_by(spy_stack_capture_from)

/* The same through fn (spy_stack_capture_from, or another taking the same
 * two arguments), called with the hook's own return address and frame. */
#define spy_stack_capture_by(fn)                                               \
	__extension__({                                                        \
		uint32_t id_ = 0;                                              \
		if (spy_opt.stacks)                                            \
			id_ = fn((uintptr_t)__builtin_return_address(0),       \
				 (uintptr_t)__builtin_dwarf_cfa());            \
		id_;                                                           \
	})

/* The calling thread ends: its stack cache goes. */
void spy_stack_thread_exit(void);

/* Forgets every interned stack (a forked child starts a new trace). */
void spy_stack_reset(void);

/* Tells the capture which addresses are libspy's own code. */
void spy_stack_set_self(uintptr_t start, uintptr_t end);

#endif
