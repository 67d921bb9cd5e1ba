/* heap_frag.c: fragmentation snapshots (heap_frag.h). */
#include "heap_frag.h"

#include <stdlib.h>
#include <string.h>

#include "heap_replay.h"
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

/* 1 if libjemalloc is mapped: the allocator of a trace whose HEAP_INFO
 * records predate the allocator field. */
static bool jemalloc_mapped(const struct trace_model *m)
{
	for (size_t i = 0; i < m->n_modules; i++)
		if (memmem(m->modules[i].path.p, m->modules[i].path.len,
			   "libjemalloc", 11))
			return true;
	return false;
}

/* jemalloc's free space after its statistics (traces since it was
 * recorded); left out whole when any of it is missing or out of range. */
static void read_je_holes(struct trace_cursor *c, struct heap_info *hi)
{
	uint64_t v[7], b, n;
	for (int i = 0; i < 7; i++)
		if (trace_get_varint(c, &v[i]) < 0)
			return;
	if (v[6] > HEAP_FRAG_BUCKETS)
		return;
	uint64_t hist[HEAP_FRAG_BUCKETS] = { 0 };
	for (uint64_t i = 0; i < v[6]; i++) {
		if (trace_get_varint(c, &b) < 0 || trace_get_varint(c, &n) < 0 ||
		    b >= HEAP_FRAG_BUCKETS)
			return;
		hist[b] += n;
	}
	hi->je_holes = true;
	hi->je_regions = v[0];
	hi->je_region_bytes = v[1];
	hi->je_largest_region = v[2];
	hi->je_extents = v[3];
	hi->je_extent_bytes = v[4];
	hi->je_largest_extent = v[5];
	memcpy(hi->je_hist, hist, sizeof(hist));
}

static void read_info(const struct trace_model *m, const struct trace_event *e,
		      struct heap_info *hi)
{
	if (e->b > m->size || e->a > m->size - e->b)
		return;
	struct trace_cursor c = trace_cursor_make(m->data + e->b, e->a);
	uint64_t v[18] = { 0 };
	for (int i = 0; i < 11; i++)
		if (trace_get_varint(&c, &v[i]) < 0)
			return;
	/* later fields: the allocator, then jemalloc's statistics */
	if (trace_get_varint(&c, &v[11]) < 0)
		v[11] = jemalloc_mapped(m) ? HEAP_JEMALLOC : HEAP_GLIBC;
	else if (v[11] == HEAP_JEMALLOC)
		for (int i = 12; i < 18; i++)
			if (trace_get_varint(&c, &v[i]) < 0)
				break;
	*hi = (struct heap_info){ .valid = true, .reason = v[0],
		.arena = v[1], .ordblks = v[2], .fordblks = v[3], .hblks = v[4],
		.hblkhd = v[5], .uordblks = v[6], .keepcost = v[7], .rss = v[8],
		.as_limit = v[9], .vm_size = v[10], .allocator = v[11],
		.je_allocated = v[12], .je_active = v[13], .je_metadata = v[14],
		.je_resident = v[15], .je_mapped = v[16], .je_retained = v[17] };
	if (v[11] == HEAP_JEMALLOC)
		read_je_holes(&c, hi);
}

static uint64_t chunk_size(uint64_t size)
{
	uint64_t c = (size + 8 + 15) & ~(uint64_t)15;
	return c < 32 ? 32 : c;
}

/* A replay in progress: the live blocks after events [0, at). */
struct replay {
	struct u64map live;
	size_t at;
	struct heap_info info;  /* the latest HEAP_INFO so far */
};

/* Applies events up to (not including) end. 0, or -1 out of memory. */
static int replay_to(const struct trace_model *m, struct replay *r, size_t end)
{
	for (; r->at < end; r->at++) {
		const struct trace_event *e = &m->events[r->at];
		struct heap_change c;
		if (heap_change_of(e, &c)) {
			if (c.ended)
				u64map_remove(&r->live, c.ended, NULL);
			if (c.started && u64map_put(&r->live, c.started, c.size) < 0)
				return -1;
		} else if (e->kind == TRACE_HEAP_INFO) {
			read_info(m, e, &r->info);
		}
	}
	return 0;
}

