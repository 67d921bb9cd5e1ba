/* tests/unit/heap_checks.c: the heap detectors and the fragmentation
 * snapshot over traces built by hand: each finding joined to the right
 * block and stacks, leaks classed and grouped, holes counted, and a clean
 * trace giving nothing. */
#include <string.h>

#include "detect_heap.h"
#include "findings.h"
#include "heap_checks.h"
#include "heap_frag.h"
#include "heap_replay.h"
#include "tap.h"
#include "trace_builder.h"
#include "trace_reader.h"

#define HEAP 0x10000000ull

static void start(struct tb *b)
{
	static const char *const argv[] = { "prog" };
	tb_init(b);
	tb_chunk(b, 100, 1000);
	tb_process(b, 1000, 100, 1, TRACE_CAUSE_START, "/bin/prog", 1, argv, "");
	tb_module(b, 1001, 0, 0x400000, 0x401000, 0, 5, "/bin/prog");
	tb_module(b, 1002, 0, HEAP, HEAP + (64 << 20), 0, 6, "[heap]");
	static const uint64_t f1[] = { 0x400100 }, f2[] = { 0x400200 },
			      f3[] = { 0x400300 };
	tb_stack(b, 1003, 1, f1, 1);
	tb_stack(b, 1004, 2, f2, 1);
	tb_stack(b, 1005, 3, f3, 1);
}

static int load(struct tb *b, struct trace_model *m)
{
	tb_exit(b, 9000, TRACE_EXIT_RETURN, 0, 0);
	tb_endrec(b, 9001);
	tb_chunk_end(b);
	struct trace_error err;
	return trace_load_buffer("built", tb_copy(b), b->len, m, &err);
}

static void rec(struct tb *b, uint64_t t, unsigned kind, const uint64_t *v, int n)
{
	tb_begin(b, t);
	for (int i = 0; i < n; i++)
		tb_v(b, v[i]);
	tb_end_record(b, kind);
}

static const struct finding *find(const struct finding_list *l, const char *kind)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].kind, kind))
			return &l->v[i];
	return NULL;
}

static const struct finding_detail *detail(const struct finding *f, const char *key)
{
	for (size_t i = 0; f && i < f->n_details; i++)
		if (!strcmp(f->details[i].key, key))
			return &f->details[i];
	return NULL;
}

static void test_double_free(void)
{
	struct tb b;
	struct trace_model m;
	start(&b);
	tb_alloc(&b, 2000, TRACE_FN_MALLOC, HEAP + 0x100, 64, 1, 0);
	tb_free(&b, 2100, HEAP + 0x100, 2);
	uint64_t bad[] = { TRACE_FN_FREE, HEAP + 0x100, 3, TRACE_BAD_DOUBLE, 0 };
	rec(&b, 2200, TRACE_BAD_FREE, bad, 5);
	ok(load(&b, &m) == 0, "a trace with a double free loads");
	struct finding_list l = { 0 };
	ok(detect_heap(&m, &l) == 0, "the detector runs");
	const struct finding *f = find(&l, "double-free");
	ok(f && f->n_stacks == 3, "double-free with three stacks");
	ok(f && f->stacks[0].frames[0] == 0x400300 && f->stacks[1].frames[0] == 0x400200 &&
	   f->stacks[2].frames[0] == 0x400100,
	   "second free, first free and allocation stacks in that order");
	const struct finding_detail *d = detail(f, "size");
	ok(d && d->num == 64, "the block's size");
	finding_list_release(&l);
	trace_model_release(&m);
	free(b.buf);
}

