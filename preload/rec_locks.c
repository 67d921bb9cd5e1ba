/* rec_locks.c: the lock recorder's records (rec_locks.h has the inline fast
 * paths). Runs inside lock hooks with the guard held: never allocates,
 * never takes a lock, never calls an interposed function. Kept out of line
 * (noinline) so that the hooks' fast paths stay small.
 */
#include "rec_locks.h"

#include "spy_deadlock.h"
#include "spy_spares.h"
#include "trace_encode.h"

#define SLOW __attribute__((noinline, cold))

__thread struct rec_lock_site *rec_lock_sites
	__attribute__((tls_model("initial-exec")));
__thread struct rec_lock_pending rec_lock_pend
	__attribute__((tls_model("initial-exec")));
__thread struct rec_lock_run rec_lock_runs
	__attribute__((tls_model("initial-exec")));

/* The stamp of the thread's last lock record. A record that says "this
 * happened N ns before me" is never allowed to reach back past it (nor past
 * the thread's last record), so the thread's events keep their order even
 * while the tick rate is only estimated. */
static __thread uint64_t last_stamp __attribute__((tls_model("initial-exec")));

/* Ticks to ns before the writer has measured the counter's rate: a rate of
 * our own, from the time since the first call (1 tick = 1 ns for the first
 * 100 us, then estimated, then fixed once 10 ms have passed). */
static uint64_t rate_slow(void)
{
	static uint64_t cal_tsc, cal_ns, rate;
	uint64_t r = __atomic_load_n(&rate, __ATOMIC_RELAXED);
	if (r)
		return r;
	uint64_t tsc = spy_read_tsc(), ns = spy_now_ns();
	uint64_t t0 = __atomic_load_n(&cal_tsc, __ATOMIC_RELAXED);
	if (!t0) {
		__atomic_store_n(&cal_ns, ns, __ATOMIC_RELAXED);
		__atomic_store_n(&cal_tsc, tsc, __ATOMIC_RELEASE);
		return 1ull << 32;
	}
	uint64_t n0 = __atomic_load_n(&cal_ns, __ATOMIC_RELAXED);
	if (ns - n0 < 100000u || tsc <= t0)
		return 1ull << 32;
	/* A first estimate from 100 us on; kept once 10 ms have passed. */
	r = (uint64_t)(((unsigned __int128)(ns - n0) << 32) / (tsc - t0));
	if (ns - n0 >= 10000000u)
		__atomic_store_n(&rate, r, __ATOMIC_RELAXED);
	return r;
}

/* Hold times are counted in time-stamp-counter ticks (no clock call on the
 * hot path) and turned into nanoseconds when written. */
static uint64_t ticks_ns(uint64_t ticks)
{
	uint64_t rate = __atomic_load_n(&spy_writer_rate_q32, __ATOMIC_RELAXED);
	if (SPY_UNLIKELY(!rate))
		rate = rate_slow();
	return (uint64_t)(((unsigned __int128)ticks * rate) >> 32);
}

/* The stamp for the next lock record (never before the previous one);
 * *prev, when given, receives the previous one. */
static uint64_t stamp(uint64_t *prev)
{
	struct spy_buffer *b = spy_self.buf;
	uint64_t now = b ? spy_writer_time(b) : spy_writer_now();
	uint64_t p = last_stamp;
	/* Nor before the thread's last record of any kind: a heap block must
	 * not seem to come after the lock that lives in it. */
	if (b && b->chunk != SPY_NO_CHUNK && b->last_ns > p)
		p = b->last_ns;
	if (now < p)
		now = p;
	last_stamp = now;
	if (prev)
		*prev = p;
	return now;
}

static uint64_t clamp(uint64_t back, uint64_t now, uint64_t prev)
{
	return back > now - prev ? now - prev : back;
}

SLOW void rec_lock_run_write(void)
{
	struct rec_lock_run *r = &rec_lock_runs;
	if (!r->pid)
		return;
	int mine = r->pid == spy_pid && r->count;
	r->pid = 0;
	if (!mine)
		return;
	uint64_t prev, now = stamp(&prev);
	/* Pairs after the last timed one end a little later than it: at
	 * most 47 pairs of a dense run. */
	uint64_t ago = ticks_ns(spy_read_tsc() - r->last);
	uint64_t back = clamp(ago + ticks_ns(r->last - r->first), now, prev);
	if (ago > back)
		ago = back;
	uint64_t hold = ticks_ns(r->hold_total);
	if (r->at && r->at < r->count) /* the untimed tail, at the same rate */
		hold = (uint64_t)((unsigned __int128)hold * r->count / r->at);
	uint8_t *w = spy_writer_begin_at(TRACE_LOCK_PAIRS,
					 9 * TRACE_VARINT_MAX, now);
	if (!w)
		return;
	w = trace_put_varint(w, r->lock);
	w = trace_put_varint(w, r->flags);
	w = trace_put_varint(w, r->stack);
	w = trace_put_varint(w, r->count);
	w = trace_put_varint(w, hold);
	w = trace_put_varint(w, ticks_ns(r->hold_max));
	w = trace_put_varint(w, back - ago);
	w = trace_put_varint(w, ago);
	w = trace_put_varint(w, r->timed);
	spy_writer_end(w);
}

