/* stack_out.c: symbolized stacks as text or JSON. */
#include "stack_out.h"

#include <inttypes.h>
#include <string.h>

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash[1] ? slash + 1 : path;
}

void stack_print_text(const struct text_out *t, struct symbolizer *sym,
		      const uint64_t *frames, size_t n, int indent)
{
	FILE *f = t->f;
	for (size_t i = 0; i < n; i++) {
		const struct sym_frame *fr = symbolizer_lookup(sym, frames[i]);
		int used = fprintf(f, "%*s#%-2zu ", indent, "", i);
		size_t room = TEXT_WIDTH > used + 1 ? TEXT_WIDTH - used - 1 : 8;
		if (fr->function) {
			/* "function at file:line": the place keeps up to 32
			 * columns, the function gets the rest. */
			char line[16] = "";
			const char *where = fr->file ? base_name(fr->file)
				: fr->module ? base_name(fr->module) : NULL;
			size_t wlen = where ? strlen(where) : 0;
			if (fr->file)
				snprintf(line, sizeof(line), ":%u", fr->line);
			size_t place = where ? wlen + strlen(line) + 4 : 0;
			if (place > 32)
				place = 32;
			const char *fn = fr->function;
			text_put_fit(f, fn, strlen(fn),
				     room > place + 12 ? room - place : 12);
			if (where) {
				fputs(text_style(t, STYLE_DIM), f);
				fputs(fr->file ? " at " : " in ", f);
				text_put_fit(f, where, wlen,
					     place - 4 - strlen(line));
				fputs(line, f);
				fputs(text_style(t, STYLE_PLAIN), f);
			}
		} else if (fr->module) {
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

void stack_print_json(struct json_writer *w, struct symbolizer *sym,
		      const uint64_t *frames, size_t n)
{
	json_array_begin(w);
	for (size_t i = 0; i < n; i++) {
		const struct sym_frame *fr = symbolizer_lookup(sym, frames[i]);
		json_object_begin(w);
		json_key(w, "function");
		json_string(w, fr->function);
		json_key(w, "file");
		json_string(w, fr->file);
		json_key(w, "line");
		if (fr->line)
			json_uint(w, fr->line);
		else
			json_null(w);
		json_key(w, "module");
		json_string(w, fr->module);
		json_key(w, "address");
		json_hex(w, fr->address);
		json_key(w, "offset");
		if (fr->module)
			json_hex(w, fr->offset);
		else
			json_null(w);
		json_object_end(w);
	}
	json_array_end(w);
}