static void test_interior_and_uaf(void)
{
	struct tb b;
	struct trace_model m;
	start(&b);
	tb_alloc(&b, 2000, TRACE_FN_MALLOC, HEAP + 0x100, 64, 1, 0);
	uint64_t bad[] = { TRACE_FN_FREE, HEAP + 0x120, 3, TRACE_BAD_INTERIOR, HEAP + 0x100 };
	rec(&b, 2100, TRACE_BAD_FREE, bad, 5);
	tb_free(&b, 2200, HEAP + 0x100, 2);
	/* the HEAP_UAF detail: changed, first, last, then the bytes */
	tb_begin(&b, 2300);
	tb_v(&b, HEAP + 0x100);
	tb_v(&b, 64);
	uint8_t detail_bytes[] = { 2, 32, 33, 0x63, 0x00, 0xfd };
	b.bp = trace_put_str(b.bp, (const char *)detail_bytes, sizeof(detail_bytes));
	tb_end_record(&b, TRACE_HEAP_UAF);
	ok(load(&b, &m) == 0, "a trace with an interior free and a write after free loads");
	struct finding_list l = { 0 };
	ok(detect_heap(&m, &l) == 0, "the detector runs");
	const struct finding *f = find(&l, "invalid-free");
	const struct finding_detail *d = detail(f, "address_kind");
	ok(d && !strcmp(d->str, "interior"), "invalid-free says interior");
	d = detail(f, "offset");
	ok(d && d->num == 0x20, "at offset 32 of the block");
	ok(f && f->n_stacks == 2 && f->stacks[1].frames[0] == 0x400100,
	   "with the block's allocation stack");
	f = find(&l, "use-after-free");
	d = detail(f, "first_offset");
	ok(d && d->num == 32, "use-after-free from offset 32");
	d = detail(f, "bytes_found");
	ok(d && !strcmp(d->str, "63 00"), "the changed bytes as found: %s", d ? d->str : "(none)");
	ok(f && f->n_stacks == 2 && f->stacks[0].frames[0] == 0x400200 &&
	   f->stacks[1].frames[0] == 0x400100, "freed-here and allocated-here stacks");
	finding_list_release(&l);
	trace_model_release(&m);
	free(b.buf);
}

static void test_leaks(void)
{
	struct tb b;
	struct trace_model m;
	start(&b);
	tb_alloc(&b, 2000, TRACE_FN_MALLOC, HEAP + 0x100, 48, 1, 0);
	tb_alloc(&b, 2001, TRACE_FN_MALLOC, HEAP + 0x200, 48, 1, 0);
	tb_alloc(&b, 2002, TRACE_FN_MALLOC, HEAP + 0x300, 100, 2, 0);
	uint64_t l1[] = { HEAP + 0x100, 48, TRACE_LEAK_DEFINITE };
	uint64_t l2[] = { HEAP + 0x200, 48, TRACE_LEAK_DEFINITE };
	uint64_t l3[] = { HEAP + 0x300, 100, TRACE_LEAK_REACHABLE };
	uint64_t sc[] = { 3, 4096, 8192, 1000 };
	rec(&b, 8000, TRACE_LEAK, l1, 3);
	rec(&b, 8001, TRACE_LEAK, l2, 3);
	rec(&b, 8002, TRACE_LEAK, l3, 3);
	rec(&b, 8003, TRACE_LEAK_SCAN, sc, 4);
	ok(load(&b, &m) == 0, "a trace with a leak scan loads");
	struct heap_checks hc;
	ok(heap_checks_build(&m, &hc) == 0 && hc.scanned, "the scan is seen");
	ok(hc.totals[TRACE_LEAK_DEFINITE][0] == 2 && hc.totals[TRACE_LEAK_DEFINITE][1] == 96,
	   "two blocks, 96 bytes definitely lost");
	ok(hc.totals[TRACE_LEAK_REACHABLE][0] == 1, "one still reachable");
	heap_checks_release(&hc);
	struct finding_list l = { 0 };
	ok(detect_heap(&m, &l) == 0, "the detector runs");
	size_t leaks = 0;
	for (size_t i = 0; i < l.n; i++)
		leaks += !strcmp(l.v[i].kind, "leak");
	ok(leaks == 1, "one leak finding for the one allocation stack");
	const struct finding_detail *d = detail(find(&l, "leak"), "blocks");
	ok(d && d->num == 2, "grouping both blocks");
	finding_list_release(&l);
	trace_model_release(&m);
	free(b.buf);
}

/* The scan at exit reads while other threads run on: a block listed live
 * whose last pointer a thread let go of and which it then freed (before
 * the leak records were written, or after) is no leak; a block at an
 * address freed once and allocated again, then lost, still is. */