/* A pending acquisition as a record: ACQUIRE (last = how late it is
 * written) and PAIR (last = how long it was held) share this layout. */
static void write_pending(unsigned kind, const struct rec_lock_pending *q,
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

SLOW void rec_lock_pending_write(void)
{
	struct rec_lock_pending *q = &rec_lock_pend;
	if (!q->pid)
		return;
	rec_lock_run_write();
	int mine = q->pid == spy_pid;
	q->pid = 0;
	if (!mine) /* a fork child: the record belongs to the parent's trace */
		return;
	uint64_t prev, now = stamp(&prev);
	/* An untimed acquisition (it continued a run) is stamped now: later
	 * than it happened, but still before its release, so no other
	 * thread's hold of the lock can seem to overlap it. */
	uint64_t late = !q->t0_tsc ? 0 :
		clamp(ticks_ns(spy_read_tsc() - q->t0_tsc), now, prev);
	write_pending(TRACE_LOCK_ACQUIRE, q, late, now);
}

/* A timed pair (taken at t0, released now) joins the run: it stands for
 * itself and the untimed pairs since the last timed one. Sets how many
 * pairs to skip next: some when the pairs came densely, else none. */
static void run_add(struct rec_lock_run *r, uint64_t t0, uint64_t now)
{
	uint64_t hold = now - t0;
	if (!r->count)
		r->first = t0;
	r->count++;
	r->timed++;
	uint32_t stands_for = r->count - r->at;
	r->hold_total += hold * stands_for;
	if (hold > r->hold_max)
		r->hold_max = hold;
	int dense = ticks_ns(now - r->last) <
		    (uint64_t)REC_LOCK_DENSE_NS * stands_for;
	r->last = now;
	r->at = r->count;
	r->skip = 0;
	if (dense && r->count < REC_LOCK_RUN_MAX - 64) {
		uint32_t x = r->seed ? r->seed : (uint32_t)(uintptr_t)r | 1;
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		r->seed = x;
		r->skip = 16 + (x >> 27);
	}
}

/* The pending lock is released and was timed (or its run ended under it). */
SLOW void rec_lock_release_timed(int leaf)
{
	struct rec_lock_pending *q = &rec_lock_pend;
	struct rec_lock_run *r = &rec_lock_runs;
	q->pid = 0;
	int runs = leaf && !q->wait_ns;
	int joins = runs && r->pid == spy_pid && r->lock == q->lock &&
		    r->stack == q->stack && r->flags == q->flags;
	uint64_t now = spy_read_tsc();
	if (joins && !q->t0_tsc) { /* untimed, counted */
		r->count++;
		return;
	}
	if (joins && r->count < REC_LOCK_RUN_MAX &&
	    (!r->count || ticks_ns(now - r->first) < REC_LOCK_RUN_NS)) {
		run_add(r, q->t0_tsc, now);
		return;
	}
	rec_lock_run_write();
	uint64_t prev, at = stamp(&prev);
	/* An untimed acquisition whose run ended under it (its thread's
	 * held-lock table was reset) has no hold time: 0. */
	uint64_t hold = q->t0_tsc ? clamp(ticks_ns(now - q->t0_tsc), at, prev) : 0;
	write_pending(TRACE_LOCK_PAIR, q, hold, at);
	/* The same pair again, at once, will be counted in a run: the first
	 * of a series is always written whole. */
	if (runs)
		*r = (struct rec_lock_run){ .lock = q->lock, .stack = q->stack,
			.flags = q->flags, .site = q->site, .last = now,
			.seed = r->seed, .pid = spy_pid };
}

SLOW void rec_lock_hot_end(void)
{
	struct rec_lock_run *r = &rec_lock_runs;
	struct rec_lock_pending *q = &rec_lock_pend;
	if (!r->holding)
		return;
	r->holding = 0;
	r->skip = 0;
	struct spy_lock_thread *me = spy_lock_self(spy_pid);
	if (me)
		spy_lock_held_push(me, (const void *)r->lock, r->flags & 15,
				   r->stack);
	/* Nothing was pending (rec_lock_hot_armed); now this is, untimed,
	 * and counted in the run if its release comes next. */
	*q = (struct rec_lock_pending){ .lock = r->lock, .flags = r->flags,
		.stack = r->stack, .site = r->site, .pid = spy_pid };
}

SLOW void rec_lock_release_other(const void *lock)
{
	rec_lock_flush_all();
	uint8_t *w = spy_writer_begin_at(TRACE_LOCK_RELEASE, TRACE_VARINT_MAX,
					 stamp(NULL));
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)lock);
	spy_writer_end(w);
}

