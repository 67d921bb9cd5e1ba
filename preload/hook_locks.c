/* hook_locks.c: pthread mutexes, rwlocks, spin locks, condition waits,
 * POSIX semaphores (sem_t, recorded as locks of their own type) and
 * C11 mtx_t/cnd_t (glibc's mtx_lock calls its pthread code directly, not
 * through the PLT, so those are hooked too). Every hook has the usual
 * shape; a blocking lock first tries the lock: when that succeeds the call
 * was uncontended and costs one record; when it fails the thread is about
 * to block, which is recorded (LOCK_WAIT) and checked for a deadlock before
 * the real blocking call. Releases are recorded before the real unlock.
 * pthread_mutex_lock/unlock have a hot path in front of that shape for the
 * untimed pairs of a hot loop (rec_locks.h). Never allocates, never takes
 * a lock of its own.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>

#include "rec_locks.h"
#include "spy_core.h"
#include "spy_deadlock.h"
#include "spy_process.h"
#include "spy_real.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_format.h"

/* The real function, resolving the family first if a lock call comes
 * before libspy has started. */
#define REAL(f)                                                                \
	(__builtin_expect(spy_real_locks.f != NULL, 1)                         \
		 ? spy_real_locks.f                                            \
		 : (spy_real_resolve_locks(), spy_real_locks.f))

#define SITE() ((uintptr_t)__builtin_return_address(0))
#define CFA() ((uintptr_t)__builtin_dwarf_cfa())

/* spy_hook_enter for the lock hooks: a lock taken on the hot path
 * (rec_locks.h) becomes an ordinary held lock before anything else about
 * the thread's locks is recorded or checked. */
static inline __attribute__((always_inline)) int lock_hook_enter(void)
{
	if (!spy_hook_enter())
		return 0;
	if (SPY_UNLIKELY(rec_lock_runs.holding))
		rec_lock_hot_end();
	return 1;
}

/* errno's address, which never changes for a thread, kept at hand: the
 * call that finds it would be a good part of an uncontended pair's cost. */
static __thread int *errno_at __attribute__((tls_model("initial-exec")));

static inline __attribute__((always_inline)) int *errno_loc(void)
{
	int *p = errno_at;
	if (SPY_UNLIKELY(!p))
		errno_at = p = &errno;
	return p;
}

/* Taking a normal (or adaptive) mutex again while holding it blocks for
 * ever; an error-checking one fails with EDEADLK, a recursive one
 * succeeds. The kind sits in the mutex itself (glibc's layout, also used
 * by mtx_t). */
static int mutex_self_blocks(const void *m)
{
	int kind = ((const pthread_mutex_t *)m)->__data.__kind;
	return (kind & 16) == 0 && (kind & 3) != PTHREAD_MUTEX_ERRORCHECK;
}

/* Back from a parked wait (SPY_PARKED) with tracing stopped: nothing more
 * is recorded. */
#define LEAVE_UNRECORDED(r)                                                    \
	do {                                                                   \
		int *ep_ = errno_loc(), sv_ = *ep_;                            \
		spy_hook_leave();                                              \
		*ep_ = sv_;                                                    \
		return (r);                                                    \
	} while (0)

/* The body shared by every blocking (or timed) acquisition. try_expr and
 * lock_expr are the real calls; busy is the value try_expr returns when
 * the lock is taken; ok(r) says whether r means "acquired". */
#define ACQUIRE_BODY_AT(site, cfa, lock, type, how, try_expr, lock_expr,     \
			busy, ok, self_blocks)                                 \
	do {                                                                   \
		uintptr_t site_ = (site), cfa_ = (cfa);                        \
		struct spy_lock_thread *me_ = spy_lock_self(spy_pid);          \
		unsigned flags_ = rec_lock_flags((type) & ~SPY_LOCK_UNOWNED,       \
						how);                          \
		uint64_t waited_ = 0;                                          \
		uint32_t stack_;                                               \
		int r_ = try_expr;                                             \
		if (r_ == (busy)) {                                            \
			stack_ = spy_opt.stacks ?                              \
				spy_stack_capture_from(site_, cfa_) : 0;       \
			rec_lock_wait(lock, flags_, stack_);                   \
			if (me_ && (how) == TRACE_LOCK_BLOCKING)               \
				spy_deadlock_before_wait(me_, lock, type,      \
							 stack_, self_blocks); \
			uint64_t t0_ = spy_now_ns();                           \
			r_ = SPY_PARKED(lock_expr);                            \
			if (me_ && (how) == TRACE_LOCK_BLOCKING)               \
				spy_deadlock_after_wait(me_);                  \
			if (SPY_UNLIKELY(!spy_tracing))                        \
				LEAVE_UNRECORDED(r_);                          \
			waited_ = spy_now_ns() - t0_;                          \
		} else {                                                       \
			stack_ = rec_lock_stack(lock, site_, cfa_);            \
		}                                                              \
		int *errp_ = errno_loc();                                      \
		int saved_ = *errp_;                                           \
		if (ok(r_)) {                                                  \
			if (me_)                                               \
				spy_lock_held_push(me_, lock, type, stack_);   \
			rec_lock_acquire(lock, flags_, stack_, waited_,        \
					 me_ && me_->n_held == 1, site_);      \
		} else {                                                       \
			rec_lock_fail(lock, flags_, r_, stack_);               \
		}                                                              \
		spy_hook_leave();                                              \
		*errp_ = saved_;                                               \
		return r_;                                                     \
	} while (0)

