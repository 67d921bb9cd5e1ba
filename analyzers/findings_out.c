/* findings_out.c: findings as text and as JSON. */
#include "findings_out.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "stack_out.h"

static enum text_style severity_style(enum finding_severity s)
{
	return s == SEV_ERROR ? STYLE_RED
	       : s == SEV_WARNING ? STYLE_YELLOW : STYLE_CYAN;
}

/* The details (--json has them typed, for programs), a line each,
 * under their heading; a long value wraps below its key. */
static void print_details(FILE *f, const struct finding *fd)
{
	bool any = false;
	for (size_t d = 0; d < fd->n_details; d++) {
		const struct finding_detail *de = &fd->details[d];
		/* Structured details are for programs; the explanation says
		 * the same in words. */
		if (de->type == DETAIL_JSON)
			continue;
		if (!any)
			fputs("  details:\n", f);
		any = true;
		int col = fprintf(f, "    %s: ", de->key);
		if (de->type == DETAIL_INT)
			fprintf(f, "%" PRId64 "\n", de->num);
		else
			text_hang(f, de->str, col > 0 ? (size_t)col : 0, 6);
	}
}

/* One finding in the one shape every view shares: the headline (after
 * the severity and kind, continued below them when long), the
 * explanation, the stacks, the details, the fix. Nothing is cut: long
 * text wraps at TEXT_WIDTH. */
static void print_one(const struct text_out *t, struct symbolizer *sym,
		      const struct finding *fd)
{
	FILE *f = t->f;
	const char *sev = finding_severity_name(fd->severity);
	fprintf(f, "%s%s%s [%s] %s", text_style(t, severity_style(fd->severity)),
		sev, text_style(t, STYLE_PLAIN), fd->kind,
		text_style(t, STYLE_BOLD));
	size_t col = strlen(sev) + strlen(fd->kind) + 4;
	text_hang(f, fd->headline ? fd->headline : "", col, 2);
	fputs(text_style(t, STYLE_PLAIN), f);
	if (fd->explanation)
		text_wrap(f, fd->explanation, 2);
	for (size_t s = 0; s < fd->n_stacks; s++) {
		const struct finding_stack *st = &fd->stacks[s];
		char lead[48] = "";
		if (st->thread)
			snprintf(lead, sizeof(lead), "  thread %" PRIu64 ": ",
				 st->thread);
		else
			snprintf(lead, sizeof(lead), "  ");
		fputs(lead, f);
		text_hang(f, st->label ? st->label : "stack", strlen(lead), 4);
		stack_print_text(t, sym, st->frames, st->n, 4);
	}
	print_details(f, fd);
	if (fd->fix) {
		fprintf(f, "  %sfix:%s\n", text_style(t, STYLE_BOLD),
			text_style(t, STYLE_PLAIN));
		text_wrap(f, fd->fix, 4);
	}
}

void findings_print_text(const struct text_out *t, struct symbolizer *sym,
			 const struct finding_list *l)
{
	FILE *f = t->f;
	if (!l->n) {
		fprintf(f, "%sno findings%s\n", text_style(t, STYLE_GREEN),
			text_style(t, STYLE_PLAIN));
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct finding *fd = &l->v[i];
		fputc('\n', f);
		print_one(t, sym, fd);
	}
}

void findings_print_json(struct json_writer *w, struct symbolizer *sym,
			 const struct finding_list *l)
{
	json_array_begin(w);
	for (size_t i = 0; i < l->n; i++) {
		const struct finding *fd = &l->v[i];
		json_object_begin(w);
		json_field_string(w, "kind", fd->kind);
		json_field_string(w, "severity",
				  finding_severity_name(fd->severity));
		json_field_string(w, "headline", fd->headline);
		json_field_string(w, "explanation", fd->explanation);
		json_field_string(w, "fix", fd->fix);
		json_key(w, "stacks");
		json_array_begin(w);
		for (size_t s = 0; s < fd->n_stacks; s++) {
			const struct finding_stack *st = &fd->stacks[s];
			json_object_begin(w);
			json_field_string(w, "label", st->label);
			json_field_uint_or_null(w, "thread", st->thread, st->thread);
			json_key(w, "frames");
			stack_print_json(w, sym, st->frames, st->n);
			json_object_end(w);
		}
		json_array_end(w);
		json_key(w, "details");
		json_object_begin(w);
		for (size_t d = 0; d < fd->n_details; d++) {
			const struct finding_detail *de = &fd->details[d];
			json_key(w, de->key);
			if (de->type == DETAIL_INT) {
				json_int(w, de->num);
			} else if (de->type == DETAIL_STR) {
				json_string(w, de->str);
			} else {
				/* Written by a detector, not by the traced
				 * program: inserted as is. */
				json_raw(w, de->str);
			}
		}
		json_object_end(w);
		json_object_end(w);
	}
	json_array_end(w);
}
