/* report_html_heap.c: the heap as blocks and holes, from the replayed
 * malloc-family events: the snapshot (heap_snapshot_take) and its picture. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "report_html.h"
#include "trace_format.h"
#include "u64map.h"

#define MMAP_SIZE (128u << 10)   /* glibc's default mmap threshold */
#define REGION_GAP (1u << 20)
#define MIN_CHUNK 32
#define CHECKPOINTS 64

static uint64_t chunk_of(uint64_t size)
{
	uint64_t c = (size + 8 + 15) & ~(uint64_t)15;
	return c < MIN_CHUNK ? MIN_CHUNK : c;
}

static int by_addr(const void *x, const void *y)
{
	const struct heap_block *a = x, *b = y;
	return a->addr < b->addr ? -1 : a->addr > b->addr;
}

struct collect {
	struct heap_block *v;
	size_t n;
	uint64_t big_blocks, big_bytes;
};

static int collect_one(uint64_t addr, uint64_t size, void *arg)
{
	struct collect *c = arg;
	if (size >= MMAP_SIZE) {
		c->big_blocks++;
		c->big_bytes += size;
		return 0;
	}
	c->v[c->n].addr = addr;
	c->v[c->n].size = size;
	c->n++;
	return 0;
}

/* Holes of the sorted blocks v[0..n) into s. */
static void measure(struct heap_snapshot *s)
{
	s->holes = s->hole_bytes = s->largest_hole = s->live_bytes = 0;
	s->regions = s->n ? 1 : 0;
	for (size_t i = 0; i < s->n; i++) {
		s->live_bytes += s->v[i].size;
		if (i + 1 == s->n)
			break;
		uint64_t end = s->v[i].addr + chunk_of(s->v[i].size);
		uint64_t next = s->v[i + 1].addr;
		if (next <= end)
			continue;
		uint64_t gap = next - end;
		if (gap >= REGION_GAP) {
			s->regions++;
		} else if (gap >= MIN_CHUNK) {
			s->holes++;
			s->hole_bytes += gap;
			if (gap > s->largest_hole)
				s->largest_hole = gap;
		}
	}
}

static int checkpoint(const struct u64map *live, uint64_t ts,
		      struct heap_snapshot *best)
{
	struct collect c = { 0 };
	if (live->len && !(c.v = malloc(live->len * sizeof(*c.v))))
		return -1;
	u64map_each(live, collect_one, &c);
	qsort(c.v, c.n, sizeof(*c.v), by_addr);
	struct heap_snapshot s = { .ts = ts, .v = c.v, .n = c.n,
				   .big_blocks = c.big_blocks,
				   .big_bytes = c.big_bytes };
	measure(&s);
	/* The most bytes in holes wins; on a tie, the later moment. */
	if (!best->ts || s.hole_bytes >= best->hole_bytes) {
		free(best->v);
		*best = s;
	} else {
		free(s.v);
	}
	return 0;
}

static bool is_heap_event(const struct trace_event *e)
{
	return e->kind == TRACE_ALLOC || e->kind == TRACE_FREE ||
	       e->kind == TRACE_REALLOC;
}

int heap_snapshot_take(const struct trace_model *m, struct heap_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	size_t total = 0, seen = 0, next_cp = 1;
	for (size_t i = 0; i < m->n_events; i++)
		total += is_heap_event(&m->events[i]);
	if (!total)
		return 0;
	struct u64map live = U64MAP_INIT;
	uint64_t old;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		if (!is_heap_event(e))
			continue;
		/* The same replay as heap_replay.c. */
		if (e->kind == TRACE_ALLOC) {
			if (u64map_put(&live, e->a, e->c) < 0)
				goto no_memory;
		} else if (e->kind == TRACE_FREE) {
			u64map_remove(&live, e->a, &old);
		} else if (!(e->b == 0 && e->c > 0)) {
			if (e->a)
				u64map_remove(&live, e->a, &old);
			if (e->b && u64map_put(&live, e->b, e->c) < 0)
				goto no_memory;
		}
		seen++;
		if (seen * CHECKPOINTS >= next_cp * total) {
			while (seen * CHECKPOINTS >= next_cp * total)
				next_cp++;
			if (checkpoint(&live, e->ts, s) < 0)
				goto no_memory;
		}
	}
	u64map_release(&live);
	return 0;
no_memory:
	u64map_release(&live);
	free(s->v);
	memset(s, 0, sizeof(*s));
	return -1;
}

/* ---- the picture ---------------------------------------------------------- */

#define PIC_W 760
#define ROW_H 12
#define MAX_ROWS 10
#define MAX_REGIONS 4
#define LEVELS 4

struct region {
	size_t from, to;         /* blocks [from, to) */
	uint64_t lo, hi;
};

static int by_span(const void *x, const void *y)
{
	const struct region *a = x, *b = y;
	uint64_t sa = a->hi - a->lo, sb = b->hi - b->lo;
	return sa > sb ? -1 : sa < sb;
}

