/* trace_spans.c: module records (or end-map lines) flattened into
 * disjoint address ranges, each naming the record that wins there, so
 * that finding the record holding an address is a binary search: a scan
 * of every record for each address looked up was quadratic on traces
 * with many of both.
 */
#include <stdlib.h>

#include "trace_reader.h"

struct edge {
	uint64_t at;
	size_t rec;
	bool open;
};

static int cmp_edge(const void *pa, const void *pb)
{
	const struct edge *a = pa, *b = pb;
	if (a->at != b->at)
		return a->at < b->at ? -1 : 1;
	return (int)a->open - (int)b->open; /* closes first */
}

/* A max-heap of record indices by wins(); ended entries are dropped
 * lazily when they reach the top. */
struct heap {
	const struct trace_module *v;
	trace_wins_fn wins;
	size_t *h;
	size_t n;
};

static void heap_push(struct heap *h, size_t rec)
{
	size_t i = h->n++;
	h->h[i] = rec;
	while (i && h->wins(h->v, h->h[i], h->h[(i - 1) / 2])) {
		size_t p = (i - 1) / 2, t = h->h[p];
		h->h[p] = h->h[i];
		h->h[i] = t;
		i = p;
	}
}

static void heap_pop(struct heap *h)
{
	h->h[0] = h->h[--h->n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, best = i;
		if (l < h->n && h->wins(h->v, h->h[l], h->h[best]))
			best = l;
		if (r < h->n && h->wins(h->v, h->h[r], h->h[best]))
			best = r;
		if (best == i)
			break;
		size_t t = h->h[best];
		h->h[best] = h->h[i];
		h->h[i] = t;
		i = best;
	}
}

int trace_spans_build(const struct trace_module *v, size_t n, trace_wins_fn wins,
		      struct trace_spans *out)
{
	*out = (struct trace_spans){ 0 };
	size_t ne = 0;
	struct edge *e = malloc((2 * n + 1) * sizeof(*e));
	bool *open = calloc(n + 1, sizeof(*open));
	struct heap h = { v, wins, malloc((n + 1) * sizeof(size_t)), 0 };
	out->v = malloc((2 * n + 1) * sizeof(*out->v));
	if (!e || !open || !h.h || !out->v) {
		free(e);
		free(open);
		free(h.h);
		trace_spans_release(out);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].start >= v[i].end)
			continue;
		e[ne++] = (struct edge){ v[i].start, i, true };
		e[ne++] = (struct edge){ v[i].end, i, false };
	}
	if (ne)
		qsort(e, ne, sizeof(*e), cmp_edge);
	for (size_t i = 0; i < ne; i++) {
		if (e[i].open) {
			open[e[i].rec] = true;
			heap_push(&h, e[i].rec);
		} else {
			open[e[i].rec] = false;
		}
		while (h.n && !open[h.h[0]])
			heap_pop(&h);
		if (i + 1 < ne && e[i + 1].at == e[i].at)
			continue;
		if (!h.n || i + 1 >= ne)
			continue;
		struct trace_span s = { e[i].at, e[i + 1].at, h.h[0] };
		struct trace_span *last = out->n ? &out->v[out->n - 1] : NULL;
		if (last && last->rec == s.rec && last->end == s.start)
			last->end = s.end;
		else
			out->v[out->n++] = s;
	}
	free(e);
	free(open);
	free(h.h);
	return 0;
}

const struct trace_module *trace_spans_find(const struct trace_spans *s,
					    const struct trace_module *v,
					    uint64_t addr)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || addr >= s->v[lo - 1].end)
		return NULL;
	return &v[s->v[lo - 1].rec];
}

void trace_spans_release(struct trace_spans *s)
{
	free(s->v);
	*s = (struct trace_spans){ 0 };
}
