/* report_html_misc.c: two pictures: system calls per call site (from the
 * I/O model) and the process map (proc_map.h: at the end of the run). */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "io_model.h"
#include "map_out.h"
#include "proc_map.h"
#include "report_html.h"
#include "threads_model.h"
#include "trace_format.h"
#include "text_out.h"

#define MAX_SITES 16
#define MAX_MAP_ROWS 48

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s && s[1] ? s + 1 : path;
}

int report_html_syscalls(const struct html_page *p)
{
	FILE *f = p->f;
	struct io_model io = { 0 };
	if (io_model_build(p->m, &io) < 0)
		return -1;
	if (!io.n_sites) {
		fputs("<p id=\"syscalls-empty\">The trace holds no read or write "
		      "calls.</p>\n", f);
		io_model_release(&io);
		return 0;
	}
	size_t n = io.n_sites < MAX_SITES ? io.n_sites : MAX_SITES;
	uint64_t max_calls = 1;
	for (size_t i = 0; i < n; i++)
		if (io.sites[i].calls > max_calls)
			max_calls = io.sites[i].calls;
	const int LEFT = 300, BAR = 240, ROWH = 30;
	int H = 20 + (int)n * ROWH;
	fprintf(f, "<svg id=\"syscall-sites\" xmlns=\"http://www.w3.org/2000/svg\""
		" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
		"data-sites=\"%zu\">\n", LEFT + BAR + 220, H, LEFT + BAR + 220, H,
		io.n_sites);
	fprintf(f, "<text x=\"%d\" y=\"12\" fill=\"#667\">calls (log scale)"
		"</text>\n", LEFT);
	for (size_t i = 0; i < n; i++) {
		const struct io_site *s = &io.sites[i];
		const struct trace_stack *st = s->stack && s->stack <= p->m->n_stacks
			? &p->m->stacks[s->stack - 1] : NULL;
		const struct sym_frame *fr = NULL;
		if (st && st->n) {
			size_t k = io_user_frame(p->sym, st);
			fr = symbolizer_lookup(p->sym, st->frames[k < st->n ? k : 0]);
		}
		const struct io_desc *d = io_site_desc(&io, s);
		int y = 20 + (int)i * ROWH;
		fprintf(f, "<g class=\"site\"><text x=\"4\" y=\"%d\" class=\"mono\">"
			"%s(fd %" PRId64 "%s", y + 11, trace_io_fn_name(s->fn), s->fd,
			d ? ", " : "");
		if (d) {
			if (d->path.len)
				html_esc(f, d->path.p, d->path.len > 40 ? 40 : d->path.len);
			else
				fputs(trace_fd_type_name(d->type), f);
		}
		fprintf(f, ")</text><text x=\"4\" y=\"%d\" fill=\"#667\">", y + 24);
		if (fr && fr->function) {
			html_escz(f, fr->function);
			if (fr->file) {
				fputs(" at ", f);
				html_escz(f, base_name(fr->file));
				fprintf(f, ":%u", fr->line);
			}
		} else {
			fputs("call site unknown", f);
		}
		double w = log10((double)s->calls + 1) /
			   log10((double)max_calls + 1) * BAR;
		char bytes[32];
		html_bytes(bytes, sizeof(bytes), s->bytes);
		fprintf(f, "</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" "
			"height=\"14\" fill=\"%s\"/><text x=\"%.1f\" y=\"%d\">%"
			PRIu64 " call%s, %s, %.1f B/call</text></g>\n", LEFT, y + 1,
			w < 1 ? 1 : w, s->calls > 1000 && s->bytes < s->calls * 16
			? "#d32f2f" : "#1e6fd9", LEFT + w + 6, y + 12, s->calls,
			text_plural(s->calls, "", "s"), bytes,
			s->calls ? (double)s->bytes / (double)s->calls : 0.0);
	}
	fputs("</svg>\n", f);
	if (io.n_sites > n)
		fprintf(f, "<p>%zu more call %s with fewer calls %s not "
			"drawn.</p>\n", io.n_sites - n,
			text_plural(io.n_sites - n, "site", "sites"),
			text_plural(io.n_sites - n, "is", "are"));
	fputs("<p>Red bars: more than a thousand calls moving under 16 bytes "
	      "each, where a buffer would make one call instead of "
	      "thousands.</p>\n", f);
	io_model_release(&io);
	return 0;
}