static void test_leaks_freed_meanwhile(void)
{
	struct tb b;
	struct trace_model m;
	start(&b);
	tb_alloc(&b, 2000, TRACE_FN_MALLOC, HEAP + 0x100, 48, 1, 0);
	tb_alloc(&b, 2001, TRACE_FN_MALLOC, HEAP + 0x200, 48, 1, 0);
	tb_alloc(&b, 2002, TRACE_FN_MALLOC, HEAP + 0x300, 48, 1, 0);
	tb_free(&b, 2003, HEAP + 0x300, 2);
	tb_alloc(&b, 2004, TRACE_FN_MALLOC, HEAP + 0x300, 48, 1, 0);
	tb_alloc(&b, 2005, TRACE_FN_MALLOC, HEAP + 0x400, 32, 2, 0);
	tb_free(&b, 7990, HEAP + 0x100, 2); /* while the scan ran */
	uint64_t l1[] = { HEAP + 0x100, 48, TRACE_LEAK_DEFINITE };
	uint64_t l2[] = { HEAP + 0x200, 48, TRACE_LEAK_DEFINITE };
	uint64_t l3[] = { HEAP + 0x300, 48, TRACE_LEAK_DEFINITE };
	uint64_t l4[] = { HEAP + 0x400, 32, TRACE_LEAK_REACHABLE };
	uint64_t sc[] = { 4, 4096, 8192, 1000 };
	rec(&b, 8000, TRACE_LEAK, l1, 3);
	rec(&b, 8001, TRACE_LEAK, l2, 3);
	rec(&b, 8002, TRACE_LEAK, l3, 3);
	rec(&b, 8003, TRACE_LEAK, l4, 3);
	rec(&b, 8004, TRACE_LEAK_SCAN, sc, 4);
	tb_realloc(&b, 8100, HEAP + 0x200, HEAP + 0x800, 64, 2); /* after */
	ok(load(&b, &m) == 0, "a trace with blocks freed around the scan loads");
	struct heap_checks hc;
	ok(heap_checks_build(&m, &hc) == 0 && hc.scanned, "the scan is seen");
	ok(hc.totals[TRACE_LEAK_DEFINITE][0] == 1 &&
	   hc.totals[TRACE_LEAK_DEFINITE][1] == 48,
	   "only the block allocated again and lost is definitely lost (%llu)",
	   (unsigned long long)hc.totals[TRACE_LEAK_DEFINITE][0]);
	ok(hc.totals[TRACE_LEAK_REACHABLE][0] == 1, "the reachable one stays");
	heap_checks_release(&hc);
	trace_model_release(&m);
	free(b.buf);
}

static void test_fragmentation(void)
{
	struct tb b;
	struct trace_model m;
	start(&b);
	/* tmp, rec, tmp, rec ...: 100 pairs; then every tmp freed */
	uint64_t at = HEAP + 0x10, t = 2000;
	for (int i = 0; i < 100; i++) {
		tb_alloc(&b, t++, TRACE_FN_MALLOC, at, 4000, 1, 0);
		at += 4016;
		tb_alloc(&b, t++, TRACE_FN_MALLOC, at, 24, 2, 0);
		at += 32;
	}
	at = HEAP + 0x10;
	for (int i = 0; i < 100; i++) {
		tb_free(&b, t++, at, 3);
		at += 4016 + 32;
	}
	uint64_t fail[] = { TRACE_FN_MALLOC, 1 << 20, 3 };
	rec(&b, t++, TRACE_ALLOC_FAIL, fail, 3);
	ok(load(&b, &m) == 0, "a fragmented trace loads");
	struct heap_frag f;
	const struct trace_event *fe = NULL;
	for (size_t i = 0; i < m.n_events; i++)
		if (m.events[i].kind == TRACE_ALLOC_FAIL)
			fe = &m.events[i];
	ok(fe && heap_frag_at(&m, fe, &f) == 0, "a snapshot at the failure");
	ok(f.live_blocks == 100 && f.heap_live_bytes == 2400, "100 live records");
	ok(f.holes == 99 && f.largest_hole == 4016,
	   "99 holes between them, each a 4016-byte chunk (%lu, %lu)",
	   (unsigned long)f.holes, (unsigned long)f.largest_hole);
	ok(f.external > 0.98, "external fragmentation near 1 (%.3f)", f.external);
	ok(!heap_frag_is_bad(&f), "under 1 MiB free: not reported as fragmentation");
	struct finding_list l = { 0 };
	ok(detect_heap(&m, &l) == 0 && find(&l, "allocation-failure") &&
	   !find(&l, "fragmentation"), "allocation-failure, no fragmentation finding");
	finding_list_release(&l);
	trace_model_release(&m);
	free(b.buf);
}

