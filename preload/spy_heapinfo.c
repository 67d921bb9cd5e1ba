/* spy_heapinfo.c: HEAP_INFO records (spy_heapinfo.h). Runs in hooks and at
 * exit with the guard held: no allocation, no stdio. */
#include "spy_heapinfo.h"

#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include "spy_heapmap.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"

/* Which allocator the HEAP_INFO record describes beyond glibc's figures. */
enum { ALLOCATOR_GLIBC = 0, ALLOCATOR_JEMALLOC = 1 };

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static int is_jemalloc(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	const char *name = info->dlpi_name ? spy_basename(info->dlpi_name) : "";
	return spy_strneq(name, "libjemalloc", 11);
}

typedef int (*nametomib_fn)(const char *, size_t *, size_t *);
typedef int (*bymib_fn)(const size_t *, size_t, void *, size_t *, void *,
			size_t);

/* jemalloc's mallctl and its by-number forms when jemalloc is loaded at
 * start; looked up then, and only when a jemalloc library is there: a
 * dlsym that fails allocates its error message (at the exit of a program
 * that never called malloc, that made the brk heap, which the end map
 * then showed as the program's), and any dlsym resets what dlerror()
 * would tell the program about its own last failed dlopen (a lookup at
 * exit made glibc drop that message unseen, and the leak scan then
 * called it lost). A jemalloc the program loads later is not asked. */
static mallctl_fn je_ctl;
static nametomib_fn je_to_mib;
static bymib_fn je_get;

void spy_heapinfo_init(void)
{
	if (!dl_iterate_phdr(is_jemalloc, NULL))
		return;
	je_to_mib = (nametomib_fn)dlsym(RTLD_DEFAULT, "mallctlnametomib");
	je_get = (bymib_fn)dlsym(RTLD_DEFAULT, "mallctlbymib");
	je_ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
}

static mallctl_fn jemalloc_ctl(void)
{
	return je_ctl;
}

static uint64_t jemalloc_stat(mallctl_fn ctl, const char *name)
{
	size_t v = 0, len = sizeof(v);
	return ctl(name, &v, &len, NULL, 0) == 0 ? v : 0;
}

/* ---- jemalloc's free space ------------------------------------------------ */

/* The statistics of all arenas merged (MALLCTL_ARENAS_ALL). */
#define JE_ARENAS_ALL 4096

/* Free space inside what jemalloc holds: free regions of its slabs (a
 * small size class each) and free extents of pages (dirty or muzzy),
 * counted as holes with a histogram by size. */
struct je_free {
	uint64_t regions, region_bytes, largest_region;
	uint64_t extents, extent_bytes, largest_extent;
	uint64_t hist[TRACE_HOLE_BUCKETS];
};

/* One value read by mib with mib[at] set to i; 0 if the call failed. */
static int by_mib(bymib_fn get, size_t *mib, size_t len, size_t at, size_t i,
		  void *v, size_t size)
{
	size_t n = size;
	mib[at] = i;
	return get(mib, len, v, &n, NULL, 0) == 0 && n == size;
}

/* 0, or -1 when jemalloc lacks these statistics (built without them). */
static int je_free_space(mallctl_fn ctl, struct je_free *f)
{
	nametomib_fn to_mib = je_to_mib;
	bymib_fn get = je_get;
	if (!to_mib || !get)
		return -1;
	unsigned nbins = 0;
	size_t len = sizeof(nbins);
	size_t m_size[4], m_nregs[4], m_regs[6], m_slabs[6];
	size_t l_size = 4, l_nregs = 4, l_regs = 6, l_slabs = 6;
	if (ctl("arenas.nbins", &nbins, &len, NULL, 0) != 0 ||
	    to_mib("arenas.bin.0.size", m_size, &l_size) != 0 ||
	    to_mib("arenas.bin.0.nregs", m_nregs, &l_nregs) != 0 ||
	    to_mib("stats.arenas.0.bins.0.curregs", m_regs, &l_regs) != 0 ||
	    to_mib("stats.arenas.0.bins.0.curslabs", m_slabs, &l_slabs) != 0)
		return -1;
	m_regs[2] = m_slabs[2] = JE_ARENAS_ALL;
	for (unsigned j = 0; j < nbins; j++) {
		size_t size, regs, slabs;
		uint32_t nregs;
		if (!by_mib(get, m_size, l_size, 2, j, &size, sizeof(size)) ||
		    !by_mib(get, m_nregs, l_nregs, 2, j, &nregs, sizeof(nregs)) ||
		    !by_mib(get, m_regs, l_regs, 4, j, &regs, sizeof(regs)) ||
		    !by_mib(get, m_slabs, l_slabs, 4, j, &slabs, sizeof(slabs)))
			return -1;
		uint64_t cap = (uint64_t)slabs * nregs;
		uint64_t free_regs = cap > regs ? cap - regs : 0;
		if (!free_regs)
			continue;
		f->regions += free_regs;
		f->region_bytes += free_regs * size;
		f->hist[trace_hole_bucket(size)] += free_regs;
		if (size > f->largest_region)
			f->largest_region = size;
	}
	/* extents by page-size class, until the classes run out */
	static const char *const ext[4] = {
		"stats.arenas.0.extents.0.ndirty", "stats.arenas.0.extents.0.nmuzzy",
		"stats.arenas.0.extents.0.dirty_bytes",
		"stats.arenas.0.extents.0.muzzy_bytes" };
	size_t m_ext[4][6], l_ext[4];
	for (int k = 0; k < 4; k++) {
		l_ext[k] = 6;
		if (to_mib(ext[k], m_ext[k], &l_ext[k]) != 0)
			return 0; /* before jemalloc 5.2: slabs only */
		m_ext[k][2] = JE_ARENAS_ALL;
	}
	for (size_t j = 0; j < 1024; j++) {
		size_t v[4];
		int ok = 1;
		for (int k = 0; k < 4 && ok; k++)
			ok = by_mib(get, m_ext[k], l_ext[k], 4, j, &v[k], sizeof(v[k]));
		if (!ok)
			break;
		uint64_t n = (uint64_t)v[0] + v[1], bytes = (uint64_t)v[2] + v[3];
		if (!n)
			continue;
		f->extents += n;
		f->extent_bytes += bytes;
		f->hist[trace_hole_bucket(bytes / n)] += n;
		if (bytes / n > f->largest_extent)
			f->largest_extent = bytes / n;
	}
	return 0;
}

