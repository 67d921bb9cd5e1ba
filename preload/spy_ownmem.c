/* spy_ownmem.c: the ranges libspy mapped for itself (spy_ownmem.h). */
#include "spy_ownmem.h"

#define SLOTS 4096

/* A slot is free while start is 0; end is set after start is claimed and
 * cleared before it is given back, so a reader sees a range whole or
 * empty. */
static struct {
	uintptr_t start, end;
} slots[SLOTS];

/* Where the search for a's slot starts: slots are probed from there on,
 * so that noting and forgetting stay short with thousands in use (every
 * thread maps a little of its own). */
static unsigned home(uintptr_t a)
{
	return (unsigned)(((uint64_t)(a >> 12) * 0x9E3779B97F4A7C15ull) >> 52) % SLOTS;
}

void spy_ownmem_note(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;
	if (!a || !len)
		return;
	for (unsigned k = 0, i = home(a); k < SLOTS; k++, i = (i + 1) % SLOTS) {
		uintptr_t none = 0;
		if (__atomic_load_n(&slots[i].start, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&slots[i].start, &none, a, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			/* the kernel maps whole pages */
			__atomic_store_n(&slots[i].end, (a + len + 4095) & ~(uintptr_t)4095,
					 __ATOMIC_RELEASE);
			return;
		}
	}
}

void spy_ownmem_forget(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;
	(void)len;
	if (!a)
		return;
	/* A freed slot does not end the search (no tombstones are needed:
	 * a range is looked for only by its own start). */
	for (unsigned k = 0, i = home(a); k < SLOTS; k++, i = (i + 1) % SLOTS) {
		if (__atomic_load_n(&slots[i].start, __ATOMIC_ACQUIRE) != a)
			continue;
		__atomic_store_n(&slots[i].end, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&slots[i].start, 0, __ATOMIC_RELEASE);
		return;
	}
}

size_t spy_ownmem_ranges(uintptr_t (*out)[2], size_t max)
{
	size_t n = 0;
	for (unsigned i = 0; i < SLOTS && n < max; i++) {
		uintptr_t s = __atomic_load_n(&slots[i].start, __ATOMIC_ACQUIRE);
		uintptr_t e = __atomic_load_n(&slots[i].end, __ATOMIC_ACQUIRE);
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
