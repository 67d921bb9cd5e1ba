/* rec_locks.h: the lock recorder: lock, unlock, wait, trylock failures and
 * condition waits into the trace (kinds 20-39 of trace_format.h). Called by
 * the hooks in hook_locks.c with the guard held. The fast paths are inline
 * here (the stack capture must be, so that the stack starts at the hook);
 * whatever writes a record is out of line in rec_locks.c. Never allocates,
 * never takes a lock, never calls an interposed function.
 *
 * Stacks cost far more than the lock itself, so an acquisition's stack is
 * captured once per (lock, call site) and thread, and reused while the
 * same call site takes the same lock again: a small per-thread table keyed
 * by the lock's address and the hook's return address.
 */
#ifndef REC_LOCKS_H
#define REC_LOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "spy_core.h"
#include "spy_process.h"
#include "spy_stack.h"
#include "spy_writer.h"
#include "trace_format.h"

#define REC_LOCK_SITES 8 /* a power of two */

/* Writes what the calling thread has not written yet (at thread and
 * process exit). */
void rec_lock_thread_flush(void);

struct rec_lock_site {
	uintptr_t lock, site;
	uint32_t stack;
	int pid;               /* stack ids belong to this process's trace */
};

/* The calling thread's table of lock sites: NULL until its first lock
 * call (a thread that never locks pays nothing), then one taken from an
 * ended thread's or made; NULL again if none could be had. */
extern __thread struct rec_lock_site *rec_lock_sites
	__attribute__((tls_model("initial-exec")));
struct rec_lock_site *rec_lock_sites_take(void);

/* The thread ends: what it has not written is written, its table goes to
 * the next thread. */
void rec_lock_thread_exit(void);

static inline unsigned rec_lock_flags(unsigned type, unsigned how)
{
	return type | how << 4;
}

/* The stack of an acquisition of lock at site (the hook's return address;
 * cfa is the hook's canonical frame address), from the table or captured
 * now, while the hook's frame is live. */
#define rec_lock_stack(lock_, site_, cfa_)                                     \
	__extension__({                                                        \
		uintptr_t l_ = (uintptr_t)(lock_), s_ = (uintptr_t)(site_);    \
		struct rec_lock_site *t_ = rec_lock_sites, *e_;                \
		if (SPY_UNLIKELY(!t_))                                         \
			t_ = rec_lock_sites_take();                            \
		uint32_t st_;                                                  \
		if (SPY_LIKELY(t_ != NULL)) {                                  \
			e_ = &t_[((l_ >> 3) ^ (s_ * 0x9e3779b1u)) &            \
				 (REC_LOCK_SITES - 1)];                        \
			if (e_->lock != l_ || e_->site != s_ ||                \
			    e_->pid != spy_pid) {                              \
				e_->stack = spy_opt.stacks ?                   \
					spy_stack_capture_from(s_, (cfa_)) : 0; \
				e_->lock = l_;                                 \
				e_->site = s_;                                 \
				e_->pid = spy_pid;                             \
			}                                                      \
			st_ = e_->stack;                                       \
		} else {                                                       \
			st_ = spy_opt.stacks ?                                 \
				spy_stack_capture_from(s_, (cfa_)) : 0;        \
		}                                                              \
		st_;                                                           \
	})

/* The last acquisition of the thread, not written yet: if the thread
 * releases that lock before any other lock call, one LOCK_PAIR record
 * stands for both (or it is counted in a run, below); otherwise it is
 * written as a LOCK_ACQUIRE (with how late) before the next lock record.
 * Only lock records are ordered against it, which is all the lock model
 * needs. */
struct rec_lock_pending {
	uintptr_t lock;
	uint64_t t0_tsc;         /* when taken; 0: not timed (see the run) */
	uint64_t wait_ns;
	uintptr_t site;          /* the hook's return address */
	uint32_t stack;
	unsigned flags;
	int pid;                 /* 0: nothing pending */
};

extern __thread struct rec_lock_pending rec_lock_pend
	__attribute__((tls_model("initial-exec")));

