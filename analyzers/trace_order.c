/* trace_order.c: the model's event array, and putting the events read in
 * file order into time order. The array lives in its own mapping so that
 * the sort can hand pages of the file-order copy back to the kernel as
 * soon as their events have moved: a trace of millions of events is never
 * held twice.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "trace_format.h"
#include "trace_reader_priv.h"

#define EV_SIZE sizeof(struct trace_event)
/* The unit in which the file-order copy is handed back (a multiple of
 * the page size). */
#define SLAB (1u << 20)

static size_t map_len(size_t cap)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t bytes = cap * EV_SIZE;
	return (bytes + page - 1) / page * page;
}

int reader_event_reserve(struct trace_model *m)
{
	size_t cap = m->caps[CAP_EVENTS];
	if (m->n_events < cap)
		return 0;
	size_t ncap = cap ? cap * 2 : 4096;
	if (ncap > SIZE_MAX / 2 / EV_SIZE)
		return -1;
	void *p = cap ? mremap(m->events, map_len(cap), map_len(ncap),
			       MREMAP_MAYMOVE)
		      : mmap(NULL, map_len(ncap), PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	m->events = p;
	m->caps[CAP_EVENTS] = ncap;
	return 0;
}

void reader_events_release(struct trace_model *m)
{
	if (m->events)
		munmap(m->events, map_len(m->caps[CAP_EVENTS]));
	m->events = NULL;
	m->caps[CAP_EVENTS] = 0;
}

/* A run: events [pos, end) of the file-order copy, in time order. */
struct run {
	size_t pos, end;
};

/* Where the merge stands: runs in the heap are keyed by the time of their
 * next event, then by their index (file order), which makes the merge
 * the stable sort by time. */
struct merge {
	const struct trace_event *src;
	struct run *runs;
	size_t *heap, n_heap;
	uint32_t *left;        /* events still to move, per slab of src */
	size_t n_slabs, src_len;
};

static bool before(const struct merge *g, size_t r, size_t q)
{
	uint64_t a = g->src[g->runs[r].pos].ts, b = g->src[g->runs[q].pos].ts;
	return a != b ? a < b : r < q;
}

static void sift_down(struct merge *g, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, best = i;
		if (l < g->n_heap && before(g, g->heap[l], g->heap[best]))
			best = l;
		if (l + 1 < g->n_heap && before(g, g->heap[l + 1], g->heap[best]))
			best = l + 1;
		if (best == i)
			return;
		size_t t = g->heap[i];
		g->heap[i] = g->heap[best];
		g->heap[best] = t;
		i = best;
	}
}

static void sift_up(struct merge *g, size_t i)
{
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!before(g, g->heap[i], g->heap[up]))
			return;
		size_t t = g->heap[i];
		g->heap[i] = g->heap[up];
		g->heap[up] = t;
		i = up;
	}
}

/* Runs in the order of their first event (then file order): a run joins
 * the heap only when its first event could be the next one. */
static int by_first(const void *x, const void *y, void *ctx)
{
	const struct merge *g = ctx;
	size_t r = *(const size_t *)x, q = *(const size_t *)y;
	return before(g, r, q) ? -1 : before(g, q, r) ? 1 : 0;
}

/* Event i has moved: the slabs it covers may go back to the kernel. */
static void moved(struct merge *g, size_t i)
{
	size_t first = i * EV_SIZE / SLAB, last = ((i + 1) * EV_SIZE - 1) / SLAB;
	for (size_t s = first; s <= last; s++)
		if (--g->left[s] == 0) {
			size_t at = s * SLAB, len = g->src_len - at;
			madvise((char *)g->src + at, len < SLAB ? len : SLAB,
				MADV_DONTNEED);
		}
}

