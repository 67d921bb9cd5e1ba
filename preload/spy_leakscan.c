/* spy_leakscan.c: placing an address on the process map, and the leak scan
 * at exit (spy_leakscan.h). May run inside a hook with the guard held: no
 * allocation but mmap, no stdio, no lock but the map's own.
 *
 * Other threads may run on while the scan reads: a block freed meanwhile
 * can only look reachable or lost by a stale word, and memory unmapped
 * meanwhile is skipped (its reads are armed for faults, spy_probe_arm).
 */
#include "spy_leakscan.h"

#include <fcntl.h>
#include <link.h>
#include <setjmp.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rec_heap.h"
#include "spy_allocapi.h"
#include "spy_core.h"
#include "spy_heapinfo.h"
#include "spy_heapmap.h"
#include "spy_options.h"
#include "spy_ownmem.h"
#include "spy_process.h"
#include "spy_qprotect.h"
#include "spy_quarantine.h"
#include "spy_signals.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"

/* ---- /proc/self/maps --------------------------------------------------- */

struct maps {
	char *text;
	size_t len, cap;
};

struct mapping {
	uintptr_t start, end;
	int r, w, x, priv;
	const char *path; /* not terminated: up to the end of the line */
	size_t path_len;
};

static int maps_read(struct maps *m)
{
	for (size_t cap = 1 << 20; cap <= (64u << 20); cap *= 4) {
		char *buf = spy_sys_mmap(cap);
		if (!buf)
			return -1;
		ssize_t n = spy_read_file("/proc/self/maps", buf, cap);
		if (n >= 0 && (size_t)n < cap) {
			*m = (struct maps){ buf, (size_t)n, cap };
			return 0;
		}
		spy_sys_munmap(buf, cap);
		if (n < 0)
			return -1;
	}
	return -1;
}

static void maps_release(struct maps *m)
{
	if (m->text)
		spy_sys_munmap(m->text, m->cap);
	m->text = NULL;
}

static uintptr_t hex(const char **p, const char *end)
{
	uintptr_t v = 0;
	for (; *p < end; (*p)++) {
		char c = **p;
		int d = c >= '0' && c <= '9' ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			break;
		v = v * 16 + (uintptr_t)d;
	}
	return v;
}

/* Parses the line at *at into *mp and moves *at past it; 0 at the end. */
static int maps_next(const struct maps *m, size_t *at, struct mapping *mp)
{
	const char *p = m->text + *at, *end = m->text + m->len;
	if (p >= end)
		return 0;
	const char *eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol)
		eol = end;
	*at = (size_t)(eol - m->text) + 1;
	mp->start = hex(&p, eol);
	if (p < eol)
		p++;
	mp->end = hex(&p, eol);
	if (p + 5 > eol)
		return maps_next(m, at, mp);
	p++;
	mp->r = p[0] == 'r';
	mp->w = p[1] == 'w';
	mp->x = p[2] == 'x';
	mp->priv = p[3] == 'p';
	/* perms, offset, dev, inode, then the path after spaces */
	for (int field = 0; field < 4 && p < eol; field++) {
		while (p < eol && *p != ' ')
			p++;
		while (p < eol && *p == ' ')
			p++;
	}
	mp->path = p;
	mp->path_len = (size_t)(eol - p);
	return 1;
}

static int is_libc(const struct mapping *mp)
{
	size_t n = mp->path_len;
	while (n && mp->path[n - 1] != '/')
		n--;
	return mp->path_len - n >= 7 && !memcmp(mp->path + n, "libc.so", 7);
}

static int path_is(const struct mapping *mp, const char *s)
{
	size_t n = spy_strlen(s);
	return mp->path_len == n && !memcmp(mp->path, s, n);
}

static int path_starts(const struct mapping *mp, const char *s)
{
	size_t n = spy_strlen(s);
	return mp->path_len >= n && !memcmp(mp->path, s, n);
}

/* Shared memory of no file on disk (mmap MAP_SHARED|MAP_ANONYMOUS, System
 * V segments, memfd): a pointer a program keeps there keeps its block, as
 * memcheck has it. Shared mappings of files and devices stay out (a
 * device's memory may be slow or unsafe to read). */
static int shared_anonymous(const struct mapping *mp)
{
	return path_starts(mp, "/dev/zero ") || path_starts(mp, "/SYSV") ||
	       path_starts(mp, "/memfd:") || path_starts(mp, "[anon_shmem");
}