/* Repeated leaf pairs (the same lock, call site and flags, taken while
 * holding no other lock, never waited for) are counted, not written one
 * by one: the first is a LOCK_PAIR, the ones right after it a LOCK_PAIRS
 * record for a run of them, at most 10 ms long. Such pairs add nothing to
 * the order graph; their counts and hold times are all the model needs.
 *
 * Reading the time-stamp counter costs about as much as an uncontended
 * lock/unlock pair, so while a run's pairs come faster than one per
 * REC_LOCK_DENSE_NS only about 1 in 32 of them is timed (a random 16 to 47
 * pairs apart, so that a loop's own period cannot line up with it); each
 * timed hold stands for the pairs skipped before it. Slower pairs are all
 * timed: there the counter costs nothing noticeable. The count is always
 * exact; the record says how many pairs were timed.
 *
 * The untimed pairs of pthread_mutex_lock take a hot path that skips the
 * rest of the hook as well: while a run is armed (skip > 0, nothing
 * pending), the same call site taking the same lock only tries it and
 * marks it held here (holding); its unlock counts it and unlocks. The
 * thread holds nothing else then (any other acquisition disarms the run),
 * so no edge can be missed. A hot lock is not in the thread's table of
 * held locks: the first other lock call of the thread (lock_hook_enter)
 * turns it into an ordinary held, pending acquisition first, before it
 * could wait for anything; a thread that does not wait is in no deadlock. */
#define REC_LOCK_RUN_NS 10000000u
#define REC_LOCK_DENSE_NS 1000u
#define REC_LOCK_RUN_MAX (1u << 30)

struct rec_lock_run {
	uintptr_t lock;
	uint64_t first;          /* ticks: the first counted acquisition */
	uint64_t last;           /* ticks: the last timed release */
	uint64_t hold_total;     /* ticks, an estimate for the first `at` pairs */
	uint64_t hold_max;       /* ticks, the longest timed hold */
	uint32_t stack, count;
	uint32_t timed;          /* pairs whose hold was measured */
	uint32_t at;             /* count at the last timed pair */
	uint32_t skip;           /* pairs to leave untimed before the next */
	uint32_t seed;           /* for skip (xorshift) */
	uintptr_t site;          /* the call site of its acquisitions */
	int holding;             /* a hot acquisition is held, not counted yet */
	unsigned flags;
	int pid;                 /* 0: no run */
};

extern __thread struct rec_lock_run rec_lock_runs
	__attribute__((tls_model("initial-exec")));

/* Out of line (rec_locks.c): writing the run, the pending acquisition
 * (after the run it follows), a timed release of the pending lock, and a
 * release of any other lock. */
void rec_lock_run_write(void);
void rec_lock_pending_write(void);
void rec_lock_release_timed(int leaf);
void rec_lock_release_other(const void *lock);

/* The hot acquisition becomes an ordinary one: listed in the thread's
 * held locks, pending. */
void rec_lock_hot_end(void);

/* 1 if pthread_mutex_lock(lock) called from site may take the hot path:
 * the run is armed for it and nothing is pending. */
static inline __attribute__((always_inline)) int
rec_lock_hot_armed(const void *lock, uintptr_t site, unsigned flags)
{
	const struct rec_lock_run *r = &rec_lock_runs;
	return r->skip && r->lock == (uintptr_t)lock && r->site == site &&
	       !r->holding && r->flags == flags && !rec_lock_pend.pid &&
	       r->pid == spy_pid;
}

/* The lock was taken on the hot path. (skip can only have dropped to 0
 * meanwhile if a signal handler took a lock in between.) */
static inline __attribute__((always_inline)) void rec_lock_hot_take(void)
{
	struct rec_lock_run *r = &rec_lock_runs;
	if (SPY_LIKELY(r->skip))
		r->skip--;
	r->holding = 1;
}

/* 1 if lock is the hot acquisition, now counted and released. */
static inline __attribute__((always_inline)) int
rec_lock_hot_give(const void *lock)
{
	struct rec_lock_run *r = &rec_lock_runs;
	if (SPY_LIKELY(r->holding && r->lock == (uintptr_t)lock &&
		       r->pid == spy_pid)) {
		r->holding = 0;
		r->count++;
		return 1;
	}
	return 0;
}

