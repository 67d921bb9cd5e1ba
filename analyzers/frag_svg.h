/* frag_svg.h: the heap over time (heap_frag_series) as a small SVG line
 * chart: live bytes, the footprint and its free part, against the time of
 * the run. Used by the HTML report and `analyze fragmentation --svg`.
 */
#ifndef SPY_FRAG_SVG_H
#define SPY_FRAG_SVG_H

#include <stddef.h>
#include <stdio.h>

#include "heap_frag.h"
#include "trace_reader.h"

#define FRAG_SVG_W 760
#define FRAG_SVG_H 190

/* Writes one <svg id="heap-over-time"> element, FRAG_SVG_W by FRAG_SVG_H,
 * at (x, y) of an enclosing SVG (0, 0 in HTML); n must be at least 1.
 * Cannot fail. */
void frag_svg_series(FILE *f, const struct trace_model *m,
		     const struct heap_frag *v, size_t n, int x, int y);

#endif