/* Anonymous memory where frees of unknown pointers turned out to be
 * heap-like (an allocator's arena): later ones there pass without reading
 * /proc/self/maps again, which costs tens of microseconds. Threaded
 * programs free many blocks libspy never saw allocated (glibc's own, made
 * inside pthread_create), so this is a hot path for them. A stale range
 * can only let a bad free pass as the program would have had it pass. */
#define HEAPLIKE_RANGES 32
static struct {
	uintptr_t start, end;
} heaplike[HEAPLIKE_RANGES];
static unsigned heaplike_next;

static int in_heaplike(uintptr_t addr)
{
	for (unsigned i = 0; i < HEAPLIKE_RANGES; i++) {
		uintptr_t a = __atomic_load_n(&heaplike[i].start, __ATOMIC_ACQUIRE);
		uintptr_t b = __atomic_load_n(&heaplike[i].end, __ATOMIC_ACQUIRE);
		if (addr >= a && addr < b)
			return 1;
	}
	return 0;
}

static void remember_heaplike(uintptr_t start, uintptr_t end)
{
	unsigned i = __atomic_fetch_add(&heaplike_next, 1, __ATOMIC_RELAXED) %
		     HEAPLIKE_RANGES;
	/* Emptied first, so a reader never pairs one range's start with
	 * another's end. */
	__atomic_store_n(&heaplike[i].end, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&heaplike[i].start, start, __ATOMIC_RELEASE);
	__atomic_store_n(&heaplike[i].end, end, __ATOMIC_RELEASE);
}

int spy_leakscan_place(uintptr_t addr, uintptr_t *base)
{
	size_t size;
	if (spy_heapmap_find_containing(addr, base, &size))
		return TRACE_BAD_INTERIOR;
	/* (a page's first byte is looked up: it may start a mapping) */
	if (!(addr & 15) && (addr & 4095) && in_heaplike(addr))
		return -1;
	struct maps m;
	if (maps_read(&m) < 0)
		return -1;
	uintptr_t here = (uintptr_t)&size;
	struct mapping mp;
	size_t at = 0;
	int what = TRACE_BAD_WILD;
	while (maps_next(&m, &at, &mp)) {
		if (addr < mp.start || addr >= mp.end)
			continue;
		if (path_is(&mp, "[stack]") ||
		    (here >= mp.start && here < mp.end))
			what = TRACE_BAD_STACK;
		else if (mp.path_len && mp.path[0] == '/')
			what = TRACE_BAD_GLOBAL;
		else if (addr & 15)
			what = TRACE_BAD_WILD;
		else if (spy_heapmap_glibc_chunks && addr - mp.start < 16)
			/* glibc's header would lie before the mapping: memory
			 * of mmap, which glibc's free would fault on */
			what = TRACE_BAD_WILD;
		else {
			what = -1; /* heap-like memory: maybe a block unseen */
			remember_heaplike(mp.start, mp.end);
		}
		break;
	}
	maps_release(&m);
	return what;
}

/* ---- the leak scan ------------------------------------------------------ */

static uintptr_t main_frame;
/* The frame of spy_leakscan_at_exit: the calling stack is scanned from
 * there up. Below it lie only the scan's own frames, holding stale copies
 * of the addresses it handled (a forked child's list of its blocks). */
static uintptr_t scan_frame;

void spy_leakscan_main_returned(void *frame)
{
	main_frame = (uintptr_t)frame;
}

struct block {
	uintptr_t addr;
	size_t size;
};

enum { UNMARKED = 0, REACHABLE = 1, INDIRECT = 2, DEFINITE = 3 };

/* glibc gives each thread arena heaps of 64 MiB, aligned to their size. */
#define ARENA_HEAP_BYTES ((uintptr_t)64 << 20)

struct scan {
	struct block *b;
	uint8_t *mark;
	uint32_t *work;
	size_t n, cap, nwork;
	uintptr_t lo, hi;        /* lowest block start, highest block end */
	uint64_t root_bytes, scanned_bytes;
	int pagemap;             /* /proc/self/pagemap, or -1 */
	/* Scanning the C library's own data (or another arena's record at
	 * the start of its heap): the allocator keeps there the
	 * address of the chunk after the last block (the top of the heap),
	 * which lies in that block's last 8 usable bytes (the next chunk's
	 * header overlaps them). Such a value reaches no block: without this
	 * rule a program's last allocation never looked lost. A block's own
	 * start is not such a value (an 8-byte block of another allocator,
	 * such as setlocale's copy of a locale's name under jemalloc, is all
	 * "last 8 bytes"). */
	int allocator_data;
	struct span *spans;      /* sorted by base; see index_build */
	size_t nspans, index_bytes;
	long leader;             /* the lost block whose pointers are followed */
	size_t inherited;        /* a forked child's parent's blocks, not classed */
	/* blocks of the allocator's own API (spy_allocapi.h) that cannot all
	 * be told: its memory is read as roots, all of it */
	int allocapi_unknown;
};

