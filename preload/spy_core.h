/* spy_core.h: the state every part of libspy.so shares: the calling
 * thread's record (re-entry guard, trace buffer) and the life cycle.
 * Hook code rules (docs/CODING.md): a hook checks spy_hook_enter(), calls
 * the real function, records, restores errno, and leaves with
 * spy_hook_leave(). Nothing here allocates or takes a lock.
 */
#ifndef SPY_CORE_H
#define SPY_CORE_H

#include <stdint.h>
#include <sys/types.h>

#define SPY_EXPORT __attribute__((visibility("default")))
#define SPY_LIKELY(x) __builtin_expect(!!(x), 1)
#define SPY_UNLIKELY(x) __builtin_expect(!!(x), 0)

struct spy_buffer;

struct spy_thread {
	int guard;               /* > 0 while libspy's own code runs */
	int dead;                /* its buffer went back at thread exit */
	int dtor_rounds;         /* thread-exit destructor calls so far */
	pid_t tid;               /* 0 until first use (and after fork) */
	struct spy_buffer *buf;  /* NULL until the thread's first record */
	void *stack_cache;       /* spy_stack.c's, made at the first stack */
	uintptr_t guard_cfa;     /* frame of the hook that took the guard
				    (spy_hook_enter), 0 otherwise */
};

extern __thread struct spy_thread spy_self
	__attribute__((tls_model("initial-exec")));

enum spy_state {
	SPY_STATE_NONE = 0,  /* nothing done yet */
	SPY_STATE_INIT = 1,  /* spy_init is running */
	SPY_STATE_READY = 2, /* recording */
	SPY_STATE_OFF = 3,   /* started under a seccomp filter: every hook
				passes straight on, and libspy makes no
				system call of its own */
};

extern volatile int spy_state;
/* Set once the trace is known good; cleared for good on a write failure. */
extern volatile int spy_tracing;

/* Makes sure libspy is initialised; safe to call from any hook. */
void spy_init(void);

/* The calling thread's first record (called by the writer): its io state,
 * and its end arranged for its exit (a key destructor), unless its start
 * routine runs under libspy's trampoline, which arranges its end itself. */
void spy_thread_register(void);

/* For the trampoline: the start routine returned. The thread's recording
 * ends now when nothing the program registered can run after it, else in
 * the key destructors, after the program's. */
void spy_thread_returned(void);

/* For the trampoline: the thread unwinds (pthread_exit, cancellation); its
 * recording ends in the key destructors. */
void spy_thread_end_later(void);

/* Destructors that the program or its libraries registered to run at
 * thread exit: keys with a destructor, C++ thread_local objects
 * (hook_thread.c). While there are none, nothing that could free memory
 * runs after the start routine returns. */
extern unsigned spy_thread_destructors;

/* 1 when the guard the calling thread holds was taken by a hook whose
 * frame is gone: a signal handler left that hook by longjmp (a program
 * that recovers from a fault or a timer that way), and without this the
 * thread would record nothing more. A call made while that hook runs (a
 * nested one, a signal handler's) has its frame below the hook's; one
 * at the hook's level or above means the hook is gone. cfa is the
 * caller's frame (its canonical frame address); on a stack not the
 * thread's own, never (spy_stack.c). */
int spy_guard_abandoned(struct spy_thread *t, uintptr_t cfa);

/* 1 if the hook may record: libspy is ready, tracing, and not re-entered.
 * On 1 the guard is taken; pair with spy_hook_leave. */
static inline int spy_hook_enter(void)
{
	struct spy_thread *t = &spy_self;
	if (SPY_UNLIKELY(spy_state != SPY_STATE_READY)) {
		if (spy_state == SPY_STATE_NONE && !t->guard)
			spy_init();
		if (spy_state != SPY_STATE_READY)
			return 0;
	}
	uintptr_t cfa = (uintptr_t)__builtin_dwarf_cfa();
	if (SPY_UNLIKELY(t->guard) && !spy_guard_abandoned(t, cfa))
		return 0;
	if (!spy_tracing || t->dead)
		return 0;
	/* the frame first: a signal between the two stores must find the
	 * guard either not taken or taken with its frame */
	t->guard_cfa = cfa;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->guard = 1;
	return 1;
}

static inline void spy_hook_leave(void)
{
	spy_self.guard = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	spy_self.guard_cfa = 0;
}

#endif
