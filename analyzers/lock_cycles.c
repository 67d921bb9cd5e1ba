/* lock_cycles.c: cycles of the lock-order graph. For every edge that
 * can be on one (its two ends in one strongly connected component), the
 * shortest way back from its head to its tail within that component
 * (breadth first, so a cycle is shown with as few locks as it needs);
 * each cycle is kept once.
 * A path may not pass through an rwlock that one thread holds for reading
 * while the next one asks to read it: readers do not block each other.
 */
#include <stdlib.h>
#include <string.h>

#include "lock_model.h"

/* Searches at most this many edges of the components: each search is
 * linear in the component, so a dense one would make them quadratic. */
#define MAX_EDGES_SCANNED 20000

struct adj {
	size_t *start;    /* n_locks + 1 offsets into e */
	uint32_t *e;      /* edge indices by source lock */
};

static int adj_build(const struct lock_model *lm, struct adj *a)
{
	a->start = calloc(lm->n_locks + 1, sizeof(*a->start));
	a->e = malloc((lm->n_edges ? lm->n_edges : 1) * sizeof(*a->e));
	if (!a->start || !a->e)
		return -1;
	for (size_t i = 0; i < lm->n_edges; i++)
		a->start[lm->edges[i].from + 1]++;
	for (size_t i = 0; i < lm->n_locks; i++)
		a->start[i + 1] += a->start[i];
	size_t *fill = calloc(lm->n_locks + 1, sizeof(*fill));
	if (!fill)
		return -1;
	for (size_t i = 0; i < lm->n_edges; i++) {
		uint32_t f = lm->edges[i].from;
		a->e[a->start[f] + fill[f]++] = (uint32_t)i;
	}
	free(fill);
	return 0;
}

/* The breadth-first search of shortest_back; *qlen receives how many
 * states it queued. */
static size_t search_back(const struct lock_model *lm, const struct adj *a,
			  const uint32_t *comp, uint32_t ei, uint32_t *out,
			  int64_t *via, uint32_t *prev, uint32_t *queue,
			  size_t *qlen)
{
	const struct lock_edge *e0 = &lm->edges[ei];
	size_t head = 0, tail = 0;
	uint32_t s0 = e0->to * 2 + e0->to_read;
	via[s0] = -1;
	queue[tail++] = s0;
	*qlen = tail;
	while (head < tail) {
		uint32_t s = queue[head++];
		uint32_t node = s / 2;
		bool arrived_read = s & 1;
		if (node == e0->from && !(arrived_read && e0->from_read)) {
			/* Walk back along via/prev to build the path. */
			size_t n = 0;
			uint32_t tmp[64];
			for (uint32_t x = s; via[x] >= 0; x = prev[x]) {
				if (n == 63)
					return 0;
				tmp[n++] = (uint32_t)via[x];
			}
			out[0] = ei;
			for (size_t i = 0; i < n; i++)
				out[1 + i] = tmp[n - 1 - i];
			return n + 1;
		}
		for (size_t k = a->start[node]; k < a->start[node + 1]; k++) {
			const struct lock_edge *f = &lm->edges[a->e[k]];
			if (!f->count || (arrived_read && f->from_read) ||
			    comp[f->to] != comp[e0->from])
				continue;
			uint32_t t = f->to * 2 + f->to_read;
			if (via[t] != -2)
				continue;
			via[t] = a->e[k];
			prev[t] = s;
			queue[tail++] = t;
			*qlen = tail;
		}
	}
	return 0;
}

/* Shortest path of live edges from (e.to, e.to_read) back to e.from; the
 * edges of the cycle, starting with ei, into out. Returns the length or 0.
 * via[] is all unvisited (-2) on entry and is left so: only the states
 * this search queued are reset, not all of them, so that a trace with many
 * locks and many edges costs what the searches visit. */
static size_t shortest_back(const struct lock_model *lm, const struct adj *a,
			    const uint32_t *comp, uint32_t ei, uint32_t *out,
			    int64_t *via, uint32_t *prev, uint32_t *queue)
{
	size_t tail = 0;
	size_t n = search_back(lm, a, comp, ei, out, via, prev, queue, &tail);
	for (size_t i = 0; i < tail; i++)
		via[queue[i]] = -2;
	return n;
}

/* The strongly connected component of every lock (Tarjan's, with a stack
 * of its own rather than recursion: millions of locks nest deep). A lock
 * on no cycle is a component to itself. NULL when memory runs out. */