/* A page never touched holds zeros (or, in a file's private mapping, the
 * file's own bytes): no pointer made at run time can be in it. The scan
 * skips such pages, which also spares the kernel mapping a zero page for
 * every one of them (a thread stack glibc keeps for reuse is 8 MiB of
 * them). /proc/self/pagemap tells: bit 63 present, bit 62 swapped out; a
 * page with neither was never touched. Read 512 entries at a time. */
#define PM_BATCH 512
static uint64_t pm_entry[PM_BATCH];
static uintptr_t pm_first = 1, pm_count; /* pages [pm_first, +pm_count) */

static int page_touched(const struct scan *s, uintptr_t page)
{
	if (s->pagemap < 0)
		return 1;
	if (page < pm_first || page >= pm_first + pm_count) {
		long got = syscall(SYS_pread64, s->pagemap, pm_entry,
				   sizeof(pm_entry), (long)(page * sizeof(uint64_t)));
		if (got < (long)sizeof(uint64_t)) {
			pm_count = 0;
			return 1;
		}
		pm_first = page;
		pm_count = (size_t)got / sizeof(uint64_t);
	}
	return (pm_entry[page - pm_first] >> 62) != 0;
}

static void collect(uintptr_t addr, size_t size, int freed, void *arg)
{
	struct scan *s = arg;
	struct spy_heap_damage d;
	/* no size: the allocator's header of the block may be written over */
	if (!size && spy_heapmap_damaged(addr, &d))
		rec_heap_damage(&d, 0);
	/* no size (a header written over): its extent is not known, so
	 * the scan can neither read it nor tell a pointer into it */
	if (freed || !size || s->n >= s->cap)
		return;
	s->b[s->n++] = (struct block){ addr, size };
}

static void sift(struct block *b, size_t i, size_t n)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && b[c + 1].addr > b[c].addr)
			c++;
		if (b[i].addr >= b[c].addr)
			return;
		struct block t = b[i];
		b[i] = b[c];
		b[c] = t;
		i = c;
	}
}

static void sort_blocks(struct block *b, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(b, i, n);
	for (size_t k = n; k-- > 1;) {
		struct block t = b[0];
		b[0] = b[k];
		b[k] = t;
		sift(b, 0, k);
	}
}

/* Where to look for the block that holds an address. Most words the scan
 * reads that fall among the blocks point at none (old free-list links left
 * in reused memory), and bisecting the whole sorted array for each missed
 * the cache at every one of its last steps. So each run of blocks (a span:
 * blocks less than SPAN_GAP apart) gets a table with, for every page it
 * covers, the first block that ends past the page's start; a lookup then
 * bisects only the blocks of one page, which lie side by side. Spans of
 * fewer than SPAN_MIN blocks, and any past the table budget (a few words
 * per block), are bisected whole as before. */
#define SPAN_GAP (1u << 20)
#define SPAN_MIN 32
#define MAX_SPANS 256

struct span {
	uintptr_t base, end;     /* base page-aligned; end of the last block */
	size_t lo, hi;           /* its blocks: [lo, hi) */
	uint32_t *first;         /* pages + 1 entries: block indexes */
};

static uintptr_t block_end(const struct scan *s, size_t i)
{
	return s->b[i].addr + s->b[i].size;
}

