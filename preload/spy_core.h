/* spy_core.h: the state every part of libspy.so shares: the calling
 * thread's record (re-entry guard, trace buffer) and the life cycle.
 * Hook code rules (docs/CODING.md): a hook checks spy_hook_enter(), calls
 * the real function, records, restores errno, and leaves with
 * spy_hook_leave(). Nothing here allocates or takes a lock.
 */
#ifndef SPY_CORE_H
#define SPY_CORE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPY_EXPORT __attribute__((visibility("default")))
#define SPY_LIKELY(x) __builtin_expect(!!(x), 1)
#define SPY_UNLIKELY(x) __builtin_expect(!!(x), 0)

struct spy_buffer;

/* Whether a thread is inside libspy, for a thread about to install a
 * seccomp filter on them all (spy_gate.h). In memory of libspy's own that
 * stays mapped; a cache line each, as every hook writes its thread's. */
struct spy_gate_slot {
	int inside;   /* 1 while a hook runs (hooks never nest) */
	int sections; /* libspy's own sections under way (spy_gate_enter) */
	int pid;      /* the process whose thread holds it; any other: free */
	char pad[52];
};

struct spy_thread {
	int guard;               /* > 0 while libspy's own code runs */
	int dead;                /* its buffer went back at thread exit */
	int dtor_rounds;         /* thread-exit destructor calls so far */
	pid_t tid;               /* 0 until first use (and after fork) */
	struct spy_buffer *buf;  /* NULL until the thread's first record */
	void *stack_cache;       /* spy_stack.c's, made at the first stack */
	uintptr_t guard_cfa;     /* frame of the hook that took the guard
				    (spy_hook_enter), 0 otherwise */
	struct spy_gate_slot *gate; /* NULL until its first hook */
	/* 1 while the thread is inside the real allocator on libspy's
	 * behalf. A malloc-family call that finds it set comes from a
	 * signal handler that interrupted the allocator: it must not
	 * re-enter it (the hooks serve it from the bootstrap arena, or put
	 * the free off). */
	int in_allocator;
	/* The C++ operators in progress on this thread (hook_new.c): the
	 * family a block being allocated belongs to (enum
	 * spy_heap_family), and the family a free expects
	 * (SPY_FAMILY_MALLOC for free itself). Set by the outermost
	 * operator only; 0 otherwise. */
	unsigned char alloc_family, free_family;
	int *errno_at;           /* the thread's errno, once a hook asked */
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

/* spy_gate.c: the calling thread's slot, claimed now; NULL if none. */
struct spy_gate_slot *spy_gate_claim(struct spy_thread *t);

static inline void spy_hook_leave(void);

/* 1 if the hook may record: libspy is ready, tracing, and not re-entered.
 * On 1 the guard is taken; pair with spy_hook_leave. */
static inline __attribute__((always_inline)) int spy_hook_enter(void)
{
	struct spy_thread *t = &spy_self;
	if (SPY_UNLIKELY(spy_state != SPY_STATE_READY)) {
		if (spy_state == SPY_STATE_NONE && !t->guard)
			spy_init();
		if (spy_state != SPY_STATE_READY)
			return 0;
	}
	uintptr_t cfa = (uintptr_t)__builtin_dwarf_cfa();
	/* guard and dead, side by side, tested at once: both 0 but in a
	 * nested call, a cut-short hook or a thread past its end */
	uint64_t guard_dead;
	_Static_assert(offsetof(struct spy_thread, dead) ==
		       offsetof(struct spy_thread, guard) + sizeof(int) &&
		       sizeof(int) * 2 == sizeof guard_dead, "guard, dead");
	__builtin_memcpy(&guard_dead, &t->guard, sizeof guard_dead);
	if (SPY_UNLIKELY(guard_dead)) {
		/* a call nested in a hook (glibc's own allocations inside
		 * pthread_create: a new thread's TLS vector) is below the
		 * hook's frame: plainly not a hook left behind */
		if (t->guard && (t->guard != 1 || cfa < t->guard_cfa))
			return 0;
		if (t->guard && !spy_guard_abandoned(t, cfa))
			return 0;
		if (t->dead)
			return 0;
	}
	/* a thread's first hook claims its slot (under the guard), only
	 * while tracing: a claim may map a page */
	struct spy_gate_slot *g = t->gate;
	if (SPY_UNLIKELY(!g) && !spy_tracing)
		return 0;
	/* the frame first: a signal between the two stores must find the
	 * guard either not taken or taken with its frame */
	t->guard_cfa = cfa;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->guard = 1;
	if (SPY_UNLIKELY(!g) && !(g = spy_gate_claim(t))) {
		t->guard = 0;
		t->guard_cfa = 0;
		return 0;
	}
	/* Inside first, tracing looked at after: a thread stopping it for
	 * a seccomp filter either sees this one inside and waits, or is
	 * seen by it (its membarrier is the fence both need). */
	__atomic_store_n(&g->inside, 1, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (SPY_UNLIKELY(!spy_tracing)) {
		spy_hook_leave();
		return 0;
	}
	return 1;
}

/* Where the calling thread's errno lies, which every malloc hook saves
 * and restores: from the thread's record, without a call. */
static inline __attribute__((always_inline)) int *spy_errno_at(void)
{
	struct spy_thread *t = &spy_self;
	int *e = t->errno_at;
	if (SPY_UNLIKELY(!e))
		e = t->errno_at = &errno;
	return e;
}

static inline __attribute__((always_inline)) void spy_hook_leave(void)
{
	struct spy_thread *t = &spy_self;
	/* (the hook's enter claimed the slot) */
	__atomic_store_n(&t->gate->inside, 0, __ATOMIC_RELEASE);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->guard = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->guard_cfa = 0;
}

/* The program's own call made inside a hook that may block for long (a
 * lock wait, a read): meanwhile the thread counts as out of libspy, so
 * that a seccomp filter going in does not wait for it. After it, tracing
 * must be looked at again (spy_tracing): when it stopped, the hook records
 * nothing more and leaves. */
#define SPY_PARKED(expr)                                                       \
	__extension__({                                                        \
		struct spy_gate_slot *pk_ = spy_self.gate;                     \
		__atomic_store_n(&pk_->inside, 0, __ATOMIC_RELEASE);           \
		__atomic_signal_fence(__ATOMIC_SEQ_CST);                       \
		__typeof__(expr) pr_ = (expr);                                 \
		__atomic_store_n(&pk_->inside, 1, __ATOMIC_RELAXED);           \
		__atomic_signal_fence(__ATOMIC_SEQ_CST);                       \
		pr_;                                                           \
	})

#endif
