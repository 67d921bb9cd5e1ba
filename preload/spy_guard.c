/* spy_guard.c: guard mode (spy_guard.h). Runs in the malloc hooks with the
 * guard held and, for the fault observer, in signal context on the
 * alternate stack: only system calls and plain memory, no allocation.
 *
 * The reservation is carved by one atomic bump pointer. For every block
 * two entries of a side table (one per page, filled only for the block's
 * last data page and its guard page) say which block a faulting page
 * belongs to: a fault on any page finds its block by walking forward to
 * the next filled entry.
 */
#include "spy_guard.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spy_core.h"
#include "spy_heapmap.h"
#include "spy_options.h"
#include "spy_signals.h"
#include "spy_stack.h"
#include "spy_ownmem.h"
#include "spy_process.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"

#define PAGE 4096ul
#define RESERVE SPY_GUARD_RESERVE
#define PAGES (RESERVE / PAGE)
#define FREED_KEEP (64ul << 20)       /* freed bytes kept mapped before release */

struct page_info {
	uintptr_t addr;  /* the block this page ends or guards; 0: none */
	uint64_t size;
};

int spy_guard_enabled;
uintptr_t spy_guard_base;
static uintptr_t limit;

/* Each live guarded block is a mapping of its own inside the reservation,
 * which it splits: two more of the kernel's vm.max_map_count (65530 by
 * default). Taking them all left none for the program's own mappings,
 * thread stacks, or the real allocator that blocks fall back to: perl
 * building 20,000 arrays died "Out of memory!". So guarded blocks live at
 * once are capped to leave a quarter of the limit (at least MAP_RESERVE)
 * to everyone else; past the cap, blocks come from the real allocator
 * until enough guarded ones are freed. (Freed blocks turn inaccessible
 * like the reservation around them and merge back into it.) */
#define MAP_RESERVE 8192
static long live_guarded, live_cap;