static void index_build(struct scan *s)
{
	struct span found[MAX_SPANS];
	size_t n = 0, entries = 0, budget = 4 * s->n + 65536;
	for (size_t i = 0, j; i < s->n && n < MAX_SPANS; i = j) {
		uintptr_t end = block_end(s, i);
		for (j = i + 1; j < s->n && s->b[j].addr - end < SPAN_GAP; j++)
			end = block_end(s, j);  /* live blocks do not overlap */
		uintptr_t base = s->b[i].addr & ~(uintptr_t)4095;
		size_t pages = (end - base + 4095) >> 12;
		if (j - i < SPAN_MIN || entries + pages + 1 > budget ||
		    j > UINT32_MAX)
			continue;
		found[n++] = (struct span){ base, end, i, j, NULL };
		entries += pages + 1;
	}
	if (!n)
		return;
	size_t bytes = n * sizeof(struct span) + entries * sizeof(uint32_t);
	uint8_t *mem = spy_sys_mmap(bytes);
	if (!mem)
		return;
	s->spans = (struct span *)(void *)mem;
	uint32_t *t = (uint32_t *)(void *)(mem + n * sizeof(struct span));
	for (size_t k = 0; k < n; k++) {
		struct span *sp = &s->spans[k];
		*sp = found[k];
		sp->first = t;
		size_t pages = (sp->end - sp->base + 4095) >> 12, i = sp->lo;
		for (size_t p = 0; p < pages; p++) {
			uintptr_t page = sp->base + (p << 12);
			while (i < sp->hi && block_end(s, i) <= page)
				i++;
			t[p] = (uint32_t)i;
		}
		t[pages] = (uint32_t)sp->hi;
		t += pages + 1;
	}
	s->nspans = n;
	s->index_bytes = bytes;
}

static void index_release(struct scan *s)
{
	if (s->spans)
		spy_sys_munmap(s->spans, s->index_bytes);
	s->spans = NULL;
	s->nspans = 0;
}

/* Index of the block holding address v, or -1. */
static long lookup(const struct scan *s, uintptr_t v)
{
	size_t lo = 0, hi = s->n, sl = 0, sh = s->nspans;
	while (sl < sh) {        /* the last span that starts at or before v */
		size_t mid = sl + (sh - sl) / 2;
		if (s->spans[mid].base <= v)
			sl = mid + 1;
		else
			sh = mid;
	}
	if (sl && v < s->spans[sl - 1].end) {
		const struct span *sp = &s->spans[sl - 1];
		size_t p = (v - sp->base) >> 12;
		lo = sp->first[p];
		/* the block over the next page's start may begin on this one;
		 * those after it begin past v */
		hi = sp->first[p + 1] < sp->hi ? sp->first[p + 1] + 1 : sp->hi;
	}
	size_t first = lo;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->b[mid].addr <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == first)
		return -1;
	const struct block *b = &s->b[lo - 1];
	if (v < b->addr + (b->size ? b->size : 1))
		return (long)(lo - 1);
	return -1;
}

/* First block starting at or after v. */
static size_t first_at(const struct scan *s, uintptr_t v)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->b[mid].addr < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Marks the block v points into with how, unless it is marked already,
 * and queues it for its own words. */
static inline void mark_word(struct scan *s, uintptr_t v, uint8_t how,
			     long self)
{
	long i = lookup(s, v);
	if (i < 0 || i == self || s->mark[i] == REACHABLE ||
	    s->mark[i] == INDIRECT)
		return;
	if (s->allocator_data && s->b[i].size >= 8 && v > s->b[i].addr &&
	    v >= s->b[i].addr + s->b[i].size - 8)
		return;
	if (s->mark[i] == DEFINITE) {
		/* taken for a leak of its own because it came first in
		 * address order (a list built by pushing at its head points
		 * from each new node to an older, lower one): lost through
		 * this one; what it points to is marked already */
		if (how == INDIRECT && i != s->leader)
			s->mark[i] = INDIRECT;
		return;
	}
	s->mark[i] = how;
	s->work[s->nwork++] = (uint32_t)i;
}

/* Marks every block a word of [start, end) points into with how, reading
 * a word every step bytes: 8, or 1 in machine code a program generated (a
 * JIT compiler's, in writable and executable memory of no file), which
 * holds the addresses of its objects as instructions' immediate operands
 * at any byte offset. A root range (self < 0) skips the pages never
 * touched: roots are scanned in address order, so the pagemap is read
 * 512 pages at a time; blocks come in any order and are read whole. */
static void scan_words(struct scan *s, uintptr_t start, uintptr_t end,
		       uint8_t how, long self, uintptr_t step)
{
	if (step == 8)
		start = (start + 7) & ~(uintptr_t)7;
	if (end < start + 8)
		return;
	uintptr_t next_page = start;
	for (uintptr_t a = start; a + 8 <= end; a += step) {
		if (a >= next_page) {
			uintptr_t page = a >> 12;
			next_page = (page + 1) << 12;
			if (self < 0 && !page_touched(s, page)) {
				a = next_page - step;
				continue;
			}
			s->scanned_bytes += (next_page < end ? next_page : end) - a;
		}
		uintptr_t v;
		memcpy(&v, (const void *)a, sizeof(v));
		if (v >= s->lo && v < s->hi)
			mark_word(s, v, how, self);
	}
}