static uint32_t *components(const struct lock_model *lm, const struct adj *a)
{
	size_t n = lm->n_locks ? lm->n_locks : 1;
	const uint32_t unseen = UINT32_MAX;
	uint32_t *order = malloc(n * sizeof(*order));
	uint32_t *low = malloc(n * sizeof(*low));
	uint32_t *comp = malloc(n * sizeof(*comp));
	uint32_t *stack = malloc(n * sizeof(*stack));
	uint32_t *walk = malloc(n * sizeof(*walk));
	size_t *next_edge = malloc(n * sizeof(*next_edge));
	uint8_t *on_stack = calloc(n, 1);
	if (!order || !low || !comp || !stack || !walk || !next_edge ||
	    !on_stack) {
		free(comp);
		comp = NULL;
		goto out;
	}
	for (size_t i = 0; i < lm->n_locks; i++)
		order[i] = unseen;
	uint32_t seen = 0, found = 0;
	size_t sp = 0;
	for (uint32_t root = 0; root < lm->n_locks; root++) {
		if (order[root] != unseen)
			continue;
		size_t wp = 0;
		walk[wp] = root;
		next_edge[wp++] = a->start[root];
		order[root] = low[root] = seen++;
		stack[sp++] = root;
		on_stack[root] = 1;
		while (wp) {
			uint32_t v = walk[wp - 1];
			if (next_edge[wp - 1] < a->start[v + 1]) {
				uint32_t w = lm->edges[a->e[next_edge[wp - 1]++]].to;
				if (order[w] == unseen) {
					order[w] = low[w] = seen++;
					stack[sp++] = w;
					on_stack[w] = 1;
					walk[wp] = w;
					next_edge[wp++] = a->start[w];
				} else if (on_stack[w] && order[w] < low[v]) {
					low[v] = order[w];
				}
				continue;
			}
			if (--wp && low[v] < low[walk[wp - 1]])
				low[walk[wp - 1]] = low[v];
			if (low[v] == order[v]) {
				uint32_t w;
				do {
					w = stack[--sp];
					on_stack[w] = 0;
					comp[w] = found;
				} while (w != v);
				found++;
			}
		}
	}
out:
	free(order);
	free(low);
	free(stack);
	free(walk);
	free(next_edge);
	free(on_stack);
	return comp;
}

static void canonical(uint32_t *c, size_t n)
{
	size_t m = 0;
	for (size_t i = 1; i < n; i++)
		if (c[i] < c[m])
			m = i;
	uint32_t tmp[65];
	for (size_t i = 0; i < n; i++)
		tmp[i] = c[(m + i) % n];
	memcpy(c, tmp, n * sizeof(*c));
}

/* One thread per edge: edge i may take any of its threads; an edge that
 * came from more threads than it keeps (LOCK_EDGE_TIDS) may have come
 * from any, and is given one of its own. Kuhn's augmenting paths over at
 * most 64 edges of at most LOCK_EDGE_TIDS threads each. */
struct matching {
	const struct lock_model *lm;
	const struct lock_cycle *c;
	uint32_t *tid;            /* per edge: the thread given to it, or 0 */
	uint32_t visited[64 * LOCK_EDGE_TIDS]; /* threads tried this search */
	size_t n_visited;
};

static bool edge_open(const struct lock_edge *e)
{
	return e->n_tids >= LOCK_EDGE_TIDS;
}

/* Gives edge i a thread no other edge has, moving others along. */
static bool augment(struct matching *mt, size_t i)
{
	const struct lock_edge *e = &mt->lm->edges[mt->c->e[i]];
	for (size_t k = 0; k < e->n_tids; k++) {
		uint32_t t = e->tids[k];
		bool tried = false;
		for (size_t v = 0; v < mt->n_visited && !tried; v++)
			tried = mt->visited[v] == t;
		if (tried || mt->n_visited == sizeof(mt->visited) /
						 sizeof(mt->visited[0]))
			continue;
		mt->visited[mt->n_visited++] = t;
		size_t holder = SIZE_MAX;
		for (size_t j = 0; j < mt->c->n; j++)
			if (mt->tid[j] == t)
				holder = j;
		if (holder == SIZE_MAX || augment(mt, holder)) {
			mt->tid[i] = t;
			return true;
		}
	}
	return false;
}

/* True when every edge of c can be given a thread of its own; c->tid
 * then holds them (an open edge keeps a thread of its own list that no
 * other edge has, or its first). */
