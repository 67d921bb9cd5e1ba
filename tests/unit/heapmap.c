/* heapmap.c: the live-block map of libspy.so (preload/spy_heapmap.c: the
 * shadow, and the hash for addresses the shadow cannot hold), driven by
 * millions of random inserts, frees and removals and compared after every
 * step with a plain array of what each address should be. Also a threaded
 * run where threads churn blocks whose shadow nibbles share bytes, and a
 * count of what spy_heapmap_each sees at the end.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "spy_heapmap.h"
#include "spy_options.h"
#include "spy_real.h"
#include "spy_shadow.h"
#include "tap.h"

/* What the map's module needs from the rest of libspy.so: the allocator's
 * size of a block, made up from its address here. */
struct spy_options spy_opt;
volatile int spy_state;
uintptr_t spy_guard_base; /* no guarded reservation: spy_guard_owns says 0 */
size_t spy_guard_size(const void *p)
{
	(void)p;
	return 0;
}
void spy_guard_init(void)
{
}
static size_t fake_usable_size(void *p)
{
	return ((uintptr_t)p >> 4) % 4093 + 24;
}
struct spy_real spy_real = { .malloc_usable_size = fake_usable_size };
int spy_real_malloc_is_glibc(void)
{
	return 0; /* the made-up sizes above are no glibc chunks */
}
void spy_ownfd_taken(int fd) /* no descriptors of libspy's here */
{
	(void)fd;
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
			/* the shadow answers with the allocator's size, the
			 * hash with the size given */
			size_t want_sz = spy_shadow_covers(addr[i])
				? fake_usable_size((void *)addr[i]) : size[i];
			if (f != want || (f != SPY_HEAP_ABSENT &&
					  (sz != want_sz || fam != family[i])))
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

/* Bytes of the map's tables in memory now. */
static size_t resident_tables(void)
{
	uintptr_t t[256][2];
	size_t n = spy_heapmap_tables(t, 256), bytes = 0;
	static unsigned char vec[1 << 16];
	for (size_t i = 0; i < n; i++) {
		for (uintptr_t a = t[i][0]; a < t[i][1]; a += (uintptr_t)sizeof(vec) * 4096) {
			size_t len = t[i][1] - a < sizeof(vec) * 4096 ? t[i][1] - a
								       : sizeof(vec) * 4096;
			if (mincore((void *)a, len, vec) != 0)
				continue;
			for (size_t k = 0; k < (len + 4095) / 4096; k++)
				bytes += (vec[k] & 1) * 4096;
		}
	}
	return bytes;
}

/* Counts granules of state 4 at offset 0x30 of a GiB (the far ones). */
static void visit_far(uintptr_t a, unsigned v, void *arg)
{
	struct { size_t n, bad; } *w = arg;
	if (v == 4 && (a & ((1ull << 30) - 1)) == 0x30)
		w->n++;
	else if (v == 4)
		w->bad++;
}

int main(void)
{
	/* distinct addresses spread over many GiB and packed densely within
	 * some, neighbours 16 bytes apart (so threads share shadow bytes);
	 * one in five only 8-byte aligned, for the hash; a few above 2^47 */
	for (int i = 0; i < N; i++)
		addr[i] = (uintptr_t)0x7f0000000000ull +
			  (((uint64_t)i * 0x9E3779B1ull) % (1ull << 26)) * 16 +
			  ((uintptr_t)(i % 7) << 32) + (i % 5 == 0 ? 8 : 0) +
			  (i % 997 == 0 ? (uintptr_t)1 << 47 : 0);

	/* memory, on the empty map: a heap of a million 1 KiB blocks, and
	 * one of a million 32-byte blocks (the foundation's budget is 64
	 * bytes a block; the shadow costs a byte per 32 of address range).
	 * Counted as the map's pages in memory (mincore), since its tables
	 * are reserved ahead and filled as blocks come. */
	static const struct {
		uintptr_t base;
		size_t stride;
		double most;
	} heaps[] = { { 0x7e0000000000ull, 1040, 34.0 },
		      { 0x7c0000000000ull, 48, 2.0 } };
	for (int h = 0; h < 2; h++) {
		size_t before = resident_tables();
		for (long i = 0; i < 1000000; i++)
			spy_heapmap_insert(heaps[h].base + (uintptr_t)i * heaps[h].stride,
					   heaps[h].stride - 16, 0);
		size_t after = resident_tables();
		double per = (double)(after - before) / 1000000;
		ok(per <= heaps[h].most,
		   "a million live %zu-byte blocks: %zu bytes of shadow (%.1f a block)",
		   heaps[h].stride - 16, after - before, per);
		ok(spy_heapmap_live_count() == 1000000, "live count %zu of 1000000",
		   spy_heapmap_live_count());
		for (long i = 0; i < 1000000; i++)
			spy_heapmap_remove(heaps[h].base + (uintptr_t)i * heaps[h].stride);
	}

	/* a full table that churns (blocks freed and new ones made, the count
	 * steady near the growth point) is rebuilt now and then, not at every
	 * insert: count how often the table moves */
	{
		/* 8-byte aligned: the hash's; one shard */
		const uintptr_t at = (uintptr_t)0x7d0000000008ull;
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

	/* the previous marked granule, against a scan granule by granule:
	 * a few marks scattered over 512 KiB (across a leaf's edge), queried
	 * from many places and with many lower bounds */
	{
		const uintptr_t base = (uintptr_t)0x7c00000ff000ull;
		static const uintptr_t at[] = { 0x10, 0x100, 0x1f0, 0x200, 0x4e0,
			0x10000, 0x10ff0, 0x11000, 0x7fff0, 0x80000 };
		const size_t n_at = sizeof(at) / sizeof(at[0]);
		int bad = 0;
		for (size_t i = 0; i < n_at; i++)
			spy_shadow_change(base + at[i], 1u << 0, 4, 0);
		uint64_t x = 77;
		for (int q = 0; q < 20000 && !bad; q++) {
			uintptr_t a = base + (next_rand(&x) % 0x90000 & ~(uint64_t)15);
			uintptr_t low = a - (next_rand(&x) % 0x30000 & ~(uint64_t)15);
			if (low < base)
				low = base;
			uintptr_t want = 0;
			for (uintptr_t g = a; g >= low && g >= base; g -= 16)
				if (spy_shadow_get(g)) {
					want = g;
					break;
				}
			bad = spy_shadow_prev(a, low) != want;
		}
		ok(!bad, "the previous marked granule is the one a scan finds");
		for (size_t i = 0; i < n_at; i++)
			spy_shadow_change(base + at[i], 1u << 4, 0, 0);
	}
	/* the walk over every marked granule finds ones in directories far
	 * apart: the first and last GiB the shadow covers, and GiBs on both
	 * sides of the words of its record of which ones are in use */
	{
		static const uintptr_t gib[] = { 1, 63, 64, 65, 100, 128, 4095, 4096,
						 70000, 131071 };
		const size_t n_gib = sizeof(gib) / sizeof(gib[0]);
		struct { size_t n, bad; } w = { 0, 0 };
		for (size_t i = 0; i < n_gib; i++)
			spy_shadow_change((gib[i] << 30) + 0x30, 1u << 0, 4, 0);
		spy_shadow_each(visit_far, &w);
		ok(w.n == n_gib && !w.bad,
		   "the walk finds the %zu granules set in far GiBs "
		   "(found %zu, %zu unexpected)", n_gib, w.n, w.bad);
		for (size_t i = 0; i < n_gib; i++)
			spy_shadow_change((gib[i] << 30) + 0x30, 1u << 4, 0, 0);
	}
	/* a big block goes to the hash: its size is the one given, and an
	 * interior pointer far into it still finds it; a small one next to
	 * it is found through the shadow */
	{
		const uintptr_t big = (uintptr_t)0x7b0000000010ull;
		const uintptr_t small = big + (2u << 20);
		uintptr_t base = 0;
		size_t sz = 0;
		unsigned fam = 9;
		spy_heapmap_insert(big, 1u << 20, 1);
		spy_heapmap_insert(small, 100, 0);
		int in_big = spy_heapmap_find_containing(big + 700000, &base, &sz);
		ok(in_big && base == big && sz == (1u << 20),
		   "an interior pointer 700,000 bytes into a 1 MiB block finds it");
		int in_small = spy_heapmap_find_containing(small + 40, &base, &sz);
		ok(in_small && base == small && sz == fake_usable_size((void *)small),
		   "an interior pointer into a small block finds it");
		ok(!spy_heapmap_find_containing(small + 200000, &base, &sz),
		   "an address past every block is in none");
		ok(spy_heapmap_release(big, 1, &sz, &fam) == SPY_HEAP_LIVE &&
		   sz == (1u << 20) && fam == 1 &&
		   spy_heapmap_release(big, 1, &sz, &fam) == SPY_HEAP_FREED,
		   "the big block is live, then freed");
		spy_heapmap_remove(big);
		spy_heapmap_remove(small);
		ok(spy_heapmap_release(big, 0, &sz, &fam) == SPY_HEAP_ABSENT &&
		   spy_heapmap_release(small, 0, &sz, &fam) == SPY_HEAP_ABSENT,
		   "both gone after removal");
	}

	/* the hash's lookups skip a shard with no entry (no lock): two
	 * blocks of one 64 MiB span (one shard), 8-byte aligned (the hash's);
	 * each is found while the other is gone, and neither once both are */
	{
		const uintptr_t a = (uintptr_t)0x7a0000000008ull, b = a + 4096;
		size_t sz = 0;
		unsigned fam = 9;
		ok(spy_heapmap_release(a, 0, &sz, &fam) == SPY_HEAP_ABSENT &&
		   !spy_heapmap_live_family(a, &fam),
		   "a block never inserted in an empty shard is absent");
		spy_heapmap_insert(a, 40, 1);
		spy_heapmap_insert(b, 50, 2);
		spy_heapmap_remove(a);
		ok(spy_heapmap_live_family(b, &fam) && fam == 2 &&
		   spy_heapmap_release(b, 0, &sz, &fam) == SPY_HEAP_LIVE &&
		   sz == 50,
		   "the other block of the shard is found after one is removed");
		ok(spy_heapmap_release(b, 0, &sz, &fam) == SPY_HEAP_ABSENT &&
		   spy_heapmap_release(a, 0, &sz, &fam) == SPY_HEAP_ABSENT,
		   "both absent once the shard is empty");
		spy_heapmap_insert(a, 60, 0);
		ok(spy_heapmap_release(a, 1, &sz, &fam) == SPY_HEAP_LIVE &&
		   sz == 60 && spy_heapmap_release(a, 1, &sz, &fam) == SPY_HEAP_FREED,
		   "a block inserted in the emptied shard is found again");
		spy_heapmap_remove(a);
		ok(spy_heapmap_release(a, 0, &sz, &fam) == SPY_HEAP_ABSENT,
		   "and absent after its removal");
	}

	long bad = churn(0, N, 4000000, 88172645463325252ull);
	ok(bad < 0, "4 M random steps agree with the reference (first mismatch: %ld)", bad);

	struct counts c = { 0, 0 };
	size_t live = 0, held = 0;
	for (int i = 0; i < N; i++) {
		live += state[i] == LIVE;
		held += state[i] == HELD;
	}
	spy_heapmap_each(count, &c);
	ok(c.live == live && c.held == held,
	   "each() sees %zu live and %zu freed entries (want %zu and %zu)",
	   c.live, c.held, live, held);
	ok(spy_heapmap_live_count() == live, "live count %zu (want %zu)",
	   spy_heapmap_live_count(), live);

	/* threads on disjoint sets of blocks whose nibbles share shadow bytes
	 * and whose hash entries share shards: each thread's view stays exact */
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
	spy_heapmap_each(count, &c);
	ok(c.live == 0 && c.held == 0 && spy_heapmap_live_count() == 0,
	   "after removing every address the map is empty");
	return tap_done();
}