#define ACQUIRE_BODY(lock, type, how, try_expr, lock_expr, busy, ok,           \
		     self_blocks)                                              \
	ACQUIRE_BODY_AT(SITE(), CFA(), lock, type, how, try_expr, lock_expr,   \
			busy, ok, self_blocks)

/* A try variant: never blocks, never a wait. */
#define TRY_BODY_AT(site, cfa, lock, type, try_expr, ok)                       \
	do {                                                                   \
		uintptr_t site_ = (site), cfa_ = (cfa);                        \
		struct spy_lock_thread *me_ = spy_lock_self(spy_pid);          \
		unsigned flags_ = rec_lock_flags((type) & ~SPY_LOCK_UNOWNED,       \
						TRACE_LOCK_TRY);        \
		int r_ = try_expr;                                             \
		int *errp_ = errno_loc();                                      \
		int saved_ = *errp_;                                           \
		uint32_t stack_ = rec_lock_stack(lock, site_, cfa_);           \
		if (ok(r_)) {                                                  \
			if (me_)                                               \
				spy_lock_held_push(me_, lock, type, stack_);   \
			rec_lock_acquire(lock, flags_, stack_, 0,              \
					 me_ && me_->n_held == 1, site_);      \
		} else {                                                       \
			rec_lock_fail(lock, flags_, r_, stack_);               \
		}                                                              \
		spy_hook_leave();                                              \
		*errp_ = saved_;                                               \
		return r_;                                                     \
	} while (0)

#define TRY_BODY(lock, type, try_expr, ok)                                     \
	TRY_BODY_AT(SITE(), CFA(), lock, type, try_expr, ok)

#define RELEASE_BODY(lock, unlock_expr)                                        \
	do {                                                                   \
		struct spy_lock_thread *me_ = spy_lock_self(spy_pid);          \
		int *errp_ = errno_loc();                                      \
		int saved_ = *errp_;                                           \
		if (me_)                                                       \
			spy_lock_held_pop(me_, lock);                          \
		rec_lock_release(lock, me_ && !me_->n_held);                   \
		spy_hook_leave();                                              \
		*errp_ = saved_;                                               \
		return unlock_expr;                                            \
	} while (0)

#define PTHREAD_OK(r) ((r) == 0 || (r) == EOWNERDEAD)
#define C11_OK(r) ((r) == thrd_success)

/* ---- pthread_mutex_t ----------------------------------------------------- */

/* Everything but the hot path, out of line so that the hot path needs
 * no frame; site and cfa are the hook's. */
__attribute__((noinline)) static int mutex_lock_body(pthread_mutex_t *m,
						     int tried, uintptr_t site,
						     uintptr_t cfa)
{
	if (!lock_hook_enter())
		return tried >= 0 && tried != EBUSY ? tried
						    : REAL(mutex_lock)(m);
	ACQUIRE_BODY_AT(site, cfa, m, TRACE_LOCK_MUTEX, TRACE_LOCK_BLOCKING,
			tried >= 0 ? tried : spy_real_locks.mutex_trylock(m),
			spy_real_locks.mutex_lock(m), EBUSY, PTHREAD_OK,
			mutex_self_blocks(m));
}

SPY_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
	/* The hot path (rec_locks.h): a pair of a dense run, not timed.
	 * Nothing on it can change errno. A trylock that did not take the
	 * lock goes on as usual, and one that took it with an error
	 * (EOWNERDEAD) is not tried again. */
	int tried = -1;
	if (rec_lock_hot_armed(m, SITE(), rec_lock_flags(TRACE_LOCK_MUTEX,
							 TRACE_LOCK_BLOCKING))) {
		tried = spy_real_locks.mutex_trylock(m);
		if (SPY_LIKELY(tried == 0)) {
			rec_lock_hot_take();
			return 0;
		}
	}
	return mutex_lock_body(m, tried, SITE(), CFA());
}

SPY_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m,
				       const struct timespec *at)
{
	if (!lock_hook_enter())
		return REAL(mutex_timedlock)(m, at);
	ACQUIRE_BODY(m, TRACE_LOCK_MUTEX, TRACE_LOCK_TIMED,
		     spy_real_locks.mutex_trylock(m),
		     spy_real_locks.mutex_timedlock(m, at), EBUSY, PTHREAD_OK, 0);
}

SPY_EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock,
				       const struct timespec *at)
{
	if (!lock_hook_enter())
		return REAL(mutex_clocklock)(m, clock, at);
	ACQUIRE_BODY(m, TRACE_LOCK_MUTEX, TRACE_LOCK_TIMED,
		     spy_real_locks.mutex_trylock(m),
		     spy_real_locks.mutex_clocklock(m, clock, at), EBUSY,
		     PTHREAD_OK, 0);
}

SPY_EXPORT int pthread_mutex_trylock(pthread_mutex_t *m)
{
	if (!lock_hook_enter())
		return REAL(mutex_trylock)(m);
	TRY_BODY(m, TRACE_LOCK_MUTEX, spy_real_locks.mutex_trylock(m),
		 PTHREAD_OK);
}

/* glibc keeps the holder's tid in every kind of mutex (0 when free): an
 * unlock by any other thread breaks the mutex's rules, whatever glibc
 * then does (a normal mutex lets it pass, an error-checking one returns
 * EPERM, which programs rarely look at). */
