/* heap_frag.c: fragmentation snapshots (heap_frag.h). */
#include "heap_frag.h"

#include <stdlib.h>
#include <string.h>

#include "trace_decode.h"
#include "trace_format.h"
#include "u64map.h"

struct blk {
	uint64_t addr, size;
};

static int by_addr(const void *a, const void *b)
{
	const struct blk *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

struct collect {
	struct blk *v;
	size_t n;
};

static int take(uint64_t key, uint64_t val, void *arg)
{
	struct collect *c = arg;
	c->v[c->n++] = (struct blk){ key, val };
	return 0;
}

static void read_info(const struct trace_model *m, const struct trace_event *e,
		      struct heap_info *hi)
{
	if (e->b > m->size || e->a > m->size - e->b)
		return;
	struct trace_cursor c = trace_cursor_make(m->data + e->b, e->a);
	uint64_t v[11] = { 0 };
	for (int i = 0; i < 11; i++)
		if (trace_get_varint(&c, &v[i]) < 0)
			return;
	*hi = (struct heap_info){ true, v[0], v[1], v[2], v[3], v[4], v[5],
				  v[6], v[7], v[8], v[9], v[10] };
}

static uint64_t chunk_size(uint64_t size)
{
	uint64_t c = (size + 8 + 15) & ~(uint64_t)15;
	return c < 32 ? 32 : c;
}

static unsigned bucket(uint64_t v)
{
	unsigned b = 0;
	while (v > 1 && b < HEAP_FRAG_BUCKETS - 1) {
		v >>= 1;
		b++;
	}
	return b;
}

int heap_frag_at(const struct trace_model *m, const struct trace_event *upto,
		 struct heap_frag *f)
{
	struct u64map live = U64MAP_INIT;
	memset(f, 0, sizeof(*f));
	f->fail = upto;
	size_t end = upto ? (size_t)(upto - m->events) : m->n_events;
	for (size_t i = 0; i < end; i++) {
		const struct trace_event *e = &m->events[i];
		switch (e->kind) {
		case TRACE_ALLOC:
			if (u64map_put(&live, e->a, e->c) < 0)
				goto no_memory;
			break;
		case TRACE_FREE:
			u64map_remove(&live, e->a, NULL);
			break;
		case TRACE_REALLOC:
			if (e->b == 0 && e->c > 0)
				break;
			if (e->a)
				u64map_remove(&live, e->a, NULL);
			if (e->b && u64map_put(&live, e->b, e->c) < 0)
				goto no_memory;
			break;
		case TRACE_HEAP_INFO:
			read_info(m, e, &f->info);
			break;
		default:
			break;
		}
	}
	/* the allocator's view right after the failure */
	if (upto)
		for (size_t i = end; i < m->n_events && i < end + 4; i++)
			if (m->events[i].kind == TRACE_HEAP_INFO)
				read_info(m, &m->events[i], &f->info);
	f->ts = upto ? upto->ts : m->last_ts;
	for (size_t i = 0; i < m->n_modules; i++)
		if (m->modules[i].path.len == 6 &&
		    !memcmp(m->modules[i].path.p, "[heap]", 6)) {
			f->heap_start = m->modules[i].start;
			break;
		}
	struct collect c = { malloc((live.len ? live.len : 1) * sizeof(struct blk)), 0 };
	if (!c.v)
		goto no_memory;
	u64map_each(&live, take, &c);
	qsort(c.v, c.n, sizeof(*c.v), by_addr);
	for (size_t i = 0; i < c.n; i++) {
		f->live_blocks++;
		f->live_bytes += c.v[i].size;
	}
	if (f->heap_start) {
		uint64_t limit = f->info.valid && f->info.arena
			? f->heap_start + f->info.arena : f->heap_start + (1ull << 32);
		uint64_t at = f->heap_start, last_end = f->heap_start;
		for (size_t i = 0; i < c.n; i++) {
			const struct blk *b = &c.v[i];
			if (b->addr < f->heap_start + 16 || b->addr >= limit)
				continue;
			uint64_t cs = b->addr - 16, ce = cs + chunk_size(b->size);
			if (cs > at && cs - at >= 32 && at != f->heap_start) {
				uint64_t h = cs - at;
				f->holes++;
				f->free_bytes += h;
				f->hist[bucket(h)]++;
				if (h > f->largest_hole)
					f->largest_hole = h;
			}
			f->heap_live_blocks++;
			f->heap_live_bytes += b->size;
			if (ce > at)
				at = ce;
			last_end = at;
		}
		f->heap_end = f->info.valid && f->info.arena ? limit : last_end;
		if (f->heap_end < last_end)
			f->heap_end = last_end;
		f->top_bytes = f->heap_end - last_end;
		uint64_t total = f->free_bytes + f->top_bytes;
		uint64_t big = f->largest_hole > f->top_bytes ? f->largest_hole
							       : f->top_bytes;
		f->external = total ? 1.0 - (double)big / (double)total : 0;
		/* the strip: the share of each cell that live blocks cover */
		uint64_t span = f->heap_end > f->heap_start ? f->heap_end - f->heap_start : 1;
		double cover[HEAP_FRAG_STRIP] = { 0 };
		double cell = (double)span / HEAP_FRAG_STRIP;
		for (size_t i = 0; i < c.n; i++) {
			const struct blk *b = &c.v[i];
			if (b->addr < f->heap_start || b->addr >= f->heap_end)
				continue;
			double s = (double)(b->addr - 16 - f->heap_start);
			double e = s + (double)chunk_size(b->size);
			for (int k = (int)(s / cell); k < HEAP_FRAG_STRIP && k * cell < e; k++) {
				double lo = k * cell > s ? k * cell : s;
				double hi = (k + 1) * cell < e ? (k + 1) * cell : e;
				if (hi > lo)
					cover[k] += (hi - lo) / cell;
			}
		}
		for (int k = 0; k < HEAP_FRAG_STRIP; k++)
			f->strip[k] = cover[k] >= 0.9 ? '#' : cover[k] >= 0.5 ? '+'
				: cover[k] > 0 ? '-' : '.';
		f->strip[HEAP_FRAG_STRIP] = '\0';
	}
	free(c.v);
	u64map_release(&live);
	return 0;
no_memory:
	u64map_release(&live);
	return -1;
}

bool heap_frag_is_bad(const struct heap_frag *f)
{
	uint64_t span = f->heap_end - f->heap_start;
	return f->free_bytes >= (1u << 20) && f->holes >= 16 &&
	       span && f->free_bytes * 4 >= span && f->external >= 0.5;
}
