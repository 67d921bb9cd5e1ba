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
};

extern __thread struct spy_thread spy_self
	__attribute__((tls_model("initial-exec")));

enum spy_state {
	SPY_STATE_NONE = 0,  /* nothing done yet */
	SPY_STATE_INIT = 1,  /* spy_init is running */
	SPY_STATE_READY = 2, /* recording */
};

extern volatile int spy_state;
/* Set once the trace is known good; cleared for good on a write failure. */
extern volatile int spy_tracing;

/* Makes sure libspy is initialised; safe to call from any hook. */
void spy_init(void);

/* Arranges for spy_writer_thread_exit to run when the calling thread ends. */
void spy_thread_register(void);

/* Thread-specific keys with a destructor that the program or its
 * libraries made (hook_thread.c). While there are none, nothing that
 * could free memory runs after libspy's own destructor at thread exit. */
extern unsigned spy_other_key_destructors;

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
	if (t->guard || !spy_tracing || t->dead)
		return 0;
	t->guard = 1;
	return 1;
}

static inline void spy_hook_leave(void)
{
	spy_self.guard = 0;
}

#endif