static void mutex_check_unlock(pthread_mutex_t *m)
{
	int owner = __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
	/* (a fork child's thread unlocking what it locked before the fork,
	 * under its id in the parent: pthread_atfork's own pattern) */
	if (SPY_UNLIKELY(owner != spy_sys_thread_tid()) &&
	    (!owner || owner != spy_process_forker_tid()))
		rec_lock_misuse(m, owner ? TRACE_MISUSE_UNLOCK_OTHER
					 : TRACE_MISUSE_UNLOCK_FREE, owner,
				TRACE_LOCK_MUTEX);
}

__attribute__((noinline)) static int mutex_unlock_body(pthread_mutex_t *m)
{
	if (!lock_hook_enter())
		return REAL(mutex_unlock)(m);
	mutex_check_unlock(m);
	RELEASE_BODY(m, spy_real_locks.mutex_unlock(m));
}

SPY_EXPORT int pthread_mutex_unlock(pthread_mutex_t *m)
{
	if (rec_lock_hot_give(m)) /* counted before the real unlock */
		return spy_real_locks.mutex_unlock(m);
	return mutex_unlock_body(m);
}

SPY_EXPORT int pthread_mutex_init(pthread_mutex_t *m,
				  const pthread_mutexattr_t *attr)
{
	if (!lock_hook_enter())
		return REAL(mutex_init)(m, attr);
	int r = spy_real_locks.mutex_init(m, attr);
	int saved = errno;
	if (r == 0)
		rec_lock_life(TRACE_LOCK_INIT, m, TRACE_LOCK_MUTEX);
	spy_hook_leave();
	errno = saved;
	return r;
}

SPY_EXPORT int pthread_mutex_destroy(pthread_mutex_t *m)
{
	if (!lock_hook_enter())
		return REAL(mutex_destroy)(m);
	int saved = errno;
	int owner = __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
	if (SPY_UNLIKELY(owner))
		rec_lock_misuse(m, TRACE_MISUSE_DESTROY_HELD, owner,
				TRACE_LOCK_MUTEX);
	rec_lock_life(TRACE_LOCK_DESTROY, m, TRACE_LOCK_MUTEX);
	spy_hook_leave();
	errno = saved;
	return spy_real_locks.mutex_destroy(m);
}

/* ---- pthread_rwlock_t ---------------------------------------------------- */

SPY_EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
	if (!lock_hook_enter())
		return REAL(rwlock_rdlock)(l);
	ACQUIRE_BODY(l, TRACE_LOCK_READ, TRACE_LOCK_BLOCKING,
		     spy_real_locks.rwlock_tryrdlock(l),
		     spy_real_locks.rwlock_rdlock(l), EBUSY, PTHREAD_OK, 0);
}

SPY_EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
	if (!lock_hook_enter())
		return REAL(rwlock_wrlock)(l);
	/* A writer that holds the lock for reading waits for itself for
	 * ever; one that holds it for writing gets EDEADLK. */
	ACQUIRE_BODY(l, TRACE_LOCK_WRITE, TRACE_LOCK_BLOCKING,
		     spy_real_locks.rwlock_trywrlock(l),
		     spy_real_locks.rwlock_wrlock(l), EBUSY, PTHREAD_OK,
		     l->__data.__cur_writer != spy_sys_gettid());
}

SPY_EXPORT int pthread_rwlock_timedrdlock(pthread_rwlock_t *l,
					  const struct timespec *at)
{
	if (!lock_hook_enter())
		return REAL(rwlock_timedrdlock)(l, at);
	ACQUIRE_BODY(l, TRACE_LOCK_READ, TRACE_LOCK_TIMED,
		     spy_real_locks.rwlock_tryrdlock(l),
		     spy_real_locks.rwlock_timedrdlock(l, at), EBUSY, PTHREAD_OK, 0);
}

SPY_EXPORT int pthread_rwlock_timedwrlock(pthread_rwlock_t *l,
					  const struct timespec *at)
{
	if (!lock_hook_enter())
		return REAL(rwlock_timedwrlock)(l, at);
	ACQUIRE_BODY(l, TRACE_LOCK_WRITE, TRACE_LOCK_TIMED,
		     spy_real_locks.rwlock_trywrlock(l),
		     spy_real_locks.rwlock_timedwrlock(l, at), EBUSY, PTHREAD_OK, 0);
}

SPY_EXPORT int pthread_rwlock_clockrdlock(pthread_rwlock_t *l, clockid_t c,
					  const struct timespec *at)
{
	if (!lock_hook_enter())
		return REAL(rwlock_clockrdlock)(l, c, at);
	ACQUIRE_BODY(l, TRACE_LOCK_READ, TRACE_LOCK_TIMED,
		     spy_real_locks.rwlock_tryrdlock(l),
		     spy_real_locks.rwlock_clockrdlock(l, c, at), EBUSY,
		     PTHREAD_OK, 0);
}

SPY_EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t *l, clockid_t c,
					  const struct timespec *at)
{
	if (!lock_hook_enter())
		return REAL(rwlock_clockwrlock)(l, c, at);
	ACQUIRE_BODY(l, TRACE_LOCK_WRITE, TRACE_LOCK_TIMED,
		     spy_real_locks.rwlock_trywrlock(l),
		     spy_real_locks.rwlock_clockwrlock(l, c, at), EBUSY,
		     PTHREAD_OK, 0);
}

