/* cmd_fragmentation.c: `analyze fragmentation TRACE`: the heap when an
 * allocation failed, at the end, and over time (heap_every=): live bytes,
 * the footprint, holes, the largest hole, external fragmentation, a strip
 * picture, the hole sizes and the allocator's own figures. Every line fits
 * 80 columns. --svg draws the heap and the series instead. (--compare A B:
 * cmd_frag_compare.c.) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "frag_out.h"
#include "frag_svg.h"
#include "heap_frag.h"
#include "json_writer.h"
#include "report_html.h"
#include "trace_format.h"
#include "text_out.h"

/* the most rows the text table of the series shows */
#define SERIES_ROWS 24

static void print_allocator(const struct heap_frag *f)
{
	const struct heap_info *i = &f->info;
	char a[16], b[16], c[16], d[16], e[16], g[16];
	text_size(a, sizeof(a), i->arena);
	text_size(b, sizeof(b), i->fordblks);
	text_size(c, sizeof(c), i->hblkhd);
	printf("  glibc says    heap %s, %s free in %" PRIu64 " chunk%s,\n"
	       "                mapped %s in %" PRIu64 " block%s\n",
	       a, b, i->ordblks, text_plural(i->ordblks, "", "s"), c,
	       i->hblks, text_plural(i->hblks, "", "s"));
	if (i->allocator == HEAP_JEMALLOC) {
		text_size(a, sizeof(a), i->je_allocated);
		text_size(b, sizeof(b), i->je_active);
		text_size(c, sizeof(c), i->je_mapped);
		text_size(d, sizeof(d), i->je_resident);
		text_size(e, sizeof(e), i->je_retained);
		text_size(g, sizeof(g), i->je_metadata);
		printf("  jemalloc says allocated %s, active %s, mapped %s,\n"
		       "                resident %s, retained %s, metadata %s\n",
		       a, b, c, d, e, g);
	}
	text_size(a, sizeof(a), i->rss);
	text_size(b, sizeof(b), i->vm_size);
	printf("  memory        RSS %s, address space %s", a, b);
	if (i->as_limit) {
		text_size(c, sizeof(c), i->as_limit);
		printf(", RLIMIT_AS %s", c);
	}
	printf("\n");
}

static void print_hist(const struct heap_frag *f)
{
	for (unsigned k = 0; k < HEAP_FRAG_BUCKETS; k++)
		if (f->hist[k])
			printf("  holes of %8" PRIu64 "..%-8" PRIu64 " bytes: %"
			       PRIu64 "\n", (uint64_t)1 << k,
			       ((uint64_t)2 << k) - 1, f->hist[k]);
}

static void print_holes(const struct heap_frag *f)
{
	char a[16], b[16];
	text_size(a, sizeof(a), f->heap_end - f->heap_start);
	text_size(b, sizeof(b), f->heap_live_bytes);
	printf("  brk heap      %s at 0x%" PRIx64 ", %s of it live\n", a,
	       f->heap_start, b);
	text_size(a, sizeof(a), f->free_bytes);
	printf("  holes         %" PRIu64 ", %s free, the largest %" PRIu64
	       " byte%s\n", f->holes, a, f->largest_hole,
	       text_plural(f->largest_hole, "", "s"));
	text_size(a, sizeof(a), f->top_bytes);
	printf("  top           %s free after the last block\n", a);
	printf("  external fragmentation %.2f (1 - largest free region / free "
	       "bytes)\n", f->external);
	printf("  [%s]\n", f->strip);
	printf("   # live  + mostly live  - partly live  . free\n");
	print_hist(f);
	if (f->arena_spans) {
		text_size(a, sizeof(a), f->arena_live_bytes);
		text_size(b, sizeof(b), f->arena_free_bytes);
		printf("  other arenas  %" PRIu64 " heap%s of threads, %s live\n",
		       f->arena_spans, text_plural(f->arena_spans, "", "s"), a);
		printf("                %" PRIu64 " hole%s, %s free, the largest %"
		       PRIu64 " byte%s\n", f->arena_holes,
		       text_plural(f->arena_holes, "", "s"), b,
		       f->arena_largest_hole,
		       text_plural(f->arena_largest_hole, "", "s"));
	}
}

