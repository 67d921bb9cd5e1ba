/* spy_ownmem.c: the ranges that hold no data of the program's
 * (spy_ownmem.h): libspy's own, the real allocator's, and the stacks of
 * threads that ended. */
#include "spy_ownmem.h"

#define SLOTS 4096

/* A slot is free while start is 0; end is set after start is claimed and
 * cleared before it is given back, so a reader sees a range whole or
 * empty. ever says the slot was claimed once: a search by start ends at
 * the first slot never claimed (noting takes the first free one). */
struct slot {
	uintptr_t start, end;
	uint8_t ever;
};

static struct slot own[SLOTS], allocator[SLOTS];

/* Threads that ended: the last DEAD_STACKS of them, in a ring. glibc keeps
 * a few stacks for reuse (40 MiB of them) and unmaps the rest; an older
 * entry is overwritten, and its memory is a root again, which can only
 * keep a block reachable. Small, because every new thread looks through
 * it. */
#define DEAD_STACKS 64
static struct slot dead_stacks[DEAD_STACKS];
static unsigned dead_next;

/* Where the search for a's slot starts: slots are probed from there on,
 * so that noting and forgetting stay short with thousands in use (every
 * thread maps a little of its own). */
static unsigned home(uintptr_t a)
{
	return (unsigned)(((uint64_t)(a >> 12) * 0x9E3779B97F4A7C15ull) >> 52) % SLOTS;
}

/* The kernel maps whole pages. */
static void fill(struct slot *sl, uintptr_t a, size_t len)
{
	__atomic_store_n(&sl->end, (a + len + 4095) & ~(uintptr_t)4095,
			 __ATOMIC_RELEASE);
}

static void note(struct slot *r, const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;
	if (!a || !len)
		return;
	for (unsigned k = 0, i = home(a); k < SLOTS; k++, i = (i + 1) % SLOTS) {
		uintptr_t none = 0;
		if (__atomic_load_n(&r[i].start, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&r[i].start, &none, a, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			__atomic_store_n(&r[i].ever, 1, __ATOMIC_RELEASE);
			fill(&r[i], a, len);
			return;
		}
	}
}

static void drop(struct slot *sl)
{
	__atomic_store_n(&sl->end, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&sl->start, 0, __ATOMIC_RELEASE);
}

void spy_ownmem_note(const void *p, size_t len)
{
	note(own, p, len);
}

void spy_ownmem_forget(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;
	(void)len;
	if (!a)
		return;
	/* A freed slot does not end the search, one never claimed does. */
	for (unsigned k = 0, i = home(a); k < SLOTS; k++, i = (i + 1) % SLOTS) {
		if (__atomic_load_n(&own[i].start, __ATOMIC_ACQUIRE) == a) {
			drop(&own[i]);
			return;
		}
		if (!__atomic_load_n(&own[i].ever, __ATOMIC_ACQUIRE))
			return;
	}
}

void spy_allocmem_note(const void *p, size_t len)
{
	note(allocator, p, len);
}

/* Drops every range of r[0..n) that [p, p + len) touches. */
static void forget_touched(struct slot *r, unsigned n, const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p, e = a + len;
	for (unsigned i = 0; i < n; i++) {
		uintptr_t s = __atomic_load_n(&r[i].start, __ATOMIC_ACQUIRE);
		uintptr_t se = __atomic_load_n(&r[i].end, __ATOMIC_ACQUIRE);
		if (s && s < e && a < se)
			drop(&r[i]);
	}
}

void spy_allocmem_forget(const void *p, size_t len)
{
	forget_touched(allocator, SLOTS, p, len);
}

void spy_deadstack_note(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;
	if (!a || !len)
		return;
	struct slot *sl = &dead_stacks[__atomic_fetch_add(&dead_next, 1,
		__ATOMIC_RELAXED) % DEAD_STACKS];
	drop(sl);
	__atomic_store_n(&sl->start, a, __ATOMIC_RELEASE);
	fill(sl, a, len);
}

void spy_deadstack_forget(const void *p, size_t len)
{
	forget_touched(dead_stacks, DEAD_STACKS, p, len);
}

static size_t ranges(const struct slot *r, unsigned slots, uintptr_t (*out)[2],
		     size_t max)
{
	size_t n = 0;
	for (unsigned i = 0; i < slots && n < max; i++) {
		uintptr_t s = __atomic_load_n(&r[i].start, __ATOMIC_ACQUIRE);
		uintptr_t e = __atomic_load_n(&r[i].end, __ATOMIC_ACQUIRE);
		if (!s || e <= s)
			continue;
		/* insertion in order */
		size_t j = n++;
		for (; j > 0 && out[j - 1][0] > s; j--) {
			out[j][0] = out[j - 1][0];
			out[j][1] = out[j - 1][1];
		}
		out[j][0] = s;
		out[j][1] = e;
	}
	/* neighbours and overlaps become one range */
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k && out[i][0] <= out[k - 1][1]) {
			if (out[i][1] > out[k - 1][1])
				out[k - 1][1] = out[i][1];
			continue;
		}
		out[k][0] = out[i][0];
		out[k][1] = out[i][1];
		k++;
	}
	return k;
}

size_t spy_ownmem_ranges(uintptr_t (*out)[2], size_t max)
{
	return ranges(own, SLOTS, out, max);
}

size_t spy_allocmem_ranges(uintptr_t (*out)[2], size_t max)
{
	return ranges(allocator, SLOTS, out, max);
}

size_t spy_deadstack_ranges(uintptr_t (*out)[2], size_t max)
{
	return ranges(dead_stacks, DEAD_STACKS, out, max);
}