SPY_EXPORT int pthread_rwlock_tryrdlock(pthread_rwlock_t *l)
{
	if (!lock_hook_enter())
		return REAL(rwlock_tryrdlock)(l);
	TRY_BODY(l, TRACE_LOCK_READ, spy_real_locks.rwlock_tryrdlock(l),
		 PTHREAD_OK);
}

SPY_EXPORT int pthread_rwlock_trywrlock(pthread_rwlock_t *l)
{
	if (!lock_hook_enter())
		return REAL(rwlock_trywrlock)(l);
	TRY_BODY(l, TRACE_LOCK_WRITE, spy_real_locks.rwlock_trywrlock(l),
		 PTHREAD_OK);
}

/* glibc's rwlock (nptl/pthread_rwlock_common.c) keeps its writer's tid
 * in __cur_writer, and in __readers a write-phase bit, a "writer holds
 * it" bit and, above them, the count of readers that hold it (in a read
 * phase). Which threads the readers are, only libspy's tables say. */
#define RW_WRPHASE 1u
#define RW_WRLOCKED 2u
#define RW_READERS(r) ((r) >> 3)

static int rw_write_held(unsigned r)
{
	return (r & RW_WRPHASE) && (r & RW_WRLOCKED);
}

static int rw_read_held(unsigned r)
{
	return !(r & RW_WRPHASE) && RW_READERS(r);
}

/* An unlock by a thread that holds neither the write lock nor a read
 * lock. glibc takes any unlock by a thread that is not the writer for a
 * reader's, so each of these breaks the lock's count. What glibc's
 * fields say is certain; a reader is reported only when the caller's
 * table is whole and another thread's lists the lock. */
static void rwlock_check_unlock(pthread_rwlock_t *l,
				struct spy_lock_thread *me)
{
	int tid = spy_sys_thread_tid();
	int writer = __atomic_load_n(&l->__data.__cur_writer, __ATOMIC_RELAXED);
	if (SPY_LIKELY(writer == tid))
		return;
	unsigned r = __atomic_load_n(&l->__data.__readers, __ATOMIC_RELAXED);
	if (SPY_LIKELY(rw_read_held(r))) {
		if (!spy_lock_table_whole(me) || spy_lock_holds(me, l) ||
		    !rec_lock_misuse_room())
			return;
		int reader = spy_lock_holder(l, tid, TRACE_LOCK_READ);
		if (reader)
			rec_lock_misuse(l, TRACE_MISUSE_UNLOCK_OTHER, reader,
					TRACE_LOCK_READ);
	} else if (!RW_READERS(r) && !(r & RW_WRLOCKED)) {
		rec_lock_misuse(l, TRACE_MISUSE_UNLOCK_FREE, 0, TRACE_LOCK_RWLOCK);
	} else if (rw_write_held(r) && writer) {
		/* (a fork child's thread has a tid of its own: glibc no
		 * longer knows it for the writer) */
		rec_lock_misuse(l, writer == spy_process_forker_tid()
					   ? TRACE_MISUSE_UNLOCK_FORKED
					   : TRACE_MISUSE_UNLOCK_OTHER,
				writer, TRACE_LOCK_WRITE);
	}
}

__attribute__((noinline)) static void rwlock_check_destroy(pthread_rwlock_t *l)
{
	unsigned r = __atomic_load_n(&l->__data.__readers, __ATOMIC_RELAXED);
	if (rw_write_held(r))
		rec_lock_misuse(l, TRACE_MISUSE_DESTROY_HELD,
				__atomic_load_n(&l->__data.__cur_writer,
						__ATOMIC_RELAXED),
				TRACE_LOCK_WRITE);
	else if (rw_read_held(r) && rec_lock_misuse_room())
		rec_lock_misuse(l, TRACE_MISUSE_DESTROY_HELD,
				spy_lock_holder(l, 0, TRACE_LOCK_READ),
				TRACE_LOCK_READ);
}

SPY_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t *l)
{
	if (!lock_hook_enter())
		return REAL(rwlock_unlock)(l);
	rwlock_check_unlock(l, spy_lock_self(spy_pid));
	RELEASE_BODY(l, spy_real_locks.rwlock_unlock(l));
}

SPY_EXPORT int pthread_rwlock_init(pthread_rwlock_t *l,
				   const pthread_rwlockattr_t *attr)
{
	if (!lock_hook_enter())
		return REAL(rwlock_init)(l, attr);
	int r = spy_real_locks.rwlock_init(l, attr);
	int saved = errno;
	if (r == 0)
		rec_lock_life(TRACE_LOCK_INIT, l, TRACE_LOCK_RWLOCK);
	spy_hook_leave();
	errno = saved;
	return r;
}

SPY_EXPORT int pthread_rwlock_destroy(pthread_rwlock_t *l)
{
	if (!lock_hook_enter())
		return REAL(rwlock_destroy)(l);
	int saved = errno;
	rwlock_check_destroy(l);
	rec_lock_life(TRACE_LOCK_DESTROY, l, TRACE_LOCK_RWLOCK);
	spy_hook_leave();
	errno = saved;
	return spy_real_locks.rwlock_destroy(l);
}

/* ---- pthread_spinlock_t -------------------------------------------------- */

