/* rec_locks.h: the lock recorder: lock, unlock, wait, trylock failures and
 * condition waits into the trace (kinds 20-39 of trace_format.h). Called by
 * the hooks in hook_locks.c with the guard held; inlined into them, so that
 * the stack it captures starts at the hook. Never allocates, never takes a
 * lock, never calls an interposed function.
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

#include "spy_process.h"
#include "spy_stack.h"
#include "spy_writer.h"
#include "trace_encode.h"
#include "trace_format.h"

#define REC_LOCK_SITES 256 /* a power of two */

/* Writes what the calling thread has not written yet (at thread and
 * process exit). */
void rec_lock_thread_flush(void);

struct rec_lock_site {
	uintptr_t lock, site;
	uint32_t stack;
	int pid;               /* stack ids belong to this process's trace */
};

extern __thread struct rec_lock_site rec_lock_sites[REC_LOCK_SITES]
	__attribute__((tls_model("initial-exec")));

static inline unsigned rec_lock_flags(unsigned type, unsigned how)
{
	return type | how << 4;
}

/* The stack of an acquisition of lock at site (the hook's return address),
 * from the table or captured now. A macro: the capture must run in the
 * hook's own frame. */
#define rec_lock_stack(lock_, site_)                                           \
	__extension__({                                                        \
		uintptr_t l_ = (uintptr_t)(lock_), s_ = (uintptr_t)(site_);    \
		struct rec_lock_site *e_ = &rec_lock_sites[                    \
			((l_ >> 3) ^ (s_ * 0x9e3779b1u)) & (REC_LOCK_SITES - 1)]; \
		if (e_->lock != l_ || e_->site != s_ || e_->pid != spy_pid) {  \
			e_->stack = spy_stack_capture();                       \
			e_->lock = l_;                                         \
			e_->site = s_;                                         \
			e_->pid = spy_pid;                                     \
		}                                                              \
		e_->stack;                                                     \
	})

/* The last acquisition of the thread, not written yet: if the thread
 * releases that lock before any other lock call, one LOCK_PAIR record
 * stands for both; otherwise it is written as a LOCK_ACQUIRE (with how
 * late) before the next lock record. Only lock records are ordered
 * against it, which is all the lock model needs. */
struct rec_lock_pending {
	uintptr_t lock;
	uint64_t t0_tsc, wait_ns;
	uint32_t stack;
	unsigned flags;
	int pid;                 /* 0: nothing pending */
};

extern __thread struct rec_lock_pending rec_lock_pend
	__attribute__((tls_model("initial-exec")));

/* The time now, as records are stamped (one counter read, no call). */
static inline __attribute__((always_inline)) uint64_t rec_lock_now(void)
{
	struct spy_buffer *b = spy_self.buf;
	return b ? spy_writer_time(b) : spy_writer_now();
}

/* The stamp of the thread's last lock record. A record that says "this
 * happened N ns before me" is never allowed to reach back past it (nor past
 * the thread's last record), so the thread's events keep their order even
 * while the tick rate is only estimated. */
extern __thread uint64_t rec_lock_last
	__attribute__((tls_model("initial-exec")));

/* The stamp for the next lock record (never before the previous one);
 * *prev, when given, receives the previous one. */
static inline __attribute__((always_inline)) uint64_t
rec_lock_stamp(uint64_t *prev)
{
	uint64_t now = rec_lock_now(), p = rec_lock_last;
	/* Nor before the thread's last record of any kind: a heap block must
	 * not seem to come after the lock that lives in it. */
	struct spy_buffer *b = spy_self.buf;
	if (b && b->chunk != SPY_NO_CHUNK && b->last_ns > p)
		p = b->last_ns;
	if (now < p)
		now = p;
	rec_lock_last = now;
	if (prev)
		*prev = p;
	return now;
}

static inline uint64_t rec_lock_clamp(uint64_t back, uint64_t now,
				      uint64_t prev)
{
	return back > now - prev ? now - prev : back;
}

/* Hold times are counted in time-stamp-counter ticks (no clock call on the
 * hot path) and turned into nanoseconds when written. */
uint64_t rec_lock_rate_slow(void);

