/* report_html_misc.c: two pictures: system calls per call site (from the
 * I/O model) and the process map (from the first module snapshot). */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "io_model.h"
#include "report_html.h"
#include "trace_format.h"

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
			s->calls == 1 ? "" : "s", bytes,
			s->calls ? (double)s->bytes / (double)s->calls : 0.0);
	}
	fputs("</svg>\n", f);
	if (io.n_sites > n)
		fprintf(f, "<p>%zu more call sites with fewer calls are not "
			"drawn.</p>\n", io.n_sites - n);
	fputs("<p>Red bars: more than a thousand calls moving under 16 bytes "
	      "each, where a buffer would make one call instead of "
	      "thousands.</p>\n", f);
	io_model_release(&io);
	return 0;
}

struct map_row {
	uint64_t start, end, prot;
	const struct trace_str *path;
};

static const char *kind_colour(const struct trace_str *path, uint64_t prot)
{
	if (path->len == 6 && !memcmp(path->p, "[heap]", 6))
		return "#e08a00";
	if (path->len >= 6 && !memcmp(path->p, "[stack", 6))
		return "#2e7d32";
	if (path->len && path->p[0] == '[')
		return "#8e8e8e";
	if (!path->len)
		return "#9c6ade";
	return prot & 1 ? "#1e6fd9" : "#7fa7e0";
}

int report_html_map(const struct html_page *p)
{
	FILE *f = p->f;
	const struct trace_model *m = p->m;
	struct map_row *rows = calloc(MAX_MAP_ROWS, sizeof(*rows));
	if (!rows)
		return -1;
	size_t n = 0, merged = 0, total = 0;
	uint64_t snap = m->n_modules ? m->modules[0].snapshot : 0;
	for (size_t i = 0; i < m->n_modules; i++) {
		const struct trace_module *x = &m->modules[i];
		if (x->snapshot != snap)
			continue;
		total++;
		/* One row per mapped object: neighbouring mappings of the
		 * same file (its text, rodata, data) join. */
		if (n && rows[n - 1].end == x->start &&
		    rows[n - 1].path->len == x->path.len &&
		    !memcmp(rows[n - 1].path->p, x->path.p, x->path.len) &&
		    x->path.len) {
			rows[n - 1].end = x->end;
			rows[n - 1].prot |= x->prot;
			merged++;
			continue;
		}
		if (n == MAX_MAP_ROWS)
			continue;
		rows[n].start = x->start;
		rows[n].end = x->end;
		rows[n].prot = x->prot;
		rows[n].path = &x->path;
		n++;
	}
	if (!n) {
		fputs("<p id=\"map-empty\">The trace holds no memory map.</p>\n", f);
		free(rows);
		return 0;
	}
	const int ROWH = 18, LEFT = 150, BAR = 260;
	int H = 10 + (int)n * ROWH;
	fprintf(f, "<svg id=\"process-map\" xmlns=\"http://www.w3.org/2000/svg\" "
		"width=\"900\" height=\"%d\" viewBox=\"0 0 900 %d\" role=\"img\" "
		"data-regions=\"%zu\">\n", H, H, n);
	for (size_t i = 0; i < n; i++) {
		const struct map_row *r = &rows[i];
		uint64_t size = r->end - r->start;
		double w = log2((double)size / 4096.0 + 1) / 36.0 * BAR;
		char sz[32];
		html_bytes(sz, sizeof(sz), size);
		int y = 6 + (int)i * ROWH;
		fprintf(f, "<g class=\"region\"><text x=\"4\" y=\"%d\" class="
			"\"mono\">%012" PRIx64 "</text><rect x=\"%d\" y=\"%d\" "
			"width=\"%.1f\" height=\"13\" fill=\"%s\"/><text x=\"%d\" "
			"y=\"%d\" class=\"mono\">%c%c%c %8s ", y + 11, r->start,
			LEFT, y, w < 2 ? 2 : w, kind_colour(r->path, r->prot),
			LEFT + BAR + 8, y + 11, r->prot & 4 ? 'r' : '-',
			r->prot & 2 ? 'w' : '-', r->prot & 1 ? 'x' : '-', sz);
		if (r->path->len)
			html_esc(f, r->path->p, r->path->len > 60 ? 60 : r->path->len);
		else
			fputs("(anonymous)", f);
		fputs("</text></g>\n", f);
	}
	fputs("</svg>\n", f);
	fprintf(f, "<p>%zu mappings at start", total);
	if (merged)
		fprintf(f, ", %zu joined with the mapping before them (same file)",
			merged);
	if (total - merged > n)
		fprintf(f, "; the first %zu rows are drawn", n);
	fputs(". Orange: the brk heap; green: the stack; blue: code and data of "
	      "the program and its libraries; purple: anonymous memory.</p>\n", f);
	free(rows);
	return 0;
}