SPY_EXPORT int pthread_spin_lock(pthread_spinlock_t *l)
{
	if (!lock_hook_enter())
		return REAL(spin_lock)(l);
	const void *id = (const void *)(uintptr_t)l;
	ACQUIRE_BODY(id, TRACE_LOCK_SPIN, TRACE_LOCK_BLOCKING,
		     spy_real_locks.spin_trylock(l), spy_real_locks.spin_lock(l),
		     EBUSY, PTHREAD_OK, 1);
}

SPY_EXPORT int pthread_spin_trylock(pthread_spinlock_t *l)
{
	if (!lock_hook_enter())
		return REAL(spin_trylock)(l);
	const void *id = (const void *)(uintptr_t)l;
	TRY_BODY(id, TRACE_LOCK_SPIN, spy_real_locks.spin_trylock(l), PTHREAD_OK);
}

/* glibc's spin lock is a word that knows no holder: on x86 1 when free
 * (a taker decrements it), elsewhere 0. An unlock of a free one is
 * certain; one another thread holds is reported when the caller's table
 * is whole and the holder's lists it. */
#if defined(__x86_64__) || defined(__i386__)
#define SPIN_FREE(v) ((v) > 0)
#else
#define SPIN_FREE(v) ((v) == 0)
#endif

static void spin_check_unlock(pthread_spinlock_t *l, const void *id,
			      struct spy_lock_thread *me)
{
	if (SPY_UNLIKELY(SPIN_FREE(__atomic_load_n(l, __ATOMIC_RELAXED)))) {
		rec_lock_misuse(id, TRACE_MISUSE_UNLOCK_FREE, 0, TRACE_LOCK_SPIN);
		return;
	}
	if (SPY_LIKELY(!spy_lock_table_whole(me) || spy_lock_holds(me, id)) ||
	    !rec_lock_misuse_room())
		return;
	int holder = spy_lock_holder(id, me->tid, TRACE_LOCK_SPIN);
	if (holder)
		rec_lock_misuse(id, TRACE_MISUSE_UNLOCK_OTHER, holder,
				TRACE_LOCK_SPIN);
}

SPY_EXPORT int pthread_spin_unlock(pthread_spinlock_t *l)
{
	if (!lock_hook_enter())
		return REAL(spin_unlock)(l);
	const void *id = (const void *)(uintptr_t)l;
	spin_check_unlock(l, id, spy_lock_self(spy_pid));
	RELEASE_BODY(id, spy_real_locks.spin_unlock(l));
}

SPY_EXPORT int pthread_spin_init(pthread_spinlock_t *l, int shared)
{
	if (!lock_hook_enter())
		return REAL(spin_init)(l, shared);
	int r = spy_real_locks.spin_init(l, shared);
	int saved = errno;
	if (r == 0)
		rec_lock_life(TRACE_LOCK_INIT, (const void *)(uintptr_t)l,
			      TRACE_LOCK_SPIN);
	spy_hook_leave();
	errno = saved;
	return r;
}

SPY_EXPORT int pthread_spin_destroy(pthread_spinlock_t *l)
{
	if (!lock_hook_enter())
		return REAL(spin_destroy)(l);
	int saved = errno;
	const void *id = (const void *)(uintptr_t)l;
	if (SPY_UNLIKELY(!SPIN_FREE(__atomic_load_n(l, __ATOMIC_RELAXED))) &&
	    rec_lock_misuse_room())
		rec_lock_misuse(id, TRACE_MISUSE_DESTROY_HELD,
				spy_lock_holder(id, 0, TRACE_LOCK_SPIN),
				TRACE_LOCK_SPIN);
	rec_lock_life(TRACE_LOCK_DESTROY, id, TRACE_LOCK_SPIN);
	spy_hook_leave();
	errno = saved;
	return spy_real_locks.spin_destroy(l);
}

/* ---- condition variables ------------------------------------------------- */

/* The wait releases the mutex and takes it again before returning (inside
 * glibc, out of our sight): recorded as a release, the wait, then a
 * blocking acquisition, which is what lockdep's rules ask for. For the live
 * check the thread waits for the mutex all along: it cannot return without
 * it, so a thread that holds the mutex and waits for a lock this one holds
 * closes a deadlock, signalled or not. */
#define COND_BODY(cond, mutex, timed, wait_expr, ok)                           \
	do {                                                                   \
		struct spy_lock_thread *me_ = spy_lock_self(spy_pid);          \
		uint32_t stack_ = spy_stack_capture();                         \
		if (me_)                                                       \
			spy_lock_held_pop(me_, mutex);                         \
		rec_lock_release(mutex, 0);                                    \
		rec_cond_wait(cond, mutex, timed, stack_);                     \
		if (me_)                                                       \
			spy_deadlock_cond_wait(me_, mutex,                     \
				rec_lock_flags(TRACE_LOCK_MUTEX,               \
					       TRACE_LOCK_COND),               \
				stack_, spy_now_ns());                         \
		int r_ = SPY_PARKED(wait_expr);                                \
		int *errp_ = errno_loc();                                      \
		int saved_ = *errp_;                                           \
		(void)(ok);                                                    \
		if (me_)                                                       \
			spy_deadlock_after_wait(me_);                          \
		if (SPY_UNLIKELY(!spy_tracing))                                \
			LEAVE_UNRECORDED(r_);                                  \
		if (me_)                                                       \
			spy_lock_held_push(me_, mutex, TRACE_LOCK_MUTEX,       \
					   stack_);                            \
		rec_lock_acquire(mutex, rec_lock_flags(TRACE_LOCK_MUTEX,       \
						       TRACE_LOCK_COND),       \
				 stack_, 0, 0, SITE());                        \
		spy_hook_leave();                                              \
		*errp_ = saved_;                                               \
		return r_;                                                     \
	} while (0)