void rec_lock_wait(const void *lock, unsigned flags, uint32_t stack)
{
	rec_lock_flush_all();
	uint8_t *w = spy_writer_begin_at(TRACE_LOCK_WAIT, 3 * TRACE_VARINT_MAX,
					 stamp(NULL));
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)lock);
	w = trace_put_varint(w, flags);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

SLOW void rec_lock_fail(const void *lock, unsigned flags, int err,
			uint32_t stack)
{
	rec_lock_flush_all();
	uint8_t *w = spy_writer_begin_at(TRACE_LOCK_FAIL, 4 * TRACE_VARINT_MAX,
					 stamp(NULL));
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)lock);
	w = trace_put_varint(w, flags);
	w = trace_put_varint(w, (uint64_t)(unsigned)err);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

void rec_lock_life(unsigned kind, const void *lock, unsigned type)
{
	rec_lock_flush_all();
	uint8_t *w = spy_writer_begin_at(kind, 2 * TRACE_VARINT_MAX, stamp(NULL));
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)lock);
	if (kind == TRACE_LOCK_INIT)
		w = trace_put_varint(w, type);
	spy_writer_end(w);
}

#define MISUSE_MAX 64

static unsigned misuses_written;

int rec_lock_misuse_room(void)
{
	return __atomic_load_n(&misuses_written, __ATOMIC_RELAXED) < MISUSE_MAX;
}

void rec_lock_misuse(const void *lock, unsigned what, int owner, unsigned type)
{
	if (__atomic_fetch_add(&misuses_written, 1, __ATOMIC_RELAXED) >= MISUSE_MAX)
		return;
	uint32_t stack = spy_stack_capture();
	rec_lock_flush_all();
	uint8_t *w = spy_writer_begin_at(TRACE_LOCK_MISUSE, 5 * TRACE_VARINT_MAX,
					 stamp(NULL));
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)lock);
	w = trace_put_varint(w, what);
	w = trace_put_varint(w, (uint64_t)(unsigned)owner);
	w = trace_put_varint(w, stack);
	w = trace_put_varint(w, type);
	spy_writer_end(w);
}

void rec_cond_wait(const void *cond, const void *mutex, int timed,
		   uint32_t stack)
{
	rec_lock_flush_all();
	uint8_t *w = spy_writer_begin_at(TRACE_COND_WAIT, 4 * TRACE_VARINT_MAX,
					 stamp(NULL));
	if (!w)
		return;
	w = trace_put_varint(w, (uintptr_t)cond);
	w = trace_put_varint(w, (uintptr_t)mutex);
	w = trace_put_varint(w, timed ? 1 : 0);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

void rec_lock_thread_flush(void)
{
	if (spy_state != SPY_STATE_READY || !spy_tracing || spy_self.dead)
		return;
	spy_self.guard++;
	rec_lock_hot_end();
	rec_lock_flush_all();
	spy_self.guard--;
}

/* A table left by an ended thread is as good as new: its entries name
 * the process whose stack ids they hold. */
static struct spy_spares spare_tables =
	SPY_SPARES_INIT(REC_LOCK_SITES * sizeof(struct rec_lock_site), 64);

SLOW struct rec_lock_site *rec_lock_sites_take(void)
{
	int fresh;
	return rec_lock_sites = spy_spares_take(&spare_tables, &fresh);
}

void rec_lock_thread_exit(void)
{
	rec_lock_thread_flush();
	struct rec_lock_site *t = rec_lock_sites;
	rec_lock_sites = NULL;
	spy_spares_give(&spare_tables, t);
}

/* The main thread's last run, at exit (before libspy's own end). */
__attribute__((destructor)) static void flush_at_exit(void)
{
	rec_lock_thread_flush();
}
