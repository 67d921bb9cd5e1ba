/* spy_allocapi.c: the real allocator's own API bound to wrappers that
 * keep its live blocks for the leak scan (spy_allocapi.h). The table is
 * open addressing without a lock: an address is claimed with a
 * compare-and-swap, a block given back leaves a tombstone that a later
 * block may take.
 */
#include "spy_allocapi.h"

#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "spy_bootstrap.h"
#include "spy_core.h"
#include "spy_guard.h"
#include "spy_heapmap.h"
#include "spy_imports.h"
#include "spy_real.h"
#include "spy_sys.h"


/* ---- the table ----------------------------------------------------------- */

#define SLOTS_LOG 18
#define SLOTS (1ul << SLOTS_LOG)   /* 4 MiB of table, touched as it fills */
#define PROBES 256
#define TOMB ((uintptr_t)1)

struct entry {
	uintptr_t addr;         /* 0 empty, TOMB given back */
	size_t size;
};

static struct entry *table;
static int table_full;

static size_t home(uintptr_t a)
{
	return (size_t)(((a >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - SLOTS_LOG));
}

static void keep(void *p, size_t size)
{
	uintptr_t a = (uintptr_t)p;
	if (!a)
		return;
	size_t i = home(a);
	for (unsigned k = 0; k < PROBES; k++, i = (i + 1) & (SLOTS - 1)) {
		uintptr_t v = __atomic_load_n(&table[i].addr, __ATOMIC_ACQUIRE);
		if ((v == 0 || v == TOMB) &&
		    __atomic_compare_exchange_n(&table[i].addr, &v, a, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			__atomic_store_n(&table[i].size, size, __ATOMIC_RELEASE);
			return;
		}
	}
	__atomic_store_n(&table_full, 1, __ATOMIC_RELEASE);
}

static struct entry *find(void *p)
{
	uintptr_t a = (uintptr_t)p;
	size_t i = home(a);
	for (unsigned k = 0; a && k < PROBES; k++, i = (i + 1) & (SLOTS - 1)) {
		uintptr_t v = __atomic_load_n(&table[i].addr, __ATOMIC_ACQUIRE);
		if (v == a)
			return &table[i];
		if (v == 0)
			break;
	}
	return NULL;
}

static void drop(void *p)
{
	struct entry *e = find(p);
	uintptr_t a = (uintptr_t)p;
	if (e)
		__atomic_compare_exchange_n(&e->addr, &a, TOMB, 0,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* ---- the wrappers -------------------------------------------------------- */

/* The malloc family's hooks (hook_malloc.c), under names of libspy's own. */
void *spy_hooked_malloc(size_t size);
int spy_hooked_posix_memalign(void **out, size_t align, size_t size);
void spy_hooked_free(void *p);
void *spy_hooked_realloc(void *p, size_t size);
size_t spy_hooked_malloc_usable_size(void *p);

/* jemalloc's flags: the alignment's log in the low 6 bits, and zeroing */
#define LG_ALIGN_MASK 0x3f
#define FLAG_ZERO 0x40

/* A block the malloc family handed out through libspy (recorded, guarded,
 * or from its start-up arena), not one of the API's: the API may be
 * given it (jemalloc allows that), and its calls on it then go to the
 * hooks, as free, realloc and malloc_usable_size do. Given straight to
 * jemalloc, a block libspy held as live was reused under it (a false
 * leak, or worse), and in guard mode one jemalloc never made crashed it
 * (sallocx). */
static int handed_out(void *p)
{
	unsigned family;
	return p && (spy_guard_owns(p) || spy_bootstrap_owns(p) ||
		     spy_heapmap_live_family((uintptr_t)p, &family));
}

/* rallocx of such a block: realloc, or a new aligned block and a copy */
static void *move_handed_out(void *ptr, size_t size, int flags)
{
	size_t old = spy_hooked_malloc_usable_size(ptr);
	void *p = NULL;
	if (!size)
		size = 1;
	if (!(flags & LG_ALIGN_MASK)) {
		p = spy_hooked_realloc(ptr, size);
	} else if (spy_hooked_posix_memalign(&p, (size_t)1 << (flags & LG_ALIGN_MASK),
					     size) == 0) {
		memcpy(p, ptr, old < size ? old : size);
		spy_hooked_free(ptr);
	} else {
		p = NULL;
	}
	if (p && (flags & FLAG_ZERO) && size > old)
		memset((char *)p + old, 0, size - old);
	return p;
}

static void *(*real_mallocx)(size_t, int);
static void *(*real_rallocx)(void *, size_t, int);
static size_t (*real_xallocx)(void *, size_t, size_t, int);
static void (*real_dallocx)(void *, int);
static void (*real_sdallocx)(void *, size_t, int);
static size_t (*real_sallocx)(const void *, int);

/* what the program may use of a block: all the allocator gave it */
static size_t usable(void *p, size_t size)
{
	return real_sallocx && p ? real_sallocx(p, 0) : size;
}

static void *wrap_mallocx(size_t size, int flags)
{
	void *p = real_mallocx(size, flags);
	keep(p, usable(p, size));
	return p;
}

static void *wrap_rallocx(void *ptr, size_t size, int flags)
{
	if (!find(ptr) && handed_out(ptr))
		return move_handed_out(ptr, size, flags);
	/* out of the table first: once moved, the old address may be
	 * handed out at once to another thread, which keeps it */
	drop(ptr);
	void *p = real_rallocx(ptr, size, flags);
	keep(p ? p : ptr, usable(p ? p : ptr, size));
	return p;
}

static size_t wrap_xallocx(void *ptr, size_t size, size_t extra, int flags)
{
	struct entry *e = find(ptr);
	if (!e && handed_out(ptr))  /* never grown in place: its size stays */
		return spy_hooked_malloc_usable_size(ptr);
	size_t got = real_xallocx(ptr, size, extra, flags);
	if (e)
		__atomic_store_n(&e->size, got, __ATOMIC_RELEASE);
	return got;
}

static void wrap_dallocx(void *ptr, int flags)
{
	if (!find(ptr) && handed_out(ptr)) {
		spy_hooked_free(ptr);
		return;
	}
	drop(ptr);
	real_dallocx(ptr, flags);
}

static void wrap_sdallocx(void *ptr, size_t size, int flags)
{
	if (!find(ptr) && handed_out(ptr)) {
		spy_hooked_free(ptr);
		return;
	}
	drop(ptr);
	real_sdallocx(ptr, size, flags);
}

static size_t wrap_sallocx(const void *ptr, int flags)
{
	if (!find((void *)ptr) && handed_out((void *)ptr))
		return spy_hooked_malloc_usable_size((void *)ptr);
	return real_sallocx(ptr, flags);
}

static const char *const names[] = {
	"mallocx", "rallocx", "xallocx", "dallocx", "sdallocx", "sallocx",
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))
static void *const wrappers[N_NAMES] = {
	(void *)wrap_mallocx, (void *)wrap_rallocx, (void *)wrap_xallocx,
	(void *)wrap_dallocx, (void *)wrap_sdallocx, (void *)wrap_sallocx,
};
static void **const reals[N_NAMES] = {
	(void **)&real_mallocx, (void **)&real_rallocx, (void **)&real_xallocx,
	(void **)&real_dallocx, (void **)&real_sdallocx, (void **)&real_sallocx,
};

/* ---- binding the callers ------------------------------------------------- */

enum { FIND, BIND, CHECK };

struct walk {
	int mode;
	uintptr_t allocator, self, libc;
	int callers;            /* FIND: objects that call the API */
	int unbound;            /* CHECK: a call past the wrappers */
};

static int name_index(const char *name)
{
	if (name[0] != 'm' && name[0] != 'r' && name[0] != 'x' &&
	    name[0] != 'd' && name[0] != 's')
		return -1;
	for (unsigned i = 0; i < N_NAMES; i++)
		if (!strcmp(name, names[i]))
			return (int)i;
	return -1;
}

static void walk_import(const struct spy_import *imp, void *arg)
{
	struct walk *w = arg;
	if (imp->object == w->allocator || imp->object == w->self ||
	    imp->object == w->libc)
		return;
	int i = name_index(imp->name);
	if (i < 0)
		return;
	uintptr_t at = spy_object_at(__atomic_load_n(imp->slot, __ATOMIC_ACQUIRE));
	/* bound to the allocator; or a lazy slot not yet bound, which leads
	 * into the object's own PLT */
	int to_allocator = at == w->allocator || (imp->lazy && at == imp->object);
	if (w->mode == FIND)
		w->callers += to_allocator;
	else if (w->mode == BIND && to_allocator)
		spy_import_bind(imp, wrappers[i]);
	else if (w->mode == CHECK && at == w->allocator)
		w->unbound = 1; /* loaded later, called: not seen */
}

static int walk_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	spy_imports_each(info, walk_import, arg);
	return 0;
}

static struct walk start_walk;

void spy_allocapi_init(void)
{
	if (!spy_real.malloc || spy_real_malloc_is_glibc())
		return;
	struct walk w = { .mode = FIND };
	w.allocator = spy_object_at((const void *)spy_real.malloc);
	w.self = spy_object_at((const void *)spy_allocapi_init);
	w.libc = spy_object_at((const void *)getpid);
	/* the API of the allocator that serves malloc, whole */
	void *f[N_NAMES];
	int all = 1;
	for (unsigned i = 0; i < N_NAMES; i++) {
		f[i] = dlsym(RTLD_DEFAULT, names[i]);
		all &= f[i] && spy_object_at(f[i]) == w.allocator;
	}
	dlerror(); /* a name not found: the program's dlerror() stays its own */
	if (!all)
		return;
	for (unsigned i = 0; i < N_NAMES; i++)
		*reals[i] = f[i];
	if (!w.allocator || !w.self)
		return;
	start_walk = w; /* the objects to tell apart, for the check at exit */
	dl_iterate_phdr(walk_object, &w);
	if (!w.callers)
		return;
	table = spy_sys_mmap(SLOTS * sizeof(*table));
	if (!table)
		return;
	w.mode = BIND;
	dl_iterate_phdr(walk_object, &w);
}

int spy_allocapi_complete(void)
{
	if (!real_mallocx)
		return 1;    /* no such API, or glibc's malloc */
	struct walk w = start_walk;
	w.mode = CHECK;
	w.unbound = 0;
	dl_iterate_phdr(walk_object, &w);
	return !w.unbound && !__atomic_load_n(&table_full, __ATOMIC_ACQUIRE);
}

void spy_allocapi_each(void (*fn)(uintptr_t addr, size_t size, void *arg),
		       void *arg)
{
	for (size_t i = 0; table && i < SLOTS; i++) {
		uintptr_t a = __atomic_load_n(&table[i].addr, __ATOMIC_ACQUIRE);
		if (a > TOMB)
			fn(a, __atomic_load_n(&table[i].size, __ATOMIC_ACQUIRE), arg);
	}
}