SPY_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	if (!lock_hook_enter())
		return REAL(cond_wait)(c, m);
	COND_BODY(c, m, 0, spy_real_locks.cond_wait(c, m), 1);
}

SPY_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
				      const struct timespec *at)
{
	if (!lock_hook_enter())
		return REAL(cond_timedwait)(c, m, at);
	COND_BODY(c, m, 1, spy_real_locks.cond_timedwait(c, m, at), 1);
}

SPY_EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m,
				      clockid_t clock, const struct timespec *at)
{
	if (!lock_hook_enter())
		return REAL(cond_clockwait)(c, m, clock, at);
	COND_BODY(c, m, 1, spy_real_locks.cond_clockwait(c, m, clock, at), 1);
}

/* ---- C11 mtx_t and cnd_t --------------------------------------------------- */

SPY_EXPORT int mtx_lock(mtx_t *m)
{
	if (!lock_hook_enter())
		return REAL(mtx_lock)(m);
	ACQUIRE_BODY(m, TRACE_LOCK_MUTEX, TRACE_LOCK_BLOCKING,
		     spy_real_locks.mtx_trylock(m), spy_real_locks.mtx_lock(m),
		     thrd_busy, C11_OK, mutex_self_blocks(m));
}

SPY_EXPORT int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict at)
{
	if (!lock_hook_enter())
		return REAL(mtx_timedlock)(m, at);
	ACQUIRE_BODY(m, TRACE_LOCK_MUTEX, TRACE_LOCK_TIMED,
		     spy_real_locks.mtx_trylock(m),
		     spy_real_locks.mtx_timedlock(m, at), thrd_busy, C11_OK, 0);
}

SPY_EXPORT int mtx_trylock(mtx_t *m)
{
	if (!lock_hook_enter())
		return REAL(mtx_trylock)(m);
	TRY_BODY(m, TRACE_LOCK_MUTEX, spy_real_locks.mtx_trylock(m), C11_OK);
}

SPY_EXPORT int mtx_unlock(mtx_t *m)
{
	if (!lock_hook_enter())
		return REAL(mtx_unlock)(m);
	RELEASE_BODY(m, spy_real_locks.mtx_unlock(m));
}

SPY_EXPORT int mtx_init(mtx_t *m, int type)
{
	if (!lock_hook_enter())
		return REAL(mtx_init)(m, type);
	int r = spy_real_locks.mtx_init(m, type);
	int saved = errno;
	if (r == thrd_success)
		rec_lock_life(TRACE_LOCK_INIT, m, TRACE_LOCK_MUTEX);
	spy_hook_leave();
	errno = saved;
	return r;
}

SPY_EXPORT void mtx_destroy(mtx_t *m)
{
	if (!lock_hook_enter()) {
		REAL(mtx_destroy)(m);
		return;
	}
	int saved = errno;
	rec_lock_life(TRACE_LOCK_DESTROY, m, TRACE_LOCK_MUTEX);
	spy_hook_leave();
	errno = saved;
	spy_real_locks.mtx_destroy(m);
}

SPY_EXPORT int cnd_wait(cnd_t *c, mtx_t *m)
{
	if (!lock_hook_enter())
		return REAL(cnd_wait)(c, m);
	COND_BODY(c, m, 0, spy_real_locks.cnd_wait(c, m), 1);
}

SPY_EXPORT int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m,
			     const struct timespec *restrict at)
{
	if (!lock_hook_enter())
		return REAL(cnd_timedwait)(c, m, at);
	COND_BODY(c, m, 1, spy_real_locks.cnd_timedwait(c, m, at), 1);
}

/* ---- OpenMP omp_lock_t ----------------------------------------------------- */

/* The OpenMP runtime's locks are its own (futexes in libgomp), which no
 * pthread hook sees. Its functions are found on first use, when the
 * runtime is loaded: among the loaded objects, as a library the program
 * dlopens (a Python module) may have its runtime in its own scope, where
 * RTLD_NEXT does not look, and a lookup that fails would change what
 * dlerror() tells the program. The first runtime loaded wins, as it does
 * for the program's own calls in the global scope. The nestable locks are
 * left alone: libgomp has two of each of their functions, for two
 * layouts (symbol versions OMP_1.0 and OMP_3.0), and a hook cannot tell
 * which one its caller was linked to. */
enum { OMP_SET, OMP_UNSET, OMP_TEST, OMP_N };
static const char *const omp_name[OMP_N] = {
	"omp_set_lock", "omp_unset_lock", "omp_test_lock",
};
static void *omp_real[OMP_N];

struct omp_search {
	const char *name;
	void *found;
};

static int omp_ask_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct omp_search *os = arg;
	const char *n = info->dlpi_name;
	if (!n || !(strstr(n, "/libgomp.so") || strstr(n, "/libomp.so") ||
		    strstr(n, "/libiomp5.so")))
		return 0;
	void *h = dlopen(n, RTLD_LAZY | RTLD_NOLOAD);
	if (!h)
		return 0;
	os->found = dlsym(h, os->name);
	dlclose(h);
	return os->found != NULL;
}

