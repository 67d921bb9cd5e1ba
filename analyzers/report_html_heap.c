/* report_html_heap.c: the heap as blocks and holes, from the replayed
 * malloc-family events: the snapshot (heap_snapshot_take) and its picture. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "frag_svg.h"
#include "heap_frag.h"
#include "report_html.h"
#include "trace_format.h"
#include "text_out.h"
#include "u64map.h"

#define MIN_CHUNK 32

/* glibc's chunk of a block of size bytes, as heap_frag.c counts it. */
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
	uint64_t lo, hi;
};

static int collect_one(uint64_t addr, uint64_t size, void *arg)
{
	struct collect *c = arg;
	if (addr < c->lo || addr >= c->hi)
		return 0;
	c->v[c->n].addr = addr;
	c->v[c->n].size = size;
	c->n++;
	return 0;
}

int heap_snapshot_take(const struct trace_model *m, struct heap_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	/* The moment `analyze fragmentation` looks at first: the first
	 * failed allocation, else the end. */
	const struct trace_event *upto = NULL;
	for (size_t i = 0; i < m->n_events && !upto; i++)
		if (m->events[i].kind == TRACE_ALLOC_FAIL)
			upto = &m->events[i];
	if (heap_frag_at(m, upto, &s->frag) < 0)
		return -1;
	if (!s->frag.heap_start || s->frag.heap_end <= s->frag.heap_start)
		return 0;
	struct u64map live = U64MAP_INIT;
	size_t end = upto ? (size_t)(upto - m->events) : m->n_events;
	for (size_t i = 0; i < end; i++) {
		const struct trace_event *e = &m->events[i];
		/* The same replay as heap_frag.c. */
		if (e->kind == TRACE_ALLOC) {
			if (u64map_put(&live, e->a, e->c) < 0)
				goto no_memory;
		} else if (e->kind == TRACE_FREE) {
			u64map_remove(&live, e->a, NULL);
		} else if (e->kind == TRACE_REALLOC && !(e->b == 0 && e->c > 0)) {
			if (e->a)
				u64map_remove(&live, e->a, NULL);
			if (e->b && u64map_put(&live, e->b, e->c) < 0)
				goto no_memory;
		}
	}
	struct collect c = { .lo = s->frag.heap_start + 16,
			     .hi = s->frag.heap_end };
	if (!(c.v = malloc((live.len ? live.len : 1) * sizeof(*c.v))))
		goto no_memory;
	u64map_each(&live, collect_one, &c);
	qsort(c.v, c.n, sizeof(*c.v), by_addr);
	s->v = c.v;
	s->n = c.n;
	u64map_release(&live);
	return 0;
no_memory:
	u64map_release(&live);
	return -1;
}

/* ---- the picture ---------------------------------------------------------- */

#define PIC_W 760
#define ROW_H 12
#define MAX_ROWS 10
#define LEVELS 4

struct region {
	size_t from, to;         /* blocks [from, to) */
	uint64_t lo, hi;
};

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
	/* Rows and cells counted without overflow: a span of 2^47 bytes or
	 * more made rows negative as an int, and span + n - 1 can wrap,
	 * either way asking calloc for span cells. */
	if (!rows)
		rows = span / (64u << 10) + 1 > MAX_ROWS
			? MAX_ROWS : (int)(span / (64u << 10)) + 1;
	if (rows > MAX_ROWS)
		rows = MAX_ROWS;
	size_t n_cells = (size_t)PIC_W * rows;
	uint64_t per = span / n_cells + (span % n_cells != 0);
	if (per == 0)
		per = 1;
	n_cells = (size_t)(span / per + (span % per != 0));
	double *cells = calloc(n_cells ? n_cells : 1, sizeof(double));
	if (!cells) {
		*height = 0;
		return;
	}
	uint64_t largest = 0, largest_at = 0;
	for (size_t i = r->from; i < r->to; i++) {
		const struct heap_block *b = &s->v[i];
		uint64_t cs = b->addr - 16, ce = cs + chunk_of(b->size);
		if (cs >= r->hi || ce <= r->lo)
			continue;
		cover(cells, n_cells, r->lo, per, cs, ce < r->hi ? ce : r->hi);
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
		y0 + 11, title, r->lo, r->hi, per, text_plural(per, "", "s"));
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

