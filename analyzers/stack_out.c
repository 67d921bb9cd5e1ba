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
			/* Function first; where it is gets what is left. */
			const char *fn = fr->function;
			size_t cols = text_put_fit(f, fn, strlen(fn),
						   room > 24 ? room - 12 : room);
			room = room > cols + 4 ? room - cols - 4 : 8;
			fputs(text_style(t, STYLE_DIM), f);
			if (fr->file) {
				char line[16];
				const char *file = base_name(fr->file);
				int ll = snprintf(line, sizeof(line), ":%u",
						  fr->line);
				fputs(" at ", f);
				text_put_fit(f, file, strlen(file),
					     room > (size_t)ll + 8
						     ? room - (size_t)ll : 8);
				fputs(line, f);
			} else if (fr->module) {
				const char *mod = base_name(fr->module);
				fputs(" in ", f);
				text_put_fit(f, mod, strlen(mod), room);
			}
			fputs(text_style(t, STYLE_PLAIN), f);
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