/* scan_words, ended early if the memory goes away under it. */
static void scan_range(struct scan *s, uintptr_t start, uintptr_t end,
		       uint8_t how, long self, uintptr_t step)
{
	sigjmp_buf env;
	if (sigsetjmp(env, 0) == 0) {
		spy_probe_arm(&env);
		scan_words(s, start, end, how, self, step);
	}
	spy_probe_disarm();
}

static void drain(struct scan *s, uint8_t how)
{
	while (s->nwork) {
		uint32_t i = s->work[--s->nwork];
		scan_range(s, s->b[i].addr, s->b[i].addr + s->b[i].size, how,
			   (long)i, 8);
	}
}

/* Memory that is libspy's own and holds block addresses or nothing of the
 * program's: never a root. Kept as [start, end) pairs, sorted. Exact
 * ranges, not whole mappings: the kernel merges neighbouring anonymous
 * mappings, so one line of /proc/self/maps may hold ours and the
 * program's side by side. */
/* libspy's own mappings (as many as the registry holds) and a few more. */
#define MAX_EXCL (4096 + 96)
struct excl {
	uintptr_t r[MAX_EXCL][2];
	size_t n;
};

static void excl_add(struct excl *x, uintptr_t a, uintptr_t b)
{
	if (x->n < MAX_EXCL && a < b) {
		x->r[x->n][0] = a;
		x->r[x->n][1] = b;
		x->n++;
	}
}

static int own_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct excl *x = arg;
	uintptr_t self = (uintptr_t)&spy_leakscan_at_exit;
	(void)size;
	int mine = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t a = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && self >= a && self < a + ph->p_memsz)
			mine = 1;
	}
	if (!mine)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t a = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD)
			excl_add(x, a & ~(uintptr_t)4095,
				 (a + ph->p_memsz + 4095) & ~(uintptr_t)4095);
	}
	return 1;
}

static void excl_sort(struct excl *x)
{
	for (size_t i = 1; i < x->n; i++)
		for (size_t j = i; j > 0 && x->r[j - 1][0] > x->r[j][0]; j--) {
			uintptr_t t0 = x->r[j][0], t1 = x->r[j][1];
			x->r[j][0] = x->r[j - 1][0];
			x->r[j][1] = x->r[j - 1][1];
			x->r[j - 1][0] = t0;
			x->r[j - 1][1] = t1;
		}
}

/* Scans [from, to) as roots, minus the live blocks in it (they are scanned
 * only once something reaches them). */
/* [from, to) read as a root. */
static void scan_root(struct scan *s, uintptr_t from, uintptr_t to)
{
	s->root_bytes += to - from;
	scan_range(s, from, to, REACHABLE, -1, 8);
}

static void scan_piece(struct scan *s, uintptr_t from, uintptr_t to)
{
	for (size_t i = first_at(s, from); i < s->n && s->b[i].addr < to; i++) {
		uintptr_t bstart = s->b[i].addr - 16;
		uintptr_t bend = s->b[i].addr + s->b[i].size;
		if (s->b[i].size >= 128 * 1024) /* mapped on its own */
			bend = (bend + 4095) & ~(uintptr_t)4095;
		if (bstart > from)
			scan_root(s, from, bstart);
		if (bend > from)
			from = bend;
	}
	if (to > from)
		scan_root(s, from, to);
}

/* Roots: every private writable mapping and every shared anonymous one,
 * minus libspy's own memory and the live blocks in it; of the caller's
 * stack, only the live part (above main's frame once main has returned).
 * What lies between blocks in the allocator's heaps is scanned too: blocks
 * libspy did not see handed out (made before it started) may point to
 * recorded ones; stale pointers in free memory can only make a lost block
 * look reachable, never the other way round. */
