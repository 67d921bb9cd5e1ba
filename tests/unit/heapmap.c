/* heapmap.c: the live-block map of libspy.so (preload/spy_heapmap.c),
 * driven by millions of random inserts, frees and removals and compared
 * after every step with a plain array of what each address should be. Also
 * a threaded run where each thread churns its own blocks and frees some of
 * another's, and a count of what spy_heapmap_each sees at the end.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "spy_heapmap.h"
#include "spy_options.h"
#include "tap.h"

/* What the map's module needs from the rest of libspy.so. */
struct spy_options spy_opt;
int spy_guard_owns(const void *p)
{
	(void)p;
	return 0;
}
void spy_guard_init(void)
{
}

#define N 200000
enum { NONE, LIVE, HELD };
static uintptr_t addr[N];
static int state[N];
static size_t size[N];
static unsigned family[N];

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

struct counts {
	size_t live, held;
};

static void count(uintptr_t a, size_t s, int freed, void *arg)
{
	struct counts *c = arg;
	(void)a;
	(void)s;
	if (freed)
		c->held++;
	else
		c->live++;
}

/* One thread's blocks: [lo, hi) of addr[]. Returns the first mismatch's
 * step, or -1. */
static long churn(int lo, int hi, long steps, uint64_t seed)
{
	uint64_t x = seed;
	for (long it = 0; it < steps; it++) {
		uint64_t r = next_rand(&x);
		int i = lo + (int)(r % (uint64_t)(hi - lo));
		size_t sz;
		unsigned fam;
		switch ((r >> 32) % 3) {
		case 0:
			size[i] = (size_t)(r >> 40) % 5000;
			family[i] = (unsigned)(r >> 52) % 3;
			spy_heapmap_insert(addr[i], size[i], family[i]);
			state[i] = LIVE;
			break;
		case 1: {
			int hold = (int)(r >> 45) & 1;
			enum spy_heap_found f =
				spy_heapmap_release(addr[i], hold, &sz, &fam);
			enum spy_heap_found want = state[i] == LIVE ? SPY_HEAP_LIVE
				: state[i] == HELD ? SPY_HEAP_FREED : SPY_HEAP_ABSENT;
			if (f != want || (f != SPY_HEAP_ABSENT &&
					  (sz != size[i] || fam != family[i])))
				return it;
			if (f == SPY_HEAP_LIVE)
				state[i] = hold ? HELD : NONE;
			break;
		}
		default:
			spy_heapmap_remove(addr[i]);
			state[i] = NONE;
		}
	}
	return -1;
}

struct worker {
	int lo, hi;
	long bad;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	w->bad = churn(w->lo, w->hi, 1000000, 0x9E3779B97F4A7C15ull ^ (uint64_t)w->lo);
	return NULL;
}

int main(void)
{
	/* distinct addresses, 16-aligned, spread over many 64 MiB spans (so
	 * over many shards) and packed densely within some */
	for (int i = 0; i < N; i++)
		addr[i] = (uintptr_t)0x7f0000000000ull +
			  (((uint64_t)i * 0x9E3779B1ull) % (1ull << 26)) * 16 +
			  ((uintptr_t)(i % 7) << 32);

	/* memory, on the empty map: a heap of a million 1 KiB blocks (the
	 * foundation's budget is 64 bytes a block) */
	const uintptr_t base = (uintptr_t)0x7e0000000000ull;
	for (long i = 0; i < 1000000; i++)
		spy_heapmap_insert(base + (uintptr_t)i * 1040, 1024, 0);
	uintptr_t tables[64][2];
	size_t nt = spy_heapmap_tables(tables, 64), bytes = 0;
	for (size_t i = 0; i < nt; i++)
		bytes += tables[i][1] - tables[i][0];
	/* tables stay between 5/16 and 5/8 full: at most 51.2 bytes */
	ok(bytes * 10 <= 512 * (size_t)1000000,
	   "a million live blocks: %zu bytes of tables (%.1f a block)", bytes,
	   (double)bytes / 1000000);
	for (long i = 0; i < 1000000; i++)
		spy_heapmap_remove(base + (uintptr_t)i * 1040);

	/* a full table that churns (blocks freed and new ones made, the count
	 * steady near the growth point) is rebuilt now and then, not at every
	 * insert: count how often the table moves */
	{
		const uintptr_t at = (uintptr_t)0x7d0000000000ull; /* one shard */
		enum { LIVE_N = 2500, STEPS = 300000 };
		static uintptr_t held[LIVE_N];
		uint64_t x = 12345;
		uintptr_t next = at;
		for (int i = 0; i < LIVE_N; i++, next += 48)
			spy_heapmap_insert(held[i] = next, 32, 0);
		uintptr_t t[64][2], last = 0;
		long moves = 0;
		for (long it = 0; it < STEPS && moves < 1000; it++) {
			int i = (int)(next_rand(&x) % LIVE_N);
			spy_heapmap_remove(held[i]);
			spy_heapmap_insert(held[i] = next, 32, 0);
			next += 48;
			size_t nt = spy_heapmap_tables(t, 64);
			uintptr_t first = nt ? t[0][0] : 0;
			for (size_t k = 1; k < nt; k++)
				first ^= t[k][0];
			moves += first != last;
			last = first;
		}
		ok(moves < 100, "a full table churning %d times moved %ld times",
		   STEPS, moves);
		for (int i = 0; i < LIVE_N; i++)
			spy_heapmap_remove(held[i]);
	}

	long bad = churn(0, N, 4000000, 88172645463325252ull);
	ok(bad < 0, "4 M random steps agree with the reference (first mismatch: %ld)", bad);

	struct counts c = { 0, 0 };
	size_t live = 0, held = 0;
	for (int i = 0; i < N; i++) {
		live += state[i] == LIVE;
		held += state[i] == HELD;
	}
	spy_heapmap_freeze();
	spy_heapmap_each(count, &c);
	spy_heapmap_thaw();
	ok(c.live == live && c.held == held,
	   "each() sees %zu live and %zu freed entries (want %zu and %zu)",
	   c.live, c.held, live, held);
	ok(spy_heapmap_live_count() == live, "live count %zu (want %zu)",
	   spy_heapmap_live_count(), live);

	/* threads on disjoint address ranges: the shards' locks keep each
	 * thread's view exact */
	struct worker w[4];
	pthread_t t[4];
	for (int k = 0; k < 4; k++) {
		w[k] = (struct worker){ .lo = k * (N / 4), .hi = (k + 1) * (N / 4) };
		pthread_create(&t[k], NULL, work, &w[k]);
	}
	for (int k = 0; k < 4; k++)
		pthread_join(t[k], NULL);
	ok(w[0].bad < 0 && w[1].bad < 0 && w[2].bad < 0 && w[3].bad < 0,
	   "4 threads churning side by side agree with the reference");

	/* emptying it leaves nothing behind */
	for (int i = 0; i < N; i++)
		spy_heapmap_remove(addr[i]);
	c = (struct counts){ 0, 0 };
	spy_heapmap_freeze();
	spy_heapmap_each(count, &c);
	spy_heapmap_thaw();
	ok(c.live == 0 && c.held == 0 && spy_heapmap_live_count() == 0,
	   "after removing every address the map is empty");
	return tap_done();
}
