/* heap_replay.c: the live heap, replayed from alloc/free/realloc events. */
#include "heap_replay.h"

#include <string.h>

struct replay {
	struct heap_stats *st;
	struct u64map live;
};

static int take(struct replay *r, uint64_t addr, uint64_t size, uint64_t ts)
{
	struct heap_stats *st = r->st;
	uint64_t old;
	if (u64map_remove(&r->live, addr, &old)) {
		/* The address was handed out again without a free we saw:
		 * count it and replace the old block. */
		st->reused_live++;
		st->live_blocks--;
		st->live_bytes -= old;
	}
	if (u64map_put(&r->live, addr, size) < 0)
		return -1;
	st->live_blocks++;
	st->live_bytes += size;
	st->allocated_bytes += size;
	if (st->live_bytes > st->peak_bytes) {
		st->peak_bytes = st->live_bytes;
		st->peak_blocks = st->live_blocks;
		st->peak_ts = ts;
	}
	return 0;
}

static void release(struct replay *r, uint64_t addr)
{
	struct heap_stats *st = r->st;
	uint64_t size;
	if (!addr) {
		st->null_frees++;
		return;
	}
	if (!u64map_remove(&r->live, addr, &size)) {
		st->unknown_frees++;
		return;
	}
	st->live_blocks--;
	st->live_bytes -= size;
}

static void count_call(struct heap_stats *st, uint8_t fn)
{
	st->calls[fn < TRACE_FN_MAX ? fn : TRACE_FN_MAX]++;
}

int heap_replay(const struct trace_model *m, struct heap_stats *st,
		struct u64map *live)
{
	struct replay r = { .st = st, .live = U64MAP_INIT };
	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		struct heap_change c;
		if (!heap_change_of(e, &c))
			continue;
		count_call(st, e->fn);
		if (e->kind == TRACE_REALLOC && !c.ended && !c.started && e->c) {
			st->failed_reallocs++; /* the old block stays */
			continue;
		}
		if (c.ended || e->kind == TRACE_FREE)
			release(&r, c.ended); /* free(NULL) counts as such */
		if (c.started && take(&r, c.started, c.size, e->ts) < 0)
			goto no_memory;
	}
	if (live)
		*live = r.live;
	else
		u64map_release(&r.live);
	return 0;
no_memory:
	u64map_release(&r.live);
	return -1;
}