static void cap_live_blocks(void)
{
	char buf[32];
	long max = 65530, in_use = 0;
	ssize_t n = spy_read_file("/proc/sys/vm/max_map_count", buf, sizeof(buf) - 1);
	if (n > 0) {
		long v = 0;
		for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
			v = v * 10 + (buf[i] - '0');
		if (v > 0)
			max = v;
	}
	/* the process's mappings now, one a line of /proc/self/maps */
	int fd = spy_sys_open("/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
	if (fd >= 0) {
		char chunk[4096];
		ssize_t got;
		while ((got = spy_sys_read(fd, chunk, sizeof(chunk))) > 0)
			for (ssize_t i = 0; i < got; i++)
				in_use += chunk[i] == '\n';
		spy_sys_close(fd);
	}
	long reserve = max / 4 > MAP_RESERVE ? max / 4 : MAP_RESERVE;
	live_cap = (max - reserve - in_use) / 2;
}
static uintptr_t next;                 /* bump pointer */
static struct page_info *pages;        /* PAGES entries, touched as used */

/* Freed regions waiting to give their memory back, oldest first. */
#define FIFO_CAP 65536
static struct { uintptr_t start, len; } fifo[FIFO_CAP];
static unsigned long fifo_head, fifo_tail;
static size_t fifo_bytes;
static int fifo_lock;

static void warn_once(int *done, const char *what)
{
	if (!__atomic_exchange_n(done, 1, __ATOMIC_RELAXED))
		spy_say("guard mode: %s; further blocks come from the real allocator, unguarded", what);
}

static void observe(int sig, siginfo_t *info, void *context);

void spy_guard_init(void)
{
	if (!spy_opt.guard)
		return;
	void *r = mmap(NULL, RESERVE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *t = mmap(NULL, PAGES * sizeof(struct page_info),
		       PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED || t == MAP_FAILED) {
		spy_say("guard mode is off: cannot reserve address space");
		if (r != MAP_FAILED)
			munmap(r, RESERVE);
		if (t != MAP_FAILED)
			munmap(t, PAGES * sizeof(struct page_info));
		return;
	}
	/* the reservation holds the program's blocks; the table is ours */
	spy_ownmem_note(t, PAGES * sizeof(struct page_info));
	spy_guard_base = next = (uintptr_t)r;
	limit = spy_guard_base + RESERVE;
	pages = t;
	cap_live_blocks();
	spy_signals_observe_faults(observe);
	spy_guard_enabled = 1;
}

void *spy_guard_alloc(size_t size, size_t align)
{
	static int full, maps;
	if (align < 16)
		align = 16;
	if (size > RESERVE / 4 || align > PAGE)
		return NULL;
	size_t rounded = (size + 15) & ~(size_t)15;
	size_t data = (rounded + PAGE - 1) & ~(PAGE - 1);
	if (!data)
		data = PAGE;
	if (__atomic_add_fetch(&live_guarded, 1, __ATOMIC_RELAXED) > live_cap) {
		__atomic_sub_fetch(&live_guarded, 1, __ATOMIC_RELAXED);
		warn_once(&maps, "so many blocks are live that more would take the mappings the kernel allows (vm.max_map_count) from the program");
		return NULL;
	}
	uintptr_t start = __atomic_fetch_add(&next, data + PAGE, __ATOMIC_RELAXED);
	if (start + data + PAGE > limit) {
		__atomic_sub_fetch(&live_guarded, 1, __ATOMIC_RELAXED);
		warn_once(&full, "the reserved address space is used up");
		return NULL;
	}
	if (mprotect((void *)start, data, PROT_READ | PROT_WRITE) != 0) {
		__atomic_sub_fetch(&live_guarded, 1, __ATOMIC_RELAXED);
		warn_once(&maps, "the kernel's limit of mappings (vm.max_map_count) is reached");
		return NULL;
	}
	uintptr_t guard = start + data;
	uintptr_t addr = (guard - rounded) & ~(uintptr_t)(align - 1);
	size_t last = (guard - PAGE - spy_guard_base) / PAGE;
	pages[last] = (struct page_info){ addr, size };
	pages[last + 1] = (struct page_info){ addr, size };
	return (void *)addr;
}

size_t spy_guard_size(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (!spy_guard_owns(p))
		return 0;
	/* the block's last data page holds its entry */
	size_t i = (a - spy_guard_base) / PAGE;
	for (; i < PAGES && pages[i].addr != a; i++)
		if (pages[i].addr && pages[i].addr < a)
			return 0;
	return i < PAGES ? (size_t)pages[i].size : 0;
}

static void fifo_take_lock(void)
{
	spy_forksafe_lock(&fifo_lock);
}

void spy_guard_free(void *p)
{
	uintptr_t a = (uintptr_t)p;
	uintptr_t start = a & ~(PAGE - 1);
	size_t size = spy_guard_size(p);
	uintptr_t guard = ((a + ((size + 15) & ~(size_t)15)) + PAGE - 1) & ~(PAGE - 1);
	if (guard <= start)
		guard = start + PAGE;
	size_t len = guard - start;
	/* The pages stay mapped but inaccessible: a late access faults. A
	 * fresh mapping, not mprotect: pages a thread touched carry the
	 * kernel's anon_vma, and freed ranges of different ones never merged
	 * back into the reservation (4 threads: 2.4 mappings a live block,
	 * past vm.max_map_count long before live_cap, and the real allocator
	 * then failed too). A fresh one merges, and its memory goes back. */
	mmap((void *)start, len, PROT_NONE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	__atomic_sub_fetch(&live_guarded, 1, __ATOMIC_RELAXED);
	fifo_take_lock();
	while (fifo_head - fifo_tail >= FIFO_CAP || fifo_bytes + len > FREED_KEEP) {
		if (fifo_head == fifo_tail)
			break;
		unsigned long k = fifo_tail++ % FIFO_CAP;
		/* Its memory goes back; its addresses are never reused. */
		madvise((void *)fifo[k].start, fifo[k].len, MADV_DONTNEED);
		fifo_bytes -= fifo[k].len;
	}
	unsigned long k = fifo_head++ % FIFO_CAP;
	fifo[k].start = start;
	fifo[k].len = len;
	fifo_bytes += len;
	spy_forksafe_unlock(&fifo_lock);
}

void spy_guard_write_fault(uintptr_t fault, uintptr_t pc, unsigned what,
			   uintptr_t block, uint64_t size, uint32_t stack)
{
	uint8_t *w = spy_writer_begin(TRACE_GUARD_FAULT, 8 * TRACE_VARINT_MAX);
	if (!w)
		return;
	w = trace_put_varint(w, fault);
	w = trace_put_varint(w, pc);
	w = trace_put_varint(w, what);
	w = trace_put_varint(w, block);
	w = trace_put_varint(w, size);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

/* A SIGSEGV in the reservation: which block, and was it freed or overrun. */
static void observe(int sig, siginfo_t *info, void *context)
{
	uintptr_t fa = (uintptr_t)info->si_addr;
	if (sig != SIGSEGV || !spy_guard_owns(info->si_addr))
		return;
	size_t i = (fa - spy_guard_base) / PAGE;
	size_t end = i + (1u << 20) < PAGES ? i + (1u << 20) : PAGES;
	while (i < end && !pages[i].addr)
		i++;
	uintptr_t addr = i < end ? pages[i].addr : 0;
	uint64_t size = i < end ? pages[i].size : 0;
	/* Past the end: the guard page of a block (or its slack before it). */
	unsigned what = addr && fa >= addr + size ? 1 : 0;
	uint32_t stack = spy_stack_capture();
	spy_guard_write_fault(fa, spy_signals_fault_pc(context), what, addr,
			      size, stack);
}