/* Where the brk heap ends, 0 if unknown. glibc's figure for its arenas
 * (mallinfo2's arena) is the brk heap's size only while no other arena
 * holds blocks; otherwise the end map says, for the snapshot at the end. */
static uint64_t brk_end(const struct trace_model *m, const struct heap_frag *f)
{
	if (f->info.valid && f->info.arena && !f->arena_spans)
		return f->heap_start + f->info.arena;
	if (f->when != HEAP_FRAG_END)
		return 0;
	for (size_t i = m->end_map_from; i < m->n_end_map; i++)
		if (m->end_map[i].start == f->heap_start &&
		    m->end_map[i].path.len == 6 &&
		    !memcmp(m->end_map[i].path.p, "[heap]", 6))
			return m->end_map[i].end;
	return 0;
}

/* Lays the live blocks out on the brk heap, which ends at end (0: at its
 * last block, its top unknown): holes, top, strip. */
static void lay_out(struct heap_frag *f, const struct blk *v, size_t n,
		    uint64_t end)
{
	uint64_t limit = end ? end : f->heap_start + (1ull << 32);
	uint64_t at = f->heap_start, last_end = f->heap_start;
	for (size_t i = 0; i < n; i++) {
		const struct blk *b = &v[i];
		if (b->addr < f->heap_start + 16 || b->addr >= limit)
			continue;
		uint64_t cs = b->addr - 16, ce = cs + chunk_size(b->size);
		if (cs > at && cs - at >= 32 && at != f->heap_start) {
			uint64_t h = cs - at;
			f->holes++;
			f->free_bytes += h;
			f->hist[trace_hole_bucket(h)]++;
			if (h > f->largest_hole)
				f->largest_hole = h;
		}
		f->heap_live_blocks++;
		f->heap_live_bytes += b->size;
		if (ce > at)
			at = ce;
		last_end = at;
	}
	f->heap_end = end ? limit : last_end;
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
	for (size_t i = 0; i < n; i++) {
		const struct blk *b = &v[i];
		if (b->addr < f->heap_start + 16 || b->addr >= f->heap_end)
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

/* glibc's span for a thread's arena heap (HEAP_MAX_SIZE on 64 bits). */
#define ARENA_SPAN_SHIFT 26

/* A block glibc mapped on its own: past the mmap threshold (which only
 * grows from 128 KiB), and 16 bytes into a page. */
static bool mapped_alone(const struct blk *b)
{
	return b->size >= 128 * 1024 && (b->addr & 4095) == 16;
}

/* The holes between the blocks of the other arenas' heaps (v sorted). */
static void lay_out_arenas(struct heap_frag *f, const struct blk *v, size_t n)
{
	uint64_t span = UINT64_MAX, at = 0;
	for (size_t i = 0; i < n; i++) {
		const struct blk *b = &v[i];
		/* the brk heap grows up from near the program, far below the
		 * mappings the arenas live in */
		bool on_brk = f->heap_start && b->addr >= f->heap_start &&
			      b->addr - f->heap_start < ((uint64_t)1 << 32);
		if (on_brk || mapped_alone(b))
			continue;
		uint64_t cs = b->addr - 16, ce = cs + chunk_size(b->size);
		if (b->addr >> ARENA_SPAN_SHIFT != span) {
			span = b->addr >> ARENA_SPAN_SHIFT;
			f->arena_spans++;
		} else if (cs > at && cs - at >= 32) {
			uint64_t h = cs - at;
			f->arena_holes++;
			f->arena_free_bytes += h;
			if (h > f->arena_largest_hole)
				f->arena_largest_hole = h;
		}
		f->arena_live_bytes += b->size;
		if (ce > at)
			at = ce;
	}
}

/* jemalloc's holes as it counted them: its free regions and extents.
 * Nothing lies beyond a top here: what jemalloc holds and does not use
 * is all in them. */
static void count_je_holes(struct heap_frag *f)
{
	const struct heap_info *i = &f->info;
	if (!i->je_holes)
		return;
	f->holes = i->je_regions + i->je_extents;
	f->free_bytes = i->je_region_bytes + i->je_extent_bytes;
	f->largest_hole = i->je_largest_region > i->je_largest_extent
		? i->je_largest_region : i->je_largest_extent;
	memcpy(f->hist, i->je_hist, sizeof(f->hist));
	f->external = f->free_bytes
		? 1.0 - (double)f->largest_hole / (double)f->free_bytes : 0;
}

/* The footprint: the allocator's own memory (jemalloc's mapped extents;
 * glibc's arenas, every thread's, and its mmapped blocks), or the brk
 * heap as laid out when the trace has no HEAP_INFO. Its free part is what
 * the replayed live blocks leave, not the allocator's count of bytes in
 * use: that one includes the blocks libspy's quarantine holds back. */
static void footprint(struct heap_frag *f)
{
	const struct heap_info *i = &f->info;
	if (!i->valid)
		f->footprint = f->heap_end - f->heap_start;
	else if (i->allocator == HEAP_JEMALLOC)
		f->footprint = i->je_mapped;
	else
		f->footprint = i->arena + i->hblkhd;
	f->footprint_free = f->footprint > f->live_bytes
		? f->footprint - f->live_bytes : 0;
}

/* The snapshot of r's current state. 0, or -1 out of memory. */
static int snapshot(const struct trace_model *m, const struct replay *r,
		    struct heap_frag *f)
{
	f->info = r->info;
	for (size_t i = 0; i < m->n_modules; i++)
		if (m->modules[i].path.len == 6 &&
		    !memcmp(m->modules[i].path.p, "[heap]", 6)) {
			f->heap_start = m->modules[i].start;
			break;
		}
	struct collect c = { malloc((r->live.len ? r->live.len : 1) *
				    sizeof(struct blk)), 0 };
	if (!c.v)
		return -1;
	u64map_each(&r->live, take, &c);
	qsort(c.v, c.n, sizeof(*c.v), by_addr);
	for (size_t i = 0; i < c.n; i++) {
		f->live_blocks++;
		f->live_bytes += c.v[i].size;
	}
	if (f->info.allocator != HEAP_JEMALLOC)
		lay_out_arenas(f, c.v, c.n);
	if (f->info.allocator == HEAP_JEMALLOC)
		count_je_holes(f);
	else if (f->heap_start)
		lay_out(f, c.v, c.n, brk_end(m, f));
	footprint(f);
	free(c.v);
	return 0;
}

int heap_frag_at(const struct trace_model *m, const struct trace_event *upto,
		 struct heap_frag *f)
{
	struct replay r = { .live = U64MAP_INIT };
	memset(f, 0, sizeof(*f));
	f->fail = upto;
	f->when = upto ? HEAP_FRAG_FAILURE : HEAP_FRAG_END;
	size_t end = upto ? (size_t)(upto - m->events) : m->n_events;
	if (replay_to(m, &r, end) < 0)
		goto no_memory;
	/* the allocator's view right after the failure */
	if (upto)
		for (size_t i = end; i < m->n_events && i < end + 4; i++)
			if (m->events[i].kind == TRACE_HEAP_INFO)
				read_info(m, &m->events[i], &r.info);
	f->ts = upto ? upto->ts : m->last_ts;
	if (snapshot(m, &r, f) < 0)
		goto no_memory;
	u64map_release(&r.live);
	return 0;
no_memory:
	u64map_release(&r.live);
	return -1;
}

static bool is_interval(const struct trace_model *m, const struct trace_event *e)
{
	if (e->kind != TRACE_HEAP_INFO)
		return false;
	struct heap_info hi = { 0 };
	read_info(m, e, &hi);
	return hi.valid && hi.reason == 2;
}

/* A snapshot costs its live blocks (sorted and laid out): a thousand
 * snapshots of a million live blocks each took minutes. The series keeps
 * to about this many blocks in all: fewer snapshots of a heap that big. */
#define SERIES_WORK (4u << 20)

/* The most blocks live at an interval snapshot. 0, or -1 out of memory. */
static int most_live(const struct trace_model *m, size_t *most)
{
	struct replay r = { .live = U64MAP_INIT };
	*most = 0;
	for (size_t i = 0; i < m->n_events; i++) {
		if (!is_interval(m, &m->events[i]))
			continue;
		if (replay_to(m, &r, i + 1) < 0) {
			u64map_release(&r.live);
			return -1;
		}
		if (r.live.len > *most)
			*most = r.live.len;
	}
	u64map_release(&r.live);
	return 0;
}

int heap_frag_series(const struct trace_model *m, struct heap_frag **out,
		     size_t *n, size_t *total)
{
	*out = NULL;
	*n = *total = 0;
	for (size_t i = 0; i < m->n_events; i++)
		*total += is_interval(m, &m->events[i]);
	if (!*total)
		return 0;
	size_t want = *total < HEAP_FRAG_SERIES_MAX ? *total : HEAP_FRAG_SERIES_MAX;
	size_t most;
	if (most_live(m, &most) < 0)
		return -1;
	if (most && want > SERIES_WORK / most)
		want = SERIES_WORK / most ? SERIES_WORK / most : 1;
	struct heap_frag *v = calloc(want, sizeof(*v));
	if (!v)
		return -1;
	struct replay r = { .live = U64MAP_INIT };
	size_t seen = 0;
	for (size_t i = 0; i < m->n_events && *n < want; i++) {
		if (!is_interval(m, &m->events[i]))
			continue;
		/* snapshot k of the total stands for pick k * total / want */
		if (seen++ != (*n * *total) / want)
			continue;
		if (replay_to(m, &r, i + 1) < 0)
			goto no_memory;
		struct heap_frag *f = &v[(*n)++];
		f->when = HEAP_FRAG_INTERVAL;
		f->ts = m->events[i].ts;
		if (snapshot(m, &r, f) < 0)
			goto no_memory;
	}
	u64map_release(&r.live);
	*out = v;
	return 0;
no_memory:
	u64map_release(&r.live);
	free(v);
	*n = 0;
	return -1;
}

bool heap_frag_has_holes(const struct heap_frag *f)
{
	if (f->info.allocator == HEAP_JEMALLOC)
		return f->info.je_holes;
	return f->heap_start != 0;
}

bool heap_frag_has_layout(const struct heap_frag *f)
{
	return f->heap_start && f->info.allocator != HEAP_JEMALLOC;
}

const char *heap_frag_allocator(const struct heap_frag *f)
{
	return f->info.allocator == HEAP_JEMALLOC ? "jemalloc" : "glibc";
}

bool heap_frag_slabs_bad(const struct heap_frag *f)
{
	const struct heap_info *i = &f->info;
	return i->allocator == HEAP_JEMALLOC && i->je_holes &&
	       i->je_region_bytes >= (1u << 20) && i->je_regions >= 16 &&
	       i->je_active && i->je_region_bytes * 4 >= i->je_active;
}

bool heap_frag_is_bad(const struct heap_frag *f)
{
	if (f->info.allocator == HEAP_JEMALLOC)
		return heap_frag_slabs_bad(f);
	if (!heap_frag_has_layout(f))
		return false;
	uint64_t span = f->heap_end - f->heap_start;
	return f->free_bytes >= (1u << 20) && f->holes >= 16 &&
	       span && f->free_bytes * 4 >= span && f->external >= 0.5;
}
