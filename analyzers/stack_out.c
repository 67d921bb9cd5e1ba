/* stack_out.c: symbolized stacks as text or JSON. */
#include "stack_out.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash[1] ? slash + 1 : path;
}

/* One line: "#N function at file:line", or without line information
 * "in module+0xOFFSET" (two calls of one function then read apart, and
 * addr2line finds the place). A function too long to share the line with
 * its place keeps the line to itself and the place goes under it; only a
 * name longer than a whole line loses its middle (--json has it whole). */
static void print_line(const struct text_out *t, size_t index, int indent,
		       bool inlined, const char *fn, const char *file,
		       unsigned line, const char *module, uint64_t offset)
{
	FILE *f = t->f;
	int used = fprintf(f, "%*s#%-2zu %s", indent, "", index,
			   inlined ? "inlined " : "");
	size_t room = TEXT_WIDTH > used + 1 ? TEXT_WIDTH - used - 1 : 8;
	char at[24] = "";
	const char *where = file ? base_name(file)
			    : module ? base_name(module) : NULL;
	size_t wlen = where ? strlen(where) : 0;
	if (file)
		snprintf(at, sizeof(at), ":%u", line);
	else if (module && !inlined)
		snprintf(at, sizeof(at), "+0x%" PRIx64, offset);
	size_t fcols = text_columns(fn, strlen(fn));
	size_t place = where ? text_columns(where, wlen) + strlen(at) + 4 : 0;
	text_put_fit(f, fn, strlen(fn), room);
	if (!where) {
		fputc('\n', f);
		return;
	}
	size_t pad = (size_t)indent + 4;
	if (fcols + place > room + 1) {
		/* The place on its own line, under the function. */
		fprintf(f, "\n%*s", (int)pad, "");
		room = TEXT_WIDTH - pad;
	} else {
		room = place;
	}
	fputs(text_style(t, STYLE_DIM), f);
	fputs(file ? " at " : " in ", f);
	text_put_fit(f, where, wlen, room - 4 - strlen(at));
	fputs(at, f);
	fputs(text_style(t, STYLE_PLAIN), f);
	fputc('\n', f);
}

void stack_print_text(const struct text_out *t, struct symbolizer *sym,
		      const uint64_t *frames, size_t n, int indent)
{
	FILE *f = t->f;
	for (size_t i = 0; i < n; i++) {
		const struct sym_frame *fr = symbolizer_lookup(sym, frames[i]);
		for (unsigned k = 0; k < fr->n_inl; k++) {
			const struct sym_inline *in = &fr->inl[k];
			print_line(t, i, indent, true,
				   in->function ? in->function : "??",
				   in->file, in->line, fr->module, fr->offset);
		}
		if (fr->function) {
			print_line(t, i, indent, false, fr->function, fr->file,
				   fr->line, fr->module, fr->offset);
			continue;
		}
		int used = fprintf(f, "%*s#%-2zu ", indent, "", i);
		size_t room = TEXT_WIDTH > used + 1 ? TEXT_WIDTH - used - 1 : 8;
		if (fr->module) {
			char off[24];
			int ol = snprintf(off, sizeof(off), "+0x%" PRIx64,
					  fr->offset);
			fputs("?? in ", f);
			text_put_fit(f, fr->module, strlen(fr->module),
				     room > (size_t)ol + 14 ? room - 6 - (size_t)ol
							    : 8);
			fputs(off, f);
		} else {
			fprintf(f, "?? 0x%" PRIx64, fr->address);
		}
		fputc('\n', f);
	}
}

static void frame_json(struct json_writer *w, const struct sym_frame *fr,
		       const char *function, const char *file,
		       unsigned line, bool inlined)
{
	json_object_begin(w);
	json_field_string(w, "function", function);
	json_field_string(w, "file", file);
	json_field_uint_or_null(w, "line", line && file, line);
	json_field_string(w, "module", fr->module);
	json_key(w, "address");
	json_hex(w, fr->address);
	json_key(w, "offset");
	if (fr->module)
		json_hex(w, fr->offset);
	else
		json_null(w);
	if (inlined) {
		json_field_bool(w, "inlined", true);
	}
	json_object_end(w);
}

void stack_print_json(struct json_writer *w, struct symbolizer *sym,
		      const uint64_t *frames, size_t n)
{
	json_array_begin(w);
	for (size_t i = 0; i < n; i++) {
		const struct sym_frame *fr = symbolizer_lookup(sym, frames[i]);
		for (unsigned k = 0; k < fr->n_inl; k++)
			frame_json(w, fr, fr->inl[k].function, fr->inl[k].file,
				   fr->inl[k].line, true);
		frame_json(w, fr, fr->function, fr->file, fr->line, false);
	}
	json_array_end(w);
}