static void scan_roots(struct scan *s, const struct maps *m)
{
	uintptr_t here = scan_frame ? scan_frame : (uintptr_t)&s;
	static struct excl x; /* big: once, at exit */
	x.n = 0;
	dl_iterate_phdr(own_segments, &x);
	x.n += spy_heapmap_tables(&x.r[x.n], MAX_EXCL - 8 - x.n);
	/* libspy's own mappings hold addresses of blocks (the trace writer
	 * keeps the last one it wrote, to encode the next as a difference):
	 * scanned as roots, they kept a program's last lost block reachable */
	x.n += spy_ownmem_ranges(&x.r[x.n], MAX_EXCL - 8 - x.n);
	/* a non-glibc allocator's memory (jemalloc's extents and metadata):
	 * stale pointers in its caches and the slab starts its extent
	 * records keep kept every lost block reachable */
	if (!s->allocapi_unknown)
		x.n += spy_allocmem_ranges(&x.r[x.n], MAX_EXCL - 8 - x.n);
	/* threads that ended: their frames are gone, stale pointers stay */
	x.n += spy_deadstack_ranges(&x.r[x.n], MAX_EXCL - 8 - x.n);
	excl_add(&x, (uintptr_t)s->b, (uintptr_t)s->b + s->cap * sizeof(*s->b));
	excl_add(&x, (uintptr_t)s->mark, (uintptr_t)s->mark + s->cap);
	excl_add(&x, (uintptr_t)s->work, (uintptr_t)s->work + s->cap * sizeof(*s->work));
	excl_add(&x, (uintptr_t)m->text, (uintptr_t)m->text + m->cap);
	excl_sort(&x);
	size_t at = 0;
	struct mapping mp;
	uintptr_t libc_end = 0;
	while (maps_next(m, &at, &mp)) {
		if (!mp.r || !mp.w || (!mp.priv && !shared_anonymous(&mp)) ||
		    path_is(&mp, "[vvar]") || path_is(&mp, "[vsyscall]"))
			continue;
		/* libc's data, and its bss right after it; and the heap of
		 * another thread's arena, aligned to its 64 MiB, which starts
		 * with that arena's own record of its top */
		int libc = is_libc(&mp);
		s->allocator_data = libc || (!mp.path_len && mp.start == libc_end) ||
				    (!mp.path_len && !(mp.start & (ARENA_HEAP_BYTES - 1)));
		if (libc)
			libc_end = mp.end;
		uintptr_t from = mp.start;
		if (mp.x && !mp.path_len) {
			s->allocator_data = 0;
			s->root_bytes += mp.end - mp.start;
			scan_range(s, mp.start, mp.end, REACHABLE, -1, 1);
			drain(s, REACHABLE);
			continue;
		}
		if (here >= mp.start && here < mp.end) {
			from = here;
			if (main_frame > here && main_frame < mp.end)
				from = main_frame;
		}
		for (size_t k = 0; k < x.n && from < mp.end; k++) {
			if (x.r[k][1] <= from || x.r[k][0] >= mp.end)
				continue;
			if (x.r[k][0] > from)
				scan_piece(s, from, x.r[k][0]);
			from = x.r[k][1];
		}
		if (from < mp.end)
			scan_piece(s, from, mp.end);
		s->allocator_data = 0; /* the blocks reached hold the program's data */
		drain(s, REACHABLE);
	}
}

/* The kernel's pointer to the scanning thread's alternate signal stack:
 * a program that set one up in main from a malloc'd block may keep it
 * nowhere else, and sigaltstack hands it back whenever asked. */
static void altstack_root(struct scan *s)
{
	stack_t alt;
	if (spy_sys_sigaltstack(NULL, &alt) != 0 || (alt.ss_flags & SS_DISABLE))
		return;
	uintptr_t word = (uintptr_t)alt.ss_sp;
	scan_root(s, (uintptr_t)&word, (uintptr_t)(&word + 1));
	drain(s, REACHABLE);
}

/* A forked child's scan: the blocks it inherited from its parent are
 * roots (the parent reports them). Under glibc they lie in its heaps,
 * read between the child's own blocks; another allocator's memory is no
 * root (scan_roots), so they are read here, one by one, those that lie in
 * it. Without them, a block the child kept only in one of its parent's
 * (bash's forked shells, under jemalloc or mimalloc) read as lost. */
struct inherited_roots {
	struct scan *s;
	const uintptr_t (*r)[2];
	size_t n;
};

static void inherited_root(uintptr_t addr, size_t size, int freed, void *arg)
{
	struct inherited_roots *ir = arg;
	struct scan *s = ir->s;
	if (freed || !size)
		return;
	size_t lo = 0, hi = ir->n;   /* the allocator range holding addr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ir->r[mid][0] <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || addr >= ir->r[lo - 1][1])
		return;              /* read with the roots already */
	size_t i = first_at(s, addr);
	if (i < s->n && s->b[i].addr == addr)
		return;              /* the child's own */
	scan_root(s, addr, addr + size);
	drain(s, REACHABLE);
}

