/* spy_quarantine.c: the quarantine of freed blocks (spy_quarantine.h).
 * Runs inside the free hook with the guard held: no allocation but mmap,
 * no stdio, no lock. A quarantine ring belongs to one thread at a time; a
 * thread that ends drains its ring and gives it back for the next thread.
 *
 * Order when a block leaves: move the ring's tail past it, check its
 * bytes, forget it in the map, then really free it (unless its header
 * or the next block's was written over meanwhile). The exit check reads
 * the rings of every thread and trusts only what it measured of entries
 * still behind the tail afterwards.
 */
#include "spy_quarantine.h"

#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include "rec_heap.h"
#include "spy_core.h"
#include "spy_guard.h"
#include "spy_heapmap.h"
#include "spy_options.h"
#include "spy_qprotect.h"
#include "spy_real.h"
#include "spy_signals.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"

#define RING_CAP 65536u  /* entries per thread */
#define MAX_RINGS 4096
#define DETAIL_BYTES 32

/* What of a held block is filled: its first head and last tail bytes, or
 * all of it (head == WHOLE). */
#define WHOLE UINT32_MAX

struct entry {
	uintptr_t addr;
	size_t size;
	int protect;             /* spy_qprotect handle, 0 if none */
	uint32_t head, tail;
};

struct ring {
	int claimed;
	uint64_t head, tail;     /* entries [tail, head) are held */
	size_t bytes;            /* sum of their sizes */
	struct entry e[RING_CAP];
};

static struct ring *rings[MAX_RINGS];
static int n_rings;
static __thread struct ring *mine;
static __thread int no_ring; /* no ring could be had: do without */

/* The parts of a held block that are filled and checked: every byte the
 * protection of its inner pages leaves out, all of a block without
 * protected pages, or with a quarantine_fill cap, of an unprotected block
 * bigger than the cap only that many bytes at its two ends. */
static void choose_ends(struct entry *e)
{
	size_t cap = spy_opt.quarantine_fill;
	size_t head = 0, tail = 0;
	/* (a block smaller than a page has no whole page inside) */
	e->protect = e->size < 4096 ? 0
		: spy_qprotect_hold(e->addr, e->size, &head, &tail);
	if (e->protect) {
		e->head = (uint32_t)head;
		e->tail = (uint32_t)tail;
	} else if (cap && e->size > cap) {
		e->head = (uint32_t)(cap - cap / 2);
		e->tail = (uint32_t)(cap / 2);
	} else {
		e->head = WHOLE;
		e->tail = 0;
	}
}

static void fill(const struct entry *e)
{
	uint8_t *p = (uint8_t *)e->addr;
	if (e->head == WHOLE) {
		memset(p, SPY_QUARANTINE_FILL, e->size);
		return;
	}
	memset(p, SPY_QUARANTINE_FILL, e->head);
	memset(p + e->size - e->tail, SPY_QUARANTINE_FILL, e->tail);
}

static size_t limit_bytes(void)
{
	unsigned long mb = spy_opt.quarantine_mb;
	if (mb > 65536)
		mb = 65536;
	return (size_t)mb << 20;
}

static struct ring *claim(void)
{
	int n = __atomic_load_n(&n_rings, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++) {
		int zero = 0;
		struct ring *r = rings[i];
		if (r && __atomic_compare_exchange_n(&r->claimed, &zero, 1, 0,
						     __ATOMIC_ACQ_REL,
						     __ATOMIC_RELAXED))
			return r;
	}
	struct ring *r = spy_sys_mmap(sizeof(struct ring));
	if (!r)
		return NULL;
	r->claimed = 1;
	int slot = __atomic_fetch_add(&n_rings, 1, __ATOMIC_ACQ_REL);
	if (slot >= MAX_RINGS) {
		__atomic_fetch_sub(&n_rings, 1, __ATOMIC_ACQ_REL);
		spy_sys_munmap(r, sizeof(struct ring));
		return NULL;
	}
	__atomic_store_n(&rings[slot], r, __ATOMIC_RELEASE);
	return r;
}

/* How many bytes from p on are the fill (a part that differs, or the
 * last few bytes, are left for a closer look). The check reads every held
 * byte once more when the block leaves: 128 bytes a step in vector
 * registers, then word by word. */
typedef uint64_t spy_v4 __attribute__((vector_size(32), aligned(8)));

