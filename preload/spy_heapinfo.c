/* spy_heapinfo.c: HEAP_INFO records (spy_heapinfo.h). Runs in hooks and at
 * exit with the guard held: no allocation, no stdio. */
#include "spy_heapinfo.h"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"

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
	struct mallinfo2 mi = mallinfo2();
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
	uint8_t *w = spy_writer_begin(TRACE_HEAP_INFO, 12 * TRACE_VARINT_MAX);
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
	spy_writer_end(w);
}