static void scan_inherited(struct scan *s)
{
	static uintptr_t r[MAX_EXCL][2]; /* big: once, at exit */
	struct inherited_roots ir = { s, (const uintptr_t (*)[2])r, 0 };
	ir.n = spy_allocmem_ranges(r, MAX_EXCL);
	if (ir.n)
		spy_heapmap_each(inherited_root, &ir);
}

/* Blocks the program made through the allocator's own API (jemalloc's
 * mallocx: bind9's libisc makes all of its so) hold its data, pointers
 * to recorded blocks among them, in memory that is otherwise no root. */
static void allocapi_root(uintptr_t addr, size_t size, void *arg)
{
	struct scan *s = arg;
	scan_root(s, addr, addr + size);
	drain(s, REACHABLE);
}

static void write_leaks(const struct scan *s, uint64_t ns)
{
	for (size_t i = 0; i < s->n; i++) {
		uint8_t *w = spy_writer_begin(TRACE_LEAK, 4 * TRACE_VARINT_MAX);
		if (!w)
			return;
		unsigned cls = s->mark[i] == REACHABLE ? TRACE_LEAK_REACHABLE
			: s->mark[i] == INDIRECT ? TRACE_LEAK_INDIRECT
			: TRACE_LEAK_DEFINITE;
		w = trace_put_varint(w, s->b[i].addr);
		w = trace_put_varint(w, s->b[i].size);
		w = trace_put_varint(w, cls);
		spy_writer_end(w);
	}
	uint8_t *w = spy_writer_begin(TRACE_LEAK_SCAN, 6 * TRACE_VARINT_MAX);
	if (!w)
		return;
	w = trace_put_varint(w, s->n);
	w = trace_put_varint(w, s->root_bytes);
	w = trace_put_varint(w, s->scanned_bytes);
	w = trace_put_varint(w, ns);
	w = trace_put_varint(w, s->inherited);
	spy_writer_end(w);
}

static void canary_changed(uintptr_t addr, size_t usable)
{
	rec_heap_overrun((const void *)addr, usable, 0);
}

/* ---- a forked child's own blocks ----------------------------------------- */

/* A forked child holds its parent's heap besides its own. The parent's
 * blocks are the parent's to account for: its trace has them and its exit
 * checks them. So a child checks and classes only the blocks it handed
 * out itself, found by reading its own trace back; its parent's blocks are
 * then memory like any other, scanned as roots. (Scanning and recording
 * every block of a big parent cost each child's exit: a Redis snapshot
 * child with 300,000 keys wrote 1.2 M LEAK records and exited 1.2 s late.) */
struct own {
	struct block *b;
	size_t n, cap;
	int failed;
};

static void own_unique(struct own *o)
{
	sort_blocks(o->b, o->n);
	size_t k = 0;
	for (size_t i = 0; i < o->n; i++)
		if (!k || o->b[k - 1].addr != o->b[i].addr)
			o->b[k++] = o->b[i];
	o->n = k;
}

static void own_add(uintptr_t addr, void *arg)
{
	struct own *o = arg;
	if (o->failed)
		return;
	if (o->n == o->cap && o->cap)
		own_unique(o);  /* the same addresses come back again and again */
	if (o->n >= o->cap / 2) {
		size_t cap = o->cap ? 2 * o->cap : 4096;
		struct block *b = spy_sys_mmap(cap * sizeof(*b));
		if (!b) {
			o->failed = 1;
			return;
		}
		if (o->b) {
			memcpy(b, o->b, o->n * sizeof(*b));
			spy_sys_munmap(o->b, o->cap * sizeof(*b));
		}
		o->b = b;
		o->cap = cap;
	}
	o->b[o->n++] = (struct block){ addr, 0 };
}

static void own_release(struct own *o)
{
	if (o->b)
		spy_sys_munmap(o->b, o->cap * sizeof(*o->b));
	o->b = NULL;
}

/* The child's own blocks still live, sorted, with their sizes; their
 * canaries checked. 0, or -1 when its trace cannot tell them. */