/* A region's colour by what it is. */
static const char *kind_colour(const char *kind)
{
	static const struct {
		const char *kind, *colour;
	} colours[] = {
		{ "heap", "#e08a00" },     { "stack", "#2e7d32" },
		{ "guard", "#b71c1c" },    { "text", "#1e6fd9" },
		{ "read-only data", "#7fa7e0" }, { "data", "#5c8fd6" },
		{ "bss", "#9fc1ee" },      { "mmap", "#9c6ade" },
		{ "reserved", "#cfcfcf" }, { "kernel", "#8e8e8e" },
	};
	for (size_t i = 0; i < sizeof(colours) / sizeof(colours[0]); i++)
		if (!strcmp(kind, colours[i].kind))
			return colours[i].colour;
	return "#8e8e8e";
}

/* The process map as it was at the end of the run (the start when the
 * trace has no later one), the way `analyze map` shows it: pieces of one
 * mapping joined, stacks named by thread, and the heap blocks that fall
 * in each region. */
int report_html_map(const struct html_page *p)
{
	FILE *f = p->f;
	struct threads_model tm = { 0 };
	struct proc_maps pm = { 0 };
	int rc = -1;
	if (threads_model_build(p->m, &tm) < 0 ||
	    proc_maps_build(p->m, &tm, &pm) < 0)
		goto out;
	rc = 0;
	const struct proc_map *mp = pm.end.n ? &pm.end : &pm.start;
	bool at_end = mp == &pm.end;
	if (!mp->n) {
		fputs("<p id=\"map-empty\">The trace holds no memory map.</p>\n", f);
		goto out;
	}
	size_t n = mp->n < MAX_MAP_ROWS ? mp->n : MAX_MAP_ROWS;
	uint64_t blocks = 0;
	for (size_t i = 0; i < n; i++)
		blocks += mp->v[i].blocks.live;
	const int ROWH = 18, LEFT = 150, BAR = 220;
	int H = 10 + (int)n * ROWH;
	fprintf(f, "<svg id=\"process-map\" xmlns=\"http://www.w3.org/2000/svg\" "
		"width=\"900\" height=\"%d\" viewBox=\"0 0 900 %d\" role=\"img\" "
		"data-regions=\"%zu\" data-live-blocks=\"%" PRIu64 "\">\n", H, H,
		n, blocks);
	for (size_t i = 0; i < n; i++) {
		const struct map_region *r = &mp->v[i];
		uint64_t size = r->end - r->start;
		double w = log2((double)size / 4096.0 + 1) / 36.0 * BAR;
		char sz[32], what[256], prot[5];
		text_size(sz, sizeof(sz), size);
		map_prot_text(r->prot, prot);
		proc_map_describe(r, pm.main_tid, what, sizeof(what));
		int y = 6 + (int)i * ROWH;
		fprintf(f, "<g class=\"region\"><text x=\"4\" y=\"%d\" class="
			"\"mono\">%012" PRIx64 "</text><rect x=\"%d\" y=\"%d\" "
			"width=\"%.1f\" height=\"13\" fill=\"%s\"><title>",
			y + 11, r->start, LEFT, y, w < 2 ? 2 : w,
			kind_colour(r->kind));
		html_escz(f, r->kind);
		fprintf(f, "</title></rect><text x=\"%d\" y=\"%d\" class=\"mono\">"
			"%.3s %9s ", LEFT + BAR + 8, y + 11, prot, sz);
		html_esc(f, what, strnlen(what, 64));
		if (r->blocks.live) {
			char live[16];
			text_size(live, sizeof(live), r->blocks.live_bytes);
			fprintf(f, " \xe2\x80\x94 %" PRIu64 " live block%s (%s)",
				r->blocks.live, text_plural(r->blocks.live, "", "s"),
				live);
		}
		fputs("</text></g>\n", f);
	}
	fputs("</svg>\n", f);
	fprintf(f, "<p>%zu region%s at the %s of the run", mp->n,
		text_plural(mp->n, "", "s"), at_end ? "end" : "start");
	if (mp->n > n)
		fprintf(f, "; the first %zu are drawn", n);
	fputs(". Orange: the brk heap; green: stacks, red: their guard pages; "
	      "blue: code and data of the program and its libraries; purple: "
	      "anonymous memory (malloc's big blocks and arenas). Each region "
	      "says how many of the recorded heap blocks were still live in it "
	      "at the end; <code>analyze map</code> has the start and the end "
	      "side by side.</p>\n", f);
out:
	proc_maps_release(&pm);
	threads_model_release(&tm);
	return rc;
}