static size_t clean_prefix_plain(const uint8_t *p, size_t size)
{
	const uint64_t f = 0x0101010101010101ull * SPY_QUARANTINE_FILL;
	const spy_v4 fv = { f, f, f, f };
	size_t i = 0;
	for (; i + 128 <= size; i += 128) {
		const spy_v4 *v = (const spy_v4 *)(p + i);
		spy_v4 d = (v[0] ^ fv) | (v[1] ^ fv) | (v[2] ^ fv) | (v[3] ^ fv);
		if (d[0] | d[1] | d[2] | d[3])
			break;
	}
	for (; i + 8 <= size; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (w != f)
			break;
	}
	return i;
}

#if defined(__x86_64__)
#include <immintrin.h>
#include <sys/platform/x86.h>

/* The same, 256 bytes a step in vector registers: eight differences
 * or'ed together and one test of the result; the last step overlaps the
 * one before it (ending at the block's end), so that no bytes are left
 * to look at one by one. A block under 256 bytes goes 32 bytes a step,
 * the last again ending at its end. Chosen at the first check from what
 * glibc found at start (no cpuid of our own: in a virtual machine each
 * one traps, and libgcc's probe at load cost every traced process tens
 * of microseconds). */
__attribute__((target("avx2")))
static inline int clean_256(const uint8_t *p, __m256i f)
{
#define DIFF(k) _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p + (k)), f)
	__m256i d = _mm256_or_si256(
		_mm256_or_si256(_mm256_or_si256(DIFF(0), DIFF(1)),
				_mm256_or_si256(DIFF(2), DIFF(3))),
		_mm256_or_si256(_mm256_or_si256(DIFF(4), DIFF(5)),
				_mm256_or_si256(DIFF(6), DIFF(7))));
	return _mm256_testz_si256(d, d);
}

__attribute__((target("avx2")))
static inline int clean_32(const uint8_t *p, __m256i f)
{
	__m256i d = DIFF(0);
#undef DIFF
	return _mm256_testz_si256(d, d);
}

__attribute__((target("avx2")))
static size_t clean_prefix_avx2(const uint8_t *p, size_t size)
{
	const __m256i f = _mm256_set1_epi8((char)SPY_QUARANTINE_FILL);
	size_t i = 0;
	/* in each case the bytes before i are clean: a difference found by
	 * the last, overlapping step is at i or after */
	if (size >= 256) {
		for (; i + 256 <= size; i += 256)
			if (!clean_256(p + i, f))
				return i;
		return i == size || clean_256(p + size - 256, f) ? size : i;
	}
	if (size < 32)
		return clean_prefix_plain(p, size);
	for (; i + 32 <= size; i += 32)
		if (!clean_32(p + i, f))
			return i;
	return i == size || clean_32(p + size - 32, f) ? size : i;
}

static size_t clean_prefix(const uint8_t *p, size_t size)
{
	static int avx2 = -1;
	if (__builtin_expect(avx2 < 0, 0))
		avx2 = CPU_FEATURE_ACTIVE(AVX2) != 0;
	return avx2 ? clean_prefix_avx2(p, size) : clean_prefix_plain(p, size);
}
#else
#define clean_prefix clean_prefix_plain
#endif

/* Bytes of p[0..size) that differ from the fill: count, first, last. */
static size_t changed(const uint8_t *p, size_t size, size_t *first,
		      size_t *last)
{
	size_t n = 0;
	for (size_t i = clean_prefix(p, size); i < size; i++) {
		if (p[i] != SPY_QUARANTINE_FILL) {
			if (!n)
				*first = i;
			*last = i;
			n++;
		}
	}
	return n;
}

/* What was written to a held block: how many bytes changed, the first
 * and last of them, and the bytes from the first on. */
struct damage {
	size_t n, first, last, take;
	uint8_t bytes[DETAIL_BYTES];
};

/* Compares a held block with the fill; 1 if it was written to. */
static int measure(const struct entry *e, struct damage *dm)
{
	const uint8_t *p = (const uint8_t *)e->addr;
	size_t size = e->size, first = 0, last = 0, f2 = 0, l2 = 0, n, n2 = 0;
	if (e->head == WHOLE && SPY_LIKELY(clean_prefix(p, size) == size))
		return 0;
	if (e->head == WHOLE) {
		n = changed(p, size, &first, &last);
	} else {
		n = changed(p, e->head, &first, &last);
		n2 = changed(p + size - e->tail, e->tail, &f2, &l2);
	}
	if (n2) {
		if (!n)
			first = f2 + size - e->tail;
		last = l2 + size - e->tail;
		n += n2;
	}
	if (!n)
		return 0;
	dm->n = n;
	dm->first = first;
	dm->last = last;
	dm->take = size - first < DETAIL_BYTES ? size - first : DETAIL_BYTES;
	memcpy(dm->bytes, p + first, dm->take);
	return 1;
}

