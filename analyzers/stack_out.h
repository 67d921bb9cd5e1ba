/* stack_out.h: prints call stacks, symbolized, as text lines or as the JSON
 * frame objects of the contract in DESIGN.md ({"function", "file", "line",
 * "module", "address"}).
 */
#ifndef SPY_STACK_OUT_H
#define SPY_STACK_OUT_H

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

#endif