/* Everything not yet written, in order: before any other lock record. */
static inline __attribute__((always_inline)) void rec_lock_flush_all(void)
{
	if (SPY_UNLIKELY(rec_lock_runs.pid))
		rec_lock_run_write();
	if (SPY_UNLIKELY(rec_lock_pend.pid))
		rec_lock_pending_write();
}

/* 1 if an acquisition of lock (flags, stack) by a thread that holds
 * nothing else continues the thread's run and may go untimed; counts it
 * against the run's skip. */
static inline __attribute__((always_inline)) int
rec_lock_run_skips(const void *lock, unsigned flags, uint32_t stack)
{
	struct rec_lock_run *r = &rec_lock_runs;
	if (SPY_LIKELY(r->skip && r->pid == spy_pid &&
		       r->lock == (uintptr_t)lock && r->stack == stack &&
		       r->flags == flags)) {
		r->skip--;
		return 1;
	}
	return 0;
}

/* lock was taken (after the real call succeeded) at site; alone: the
 * thread holds no other lock. A timed acquisition disarms the run. */
static inline __attribute__((always_inline)) void
rec_lock_acquire(const void *lock, unsigned flags, uint32_t stack,
		 uint64_t wait_ns, int alone, uintptr_t site)
{
	struct rec_lock_pending *q = &rec_lock_pend;
	if (SPY_UNLIKELY(q->pid))
		rec_lock_pending_write();
	q->lock = (uintptr_t)lock;
	q->flags = flags;
	q->stack = stack;
	q->site = site;
	q->wait_ns = wait_ns;
	if (alone && !wait_ns && rec_lock_run_skips(lock, flags, stack)) {
		q->t0_tsc = 0;
	} else {
		rec_lock_runs.skip = 0;
		q->t0_tsc = spy_read_tsc();
	}
	q->pid = spy_pid;
}

/* lock is about to be released (before the real call, so that another
 * thread's acquisition can never appear to come first); leaf: the thread
 * holds no other lock now. */
static inline __attribute__((always_inline)) void
rec_lock_release(const void *lock, int leaf)
{
	struct rec_lock_pending *q = &rec_lock_pend;
	if (SPY_LIKELY(q->pid == spy_pid && q->lock == (uintptr_t)lock)) {
		struct rec_lock_run *r = &rec_lock_runs;
		/* Untimed: it continues the run (rec_lock_acquire checked),
		 * and is only counted. */
		if (!q->t0_tsc && SPY_LIKELY(leaf && r->pid == spy_pid &&
					     r->lock == q->lock)) {
			q->pid = 0;
			r->count++;
			return;
		}
		rec_lock_release_timed(leaf);
		return;
	}
	rec_lock_release_other(lock);
}

/* The thread is about to block on lock (before the real call). */
void rec_lock_wait(const void *lock, unsigned flags, uint32_t stack);

/* A lock call failed with err (EBUSY for a busy trylock, ETIMEDOUT...). */
void rec_lock_fail(const void *lock, unsigned flags, int err, uint32_t stack);

/* kind is TRACE_LOCK_INIT or TRACE_LOCK_DESTROY. */
void rec_lock_life(unsigned kind, const void *lock, unsigned type);

/* A lock used against its rules (trace_lock_misuse what; owner: the
 * tid of its holder, 0 for none or unknown; type: the lock's
 * trace_lock_type, for an rwlock how its holder holds it: READ, WRITE,
 * or RWLOCK when nobody does), with the caller's stack. The first 64 of
 * a process are written. */
void rec_lock_misuse(const void *lock, unsigned what, int owner, unsigned type);

/* 1 while rec_lock_misuse would still write: a check that costs more
 * than a glance is not worth making past that. */
int rec_lock_misuse_room(void);

/* The thread is about to wait on cond, releasing mutex. */
void rec_cond_wait(const void *cond, const void *mutex, int timed,
		   uint32_t stack);

#endif
