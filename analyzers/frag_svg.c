/* frag_svg.c: the heap over time as a line chart (frag_svg.h). */
#include "frag_svg.h"

#include <inttypes.h>

#include "frag_out.h"
#include "text_out.h"

#define LEFT 70
#define TOP 10
#define PLOT_W (FRAG_SVG_W - LEFT - 10)
#define PLOT_H 120

static void line(FILE *f, const struct trace_model *m,
		 const struct heap_frag *v, size_t n, int64_t t0, int64_t span,
		 uint64_t top, int which, const char *colour)
{
	fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
		"points=\"", colour);
	for (size_t i = 0; i < n; i++) {
		uint64_t val = which == 0 ? v[i].footprint
			: which == 1 ? v[i].live_bytes : v[i].footprint_free;
		double x = LEFT + (span ? (double)(trace_rel_ns(m, v[i].ts) - t0) /
				   (double)span * PLOT_W : 0);
		double y = TOP + PLOT_H - (double)val / (double)top * PLOT_H;
		fprintf(f, "%s%.1f,%.1f", i ? " " : "", x, y);
	}
	fputs("\"/>\n", f);
}

void frag_svg_series(FILE *f, const struct trace_model *m,
		     const struct heap_frag *v, size_t n, int x, int y)
{
	uint64_t top = 1;
	for (size_t i = 0; i < n; i++) {
		if (v[i].footprint > top)
			top = v[i].footprint;
		if (v[i].live_bytes > top)
			top = v[i].live_bytes;
	}
	int64_t t0 = trace_rel_ns(m, v[0].ts);
	int64_t span = trace_rel_ns(m, v[n - 1].ts) - t0;
	char a[16], b[48], c[48];
	text_size(a, sizeof(a), top);
	frag_moment(b, sizeof(b), m, &v[0]);
	frag_moment(c, sizeof(c), m, &v[n - 1]);
	fprintf(f, "<svg id=\"heap-over-time\" xmlns=\"http://www.w3.org/2000/svg\" "
		"x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		"role=\"img\" data-snapshots=\"%zu\">\n", x, y, FRAG_SVG_W,
		FRAG_SVG_H, FRAG_SVG_W, FRAG_SVG_H, n);
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
		"fill=\"#fafbfc\" stroke=\"#d5d9e0\"/>\n", LEFT, TOP, PLOT_W,
		PLOT_H);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n"
		"<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>\n",
		LEFT - 4, TOP + 10, a, LEFT - 4, TOP + PLOT_H);
	fprintf(f, "<text x=\"%d\" y=\"%d\">%s</text>\n<text x=\"%d\" y=\"%d\" "
		"text-anchor=\"end\">%s</text>\n", LEFT, TOP + PLOT_H + 14, b,
		LEFT + PLOT_W, TOP + PLOT_H + 14, c);
	line(f, m, v, n, t0, span, top, 0, "#8a8f98");
	line(f, m, v, n, t0, span, top, 1, "#2f5f9e");
	line(f, m, v, n, t0, span, top, 2, "#e07b39");
	int ly = TOP + PLOT_H + 30;
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"4\" "
		"fill=\"#8a8f98\"/><text x=\"%d\" y=\"%d\">footprint</text>"
		"<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"4\" "
		"fill=\"#2f5f9e\"/><text x=\"%d\" y=\"%d\">live</text>"
		"<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"4\" "
		"fill=\"#e07b39\"/><text x=\"%d\" y=\"%d\">free in the "
		"footprint</text>\n", LEFT, ly, LEFT + 16, ly + 5, LEFT + 100,
		ly, LEFT + 116, ly + 5, LEFT + 170, ly, LEFT + 186, ly + 5);
	fputs("</svg>\n", f);
}
