/* Unit test: the lock model over hand-built traces: edges at the blocking
 * attempt and undone when it fails, trylocks, generations, one LOCK_PAIR
 * standing for an acquisition and a release, LOCK_PAIRS runs (their hold
 * times measured or estimated), gate locks, one-thread
 * cycles, a 30-lock ring, 200 locks taken at once (LOCK_MAX_HELD held),
 * the graph's bound on edges, the live deadlock record,
 * the livelock thresholds, and semaphores (a lock only while they behave
 * like one). */
#include <string.h>

#define TB_REGION (256u << 10)

#include "detect_locks.h"
#include "lock_model.h"
#include "tap.h"
#include "trace_builder.h"
#include "trace_format.h"

#define MS 1000000ull
#define F(type, how) ((type) | (how) << 4)
#define MX TRACE_LOCK_MUTEX
#define BLK TRACE_LOCK_BLOCKING
#define TRY TRACE_LOCK_TRY
#define TIMED TRACE_LOCK_TIMED
#define SEM TRACE_LOCK_SEM

static void rec3(struct tb *b, uint64_t t, unsigned kind, uint64_t lock,
		 uint64_t flags, uint64_t stack, uint64_t x)
{
	tb_begin(b, t);
	tb_v(b, lock);
	if (kind == TRACE_LOCK_ACQUIRE) {
		tb_v(b, flags); tb_v(b, stack); tb_v(b, x);
	} else if (kind == TRACE_LOCK_WAIT) {
		tb_v(b, flags); tb_v(b, stack);
	} else if (kind == TRACE_LOCK_FAIL) {
		tb_v(b, flags); tb_v(b, x); tb_v(b, stack);
	} else if (kind == TRACE_LOCK_INIT) {
		tb_v(b, flags);
	}
	tb_end_record(b, kind);
}

static void acq(struct tb *b, uint64_t t, uint64_t lock, unsigned how)
{
	rec3(b, t, TRACE_LOCK_ACQUIRE, lock, F(MX, how), 0, 0);
}
static void sacq(struct tb *b, uint64_t t, uint64_t lock, unsigned how)
{
	rec3(b, t, TRACE_LOCK_ACQUIRE, lock, F(SEM, how), 0, 0);
}
static void rel(struct tb *b, uint64_t t, uint64_t lock)
{
	rec3(b, t, TRACE_LOCK_RELEASE, lock, 0, 0, 0);
}
static void pair(struct tb *b, uint64_t t, uint64_t lock, uint64_t hold)
{
	tb_begin(b, t);
	tb_v(b, lock); tb_v(b, F(MX, BLK)); tb_v(b, 0); tb_v(b, 0); tb_v(b, hold);
	tb_end_record(b, TRACE_LOCK_PAIR);
}

/* A LOCK_PAIRS run of count pairs; timed < 0: the field is left out (a
 * trace where every pair was timed). */
static void pairs(struct tb *b, uint64_t t, uint64_t lock, uint64_t count,
		  uint64_t hold_total, uint64_t hold_max, long timed)
{
	tb_begin(b, t);
	tb_v(b, lock); tb_v(b, F(MX, BLK)); tb_v(b, 0); tb_v(b, count);
	tb_v(b, hold_total); tb_v(b, hold_max); tb_v(b, 1 * MS); tb_v(b, 0);
	if (timed >= 0)
		tb_v(b, (uint64_t)timed);
	tb_end_record(b, TRACE_LOCK_PAIRS);
}

/* Starts a trace whose first chunk (tid 1) holds the process record. */
static void start(struct tb *b)
{
	const char *argv[] = { "prog" };
	tb_init(b);
	tb_chunk(b, 1, 1 * MS);
	tb_process(b, 1 * MS, 100, 1, 0, "/nonexistent/prog", 1, argv, "");
}

