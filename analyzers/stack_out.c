/* stack_out.c: symbolized stacks as text or JSON, and the order of stacks
 * by the text they show. */
#include "stack_out.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
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

/* What one line of stack_print_text shows of a frame: a function, a place
 * (a file's or a module's name) and a number whose meaning kind gives
 * (0 none, 1 line, 2 offset in the module, 3 offset in a module named in
 * full, 4 address). */
struct line_text {
	const char *fn, *where;
	uint64_t num;
	int kind;
};

static struct line_text inline_text(const struct sym_frame *fr,
				    const struct sym_inline *in)
{
	return (struct line_text){
		.fn = in->function ? in->function : "??",
		.where = in->file ? base_name(in->file)
			 : fr->module ? base_name(fr->module) : NULL,
		.num = in->file ? in->line : 0,
		.kind = in->file ? 1 : 0,
	};
}

static struct line_text frame_text(const struct sym_frame *fr)
{
	if (!fr->function)
		return fr->module
			? (struct line_text){ "??", fr->module, fr->offset, 3 }
			: (struct line_text){ "??", NULL, fr->address, 4 };
	if (fr->file)
		return (struct line_text){ fr->function, base_name(fr->file),
					   fr->line, 1 };
	if (fr->module)
		return (struct line_text){ fr->function, base_name(fr->module),
					   fr->offset, 2 };
	return (struct line_text){ fr->function, NULL, 0, 0 };
}

static int line_cmp(struct line_text a, struct line_text b)
{
	if (a.kind != b.kind)
		return a.kind < b.kind ? -1 : 1;
	if (a.num != b.num)
		return a.num < b.num ? -1 : 1;
	int c = strcmp(a.fn, b.fn);
	return c ? c : strcmp(a.where ? a.where : "", b.where ? b.where : "");
}

static int frame_cmp(struct symbolizer *sym, uint64_t a, uint64_t b,
		     bool inlines)
{
	if (a == b)
		return 0;
	/* (a lookup's result stays valid through later lookups) */
	const struct sym_frame *x = symbolizer_lookup(sym, a);
	const struct sym_frame *y = symbolizer_lookup(sym, b);
	if (inlines) {
		if (x->n_inl != y->n_inl)
			return x->n_inl < y->n_inl ? -1 : 1;
		for (unsigned k = 0; k < x->n_inl; k++) {
			int c = line_cmp(inline_text(x, &x->inl[k]),
					 inline_text(y, &y->inl[k]));
			if (c)
				return c;
		}
	}
	return line_cmp(frame_text(x), frame_text(y));
}

int stack_text_cmp(struct symbolizer *sym, const uint64_t *a, size_t na,
		   const uint64_t *b, size_t nb, bool inlines)
{
	for (size_t i = 0; i < na && i < nb; i++) {
		int c = frame_cmp(sym, a[i], b[i], inlines);
		if (c)
			return c;
	}
	return (na > nb) - (na < nb);
}

/* How many frames, from the first, two rows show alike. */
static size_t alike_frames(struct symbolizer *sym, const struct stack_row *a,
			   const struct stack_row *b, bool inlines)
{
	size_t i = 0;
	while (i < a->n && i < b->n &&
	       frame_cmp(sym, a->frames[i], b->frames[i], inlines) == 0)
		i++;
	return i;
}

struct rows_order {
	struct symbolizer *sym;
	const struct stack_row *v;
	bool inlines;
};

static int row_cmp(const void *x, const void *y, void *arg)
{
	const struct rows_order *o = arg;
	const struct stack_row *a = &o->v[*(const size_t *)x];
	const struct stack_row *b = &o->v[*(const size_t *)y];
	if (a->group != b->group)
		return a->group < b->group ? -1 : 1;
	return stack_text_cmp(o->sym, a->frames, a->n, b->frames, b->n,
			      o->inlines);
}

int stack_rows_apart(struct symbolizer *sym, struct stack_row *v, size_t n,
		     size_t min, bool inlines)
{
	for (size_t i = 0; i < n; i++)
		v[i].depth = v[i].n < min ? v[i].n : min;
	if (n < 2)
		return 0;
	size_t *idx = malloc(n * sizeof(*idx));
	if (!idx)
		return -1;
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	/* In the order of their text, the row sharing the most frames with
	 * a row is next to it (or to the run of rows that read just like
	 * it): a sort instead of every pair. */
	struct rows_order o = { sym, v, inlines };
	qsort_r(idx, n, sizeof(*idx), row_cmp, &o);
	for (size_t s = 0, e; s < n; s = e) {
		for (e = s + 1; e < n && row_cmp(&idx[s], &idx[e], &o) == 0; e++)
			;
		const struct stack_row *r = &v[idx[s]];
		size_t shared = 0;
		bool near = false;
		if (s > 0 && v[idx[s - 1]].group == r->group) {
			shared = alike_frames(sym, r, &v[idx[s - 1]], inlines);
			near = true;
		}
		if (e < n && v[idx[e]].group == r->group) {
			size_t k = alike_frames(sym, r, &v[idx[e]], inlines);
			shared = k > shared ? k : shared;
			near = true;
		}
		if (!near)
			continue;
		for (size_t k = s; k < e; k++) {
			struct stack_row *w = &v[idx[k]];
			size_t d = shared + 1 > min ? shared + 1 : min;
			w->depth = d < w->n ? d : w->n;
		}
	}
	free(idx);
	return 0;
}