static int by_lo(const void *x, const void *y)
{
	const struct region *a = x, *b = y;
	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* Adds the part of [a, b) that falls in each cell of size per. */
static void cover(double *cells, size_t n_cells, uint64_t lo, uint64_t per,
		  uint64_t a, uint64_t b)
{
	if (a < lo)
		a = lo;
	while (a < b) {
		size_t c = (a - lo) / per;
		if (c >= n_cells)
			return;
		uint64_t cell_end = lo + (c + 1) * per;
		uint64_t e = b < cell_end ? b : cell_end;
		cells[c] += (double)(e - a);
		a = e;
	}
}

/* One strip: the blocks of r drawn over [r->lo, r->hi); rows 0 picks as
 * many rows as the span needs. *largest_at receives where the region's
 * largest hole starts. */
static void strip(FILE *f, const struct heap_snapshot *s,
		  const struct region *r, int y0, int rows, const char *title,
		  int *height, uint64_t *largest_where)
{
	uint64_t span = r->hi - r->lo;
	if (!rows)
		rows = (int)(span / (64u << 10)) + 1;
	if (rows > MAX_ROWS)
		rows = MAX_ROWS;
	size_t n_cells = (size_t)PIC_W * rows;
	uint64_t per = (span + n_cells - 1) / n_cells;
	if (per == 0)
		per = 1;
	n_cells = (size_t)((span + per - 1) / per);
	double *cells = calloc(n_cells ? n_cells : 1, sizeof(double));
	if (!cells) {
		*height = 0;
		return;
	}
	uint64_t largest = 0, largest_at = 0;
	for (size_t i = r->from; i < r->to; i++) {
		const struct heap_block *b = &s->v[i];
		if (b->addr >= r->hi || b->addr + b->size <= r->lo)
			continue;
		cover(cells, n_cells, r->lo, per, b->addr, b->addr + b->size);
		if (i + 1 < r->to) {
			uint64_t end = b->addr + chunk_of(b->size);
			uint64_t next = s->v[i + 1].addr;
			if (next > end && next - end > largest &&
			    end >= r->lo && next <= r->hi) {
				largest = next - end;
				largest_at = end;
			}
		}
	}
	*largest_where = largest ? largest_at : 0;
	fprintf(f, "<text x=\"4\" y=\"%d\" class=\"mono\">%s0x%" PRIx64
		" &#8211; 0x%" PRIx64 " (one pixel is %" PRIu64 " byte%s)</text>\n",
		y0 + 11, title, r->lo, r->hi, per, per == 1 ? "" : "s");
	int top = y0 + 16;
	fprintf(f, "<rect x=\"0\" y=\"%d\" width=\"%d\" height=\"%d\" "
		"fill=\"#f7d9c4\"/>\n", top, PIC_W, rows * ROW_H);
	for (int row = 0; row < rows; row++) {
		size_t base = (size_t)row * PIC_W;
		int run_level = 0, run_start = 0;
		for (int x = 0; x <= PIC_W; x++) {
			int level = 0;
			if (x < PIC_W && base + x < n_cells) {
				double frac = cells[base + x] / (double)per;
				level = frac <= 0.0 ? 0 : frac >= 0.95 ? LEVELS
					: 1 + (int)(frac * (LEVELS - 1));
			}
			if (level == run_level)
				continue;
			if (run_level)
				fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" "
					"height=\"%d\" fill=\"#2f5f9e\" "
					"fill-opacity=\"%.2f\"/>\n", run_start,
					top + row * ROW_H, x - run_start, ROW_H,
					(double)run_level / LEVELS);
			run_level = level;
			run_start = x;
		}
	}
	if (largest) {
		uint64_t c = (largest_at - r->lo) / per;
		int w = (int)(largest / per);
		fprintf(f, "<rect class=\"largest-hole\" x=\"%d\" y=\"%d\" "
			"width=\"%d\" height=\"%d\" fill=\"none\" "
			"stroke=\"#c62828\" stroke-width=\"2\"/>\n",
			(int)(c % PIC_W), top + (int)(c / PIC_W) * ROW_H,
			w < 3 ? 3 : w > PIC_W ? PIC_W : w, ROW_H);
	}
	free(cells);
	*height = 16 + rows * ROW_H + 10;
}

