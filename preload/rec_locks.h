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
	uint64_t t0, wait_ns;
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

/* Writes the pending acquisition, if any. */
static inline __attribute__((always_inline)) void rec_lock_flush(void)
{
	struct rec_lock_pending *q = &rec_lock_pend;
	if (SPY_LIKELY(!q->pid))
		return;
	int mine = q->pid == spy_pid;
	q->pid = 0;
	if (!mine) /* a fork child: the record belongs to the parent's trace */
		return;
	uint64_t now = rec_lock_now();
	uint8_t *w = spy_writer_begin_at(TRACE_LOCK_ACQUIRE,
					 5 * TRACE_VARINT_MAX, now);
	if (!w)
		return;
	w = trace_put_varint(w, q->lock);
	w = trace_put_varint(w, q->flags);
	w = trace_put_varint(w, q->stack);
	w = trace_put_varint(w, q->wait_ns);
	w = trace_put_varint(w, now > q->t0 ? now - q->t0 : 0);
	spy_writer_end(w);
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
	q->t0 = rec_lock_now();
	q->pid = spy_pid;
}

/* The thread is about to block on lock (before the real call). */
static inline __attribute__((always_inline)) void
rec_lock_wait(const void *lock, unsigned flags, uint32_t stack)
{
	rec_lock_flush();
	uint8_t *w = spy_writer_begin(TRACE_LOCK_WAIT, 3 * TRACE_VARINT_MAX);
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
rec_lock_release(const void *lock)
{
	struct rec_lock_pending *q = &rec_lock_pend;
	if (q->pid == spy_pid && q->lock == (uintptr_t)lock) {
		q->pid = 0;
		uint64_t now = rec_lock_now();
		uint8_t *w = spy_writer_begin_at(TRACE_LOCK_PAIR,
						 5 * TRACE_VARINT_MAX, now);
		if (!w)
			return;
		w = trace_put_varint(w, q->lock);
		w = trace_put_varint(w, q->flags);
		w = trace_put_varint(w, q->stack);
		w = trace_put_varint(w, q->wait_ns);
		w = trace_put_varint(w, now > q->t0 ? now - q->t0 : 0);
		spy_writer_end(w);
		return;
	}
	rec_lock_flush();
	uint8_t *w = spy_writer_begin(TRACE_LOCK_RELEASE, TRACE_VARINT_MAX);
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)lock);
	spy_writer_end(w);
}

/* A lock call failed with err (EBUSY for a busy trylock, ETIMEDOUT...). */
static inline __attribute__((always_inline)) void
rec_lock_fail(const void *lock, unsigned flags, int err, uint32_t stack)
{
	rec_lock_flush();
	uint8_t *w = spy_writer_begin(TRACE_LOCK_FAIL, 4 * TRACE_VARINT_MAX);
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
	rec_lock_flush();
	uint8_t *w = spy_writer_begin(kind, 2 * TRACE_VARINT_MAX);
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
	rec_lock_flush();
	uint8_t *w = spy_writer_begin(TRACE_COND_WAIT, 4 * TRACE_VARINT_MAX);
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)cond);
	w = trace_put_varint(w, (uintptr_t)mutex);
	w = trace_put_varint(w, timed ? 1 : 0);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

#endif