static inline __attribute__((always_inline)) uint64_t rec_lock_ns(uint64_t ticks)
{
	uint64_t rate = __atomic_load_n(&spy_writer_rate_q32, __ATOMIC_RELAXED);
	if (SPY_UNLIKELY(!rate))
		rate = rec_lock_rate_slow();
	return (uint64_t)(((unsigned __int128)ticks * rate) >> 32);
}

/* Repeated leaf pairs (the same lock, call site and flags, taken while
 * holding no other lock, never waited for) are counted, not written one
 * by one: the first is a LOCK_PAIR, the ones right after it a LOCK_PAIRS
 * record for a run of them, at most 10 ms long. Such pairs add nothing to the order graph; their counts and hold
 * times are all the model needs. */
#define REC_LOCK_RUN_NS 10000000u

struct rec_lock_run {
	uintptr_t lock;
	uint64_t first, last, hold_total, hold_max; /* ticks */
	uint32_t stack, count;
	unsigned flags;
	int pid;                 /* 0: no run */
};

extern __thread struct rec_lock_run rec_lock_runs
	__attribute__((tls_model("initial-exec")));

/* Writes the run being counted, if any. */
static inline __attribute__((always_inline)) void rec_lock_run_flush(void)
{
	struct rec_lock_run *r = &rec_lock_runs;
	if (SPY_LIKELY(!r->pid))
		return;
	int mine = r->pid == spy_pid && r->count;
	r->pid = 0;
	if (!mine)
		return;
	uint64_t prev, now = rec_lock_stamp(&prev);
	uint64_t ago = rec_lock_ns(spy_read_tsc() - r->last);
	uint64_t back = rec_lock_clamp(ago + rec_lock_ns(r->last - r->first),
				       now, prev);
	if (ago > back)
		ago = back;
	uint8_t *w = spy_writer_begin_at(TRACE_LOCK_PAIRS,
					 8 * TRACE_VARINT_MAX, now);
	if (!w)
		return;
	w = trace_put_varint(w, r->lock);
	w = trace_put_varint(w, r->flags);
	w = trace_put_varint(w, r->stack);
	w = trace_put_varint(w, r->count);
	w = trace_put_varint(w, rec_lock_ns(r->hold_total));
	w = trace_put_varint(w, rec_lock_ns(r->hold_max));
	w = trace_put_varint(w, back - ago);
	w = trace_put_varint(w, ago);
	spy_writer_end(w);
}

/* A pending acquisition as a record: ACQUIRE (last = how late it is
 * written) and PAIR (last = how long it was held) share this layout. */
static inline __attribute__((always_inline)) void
rec_lock_write_pending(unsigned kind, const struct rec_lock_pending *q,
		       uint64_t last, uint64_t at)
{
	uint8_t *w = spy_writer_begin_at(kind, 5 * TRACE_VARINT_MAX, at);
	if (!w)
		return;
	w = trace_put_varint(w, q->lock);
	w = trace_put_varint(w, q->flags);
	w = trace_put_varint(w, q->stack);
	w = trace_put_varint(w, q->wait_ns);
	w = trace_put_varint(w, last);
	spy_writer_end(w);
}

/* Writes the pending acquisition, if any (after the run it follows). */
static inline __attribute__((always_inline)) void rec_lock_flush(void)
{
	struct rec_lock_pending *q = &rec_lock_pend;
	if (SPY_LIKELY(!q->pid))
		return;
	rec_lock_run_flush();
	int mine = q->pid == spy_pid;
	q->pid = 0;
	if (!mine) /* a fork child: the record belongs to the parent's trace */
		return;
	uint64_t prev, now = rec_lock_stamp(&prev);
	uint64_t late = rec_lock_clamp(rec_lock_ns(spy_read_tsc() - q->t0_tsc),
				       now, prev);
	rec_lock_write_pending(TRACE_LOCK_ACQUIRE, q, late, now);
}

/* Everything not yet written, in order: before any other lock record. */
static inline __attribute__((always_inline)) void rec_lock_flush_all(void)
{
	rec_lock_run_flush();
	rec_lock_flush();
}

/* lock was taken (after the real call succeeded). */
static inline __attribute__((always_inline)) void
rec_lock_acquire(const void *lock, unsigned flags, uint32_t stack,
		 uint64_t wait_ns)
{
	rec_lock_flush();
	struct rec_lock_pending *q = &rec_lock_pend;
	q->lock = (uintptr_t)lock;
	q->flags = flags;
	q->stack = stack;
	q->wait_ns = wait_ns;
	q->t0_tsc = spy_read_tsc();
	q->pid = spy_pid;
}