static int merge_runs(struct trace_model *m, struct run *runs, size_t n_runs,
		      struct trace_event *out)
{
	size_t n = m->n_events;
	struct merge g = { .src = m->events, .runs = runs,
			   .src_len = map_len(m->caps[CAP_EVENTS]) };
	size_t *order = malloc(n_runs * sizeof(*order));
	g.heap = malloc(n_runs * sizeof(*g.heap));
	g.n_slabs = (n * EV_SIZE + SLAB - 1) / SLAB;
	g.left = calloc(g.n_slabs, sizeof(*g.left));
	if (!order || !g.heap || !g.left) {
		free(order);
		free(g.heap);
		free(g.left);
		return -1;
	}
	for (size_t s = 0; s < g.n_slabs; s++) {
		size_t lo = s * SLAB / EV_SIZE;
		size_t hi = ((s + 1) * SLAB - 1) / EV_SIZE;
		g.left[s] = (uint32_t)((hi < n ? hi : n - 1) - lo + 1);
	}
	for (size_t r = 0; r < n_runs; r++)
		order[r] = r;
	qsort_r(order, n_runs, sizeof(*order), by_first, &g);
	size_t next = 0;
	for (size_t o = 0; o < n; o++) {
		while (next < n_runs &&
		       (!g.n_heap || before(&g, order[next], g.heap[0]))) {
			g.heap[g.n_heap++] = order[next++];
			sift_up(&g, g.n_heap - 1);
		}
		struct run *r = &runs[g.heap[0]];
		out[o] = g.src[r->pos];
		moved(&g, r->pos);
		if (++r->pos == r->end)
			g.heap[0] = g.heap[--g.n_heap];
		sift_down(&g, 0);
	}
	free(order);
	free(g.heap);
	free(g.left);
	return 0;
}

/* Stable sort of the events by time. Each chunk is a run in time order
 * already (but for a lock held across a record's start, moved back), so
 * a merge of the runs does little work. */
static int sort_events(struct trace_model *m)
{
	size_t n = m->n_events, n_runs = 1;
	for (size_t i = 1; i < n; i++)
		n_runs += m->events[i].ts < m->events[i - 1].ts;
	if (n_runs <= 1)
		return 0;
	struct run *runs = malloc(n_runs * sizeof(*runs));
	struct trace_event *out = mmap(NULL, map_len(n), PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!runs || out == MAP_FAILED) {
		free(runs);
		if (out != MAP_FAILED)
			munmap(out, map_len(n));
		return -1;
	}
	size_t k = 0;
	runs[0].pos = 0;
	for (size_t i = 1; i < n; i++)
		if (m->events[i].ts < m->events[i - 1].ts) {
			runs[k++].end = i;
			runs[k].pos = i;
		}
	runs[k].end = n;
	int rc = merge_runs(m, runs, n_runs, out);
	free(runs);
	if (rc < 0) {
		munmap(out, map_len(n));
		return -1;
	}
	reader_events_release(m);
	m->events = out;
	m->caps[CAP_EVENTS] = n;
	return 0;
}

/* Threads' clocks agree to a few microseconds, not better: a block that
 * one thread allocates and hands to another, which frees it at once, can
 * sort with its free first. A free of an address that is not live,
 * followed within HANDOFF_NS by another thread's allocation of that
 * address, is such a pair: the allocation moves to just before the free
 * (taking the free's time). */
#define HANDOFF_NS 200000
/* The search stops after HANDOFF_SCAN events too: frees of addresses
 * that are not live, by the hundred thousand within HANDOFF_NS (a damaged
 * or hostile trace), would cost the square of their number. */
#define HANDOFF_SCAN 1024

static bool pull_handoff(struct trace_model *m, size_t i)
{
	const struct trace_event *fr = &m->events[i];
	for (size_t j = i + 1; j < m->n_events && j - i <= HANDOFF_SCAN &&
			       m->events[j].ts - fr->ts <= HANDOFF_NS; j++) {
		const struct trace_event *e = &m->events[j];
		if (e->a != fr->a ||
		    (e->kind != TRACE_ALLOC && e->kind != TRACE_FREE))
			continue;
		if (e->kind == TRACE_FREE || e->tid == fr->tid)
			return false;
		struct trace_event moved = *e;
		moved.ts = fr->ts;
		memmove(&m->events[i + 1], &m->events[i],
			(j - i) * sizeof(*m->events));
		m->events[i] = moved;
		return true;
	}
	return false;
}

static int order_heap_handoffs(struct trace_model *m)
{
	struct u64map live = U64MAP_INIT;
	uint64_t v;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		switch (e->kind) {
		case TRACE_ALLOC:
			if (u64map_put(&live, e->a, 1) < 0)
				goto no_memory;
			break;
		case TRACE_FREE:
			if (!e->a || u64map_remove(&live, e->a, &v))
				break;
			/* the free is now at i + 1: step over both */
			if (pull_handoff(m, i))
				i++;
			break;
		case TRACE_REALLOC:
			if (e->a)
				u64map_remove(&live, e->a, &v);
			if (e->b && u64map_put(&live, e->b, 1) < 0)
				goto no_memory;
			break;
		default:
			break;
		}
	}
	u64map_release(&live);
	return 0;
no_memory:
	u64map_release(&live);
	return -1;
}

int reader_order_events(struct trace_model *m)
{
	return sort_events(m) < 0 || order_heap_handoffs(m) < 0 ? -1 : 0;
}