static int own_collect(struct own *o)
{
	if (spy_writer_each_handed_out(own_add, o) < 0 || o->failed) {
		own_release(o);
		return -1;
	}
	if (o->b)
		own_unique(o);
	size_t k = 0;
	for (size_t i = 0; i < o->n; i++) {
		uintptr_t a = o->b[i].addr;
		int canary;
		unsigned family;
		size_t size = spy_heapmap_live_size(a, &canary);
		struct spy_heap_damage d;
		/* no size for a block still live: its header written over.
		 * One freed since is glibc's again, its chunk and the next
		 * one's header changed by glibc's own lists. */
		if (!size && spy_heapmap_live_family(a, &family) &&
		    spy_heapmap_damaged(a, &d))
			rec_heap_damage(&d, 0);
		if (!size)
			continue;
		if (canary && spy_opt.canary && !spy_canary_intact((const void *)a, size))
			canary_changed(a, size);
		o->b[k++] = (struct block){ a, size };
	}
	o->n = k;
	return 0;
}

/* own: a forked child's own blocks (taken over), or NULL for every live
 * block in the map. */
static void leak_scan(struct own *own)
{
	uint64_t t0 = spy_now_ns();
	struct scan s = { .pagemap = -1 };
	/* Nothing held: nothing can leak, and no root needs reading (a
	 * short-lived process, a shell between two commands, a forked
	 * child that allocated nothing). */
	size_t live = own ? own->n : spy_heapmap_live_count();
	if (own) {
		s.inherited = spy_heapmap_live_count() - own->n;
		s.b = own->b;
		s.n = own->n;
		s.cap = own->cap;
		own->b = NULL;
	}
	if (!live) {
		write_leaks(&s, spy_now_ns() - t0);
		goto out;
	}
	s.pagemap = spy_sys_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
	pm_count = 0;
	if (!own) {
		s.cap = live + 1;
		s.b = spy_sys_mmap(s.cap * sizeof(*s.b));
	}
	s.mark = spy_sys_mmap(s.cap);
	s.work = spy_sys_mmap(s.cap * sizeof(*s.work));
	struct maps m = { 0 };
	if (!s.b || !s.mark || !s.work || maps_read(&m) < 0)
		goto out;
	if (!own) {
		spy_heapmap_each(collect, &s);
		sort_blocks(s.b, s.n);
	}
	if (s.n) {
		s.lo = s.b[0].addr;
		for (size_t i = 0; i < s.n; i++)
			if (s.b[i].addr + s.b[i].size > s.hi)
				s.hi = s.b[i].addr + s.b[i].size;
	}
	index_build(&s);
	s.allocapi_unknown = !spy_allocapi_complete();
	scan_roots(&s, &m);
	altstack_root(&s);
	if (!s.allocapi_unknown)
		spy_allocapi_each(allocapi_root, &s);
	if (own)
		scan_inherited(&s);
	/* What is left is lost; what a lost block points to is lost with it
	 * (indirectly), and is not counted as a leak of its own. */
	for (size_t i = 0; i < s.n; i++) {
		if (s.mark[i] != UNMARKED)
			continue;
		s.mark[i] = DEFINITE;
		s.leader = (long)i;
		scan_range(&s, s.b[i].addr, s.b[i].addr + s.b[i].size,
			   INDIRECT, (long)i, 8);
		drain(&s, INDIRECT);
	}
	write_leaks(&s, spy_now_ns() - t0);
	maps_release(&m);
out:
	index_release(&s);
	if (s.pagemap >= 0)
		spy_sys_close(s.pagemap);
	if (s.b)
		spy_sys_munmap(s.b, s.cap * sizeof(*s.b));
	if (s.mark)
		spy_sys_munmap(s.mark, s.cap);
	if (s.work)
		spy_sys_munmap(s.work, s.cap * sizeof(*s.work));
}

void spy_leakscan_at_exit(void)
{
	spy_heapinfo_write(0);
	spy_qprotect_end();
	spy_quarantine_check_all();
	scan_frame = (uintptr_t)__builtin_frame_address(0);
	struct own own = { 0 };
	int child = spy_process_forked_child() &&
		    (spy_opt.canary || spy_opt.leaks) && own_collect(&own) == 0;
	/* blocks written past their end that were never freed (a child's
	 * own: own_collect checked them) */
	if (spy_opt.canary && !child)
		spy_heapmap_check_canaries(canary_changed);
	if (spy_opt.leaks)
		leak_scan(child ? &own : NULL);
	own_release(&own);
}