/* jemalloc's holes: the free regions of its slabs (each slab holds blocks
 * of one size class) and its free extents of pages. */
static void print_je_holes(const struct heap_frag *f)
{
	const struct heap_info *i = &f->info;
	char a[16], b[16];
	text_size(a, sizeof(a), i->je_region_bytes);
	printf("  holes         %" PRIu64 " free region%s in slabs, %s (the "
	       "largest %" PRIu64 " byte%s)\n", i->je_regions,
	       text_plural(i->je_regions, "", "s"), a, i->je_largest_region,
	       text_plural(i->je_largest_region, "", "s"));
	text_size(a, sizeof(a), i->je_extent_bytes);
	text_size(b, sizeof(b), i->je_largest_extent);
	printf("                %" PRIu64 " free extent%s of pages, %s (the "
	       "largest about %s;\n                jemalloc joins neighbouring "
	       "ones only when it needs to)\n", i->je_extents,
	       text_plural(i->je_extents, "", "s"), a, b);
	text_size(a, sizeof(a), f->free_bytes);
	printf("                %" PRIu64 " hole%s, %s free, the largest %"
	       PRIu64 " byte%s\n", f->holes, text_plural(f->holes, "", "s"),
	       a, f->largest_hole, text_plural(f->largest_hole, "", "s"));
	printf("  external fragmentation %.2f (1 - largest free region / free "
	       "bytes)\n", f->external);
	print_hist(f);
}

static void print_text(const struct trace_model *m, const struct heap_frag *f)
{
	char a[16], b[16], when[80];
	frag_moment(when, sizeof(when), m, f);
	if (f->when == HEAP_FRAG_FAILURE)
		printf("when %s:\n", when);
	else
		printf("at the end:\n");
	text_size(a, sizeof(a), f->live_bytes);
	printf("  live          %s in %" PRIu64 " block%s\n", a, f->live_blocks,
	       text_plural(f->live_blocks, "", "s"));
	text_size(a, sizeof(a), f->footprint);
	text_size(b, sizeof(b), f->footprint_free);
	printf("  footprint     %s, %s of it free (%s)\n", a, b,
	       heap_frag_allocator(f));
	if (heap_frag_has_layout(f))
		print_holes(f);
	else if (heap_frag_has_holes(f))
		print_je_holes(f);
	else if (f->info.allocator == HEAP_JEMALLOC)
		printf("  holes         not counted: this jemalloc keeps no "
		       "statistics of its free space\n");
	else
		printf("  (no [heap] in the trace's memory map)\n");
	if (f->info.valid)
		print_allocator(f);
	if (heap_frag_is_bad(f))
		printf("  => badly fragmented (see the fragmentation finding)\n");
}

/* The series as a table of at most SERIES_ROWS rows, evenly picked, the
 * last always shown. 73 columns. */
static void print_series(const struct trace_model *m,
			 const struct heap_frag *v, size_t n, size_t total)
{
	printf("over time: %zu snapshot%s (heap_every)", total,
	       text_plural(total, "", "s"));
	if (n > SERIES_ROWS)
		printf(", %d of them shown", SERIES_ROWS);
	printf("\n  %9s %9s %9s %9s %6s %9s %5s %9s\n", "time", "live",
	       "footprint", "free", "holes", "largest", "ext.", "RSS");
	size_t rows = n < SERIES_ROWS ? n : SERIES_ROWS;
	for (size_t r = 0; r < rows; r++) {
		size_t i = rows > 1 ? r * (n - 1) / (rows - 1) : 0;
		const struct heap_frag *f = &v[i];
		char t[48], live[16], foot[16], fr[16], big[16], rss[16];
		frag_moment(t, sizeof(t), m, f);
		text_size(live, sizeof(live), f->live_bytes);
		text_size(foot, sizeof(foot), f->footprint);
		text_size(fr, sizeof(fr), f->footprint_free);
		text_size(big, sizeof(big), f->largest_hole);
		text_size(rss, sizeof(rss), f->info.rss);
		if (heap_frag_has_holes(f))
			printf("  %9.9s %9s %9s %9s %6" PRIu64 " %9s %5.2f %9s\n",
			       t, live, foot, fr, f->holes, big, f->external,
			       rss);
		else
			printf("  %9.9s %9s %9s %9s %6s %9s %5s %9s\n", t, live,
			       foot, fr, "-", "-", "-", rss);
	}
}