int report_html_heap(const struct html_page *p)
{
	FILE *f = p->f;
	struct heap_snapshot s;
	if (heap_snapshot_take(p->m, &s) < 0)
		return -1;
	if (!s.n) {
		fprintf(f, "<p id=\"heap-empty\">No heap blocks below 128 KiB were "
			"live at any moment the trace shows%s.</p>\n",
			s.big_blocks ? " (the big ones are served by mmap)" : "");
		free(s.v);
		return 0;
	}
	struct region *r = calloc(s.regions ? s.regions : 1, sizeof(*r));
	if (!r) {
		free(s.v);
		return -1;
	}
	size_t nr = 0;
	r[0].from = 0;
	r[0].lo = s.v[0].addr;
	for (size_t i = 0; i < s.n; i++) {
		uint64_t end = s.v[i].addr + chunk_of(s.v[i].size);
		bool last = i + 1 == s.n;
		if (last || (s.v[i + 1].addr > end &&
			     s.v[i + 1].addr - end >= REGION_GAP)) {
			r[nr].to = i + 1;
			r[nr].hi = s.v[i].addr + s.v[i].size;
			nr++;
			if (!last) {
				r[nr].from = i + 1;
				r[nr].lo = s.v[i + 1].addr;
			}
		}
	}
	size_t shown = nr;
	if (shown > MAX_REGIONS) {
		qsort(r, nr, sizeof(*r), by_span);
		shown = MAX_REGIONS;
		qsort(r, shown, sizeof(*r), by_lo);
	}
	char live[32], holes[32], largest[32], when[32];
	html_bytes(live, sizeof(live), s.live_bytes);
	html_bytes(holes, sizeof(holes), s.hole_bytes);
	html_bytes(largest, sizeof(largest), s.largest_hole);
	html_ns(when, sizeof(when), trace_rel_ns(p->m, s.ts));
	fprintf(f, "<p>At %s: <b>%zu live blocks</b> (%s) in %" PRIu64
		" region%s; <b>%" PRIu64 " holes</b> holding %s; the largest "
		"hole is %s.", when, s.n, live, s.regions,
		s.regions == 1 ? "" : "s", s.holes, holes, largest);
	if (s.big_blocks) {
		char big[32];
		html_bytes(big, sizeof(big), s.big_bytes);
		fprintf(f, " %" PRIu64 " block%s of 128 KiB or more (%s) came "
			"from mmap and are not drawn.", s.big_blocks,
			s.big_blocks == 1 ? "" : "s", big);
	}
	if (nr > shown)
		fprintf(f, " The %zu widest of %zu regions are drawn.", shown, nr);
	fputs("</p>\n", f);

	/* Draw into a buffer first: the height is known at the end. */
	char *body = NULL;
	size_t body_len = 0;
	FILE *mem = open_memstream(&body, &body_len);
	if (!mem) {
		free(r);
		free(s.v);
		return -1;
	}
	int y = 4;
	uint64_t zoom_at = 0;
	const struct region *zoom_r = NULL;
	for (size_t i = 0; i < shown; i++) {
		int h = 0;
		uint64_t at = 0;
		strip(mem, &s, &r[i], y, 0, "", &h, &at);
		y += h;
		if (at && (!zoom_r || r[i].hi - r[i].lo > zoom_r->hi - zoom_r->lo)) {
			zoom_r = &r[i];
			zoom_at = at;
		}
	}
	/* A heap of megabytes shows its holes only up close: 16 bytes a
	 * pixel around the largest hole. */
	if (zoom_r && zoom_r->hi - zoom_r->lo > (uint64_t)PIC_W * 64) {
		struct region z = *zoom_r;
		uint64_t span = (uint64_t)PIC_W * 4 * 16;
		z.lo = zoom_at > z.lo + span / 4 ? zoom_at - span / 4 : z.lo;
		z.hi = z.lo + span < zoom_r->hi ? z.lo + span : zoom_r->hi;
		int h = 0;
		uint64_t at;
		strip(mem, &s, &z, y, 4, "close-up: ", &h, &at);
		y += h;
	}
	fprintf(mem, "<rect x=\"4\" y=\"%d\" width=\"12\" height=\"10\" "
		"fill=\"#2f5f9e\"/><text x=\"20\" y=\"%d\">live blocks</text>"
		"<rect x=\"110\" y=\"%d\" width=\"12\" height=\"10\" "
		"fill=\"#f7d9c4\"/><text x=\"126\" y=\"%d\">free room (holes, "
		"headers)</text><rect x=\"300\" y=\"%d\" width=\"12\" "
		"height=\"10\" fill=\"none\" stroke=\"#c62828\" stroke-width="
		"\"2\"/><text x=\"316\" y=\"%d\">the largest hole</text>\n",
		y, y + 9, y, y + 9, y, y + 9);
	y += 16;
	fclose(mem);
	fprintf(f, "<svg id=\"heap-picture\" xmlns=\"http://www.w3.org/2000/svg\""
		" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
		"data-live-blocks=\"%zu\" data-holes=\"%" PRIu64 "\" "
		"data-hole-bytes=\"%" PRIu64 "\" data-largest-hole=\"%" PRIu64
		"\">\n", PIC_W, y, PIC_W, y, s.n, s.holes, s.hole_bytes,
		s.largest_hole);
	fwrite(body, 1, body_len, f);
	fputs("</svg>\n", f);
	free(body);
	free(r);
	free(s.v);
	return 0;
}