/* Keeps errno. A program that calls these has a runtime loaded; one
 * that has none would have stopped at the call without libspy. */
static void *omp_fn(int which)
{
	void *f = __atomic_load_n(&omp_real[which], __ATOMIC_ACQUIRE);
	if (SPY_UNLIKELY(!f)) {
		int saved = errno;
		spy_self.guard++;
		struct omp_search os = { omp_name[which], NULL };
		dl_iterate_phdr(omp_ask_object, &os);
		spy_self.guard--;
		errno = saved;
		if (!(f = os.found))
			abort();
		__atomic_store_n(&omp_real[which], f, __ATOMIC_RELEASE);
	}
	return f;
}

#define OMP_SET_REAL(l) ((void (*)(void *))omp_fn(OMP_SET))(l)
#define OMP_UNSET_REAL(l) ((void (*)(void *))omp_fn(OMP_UNSET))(l)
#define OMP_TEST_REAL(l) ((int (*)(void *))omp_fn(OMP_TEST))(l)

/* Recorded as mutexes; the live check cannot ask them who holds them.
 * One taken again by its holder blocks for ever. */
#define OMP_TYPE (TRACE_LOCK_MUTEX | SPY_LOCK_UNOWNED)

__attribute__((noinline)) static int omp_set_body(void *l, uintptr_t site,
						  uintptr_t cfa)
{
	ACQUIRE_BODY_AT(site, cfa, l, OMP_TYPE, TRACE_LOCK_BLOCKING,
			OMP_TEST_REAL(l) ? 0 : EBUSY, (OMP_SET_REAL(l), 0),
			EBUSY, PTHREAD_OK, 1);
}

/* The runtime's result (non-zero when taken) goes back through *got. */
__attribute__((noinline)) static int omp_test_body(void *l, int *got,
						   uintptr_t site, uintptr_t cfa)
{
	TRY_BODY_AT(site, cfa, l, OMP_TYPE, (*got = OMP_TEST_REAL(l)) ? 0 : EBUSY,
		    PTHREAD_OK);
}

static int omp_unset_body(void *l)
{
	RELEASE_BODY(l, (OMP_UNSET_REAL(l), 0));
}

SPY_EXPORT void omp_set_lock(void *l)
{
	if (!lock_hook_enter()) {
		OMP_SET_REAL(l);
		return;
	}
	omp_set_body(l, SITE(), CFA());
}

SPY_EXPORT int omp_test_lock(void *l)
{
	if (!lock_hook_enter())
		return OMP_TEST_REAL(l);
	int got = 0;
	omp_test_body(l, &got, SITE(), CFA());
	return got;
}

SPY_EXPORT void omp_unset_lock(void *l)
{
	if (!lock_hook_enter()) {
		OMP_UNSET_REAL(l);
		return;
	}
	omp_unset_body(l);
}

/* ---- sem_t --------------------------------------------------------------- */

/* A semaphore is recorded like a lock (TRACE_LOCK_SEM): a successful wait
 * takes it, a post gives it back, whichever thread posts. Only while it
 * behaves like a lock does it count as one, for the analyzer (over the
 * whole trace) and for the live check (spy_sem_* in spy_deadlock.h). The
 * calls report failure in errno, which is left as the real call left it. */

enum sem_call { SEM_WAIT, SEM_TIMED, SEM_CLOCK };

static int sem_real_wait(enum sem_call c, sem_t *s, clockid_t clock,
			 const struct timespec *at)
{
	switch (c) {
	case SEM_TIMED:
		return spy_real_locks.sem_timedwait(s, at);
	case SEM_CLOCK:
		return spy_real_locks.sem_clockwait(s, clock, at);
	default:
		return spy_real_locks.sem_wait(s);
	}
}

/* The calling thread took s. It is held, unless the thread held it
 * already: taken twice without a post, it is no lock, and the older
 * entry goes too. Never counted in a run of pairs: the analyzer needs
 * every take and post to tell a lock from a counting semaphore. */
static void sem_took(struct spy_lock_thread *me, sem_t *s, unsigned flags,
		     uint32_t stack, uint64_t waited, uintptr_t site)
{
	spy_sem_taken(s, me ? me->tid : spy_sys_gettid());
	if (me) {
		/* Entries of semaphores another thread posted since (or
		 * that nothing follows) go: only the owner can drop them. */
		uint32_t n = me->n_held < SPY_LOCK_HELD ? me->n_held
							: SPY_LOCK_HELD;
		for (uint32_t i = n; i-- > 0;) {
			uintptr_t l = me->held[i].lock;
			if (me->held[i].type == TRACE_LOCK_SEM &&
			    l != (uintptr_t)s &&
			    !spy_sem_taken_by((const void *)l, me->tid))
				spy_lock_held_pop(me, (const void *)l);
		}
		if (spy_lock_holds(me, s)) {
			spy_lock_held_pop(me, s);
		} else {
			spy_lock_held_push(me, s, TRACE_LOCK_SEM, stack);
		}
	}
	rec_lock_acquire(s, flags, stack, waited, 0, site);
}

/* sem_wait and the timed waits: tried first, like a mutex. A self-wait
 * is never called a deadlock: another thread may post. */