/* HEAP_INFO: reason, arena, ordblks, fordblks, hblks, hblkhd, uordblks,
 * keepcost, rss, as_limit, vm_size, then optionally the allocator and
 * jemalloc's six figures. */
static void heap_info(struct tb *b, uint64_t t, uint64_t reason, int n_extra,
		      const uint64_t *extra)
{
	uint64_t v[18] = { reason, 1 << 20, 1, 1000, 1, 4096, 2000, 500,
			   8 << 20, 0, 16 << 20 };
	for (int i = 0; i < n_extra; i++)
		v[11 + i] = extra[i];
	rec(b, t, TRACE_HEAP_INFO, v, 11 + n_extra);
}

static void test_series(void)
{
	struct tb b;
	struct trace_model m;
	start(&b);
	uint64_t at = HEAP + 0x10, t = 2000;
	static const uint64_t glibc[] = { 0 };
	static const uint64_t jemalloc[] = { 1, 100, 200, 300, 400, 3 << 20, 600 };
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 10; i++) {
			tb_alloc(&b, t++, TRACE_FN_MALLOC, at, 4000, 1, 0);
			at += 4016;
			tb_alloc(&b, t++, TRACE_FN_MALLOC, at, 24, 2, 0);
			at += 32;
		}
		/* the first in the older form: no allocator field */
		heap_info(&b, t++, 2, round, glibc);
	}
	at = HEAP + 0x10;
	for (int i = 0; i < 20; i++) {
		tb_free(&b, t++, at, 3);
		at += 4016 + 32;
	}
	heap_info(&b, t++, 2, 7, jemalloc);
	heap_info(&b, t++, 0, 1, glibc); /* at exit: not part of the series */
	ok(load(&b, &m) == 0, "a trace with interval snapshots loads");
	struct heap_frag *v = NULL;
	size_t n = 0, total = 0;
	ok(heap_frag_series(&m, &v, &n, &total) == 0 && n == 3 && total == 3,
	   "three interval snapshots, the exit record left out (%zu of %zu)",
	   n, total);
	ok(n == 3 && v[0].live_blocks == 20 && v[1].live_blocks == 40 &&
	   v[2].live_blocks == 20, "each replayed to its own moment");
	ok(n == 3 && v[0].when == HEAP_FRAG_INTERVAL && v[0].ts < v[1].ts &&
	   v[1].ts < v[2].ts, "in time order, marked as interval snapshots");
	ok(n == 3 && v[0].holes == 0 && v[2].info.allocator == HEAP_JEMALLOC,
	   "no hole before the frees; the last one from jemalloc");
	ok(n == 3 && v[0].info.allocator == HEAP_GLIBC &&
	   v[0].footprint == (1 << 20) + 4096 &&
	   v[0].footprint_free == (1 << 20) + 4096 - 10 * 4024,
	   "a record without the allocator field is glibc's: its arenas and "
	   "mmapped blocks, less the live bytes");
	ok(n == 3 && v[2].info.je_mapped == 3 << 20 &&
	   v[2].info.je_retained == 600 && v[2].footprint == 3 << 20 &&
	   v[2].footprint_free == (3 << 20) - 20 * 24 &&
	   !heap_frag_has_holes(&v[2]),
	   "jemalloc: its figures read, the footprint its mapped bytes less "
	   "the live ones, holes not modelled");
	free(v);
	trace_model_release(&m);
	free(b.buf);
	start(&b);
	ok(load(&b, &m) == 0 && heap_frag_series(&m, &v, &n, &total) == 0 &&
	   n == 0 && total == 0 && !v, "no heap_every: no series");
	trace_model_release(&m);
	free(b.buf);
}