static uint64_t field(const char **p)
{
	uint64_t v = 0;
	while (**p == ' ')
		(*p)++;
	while (**p >= '0' && **p <= '9')
		v = v * 10 + (uint64_t)(*(*p)++ - '0');
	return v;
}

void spy_heapinfo_write(unsigned reason)
{
	/* Both calls hold the allocator's locks: a signal handler that
	 * interrupts them must not enter the allocator (spy_heapmap.h). */
	spy_in_allocator = 1;
	struct mallinfo2 mi = mallinfo2();
	spy_in_allocator = 0;
	char statm[128];
	uint64_t vm = 0, rss = 0;
	ssize_t n = spy_read_file("/proc/self/statm", statm, sizeof(statm) - 1);
	if (n > 0) {
		statm[n] = '\0';
		const char *p = statm;
		uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
		vm = field(&p) * page;
		rss = field(&p) * page;
	}
	struct rlimit rl;
	uint64_t as = 0;
	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		as = rl.rlim_cur;
	/* jemalloc's statistics are refreshed only when the epoch moves */
	mallctl_fn ctl = jemalloc_ctl();
	uint64_t je[6] = { 0 };
	struct je_free jf = { 0 };
	int je_holes = -1;
	if (ctl) {
		spy_in_allocator = 1;
		uint64_t epoch = 1;
		size_t len = sizeof(epoch);
		ctl("epoch", &epoch, &len, &epoch, len);
		je[0] = jemalloc_stat(ctl, "stats.allocated");
		je[1] = jemalloc_stat(ctl, "stats.active");
		je[2] = jemalloc_stat(ctl, "stats.metadata");
		je[3] = jemalloc_stat(ctl, "stats.resident");
		je[4] = jemalloc_stat(ctl, "stats.mapped");
		je[5] = jemalloc_stat(ctl, "stats.retained");
		je_holes = je_free_space(ctl, &jf);
		spy_in_allocator = 0;
	}
	uint8_t *w = spy_writer_begin(TRACE_HEAP_INFO,
				      (26 + 2 * TRACE_HOLE_BUCKETS) * TRACE_VARINT_MAX);
	if (!w)
		return;
	w = trace_put_varint(w, reason);
	w = trace_put_varint(w, mi.arena);
	w = trace_put_varint(w, mi.ordblks);
	w = trace_put_varint(w, mi.fordblks);
	w = trace_put_varint(w, mi.hblks);
	w = trace_put_varint(w, mi.hblkhd);
	w = trace_put_varint(w, mi.uordblks);
	w = trace_put_varint(w, mi.keepcost);
	w = trace_put_varint(w, rss);
	w = trace_put_varint(w, as);
	w = trace_put_varint(w, vm);
	w = trace_put_varint(w, ctl ? ALLOCATOR_JEMALLOC : ALLOCATOR_GLIBC);
	if (ctl)
		for (int i = 0; i < 6; i++)
			w = trace_put_varint(w, je[i]);
	if (ctl && je_holes == 0) {
		w = trace_put_varint(w, jf.regions);
		w = trace_put_varint(w, jf.region_bytes);
		w = trace_put_varint(w, jf.largest_region);
		w = trace_put_varint(w, jf.extents);
		w = trace_put_varint(w, jf.extent_bytes);
		w = trace_put_varint(w, jf.largest_extent);
		unsigned used = 0;
		for (unsigned b = 0; b < TRACE_HOLE_BUCKETS; b++)
			used += jf.hist[b] != 0;
		w = trace_put_varint(w, used);
		for (unsigned b = 0; b < TRACE_HOLE_BUCKETS; b++)
			if (jf.hist[b]) {
				w = trace_put_varint(w, b);
				w = trace_put_varint(w, jf.hist[b]);
			}
	}
	spy_writer_end(w);
}

uint64_t spy_heapinfo_next_due;

void spy_heapinfo_tick_slow(void)
{
	uint64_t now = spy_self.buf->last_ns;
	uint64_t due = __atomic_load_n(&spy_heapinfo_next_due, __ATOMIC_RELAXED);
	if (now < due)
		return;
	uint64_t every = (uint64_t)spy_opt.heap_every * 1000000u;
	/* One thread wins each due time; the next is counted from now, so a
	 * quiet stretch is not followed by a burst of snapshots. */
	if (!__atomic_compare_exchange_n(&spy_heapinfo_next_due, &due, now + every, 0,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	if (due)
		spy_heapinfo_write(2);
}