__attribute__((noinline)) static int sem_acquire(sem_t *s, enum sem_call c,
						 clockid_t clock,
						 const struct timespec *at,
						 uintptr_t site, uintptr_t cfa)
{
	int *errp = errno_loc();
	int entry = *errp;
	struct spy_lock_thread *me = spy_lock_self(spy_pid);
	unsigned how = c == SEM_WAIT ? TRACE_LOCK_BLOCKING : TRACE_LOCK_TIMED;
	unsigned flags = rec_lock_flags(TRACE_LOCK_SEM, how);
	uint64_t waited = 0;
	uint32_t stack;
	/* glibc refuses a bad time or clock before it looks at the
	 * semaphore: such a call goes straight to it, untried. */
	int r = -1, saved = EAGAIN;
	if (c == SEM_WAIT ||
	    (at && at->tv_nsec >= 0 && at->tv_nsec < 1000000000 &&
	     (c != SEM_CLOCK || clock == CLOCK_MONOTONIC ||
	      clock == CLOCK_REALTIME))) {
		r = spy_real_locks.sem_trywait(s);
		saved = r == 0 ? entry : *errp;
	}
	if (r != 0 && saved == EAGAIN) {
		stack = spy_opt.stacks ? spy_stack_capture_from(site, cfa) : 0;
		rec_lock_wait(s, flags, stack);
		if (me && c == SEM_WAIT)
			spy_deadlock_before_wait(me, s, TRACE_LOCK_SEM, stack, 0);
		*errp = entry;
		uint64_t t0 = spy_now_ns();
		r = SPY_PARKED(sem_real_wait(c, s, clock, at));
		saved = r == 0 ? entry : *errp;
		if (me && c == SEM_WAIT)
			spy_deadlock_after_wait(me);
		if (SPY_UNLIKELY(!spy_tracing)) {
			spy_hook_leave();
			*errp = saved;
			return r;
		}
		waited = spy_now_ns() - t0;
	} else {
		stack = rec_lock_stack(s, site, cfa);
	}
	if (r == 0)
		sem_took(me, s, flags, stack, waited, site);
	else
		rec_lock_fail(s, flags, saved, stack);
	spy_hook_leave();
	*errp = saved;
	return r;
}

SPY_EXPORT int sem_wait(sem_t *s)
{
	if (!lock_hook_enter())
		return REAL(sem_wait)(s);
	return sem_acquire(s, SEM_WAIT, 0, NULL, SITE(), CFA());
}

SPY_EXPORT int sem_timedwait(sem_t *restrict s,
			     const struct timespec *restrict at)
{
	if (!lock_hook_enter())
		return REAL(sem_timedwait)(s, at);
	return sem_acquire(s, SEM_TIMED, 0, at, SITE(), CFA());
}

SPY_EXPORT int sem_clockwait(sem_t *restrict s, clockid_t clock,
			     const struct timespec *restrict at)
{
	if (!lock_hook_enter())
		return REAL(sem_clockwait)(s, clock, at);
	return sem_acquire(s, SEM_CLOCK, clock, at, SITE(), CFA());
}

SPY_EXPORT int sem_trywait(sem_t *s)
{
	if (!lock_hook_enter())
		return REAL(sem_trywait)(s);
	uintptr_t site = SITE();
	int *errp = errno_loc();
	int entry = *errp;
	struct spy_lock_thread *me = spy_lock_self(spy_pid);
	unsigned flags = rec_lock_flags(TRACE_LOCK_SEM, TRACE_LOCK_TRY);
	int r = spy_real_locks.sem_trywait(s);
	int saved = r == 0 ? entry : *errp;
	uint32_t stack = rec_lock_stack(s, site, CFA());
	if (r == 0)
		sem_took(me, s, flags, stack, 0, site);
	else
		rec_lock_fail(s, flags, saved, stack);
	spy_hook_leave();
	*errp = saved;
	return r;
}

SPY_EXPORT int sem_post(sem_t *s)
{
	if (!lock_hook_enter())
		return REAL(sem_post)(s);
	int *errp = errno_loc();
	int saved = *errp;
	struct spy_lock_thread *me = spy_lock_self(spy_pid);
	spy_sem_given(s, me ? me->tid : spy_sys_gettid());
	if (me && spy_lock_holds(me, s))
		spy_lock_held_pop(me, s);
	rec_lock_release(s, me && !me->n_held);
	spy_hook_leave();
	*errp = saved;
	return spy_real_locks.sem_post(s);
}

SPY_EXPORT int sem_init(sem_t *s, int shared, unsigned value)
{
	if (!lock_hook_enter())
		return REAL(sem_init)(s, shared, value);
	int r = spy_real_locks.sem_init(s, shared, value);
	int saved = errno;
	if (r == 0) {
		spy_sem_reset(s);
		rec_lock_life(TRACE_LOCK_INIT, s, TRACE_LOCK_SEM);
	}
	spy_hook_leave();
	errno = saved;
	return r;
}

SPY_EXPORT int sem_destroy(sem_t *s)
{
	if (!lock_hook_enter())
		return REAL(sem_destroy)(s);
	int saved = errno;
	struct spy_lock_thread *me = spy_lock_self(spy_pid);
	spy_sem_reset(s);
	if (me && spy_lock_holds(me, s))
		spy_lock_held_pop(me, s);
	rec_lock_life(TRACE_LOCK_DESTROY, s, TRACE_LOCK_SEM);
	spy_hook_leave();
	errno = saved;
	return spy_real_locks.sem_destroy(s);
}
