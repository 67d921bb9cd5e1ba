/* spy_heapinfo.c: HEAP_INFO records (spy_heapinfo.h). Runs in hooks and at
 * exit with the guard held: no allocation, no stdio. */
#include "spy_heapinfo.h"

#include <dlfcn.h>
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

/* jemalloc's mallctl when jemalloc is loaded; looked up once (dlsym may
 * allocate: the guard is held, so that passes straight through). */
static mallctl_fn jemalloc_ctl(void)
{
	static mallctl_fn ctl;
	static int looked;
	if (!__atomic_load_n(&looked, __ATOMIC_ACQUIRE)) {
		mallctl_fn f = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
		__atomic_store_n(&ctl, f, __ATOMIC_RELAXED);
		__atomic_store_n(&looked, 1, __ATOMIC_RELEASE);
	}
	return __atomic_load_n(&ctl, __ATOMIC_RELAXED);
}

static uint64_t jemalloc_stat(mallctl_fn ctl, const char *name)
{
	size_t v = 0, len = sizeof(v);
	return ctl(name, &v, &len, NULL, 0) == 0 ? v : 0;
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
		spy_in_allocator = 0;
	}
	uint8_t *w = spy_writer_begin(TRACE_HEAP_INFO, 19 * TRACE_VARINT_MAX);
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