/* A header found written over, twice (the block before it saw the next
 * one's in-use bit cleared; the block itself saw its size wrong): one
 * heap-overflow finding, about the block before, with the free's stack. */
static void test_heap_damage(void)
{
	struct tb b;
	struct trace_model m;
	start(&b);
	tb_alloc(&b, 2000, TRACE_FN_MALLOC, HEAP + 0x100, 24, 1, 0);
	tb_alloc(&b, 2010, TRACE_FN_MALLOC, HEAP + 0x120, 24, 2, 0);
	uint64_t seen_before[] = { HEAP + 0x120, HEAP + 0x100, 0x7878787878787878ull, 0 };
	rec(&b, 2100, TRACE_HEAP_DAMAGE, seen_before, 4);
	uint64_t at_free[] = { HEAP + 0x120, HEAP + 0x100, 0x7878787878787878ull, 3 };
	rec(&b, 2110, TRACE_HEAP_DAMAGE, at_free, 4);
	ok(load(&b, &m) == 0, "a trace with a damaged header loads");
	struct finding_list l = { 0 };
	ok(detect_heap(&m, &l) == 0 && l.n == 1, "one finding for one damaged header");
	const struct finding *f = find(&l, "heap-overflow");
	const struct finding_detail *d = detail(f, "size");
	ok(f && f->n_stacks == 2 && f->stacks[0].frames[0] == 0x400100 &&
	   f->stacks[1].frames[0] == 0x400300,
	   "the block before it, with its allocation stack, then the free's");
	ok(d && d->num == 24, "its size");
	finding_list_release(&l);
	trace_model_release(&m);
	free(b.buf);
}

static void test_clean(void)
{
	struct tb b;
	struct trace_model m;
	start(&b);
	tb_alloc(&b, 2000, TRACE_FN_MALLOC, HEAP + 0x100, 64, 1, 0);
	tb_realloc(&b, 2100, HEAP + 0x100, HEAP + 0x400, 128, 2);
	tb_free(&b, 2200, HEAP + 0x400, 3);
	ok(load(&b, &m) == 0, "a clean trace loads");
	struct finding_list l = { 0 };
	ok(detect_heap(&m, &l) == 0 && l.n == 0, "no heap finding");
	finding_list_release(&l);
	trace_model_release(&m);
	free(b.buf);
}

/* A block one thread allocates and another frees at once can carry a free
 * time a little before its allocation time (threads' clocks differ by
 * microseconds): the reader puts the allocation first. A free of an
 * address nobody allocated stays unknown. */
static void test_handoff(void)
{
	struct tb b;
	struct trace_model m;
	start(&b);
	tb_alloc(&b, 2000, TRACE_FN_MALLOC, HEAP + 0x100, 64, 1, 0);
	tb_chunk_end(&b);
	tb_chunk(&b, 200, 1500);
	tb_free(&b, 1990, HEAP + 0x100, 2);      /* 10 ns "before" its malloc */
	tb_free(&b, 1995, HEAP + 0x200, 2);      /* never allocated */
	ok(load(&b, &m) == 0, "a trace with a block handed to another thread loads");
	struct heap_stats st;
	ok(heap_replay(&m, &st, NULL) == 0, "the replay runs");
	ok(st.unknown_frees == 1 && st.live_blocks == 0,
	   "the handed-over block is allocated, then freed; only the address "
	   "nobody allocated is unknown (unknown %llu, live %llu)",
	   (unsigned long long)st.unknown_frees,
	   (unsigned long long)st.live_blocks);
	trace_model_release(&m);
	free(b.buf);
}

int main(void)
{
	test_double_free();
	test_interior_and_uaf();
	test_leaks();
	test_leaks_freed_meanwhile();
	test_fragmentation();
	test_series();
	test_heap_damage();
	test_clean();
	test_handoff();
	return tap_done();
}