/* The HEAP_UAF record of a block written to after its free. */
static void report(uintptr_t addr, size_t size, const struct damage *dm)
{
	uint8_t *w = spy_writer_begin(TRACE_HEAP_UAF,
				      8 * TRACE_VARINT_MAX + DETAIL_BYTES);
	if (!w)
		return;
	uint8_t detail[3 * TRACE_VARINT_MAX + DETAIL_BYTES], *d = detail;
	d = trace_put_varint(d, dm->n);
	d = trace_put_varint(d, dm->first);
	d = trace_put_varint(d, dm->last);
	memcpy(d, dm->bytes, dm->take);
	d += dm->take;
	w = trace_put_varint(w, addr);
	w = trace_put_varint(w, size);
	w = trace_put_str(w, (const char *)detail, (size_t)(d - detail));
	spy_writer_end(w);
}

static void evict_one(struct ring *r)
{
	struct entry e = r->e[r->tail % RING_CAP];
	struct damage dm;
	__atomic_store_n(&r->tail, r->tail + 1, __ATOMIC_RELEASE);
	r->bytes -= e.size;
	/* the next to leave, likely at the next free: its entry in the map
	 * is far from every line touched since it came in */
	if (r->tail != r->head)
		spy_heapmap_prefetch(r->e[r->tail % RING_CAP].addr);
	if (e.protect)
		spy_qprotect_release(e.protect);
	if (measure(&e, &dm))
		report(e.addr, e.size, &dm);
	struct spy_heap_damage hd;
	if (SPY_UNLIKELY(spy_heapmap_leave(e.addr, &hd))) {
		/* Written over while held. Without libspy glibc had the block
		 * back long before and went on; given it now, it would abort
		 * or take the damage into its lists. It never gets it. */
		rec_heap_damage(&hd, 0);
		return;
	}
	spy_in_allocator = 1;
	spy_real.free((void *)e.addr);
	spy_in_allocator = 0;
}

int spy_quarantine_hold(void *p, size_t size)
{
	size_t limit = limit_bytes();
	/* size is the allocator's: for a block mapped on its own, up to a
	 * page more than was asked for */
	if (!limit || size > limit / 4 + 4096 || no_ring)
		return 0;
	struct ring *r = mine;
	if (!r) {
		r = mine = claim();
		if (!r) {
			no_ring = 1;
			return 0;
		}
	}
	struct entry e = { .addr = (uintptr_t)p, .size = size };
	choose_ends(&e);
	/* the fill first: its stores, mostly to lines not in the cache, go
	 * out while the check of the blocks leaving reads */
	fill(&e);
	while (r->head - r->tail >= RING_CAP || r->bytes + size > limit)
		evict_one(r);
	r->e[r->head % RING_CAP] = e;
	r->bytes += size;
	__atomic_store_n(&r->head, r->head + 1, __ATOMIC_RELEASE);
	return 1;
}

void spy_quarantine_thread_exit(void)
{
	struct ring *r = mine;
	if (!r)
		return;
	while (r->head != r->tail)
		evict_one(r);
	mine = NULL;
	__atomic_store_n(&r->claimed, 0, __ATOMIC_RELEASE);
}

/* Another thread may be letting blocks of its ring go meanwhile: it moves
 * the ring's tail on before it checks and frees one, so an entry still
 * behind the tail after it was measured was measured while held. One it
 * let go is its own to check, and a read of memory gone meanwhile is
 * absorbed (spy_probe_arm). */
void spy_quarantine_check_all(void)
{
	int n = __atomic_load_n(&n_rings, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++) {
		struct ring *r = __atomic_load_n(&rings[i], __ATOMIC_ACQUIRE);
		if (!r)
			continue;
		uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		for (uint64_t k = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
		     k < head; k++) {
			struct entry e = r->e[k % RING_CAP];
			struct damage dm;
			volatile int hit = 0;
			sigjmp_buf env;
			if (sigsetjmp(env, 0) == 0) {
				spy_probe_arm(&env);
				hit = measure(&e, &dm);
			}
			spy_probe_disarm();
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			if (__atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) > k)
				continue;
			if (hit)
				report(e.addr, e.size, &dm);
		}
	}
}