static bool one_thread_per_edge(const struct lock_model *lm,
				struct lock_cycle *c)
{
	struct matching mt = { .lm = lm, .c = c, .tid = c->tid };
	bool all = true;
	for (size_t i = 0; i < c->n; i++)
		c->tid[i] = 0;
	for (size_t i = 0; i < c->n && all; i++) {
		if (edge_open(&lm->edges[c->e[i]]))
			continue;
		mt.n_visited = 0;
		all = augment(&mt, i);
	}
	for (size_t i = 0; i < c->n; i++) {
		const struct lock_edge *e = &lm->edges[c->e[i]];
		if (c->tid[i])
			continue;
		c->tid[i] = e->n_tids ? e->tids[0] : 0;
		for (size_t k = 0; k < e->n_tids; k++) {
			bool used = false;
			for (size_t j = 0; j < c->n && !used; j++)
				used = j != i && c->tid[j] == e->tids[k];
			if (!used) {
				c->tid[i] = e->tids[k];
				break;
			}
		}
	}
	return all;
}

static void classify(const struct lock_model *lm, struct lock_cycle *c)
{
	/* A gate: held at every occurrence of every edge of the cycle. */
	const struct lock_edge *e0 = &lm->edges[c->e[0]];
	for (size_t g = 0; g < e0->n_gates && !c->gated; g++) {
		uint32_t gate = e0->gates[g];
		bool all = true;
		for (size_t i = 1; i < c->n && all; i++) {
			const struct lock_edge *e = &lm->edges[c->e[i]];
			bool in = false;
			for (size_t k = 0; k < e->n_gates && !in; k++)
				in = e->gates[k] == gate;
			all = in;
		}
		if (all) {
			c->gated = true;
			c->gate = gate;
		}
	}
	uint32_t tid = 0;
	c->one_thread = true;
	for (size_t i = 0; i < c->n && c->one_thread; i++) {
		const struct lock_edge *e = &lm->edges[c->e[i]];
		for (size_t k = 0; k < e->n_tids; k++) {
			if (!tid)
				tid = e->tids[k];
			else if (e->tids[k] != tid)
				c->one_thread = false;
		}
	}
	c->few_threads = !one_thread_per_edge(lm, c) && !c->one_thread;
}

long lock_cycles_find(const struct lock_model *lm, struct lock_cycle **out,
		      size_t max)
{
	*out = NULL;
	if (!lm->n_edges)
		return 0;
	struct adj a = { 0 };
	int64_t *via = malloc(2 * lm->n_locks * sizeof(*via));
	uint32_t *queue = malloc(2 * lm->n_locks * sizeof(*queue));
	uint32_t *prev = malloc(2 * lm->n_locks * sizeof(*prev));
	struct lock_cycle *cs = calloc(max ? max : 1, sizeof(*cs));
	uint32_t *comp = NULL;
	long found = 0;
	if (!via || !queue || !prev || !cs || adj_build(lm, &a) < 0 ||
	    !(comp = components(lm, &a))) {
		found = -1;
		goto done;
	}
	for (size_t i = 0; i < 2 * lm->n_locks; i++)
		via[i] = -2;                  /* unvisited */
	size_t scanned = 0;
	for (size_t i = 0; i < lm->n_edges && scanned < MAX_EDGES_SCANNED &&
			   (size_t)found < max; i++) {
		const struct lock_edge *e = &lm->edges[i];
		if (!e->count || comp[e->from] != comp[e->to])
			continue;
		scanned++;
		uint32_t path[65];
		size_t n = shortest_back(lm, &a, comp, (uint32_t)i, path, via,
					 prev, queue);
		if (!n)
			continue;
		canonical(path, n);
		bool dup = false;
		for (long k = 0; k < found && !dup; k++)
			dup = cs[k].n == n &&
			      !memcmp(cs[k].e, path, n * sizeof(*path));
		if (dup)
			continue;
		cs[found].e = malloc(n * sizeof(*path));
		if (!cs[found].e) {
			found = -1;
			goto done;
		}
		memcpy(cs[found].e, path, n * sizeof(*path));
		cs[found].n = n;
		cs[found].tid = calloc(n, sizeof(*cs[found].tid));
		if (!cs[found].tid) {
			found = -1;
			goto done;
		}
		classify(lm, &cs[found]);
		found++;
	}
done:
	free(comp);
	free(via);
	free(queue);
	free(prev);
	free(a.start);
	free(a.e);
	if (found < 0) {
		lock_cycles_free(cs, max);
		return -1;
	}
	*out = cs;
	return found;
}

void lock_cycles_free(struct lock_cycle *c, size_t n)
{
	if (!c)
		return;
	for (size_t i = 0; i < n; i++) {
		free(c[i].e);
		free(c[i].tid);
	}
	free(c);
}