/* The thread is about to block on lock (before the real call). */
static inline __attribute__((always_inline)) void
rec_lock_wait(const void *lock, unsigned flags, uint32_t stack)
{
	rec_lock_flush_all();
	uint8_t *w = spy_writer_begin_at(TRACE_LOCK_WAIT, 3 * TRACE_VARINT_MAX,
					 rec_lock_stamp(NULL));
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)lock);
	w = trace_put_varint(w, flags);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

/* lock is about to be released (before the real call, so that another
 * thread's acquisition can never appear to come first). */
static inline __attribute__((always_inline)) void
rec_lock_release(const void *lock, int leaf)
{
	struct rec_lock_pending *q = &rec_lock_pend;
	if (q->pid == spy_pid && q->lock == (uintptr_t)lock) {
		q->pid = 0;
		uint64_t now = spy_read_tsc();
		uint64_t hold = now - q->t0_tsc;
		struct rec_lock_run *r = &rec_lock_runs;
		int runs = leaf && !q->wait_ns;
		if (runs && r->pid == spy_pid && r->lock == q->lock &&
		    r->stack == q->stack && r->flags == q->flags &&
		    (!r->count || rec_lock_ns(now - r->first) < REC_LOCK_RUN_NS) &&
		    r->count < (1u << 30)) {
			if (!r->count) {
				r->first = q->t0_tsc;
				r->hold_total = r->hold_max = 0;
			}
			r->count++;
			r->hold_total += hold;
			if (hold > r->hold_max)
				r->hold_max = hold;
			r->last = now;
			return;
		}
		rec_lock_run_flush();
		uint64_t prev, at = rec_lock_stamp(&prev);
		hold = rec_lock_clamp(rec_lock_ns(hold), at, prev);
		rec_lock_write_pending(TRACE_LOCK_PAIR, q, hold, at);
		/* The same pair again, at once, will be counted in a run: the
		 * first of a series is always written whole. */
		if (runs)
			*r = (struct rec_lock_run){ .lock = q->lock,
				.stack = q->stack, .flags = q->flags,
				.pid = spy_pid };
		return;
	}
	rec_lock_flush_all();
	uint8_t *w = spy_writer_begin_at(TRACE_LOCK_RELEASE, TRACE_VARINT_MAX,
					 rec_lock_stamp(NULL));
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)lock);
	spy_writer_end(w);
}

/* A lock call failed with err (EBUSY for a busy trylock, ETIMEDOUT...). */
static inline __attribute__((always_inline)) void
rec_lock_fail(const void *lock, unsigned flags, int err, uint32_t stack)
{
	rec_lock_flush_all();
	uint8_t *w = spy_writer_begin_at(TRACE_LOCK_FAIL, 4 * TRACE_VARINT_MAX,
					 rec_lock_stamp(NULL));
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)lock);
	w = trace_put_varint(w, flags);
	w = trace_put_varint(w, (uint64_t)(unsigned)err);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

/* kind is TRACE_LOCK_INIT or TRACE_LOCK_DESTROY. */
static inline __attribute__((always_inline)) void
rec_lock_life(unsigned kind, const void *lock, unsigned type)
{
	rec_lock_flush_all();
	uint8_t *w = spy_writer_begin_at(kind, 2 * TRACE_VARINT_MAX,
					 rec_lock_stamp(NULL));
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)lock);
	if (kind == TRACE_LOCK_INIT)
		w = trace_put_varint(w, type);
	spy_writer_end(w);
}

/* The thread is about to wait on cond, releasing mutex. */
static inline __attribute__((always_inline)) void
rec_cond_wait(const void *cond, const void *mutex, int timed, uint32_t stack)
{
	rec_lock_flush_all();
	uint8_t *w = spy_writer_begin_at(TRACE_COND_WAIT, 4 * TRACE_VARINT_MAX,
					 rec_lock_stamp(NULL));
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)cond);
	w = trace_put_varint(w, (uintptr_t)mutex);
	w = trace_put_varint(w, timed ? 1 : 0);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

#endif