/* Closes the chunk, pads the region and opens one for tid at base. */
static void next_thread(struct tb *b, uint32_t tid, uint64_t base)
{
	tb_chunk_end(b);
	tb_pad(b);
	tb_chunk(b, tid, base);
}

static int load_capped(struct tb *b, struct trace_model *m,
		       struct lock_model *lm, size_t max_edges)
{
	struct trace_error err;
	tb_chunk_end(b);
	memset(lm, 0, sizeof(*lm));
	lm->max_edges = max_edges;
	if (trace_load_buffer("t", tb_copy(b), b->len, m, &err) < 0) {
		diag("load: %s", err.msg);
		free(b->buf);
		return -1;
	}
	free(b->buf);
	return lock_model_build(m, lm);
}

static int load(struct tb *b, struct trace_model *m, struct lock_model *lm)
{
	return load_capped(b, m, lm, 0);
}

static long cycles(struct lock_model *lm, struct lock_cycle **cs)
{
	return lock_cycles_find(lm, cs, 20);
}

static void done(struct trace_model *m, struct lock_model *lm,
		 struct lock_cycle *cs)
{
	lock_cycles_free(cs, 20);
	lock_model_release(lm);
	trace_model_release(m);
}

int main(void)
{
	struct tb b;
	struct trace_model m;
	struct lock_model lm;
	struct lock_cycle *cs;
	long n;

	/* A thread ends holding A; a later thread that the kernel gave the
	 * same id takes B: no A -> B edge (its start record says it is new).
	 * Without the start record the two would be one thread. */
	for (int with_start = 1; with_start >= 0; with_start--) {
		start(&b);
		next_thread(&b, 300, 2 * MS);
		acq(&b, 2 * MS, 0xa0, BLK);
		next_thread(&b, 300, 20 * MS);
		if (with_start) {
			tb_begin(&b, 20 * MS);
			tb_v(&b, 300); tb_v(&b, 1); tb_v(&b, 0x7f0000001000);
			tb_v(&b, 0x7f0000800000); tb_v(&b, 8 << 20); tb_v(&b, 0);
			tb_end_record(&b, TRACE_THREAD_START);
		}
		acq(&b, 21 * MS, 0xb0, BLK);
		rel(&b, 22 * MS, 0xb0);
		ok(load(&b, &m, &lm) == 0 &&
		   lm.n_edges == (with_start ? 0u : 1u),
		   with_start ? "an id given again: the new thread holds nothing"
			      : "one id without a start record: one thread (control)");
		lock_model_release(&lm);
		trace_model_release(&m);
	}

	/* ABBA in two threads, one after the other. */
	start(&b);
	acq(&b, 2 * MS, 0xa0, BLK); acq(&b, 3 * MS, 0xb0, BLK);
	rel(&b, 4 * MS, 0xb0); rel(&b, 5 * MS, 0xa0);
	next_thread(&b, 2, 10 * MS);
	acq(&b, 10 * MS, 0xb0, BLK); acq(&b, 11 * MS, 0xa0, BLK);
	rel(&b, 12 * MS, 0xa0); rel(&b, 13 * MS, 0xb0);
	ok(load(&b, &m, &lm) == 0, "ABBA trace loads");
	n = cycles(&lm, &cs);
	ok(lm.n_locks == 2 && lm.n_edges == 2, "two locks, two edges");
	ok(n == 1 && cs[0].n == 2 && !cs[0].gated && !cs[0].one_thread,
	   "one two-thread cycle, not gated");
	ok(lm.locks[0].hold_total == 3 * MS + 1 * MS && lm.locks[0].hold_max == 3 * MS,
	   "hold times add up");
	done(&m, &lm, cs);

	/* A timed wait that fails undoes its edge. */
	start(&b);
	acq(&b, 2 * MS, 0xa0, BLK); acq(&b, 3 * MS, 0xb0, BLK);
	rel(&b, 4 * MS, 0xb0); rel(&b, 5 * MS, 0xa0);
	next_thread(&b, 2, 10 * MS);
	acq(&b, 10 * MS, 0xb0, BLK);
	rec3(&b, 11 * MS, TRACE_LOCK_WAIT, 0xa0, F(MX, TIMED), 0, 0);
	rec3(&b, 12 * MS, TRACE_LOCK_FAIL, 0xa0, F(MX, TIMED), 0, 110);
	rel(&b, 13 * MS, 0xb0);
	ok(load(&b, &m, &lm) == 0, "timed-out trace loads");
	n = cycles(&lm, &cs);
	ok(n == 0, "a failed timed wait adds no edge (%ld cycles)", n);
	ok(lm.locks[0].timeouts == 1, "the timeout is counted");
	done(&m, &lm, cs);

	/* The same wait never ending (the trace stops while it waits):
	 * the edge stays, and the cycle is found. */
	start(&b);
	acq(&b, 2 * MS, 0xa0, BLK);
	rec3(&b, 3 * MS, TRACE_LOCK_WAIT, 0xb0, F(MX, BLK), 0, 0);
	next_thread(&b, 2, 2 * MS);
	acq(&b, 2 * MS, 0xb0, BLK);
	rec3(&b, 4 * MS, TRACE_LOCK_WAIT, 0xa0, F(MX, BLK), 0, 0);
	ok(load(&b, &m, &lm) == 0, "hung trace loads");
	n = cycles(&lm, &cs);
	ok(n == 1 && lm.waits_unfinished == 2,
	   "edges come from the attempts: the cycle closes with no acquisition");
	done(&m, &lm, cs);

	/* A trylock never makes an edge into the lock it tries. */
	start(&b);
	acq(&b, 2 * MS, 0xa0, BLK); acq(&b, 3 * MS, 0xb0, TRY);
	rel(&b, 4 * MS, 0xb0); rel(&b, 5 * MS, 0xa0);
	next_thread(&b, 2, 10 * MS);
	acq(&b, 10 * MS, 0xb0, BLK); acq(&b, 11 * MS, 0xa0, BLK);
	rel(&b, 12 * MS, 0xa0); rel(&b, 13 * MS, 0xb0);
	ok(load(&b, &m, &lm) == 0, "trylock trace loads");
	n = cycles(&lm, &cs);
	ok(n == 0 && lm.n_edges == 1, "no cycle through a trylock");
	done(&m, &lm, cs);

	/* Gate: both orders, always under G. */
	start(&b);
	acq(&b, 2 * MS, 0x90, BLK);
	acq(&b, 3 * MS, 0xa0, BLK); acq(&b, 4 * MS, 0xb0, BLK);
	rel(&b, 5 * MS, 0xb0); rel(&b, 6 * MS, 0xa0); rel(&b, 7 * MS, 0x90);
	next_thread(&b, 2, 10 * MS);
	acq(&b, 10 * MS, 0x90, BLK);
	acq(&b, 11 * MS, 0xb0, BLK); acq(&b, 12 * MS, 0xa0, BLK);
	rel(&b, 13 * MS, 0xa0); rel(&b, 14 * MS, 0xb0); rel(&b, 15 * MS, 0x90);
	ok(load(&b, &m, &lm) == 0, "gate trace loads");
	n = cycles(&lm, &cs);
	ok(n == 1 && cs[0].gated && lm.locks[cs[0].gate].addr == 0x90,
	   "the cycle is gated by G");
	done(&m, &lm, cs);

	/* One thread, both orders. */
	start(&b);
	acq(&b, 2 * MS, 0xa0, BLK); acq(&b, 3 * MS, 0xb0, BLK);
	rel(&b, 4 * MS, 0xb0); rel(&b, 5 * MS, 0xa0);
	acq(&b, 6 * MS, 0xb0, BLK); acq(&b, 7 * MS, 0xa0, BLK);
	rel(&b, 8 * MS, 0xa0); rel(&b, 9 * MS, 0xb0);
	ok(load(&b, &m, &lm) == 0, "one-thread trace loads");
	n = cycles(&lm, &cs);
	ok(n == 1 && cs[0].one_thread, "the cycle is marked one-thread");
	done(&m, &lm, cs);

	/* Destroy then reuse of the address: a new generation, no cycle. */
	start(&b);
	acq(&b, 2 * MS, 0xa0, BLK); acq(&b, 3 * MS, 0xb0, BLK);
	rel(&b, 4 * MS, 0xb0); rel(&b, 5 * MS, 0xa0);
	rec3(&b, 6 * MS, TRACE_LOCK_DESTROY, 0xa0, 0, 0, 0);
	rec3(&b, 6 * MS, TRACE_LOCK_DESTROY, 0xb0, 0, 0, 0);
	next_thread(&b, 2, 10 * MS);
	acq(&b, 10 * MS, 0xb0, BLK); acq(&b, 11 * MS, 0xa0, BLK);
	rel(&b, 12 * MS, 0xa0); rel(&b, 13 * MS, 0xb0);
	ok(load(&b, &m, &lm) == 0, "reuse trace loads");
	n = cycles(&lm, &cs);
	ok(n == 0 && lm.n_locks == 4 && lm.locks[2].gen == 2,
	   "destroyed locks are new generations (%zu locks)", lm.n_locks);
	done(&m, &lm, cs);

	/* A lock inside a freed block: the free ends it. */
	start(&b);
	tb_alloc(&b, 2 * MS, TRACE_FN_MALLOC, 0x1000, 64, 0, 0);
	acq(&b, 3 * MS, 0x1008, BLK); acq(&b, 4 * MS, 0xb0, BLK);
	rel(&b, 5 * MS, 0xb0); rel(&b, 6 * MS, 0x1008);
	tb_free(&b, 7 * MS, 0x1000, 0);
	acq(&b, 8 * MS, 0xb0, BLK); acq(&b, 9 * MS, 0x1008, BLK);
	rel(&b, 10 * MS, 0x1008); rel(&b, 11 * MS, 0xb0);
	ok(load(&b, &m, &lm) == 0, "free trace loads");
	n = cycles(&lm, &cs);
	ok(n == 0 && lm.n_locks == 3, "a lock in freed memory is a new lock");
	ok(lm.locks[0].block_addr == 0x1000 && lm.locks[0].block_size == 64,
	   "the lock knows its heap block");
	done(&m, &lm, cs);

	/* LOCK_PAIR: an acquisition hold_ns before, and a release. */
	start(&b);
	pair(&b, 10 * MS, 0xa0, 4 * MS);
	ok(load(&b, &m, &lm) == 0, "pair trace loads");
	ok(lm.n_locks == 1 && lm.locks[0].acquisitions == 1 &&
	   lm.locks[0].hold_total == 4 * MS && lm.locks[0].first_ts == 6 * MS,
	   "a pair is taken hold_ns before its time and released at it");
	lock_model_release(&lm);
	trace_model_release(&m);

	/* LOCK_PAIRS: counted runs add their counts and holds; a run whose
	 * pairs were not all timed makes the lock's hold an estimate. */
	start(&b);
	pair(&b, 5 * MS, 0xa0, 1000);
	pairs(&b, 7 * MS, 0xa0, 500, 400000, 2000, -1);
	pair(&b, 8 * MS, 0xb0, 1000);
	pairs(&b, 9 * MS, 0xb0, 500, 400000, 2000, 500);
	pair(&b, 10 * MS, 0xc0, 1000);
	pairs(&b, 12 * MS, 0xc0, 1600, 800000, 3000, 100);
	pairs(&b, 14 * MS, 0xc0, 10, 9000, 5000, 10);
	ok(load(&b, &m, &lm) == 0, "pairs trace loads");
	ok(lm.n_locks == 3 && lm.locks[0].acquisitions == 501 &&
	   lm.locks[1].acquisitions == 501 && lm.locks[2].acquisitions == 1611,
	   "runs are counted whole");
	ok(lm.locks[0].hold_total == 401000 && lm.locks[0].hold_max == 2000 &&
	   lm.locks[2].hold_total == 810000 && lm.locks[2].hold_max == 5000,
	   "runs add their hold totals and keep the longest hold");
	ok(!lm.locks[0].hold_untimed && !lm.locks[1].hold_untimed,
	   "a run without the timed field, or with every pair timed, is exact");
	ok(lm.locks[2].hold_untimed == 1500,
	   "pairs not timed are counted as estimated (%lu)",
	   (unsigned long)lm.locks[2].hold_untimed);
	lock_model_release(&lm);
	trace_model_release(&m);

	/* A ring of 30 locks over 30 threads. */
	start(&b);
	for (uint32_t i = 0; i < 30; i++) {
		uint64_t t = (10 + 10 * i) * MS;
		if (i)
			next_thread(&b, 2 + i, t);
		acq(&b, t, 0x100 + 16 * i, BLK);
		acq(&b, t + 1, 0x100 + 16 * ((i + 1) % 30), BLK);
		rel(&b, t + 2, 0x100 + 16 * ((i + 1) % 30));
		rel(&b, t + 3, 0x100 + 16 * i);
	}
	ok(load(&b, &m, &lm) == 0, "ring trace loads");
	n = cycles(&lm, &cs);
	ok(n == 1 && cs[0].n == 30, "one cycle of 30 edges");
	done(&m, &lm, cs);

	/* 200 locks taken at once: each is counted, the first
	 * LOCK_MAX_HELD are held (edges from every one of them). */
	start(&b);
	for (uint64_t i = 0; i < 200; i++)
		acq(&b, 2 * MS + i, 0x10000 + 64 * i, BLK);
	for (uint64_t i = 200; i-- > 0;)
		rel(&b, 3 * MS + (199 - i), 0x10000 + 64 * i);
	ok(load(&b, &m, &lm) == 0, "200-lock trace loads");
	ok(lm.max_held == LOCK_MAX_HELD && lm.n_locks == 200 &&
	   lm.held_dropped == 200 - LOCK_MAX_HELD &&
	   lm.locks[199].acquisitions == 1,
	   "200 taken at once, %d held", LOCK_MAX_HELD);
	ok(lm.n_edges == LOCK_MAX_HELD * (LOCK_MAX_HELD - 1) / 2 +
	   (200 - LOCK_MAX_HELD) * LOCK_MAX_HELD,
	   "an edge from each held lock to each later one (%zu)", lm.n_edges);
	lock_model_release(&lm);
	trace_model_release(&m);

	/* A thread holding LOCK_MAX_HELD locks that takes thousands of new
	 * ones: the graph stops growing at its edge cap (a small one here:
	 * LOCK_MAX_EDGES of these take gigabytes). */
	const size_t cap = 65536;
	start(&b);
	for (uint64_t i = 0; i < LOCK_MAX_HELD; i++)
		acq(&b, 2 * MS + i, 0x10000 + 64 * i, BLK);
	uint64_t n_new = cap / LOCK_MAX_HELD + 100;
	for (uint64_t i = 0; i < n_new; i++) {
		if (i && !(i % 4096)) /* a chunk stays inside its region */
			next_thread(&b, 1, 3 * MS + i);
		pair(&b, 3 * MS + i, 0x100000 + 64 * i, 1);
	}
	ok(load_capped(&b, &m, &lm, cap) == 0,
	   "a trace of %d held locks and %d more loads", LOCK_MAX_HELD,
	   (int)n_new);
	ok(lm.n_edges == cap && lm.edges_dropped > 0 &&
	   lm.n_locks == LOCK_MAX_HELD + n_new,
	   "edges stop at %zu (%zu, %llu dropped)", cap, lm.n_edges,
	   (unsigned long long)lm.edges_dropped);
	lock_model_release(&lm);
	trace_model_release(&m);

	/* A DEADLOCK record, and the finding it makes. */
	start(&b);
	acq(&b, 2 * MS, 0xa0, BLK);
	tb_begin(&b, 5 * MS);
	tb_v(&b, 0); tb_v(&b, 2);
	tb_v(&b, 1); tb_v(&b, 0xb0); tb_v(&b, MX); tb_v(&b, 0); tb_v(&b, 3 * MS);
	tb_v(&b, 1); tb_v(&b, 0xa0); tb_v(&b, MX); tb_v(&b, 0);
	tb_v(&b, 2); tb_v(&b, 0xa0); tb_v(&b, MX); tb_v(&b, 0); tb_v(&b, 4 * MS);
	tb_v(&b, 1); tb_v(&b, 0xb0); tb_v(&b, MX); tb_v(&b, 0);
	tb_end_record(&b, TRACE_DEADLOCK);
	ok(load(&b, &m, &lm) == 0, "deadlock trace loads");
	ok(lm.n_deadlocks == 1 && lm.deadlocks[0].n == 2 &&
	   lm.deadlocks[0].t[1].tid == 2 && lm.deadlocks[0].t[1].n_held == 1,
	   "the deadlock record decodes");
	struct finding_list fl = { 0 };
	ok(detect_locks(&m, &fl) == 0 && fl.n == 1 &&
	   !strcmp(fl.v[0].kind, "deadlock") && fl.v[0].n_stacks == 4,
	   "one deadlock finding with a wait and a held stack per thread");
	finding_list_release(&fl);
	lock_model_release(&lm);
	trace_model_release(&m);

	/* Livelock: two threads, each holding its own lock, failing trylocks
	 * on the other's every 20 us for 300 ms (busy 2); the same 5 ms
	 * apart (busy 0); and every 20 us holding nothing (busy 1: waiting
	 * by trying again, while the lock's holder works). */
	for (int busy = 2; busy >= 0; busy--) {
		start(&b);
		for (uint32_t th = 0; th < 2; th++) {
			if (th)
				next_thread(&b, 2, 2 * MS);
			if (busy != 1)
				acq(&b, 2 * MS, th ? 0xb0 : 0xa0, BLK);
			uint64_t t = 3 * MS, step = busy ? 20000 : 5 * MS;
			for (int i = 0; i < 15000 && t < 303 * MS; i++, t += step)
				rec3(&b, t, TRACE_LOCK_FAIL, th ? 0xa0 : 0xb0,
				     F(MX, TRY), 0, 16);
		}
		ok(load(&b, &m, &lm) == 0, "livelock trace loads");
		fl = (struct finding_list){ 0 };
		int found = detect_locks(&m, &fl) == 0 &&
			    fl.n == (busy == 2 ? 1u : 0u) &&
			    (busy != 2 || !strcmp(fl.v[0].kind, "livelock"));
		ok(found, busy == 2 ? "busy failing threads, each holding a lock, are a livelock"
		   : busy ? "busy failing threads holding nothing only wait: no livelock"
			  : "failures 5 ms apart are no livelock");
		finding_list_release(&fl);
		lock_model_release(&lm);
		trace_model_release(&m);
	}

	/* Semaphores taken by tries, as Python's Lock.acquire does, in
	 * opposite orders: a cycle, both semaphores. */
	start(&b);
	sacq(&b, 2 * MS, 0xa0, TRY); sacq(&b, 3 * MS, 0xb0, TRY);
	rel(&b, 4 * MS, 0xb0); rel(&b, 5 * MS, 0xa0);
	next_thread(&b, 2, 10 * MS);
	sacq(&b, 10 * MS, 0xb0, TRY); sacq(&b, 11 * MS, 0xa0, BLK);
	rel(&b, 12 * MS, 0xa0); rel(&b, 13 * MS, 0xb0);
	ok(load(&b, &m, &lm) == 0, "semaphore ABBA trace loads");
	n = cycles(&lm, &cs);
	ok(n == 1 && lm.n_locks == 2 && lm.locks[0].type == SEM &&
	   !strcmp(lock_type_name(lm.locks[1].type), "semaphore"),
	   "semaphores used as locks, taken by tries: one cycle");
	done(&m, &lm, cs);

	/* The same order against a mutex M, where the semaphore S is a
	 * signal (posted by a thread that did not take it), a counter (taken
	 * by two threads at once), or taken twice by one thread: no lock, no
	 * cycle. */
	for (int k = 0; k < 3; k++) {
		start(&b);
		sacq(&b, 2 * MS, 0xa0, BLK); acq(&b, 3 * MS, 0xb0, BLK);
		rel(&b, 4 * MS, 0xb0);
		if (k == 2)
			sacq(&b, 4 * MS + 1, 0xa0, BLK);
		if (k != 0)
			rel(&b, 20 * MS, 0xa0);
		next_thread(&b, 2, 10 * MS);
		if (k == 0)
			rel(&b, 10 * MS, 0xa0);
		acq(&b, 11 * MS, 0xb0, BLK); sacq(&b, 12 * MS, 0xa0, BLK);
		rel(&b, 13 * MS, 0xa0); rel(&b, 14 * MS, 0xb0);
		ok(load(&b, &m, &lm) == 0, "semaphore trace %d loads", k);
		n = cycles(&lm, &cs);
		ok(n == 0 && lm.n_locks == 1 && lm.locks[0].addr == 0xb0,
		   "%s semaphore is no lock (%ld cycles, %zu locks)",
		   k == 0 ? "a signalling" : k == 1 ? "a counting" : "a twice taken",
		   n, lm.n_locks);
		done(&m, &lm, cs);
	}

	/* A signal destroyed, and a lock made at its address: the new one
	 * counts. */
	start(&b);
	sacq(&b, 2 * MS, 0xa0, BLK);
	rec3(&b, 5 * MS, TRACE_LOCK_DESTROY, 0xa0, 0, 0, 0);
	rec3(&b, 6 * MS, TRACE_LOCK_INIT, 0xa0, SEM, 0, 0);
	sacq(&b, 7 * MS, 0xa0, BLK); acq(&b, 8 * MS, 0xb0, BLK);
	rel(&b, 9 * MS, 0xb0); rel(&b, 9 * MS + 1, 0xa0);
	next_thread(&b, 2, 3 * MS);
	rel(&b, 3 * MS, 0xa0);
	acq(&b, 11 * MS, 0xb0, BLK); sacq(&b, 12 * MS, 0xa0, BLK);
	rel(&b, 13 * MS, 0xa0); rel(&b, 14 * MS, 0xb0);
	ok(load(&b, &m, &lm) == 0, "semaphore generations trace loads");
	n = cycles(&lm, &cs);
	ok(n == 1 && lm.n_locks == 2,
	   "a semaphore's later life as a lock counts (%ld cycles)", n);
	done(&m, &lm, cs);

	/* A semaphore's failed tries (a blocking acquire's fast path) are
	 * no livelock. */
	start(&b);
	for (uint32_t th = 0; th < 2; th++) {
		if (th)
			next_thread(&b, 2, 2 * MS);
		for (uint64_t t = 2 * MS; t < 302 * MS; t += 20000)
			rec3(&b, t, TRACE_LOCK_FAIL, th ? 0xa0 : 0xb0,
			     F(SEM, TRY), 0, 11);
	}
	ok(load(&b, &m, &lm) == 0, "semaphore tries trace loads");
	fl = (struct finding_list){ 0 };
	ok(detect_locks(&m, &fl) == 0 && fl.n == 0,
	   "failing semaphore tries are no livelock");
	finding_list_release(&fl);
	lock_model_release(&lm);
	trace_model_release(&m);
	return tap_done();
}
