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

/* Threads that ended: DEAD_STACKS of them, each range packed in one word
 * (page number and page count), so that a reader never sees half of one,
 * at a slot chosen by the 4 MiB cell its start is in. glibc keeps a few
 * stacks for reuse (40 MiB of them) and unmaps the rest; an entry a later
 * one lands on is overwritten, and its memory is a root again, which can
 * only keep a block reachable. A new thread on a kept stack finds its own
 * range in one probe; one on a stack never seen looks only at the slots
 * of the cells from its start less the longest range noted to its end (a
 * few, for stacks of a few MiB), not at all of them. */
#define DEAD_STACKS 64
#define DEAD_CELL_PAGES 10 /* log2 of the pages in a cell: 4 MiB */
static uint64_t dead_stacks[DEAD_STACKS];
/* pages: no range noted is longer (read by every search, rarely written:
 * a line of its own, not one the noting threads write) */
static uint64_t dead_longest __attribute__((aligned(64)));

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

/* The whole pages of [p, p + len): the range packed, or 0 when it has
 * none or lies beyond what a word holds (addresses of 47 bits). */
static uint64_t dead_pack(const void *p, size_t len)
{
	uintptr_t a = ((uintptr_t)p + 4095) >> 12, e = ((uintptr_t)p + len) >> 12;
	if (!p || e <= a || e >= (1ull << 35) || e - a >= (1ull << 29))
		return 0;
	return (uint64_t)a << 29 | (e - a);
}

static unsigned cell_slot(uint64_t cell)
{
	return (unsigned)((cell * 0x9E3779B97F4A7C15ull) >> 58) % DEAD_STACKS;
}

static unsigned dead_slot(uint64_t w)
{
	return cell_slot((w >> 29) >> DEAD_CELL_PAGES);
}

void spy_deadstack_note(const void *p, size_t len)
{
	uint64_t w = dead_pack(p, len);
	if (!w)
		return;
	/* the longest first: a search that finds this range must look far
	 * enough below its own start */
	uint64_t n = w & ((1u << 29) - 1);
	uint64_t longest = __atomic_load_n(&dead_longest, __ATOMIC_RELAXED);
	while (n > longest && !__atomic_compare_exchange_n(&dead_longest, &longest, n, 1,
							   __ATOMIC_RELEASE,
							   __ATOMIC_RELAXED))
		;
	__atomic_store_n(&dead_stacks[dead_slot(w)], w, __ATOMIC_RELEASE);
}

/* Drops the range at slot i if it overlaps pages [a, e). */
static void drop_overlap(unsigned i, uint64_t a, uint64_t e)
{
	uint64_t d = __atomic_load_n(&dead_stacks[i], __ATOMIC_ACQUIRE);
	uint64_t da = d >> 29, de = da + (d & ((1u << 29) - 1));
	if (d && da < e && a < de)
		__atomic_compare_exchange_n(&dead_stacks[i], &d, 0, 0,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

void spy_deadstack_forget(const void *p, size_t len)
{
	uint64_t w = dead_pack(p, len);
	if (!w)
		return;
	/* A range is noted only by a thread whose start forgot every range
	 * its stack touched, so ranges never overlap: finding its very own
	 * range is finding all there is. */
	uint64_t *home = &dead_stacks[dead_slot(w)], seen = w;
	if (__atomic_load_n(home, __ATOMIC_ACQUIRE) == w &&
	    __atomic_compare_exchange_n(home, &seen, 0, 0, __ATOMIC_ACQ_REL,
					__ATOMIC_RELAXED))
		return;
	uint64_t a = w >> 29, e = a + (w & ((1u << 29) - 1));
	/* A range that overlaps [a, e) starts in [a - longest, e). */
	uint64_t longest = __atomic_load_n(&dead_longest, __ATOMIC_ACQUIRE);
	uint64_t first = (a > longest ? a - longest : 0) >> DEAD_CELL_PAGES;
	uint64_t last = (e - 1) >> DEAD_CELL_PAGES;
	if (last - first < DEAD_STACKS) {
		for (uint64_t c = first; c <= last; c++)
			drop_overlap(cell_slot(c), a, e);
		return;
	}
	for (unsigned i = 0; i < DEAD_STACKS; i++)
		drop_overlap(i, a, e);
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
	struct slot r[DEAD_STACKS];
	for (unsigned i = 0; i < DEAD_STACKS; i++) {
		uint64_t d = __atomic_load_n(&dead_stacks[i], __ATOMIC_ACQUIRE);
		r[i].start = (uintptr_t)(d >> 29) << 12;
		r[i].end = r[i].start + ((uintptr_t)(d & ((1u << 29) - 1)) << 12);
	}
	return ranges(r, DEAD_STACKS, out, max);
}
