/* spy_ownmem.c: the ranges that hold no data of the program's
 * (spy_ownmem.h): libspy's own, the real allocator's, and the stacks of
 * threads that ended. */
#include "spy_ownmem.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

#define SLOTS 4096

/* A slot is free while start is 0; end is set after start is claimed and
 * cleared before it is given back, so a reader sees a range whole or
 * empty. */
struct registry {
	struct {
		uintptr_t start, end;
	} slot[SLOTS];
};

static struct registry own, allocator, dead_stacks;

/* Where the search for a's slot starts: slots are probed from there on,
 * so that noting and forgetting stay short with thousands in use (every
 * thread maps a little of its own). */
static unsigned home(uintptr_t a)
{
	return (unsigned)(((uint64_t)(a >> 12) * 0x9E3779B97F4A7C15ull) >> 52) % SLOTS;
}

static void note(struct registry *r, const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;
	if (!a || !len)
		return;
	for (unsigned k = 0, i = home(a); k < SLOTS; k++, i = (i + 1) % SLOTS) {
		uintptr_t none = 0;
		if (__atomic_load_n(&r->slot[i].start, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&r->slot[i].start, &none, a, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			/* the kernel maps whole pages */
			__atomic_store_n(&r->slot[i].end, (a + len + 4095) & ~(uintptr_t)4095,
					 __ATOMIC_RELEASE);
			return;
		}
	}
}

static void drop(struct registry *r, unsigned i)
{
	__atomic_store_n(&r->slot[i].end, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&r->slot[i].start, 0, __ATOMIC_RELEASE);
}

void spy_ownmem_note(const void *p, size_t len)
{
	note(&own, p, len);
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
		if (__atomic_load_n(&own.slot[i].start, __ATOMIC_ACQUIRE) == a) {
			drop(&own, i);
			return;
		}
	}
}

void spy_allocmem_note(const void *p, size_t len)
{
	note(&allocator, p, len);
}

/* Drops every range of r that [p, p + len) touches. */
static void forget_touched(struct registry *r, const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p, e = a + len;
	for (unsigned i = 0; i < SLOTS; i++) {
		uintptr_t s = __atomic_load_n(&r->slot[i].start, __ATOMIC_ACQUIRE);
		uintptr_t se = __atomic_load_n(&r->slot[i].end, __ATOMIC_ACQUIRE);
		if (s && s < e && a < se)
			drop(r, i);
	}
}

void spy_allocmem_forget(const void *p, size_t len)
{
	forget_touched(&allocator, p, len);
}

void spy_deadstack_note(const void *p, size_t len)
{
	note(&dead_stacks, p, len);
}

void spy_deadstack_forget(const void *p, size_t len)
{
	forget_touched(&dead_stacks, p, len);
}

static size_t ranges(const struct registry *r, uintptr_t (*out)[2], size_t max)
{
	size_t n = 0;
	for (unsigned i = 0; i < SLOTS && n < max; i++) {
		uintptr_t s = __atomic_load_n(&r->slot[i].start, __ATOMIC_ACQUIRE);
		uintptr_t e = __atomic_load_n(&r->slot[i].end, __ATOMIC_ACQUIRE);
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
	return ranges(&own, out, max);
}

size_t spy_allocmem_ranges(uintptr_t (*out)[2], size_t max)
{
	return ranges(&allocator, out, max);
}

size_t spy_deadstack_ranges(uintptr_t (*out)[2], size_t max)
{
	return ranges(&dead_stacks, out, max);
}

/* The real allocator's code, when it is not the C library's. */
static uintptr_t code_lo, code_hi;

static int find_code(struct dl_phdr_info *info, size_t size, void *arg)
{
	uintptr_t probe = (uintptr_t)arg;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) &&
		    probe >= lo && probe < lo + ph->p_memsz) {
			code_lo = lo;
			code_hi = lo + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

void spy_allocmem_init(const void *real_malloc)
{
	Dl_info info;
	if (real_malloc && dladdr(real_malloc, &info) && info.dli_fname &&
	    !strstr(info.dli_fname, "/libc.so"))
		dl_iterate_phdr(find_code, (void *)real_malloc);
}

int spy_allocmem_code(const void *pc)
{
	return (uintptr_t)pc - code_lo < code_hi - code_lo;
}