/* One SVG document: the brk heap as blocks and holes at the moment the
 * HTML report draws (the first failure, else the end), then the series.
 * 0, or -1 out of memory. */
static int write_svg(const struct trace_model *m, const struct heap_frag *v,
		     size_t n)
{
	struct heap_snapshot s;
	if (heap_snapshot_take(m, &s) < 0)
		return -1;
	char *body = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&body, &len);
	if (!mem) {
		free(s.v);
		return -1;
	}
	int y = 0, rc = 0;
	if (heap_frag_has_layout(&s.frag) && s.frag.heap_end > s.frag.heap_start)
		rc = report_heap_picture(mem, &s, 0, 0, &y);
	if (n) {
		frag_svg_series(mem, m, v, n, 0, y ? y + 8 : 0);
		y += (y ? 8 : 0) + FRAG_SVG_H;
	}
	if (!y) {
		fprintf(mem, "<text x=\"4\" y=\"14\">no brk heap laid out by "
			"glibc to draw, and no heap_every snapshots</text>\n");
		y = 20;
	}
	fclose(mem);
	free(s.v);
	if (rc < 0) {
		free(body);
		return -1;
	}
	printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	       "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" "
	       "height=\"%d\" viewBox=\"0 0 760 %d\">\n<style>text{font:11px "
	       "sans-serif}.mono{font:11px monospace}</style>\n", y, y);
	fwrite(body, 1, len, stdout);
	printf("</svg>\n");
	free(body);
	return 0;
}

int cmd_fragmentation(const struct cmd_args *a)
{
	if (a->compare)
		return cmd_frag_compare(a);
	struct trace_model m;
	if (cmd_load(a->trace, &m))
		return 2;
	struct heap_frag snaps[4], *series = NULL;
	size_t n = 0, n_series = 0, total = 0;
	for (size_t i = 0; i < m.n_events && n < 3; i++)
		if (m.events[i].kind == TRACE_ALLOC_FAIL &&
		    heap_frag_at(&m, &m.events[i], &snaps[n++]) < 0)
			goto no_memory;
	if (heap_frag_at(&m, NULL, &snaps[n++]) < 0 ||
	    heap_frag_series(&m, &series, &n_series, &total) < 0)
		goto no_memory;
	int bad = 0;
	for (size_t i = 0; i < n; i++)
		bad |= heap_frag_is_bad(&snaps[i]) || snaps[i].fail;
	if (a->svg) {
		if (write_svg(&m, series, n_series) < 0) {
			free(series);
			goto no_memory;
		}
	} else if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 3);
		json_object_begin(&w);
		json_key(&w, "snapshots");
		json_array_begin(&w);
		for (size_t i = 0; i < n; i++)
			frag_json(&w, &m, &snaps[i]);
		json_array_end(&w);
		json_field_uint(&w, "series_total", total);
		json_key(&w, "series");
		json_array_begin(&w);
		for (size_t i = 0; i < n_series; i++)
			frag_json(&w, &m, &series[i]);
		json_array_end(&w);
		json_object_end(&w);
		fputc('\n', stdout);
	} else {
		for (size_t i = 0; i < n; i++) {
			if (i)
				printf("\n");
			print_text(&m, &snaps[i]);
		}
		if (n_series) {
			printf("\n");
			print_series(&m, series, n_series, total);
		}
	}
	free(series);
	trace_model_release(&m);
	return cmd_finish(bad ? 1 : 0);
no_memory:
	fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
	trace_model_release(&m);
	return 2;
}