int report_heap_picture(FILE *f, const struct heap_snapshot *s, int x0,
			int y0, int *height)
{
	const struct heap_frag *h = &s->frag;
	/* Draw into a buffer first: the height is known at the end. */
	char *body = NULL;
	size_t body_len = 0;
	FILE *mem = open_memstream(&body, &body_len);
	if (!mem)
		return -1;
	struct region whole = { 0, s->n, h->heap_start, h->heap_end };
	int y = 4, ht = 0;
	uint64_t at = 0;
	strip(mem, s, &whole, y, 0, "", &ht, &at);
	y += ht;
	/* A heap of megabytes shows its holes only up close: 16 bytes a
	 * pixel around the largest hole. */
	if (at && h->heap_end - h->heap_start > (uint64_t)PIC_W * 64) {
		struct region z = whole;
		uint64_t span = (uint64_t)PIC_W * 4 * 16;
		z.lo = at > z.lo + span / 4 ? at - span / 4 : z.lo;
		z.hi = z.lo + span < whole.hi ? z.lo + span : whole.hi;
		uint64_t ignored;
		strip(mem, s, &z, y, 4, "close-up: ", &ht, &ignored);
		y += ht;
	}
	fprintf(mem, "<rect x=\"4\" y=\"%d\" width=\"12\" height=\"10\" "
		"fill=\"#2f5f9e\"/><text x=\"20\" y=\"%d\">live blocks</text>"
		"<rect x=\"110\" y=\"%d\" width=\"12\" height=\"10\" "
		"fill=\"#f7d9c4\"/><text x=\"126\" y=\"%d\">free (holes, the "
		"top)</text><rect x=\"270\" y=\"%d\" width=\"12\" "
		"height=\"10\" fill=\"none\" stroke=\"#c62828\" stroke-width="
		"\"2\"/><text x=\"286\" y=\"%d\">the largest hole</text>\n",
		y, y + 9, y, y + 9, y, y + 9);
	y += 16;
	fclose(mem);
	fprintf(f, "<svg id=\"heap-picture\" xmlns=\"http://www.w3.org/2000/svg\""
		" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\""
		" role=\"img\" data-live-blocks=\"%" PRIu64 "\" data-holes=\"%"
		PRIu64 "\" data-hole-bytes=\"%" PRIu64 "\" data-largest-hole=\"%"
		PRIu64 "\">\n", x0, y0, PIC_W, y, PIC_W, y, h->heap_live_blocks,
		h->holes, h->free_bytes, h->largest_hole);
	fwrite(body, 1, body_len, f);
	fputs("</svg>\n", f);
	free(body);
	*height = y;
	return 0;
}

/* The interval snapshots (heap_every=), when the trace has them. */
static int over_time(FILE *f, const struct trace_model *m)
{
	struct heap_frag *v;
	size_t n, total;
	if (heap_frag_series(m, &v, &n, &total) < 0)
		return -1;
	if (!n)
		return 0;
	fprintf(f, "<p>The heap over time: %zu snapshot%s (<code>heap_every"
		"</code>), the footprint, the live bytes and the free part of "
		"the footprint.</p>\n", total, text_plural(total, "", "s"));
	frag_svg_series(f, m, v, n, 0, 0);
	free(v);
	return 0;
}

int report_html_heap(const struct html_page *p)
{
	FILE *f = p->f;
	struct heap_snapshot s;
	if (heap_snapshot_take(p->m, &s) < 0)
		return -1;
	const struct heap_frag *h = &s.frag;
	char when[32], live[32], holes[32], largest[32], top[32], size[32];
	html_ns(when, sizeof(when), trace_rel_ns(p->m, h->ts));
	if (!h->heap_start || h->heap_end <= h->heap_start) {
		fprintf(f, "<p id=\"heap-empty\">The memory map has no brk heap "
			"(<code>[heap]</code>) to draw%s.</p>\n",
			h->live_blocks ? ": the live blocks are in mmap areas" : "");
		free(s.v);
		return over_time(f, p->m);
	}
	html_bytes(live, sizeof(live), h->heap_live_bytes);
	html_bytes(holes, sizeof(holes), h->free_bytes);
	html_bytes(largest, sizeof(largest), h->largest_hole);
	html_bytes(top, sizeof(top), h->top_bytes);
	html_bytes(size, sizeof(size), h->heap_end - h->heap_start);
	fprintf(f, "<p>%s %s (the moment <code>analyze fragmentation</code> "
		"looks at first): the brk heap is %s with <b>%" PRIu64 " live "
		"blocks</b> (%s); <b>%" PRIu64 " holes</b> between them hold %s, "
		"the largest hole is %s; %s free at the top.%s</p>\n",
		h->fail ? "Just before the failed allocation, at" : "At the end,",
		when, size, h->heap_live_blocks, live, h->holes, holes, largest,
		top, h->live_blocks > h->heap_live_blocks ?
		" Blocks outside the brk heap (big ones served by mmap, other "
		"threads' arenas) are not drawn." : "");
	int height;
	int rc = report_heap_picture(f, &s, 0, 0, &height);
	free(s.v);
	if (rc < 0)
		return -1;
	return over_time(f, p->m);
}
