/* heap_history.c: the life of every recorded heap block, replayed in time
 * order with a map from a live address to its block.
 */
#include "heap_history.h"

#include <stdlib.h>
#include <string.h>

#include "heap_replay.h"
#include "trace_format.h"
#include "u64map.h"

static struct heap_life *add(struct heap_history *h)
{
	if (h->n == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 256;
		void *p = realloc(h->v, ncap * sizeof(*h->v));
		if (!p)
			return NULL;
		h->v = p;
		h->cap = ncap;
	}
	struct heap_life *b = &h->v[h->n++];
	memset(b, 0, sizeof(*b));
	return b;
}

/* Ends the live block at addr, if one is known there. */
static void end_block(struct heap_history *h, struct u64map *live, uint64_t addr,
		      const struct trace_event *e)
{
	uint64_t i;
	if (!addr || !u64map_remove(live, addr, &i))
		return;
	struct heap_life *b = &h->v[i];
	b->freed = true;
	b->free_ts = e->ts;
	b->free_stack = e->stack;
	b->free_tid = e->tid;
	b->free_fn = e->fn;
}

/* Which blocks a build keeps: all, or those that held one address. */
struct keep {
	bool all;
	uint64_t addr;
};

static int start_block(struct heap_history *h, struct u64map *live, uint64_t addr,
		       uint64_t size, const struct trace_event *e,
		       const struct keep *k)
{
	if (!addr)
		return 0;
	/* An address handed out again while we think it live: the free was
	 * not seen (say, before tracing started); the old block ends here. */
	end_block(h, live, addr, e);
	/* A block not kept is not tracked either: its free finds nothing. */
	if (!k->all && !(k->addr >= addr && k->addr - addr < (size ? size : 1)))
		return 0;
	struct heap_life *b = add(h);
	if (!b || u64map_put(live, addr, h->n - 1) < 0)
		return -1;
	b->addr = addr;
	b->size = size;
	b->alloc_ts = e->ts;
	b->alloc_stack = e->stack;
	b->alloc_tid = e->tid;
	b->alloc_fn = e->fn;
	return 0;
}

static int build(const struct trace_model *m, const struct keep *k,
		 struct heap_history *h)
{
	struct u64map live = U64MAP_INIT;
	memset(h, 0, sizeof(*h));
	int rc = 0;
	for (size_t i = 0; i < m->n_events && rc == 0; i++) {
		const struct trace_event *e = &m->events[i];
		struct heap_change c;
		if (!heap_change_of(e, &c))
			continue;
		end_block(h, &live, c.ended, e);
		rc = start_block(h, &live, c.started, c.size, e, k);
	}
	u64map_release(&live);
	if (rc < 0)
		heap_history_release(h);
	return rc;
}

int heap_history_build(const struct trace_model *m, struct heap_history *h)
{
	struct keep k = { .all = true };
	return build(m, &k, h);
}

int heap_history_build_at(const struct trace_model *m, uint64_t addr,
			  struct heap_history *h)
{
	struct keep k = { .addr = addr };
	return build(m, &k, h);
}

void heap_history_release(struct heap_history *h)
{
	free(h->v);
	memset(h, 0, sizeof(*h));
}

int heap_life_holds(const struct heap_life *b, uint64_t addr)
{
	return addr >= b->addr && addr - b->addr < (b->size ? b->size : 1);
}
