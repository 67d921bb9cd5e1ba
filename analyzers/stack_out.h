/* stack_out.h: prints call stacks, symbolized, as text lines or as the JSON
 * frame objects of the contract in DESIGN.md ({"function", "file", "line",
 * "module", "address"}), and orders stacks by the text they print, so that
 * views can tell rows apart that would read alike.
 */
#ifndef SPY_STACK_OUT_H
#define SPY_STACK_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json_writer.h"
#include "symbolize.h"
#include "text_out.h"

/* One line per frame, indented: "#0 function at file.c:12", or
 * "#1 ?? in /lib/libx.so+0x1234" when nothing better is known; calls
 * inlined at a frame come first, "#0 inlined helper at util.h:3". A
 * long function name keeps its line and the place goes on the next; a
 * name longer than the line loses its middle. Every line fits
 * TEXT_WIDTH. */
void stack_print_text(const struct text_out *t, struct symbolizer *sym,
		      const uint64_t *frames, size_t n, int indent);

/* A JSON array of frame objects, innermost first; a call inlined at an
 * address is a frame of its own with "inlined": true. */
void stack_print_json(struct json_writer *w, struct symbolizer *sym,
		      const uint64_t *frames, size_t n);

/* Orders two stacks by the text stack_print_text shows for them, frame by
 * frame from the innermost (a stack that is the start of another comes
 * first): 0 when they read alike, although their return addresses may
 * differ (two calls on one line). Without inlines, the calls inlined at a
 * frame are left out, as in views that print only the function holding
 * them. Cannot fail. */
int stack_text_cmp(struct symbolizer *sym, const uint64_t *a, size_t na,
		   const uint64_t *b, size_t nb, bool inlines);

/* One row of a view that prints a few frames of a stack under it. */
struct stack_row {
	const uint64_t *frames; /* innermost first; NULL when n is 0 */
	size_t n;
	size_t group;           /* rows of other groups read apart already */
	size_t depth;           /* set by stack_rows_apart */
};

/* Sets each row's depth, the frames to print from its first so that no
 * other row of its group reads the same: at least min (or all it has), and
 * on to the first frame where its text differs from the nearest other
 * row's. Rows whose whole stacks read alike cannot be told apart by their
 * frames: between them alone, min frames do. Returns 0, or -1 when memory
 * runs out (every depth is then min, or all a row has). */
int stack_rows_apart(struct symbolizer *sym, struct stack_row *v, size_t n,
		     size_t min, bool inlines);

#endif
