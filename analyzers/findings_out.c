/* findings_out.c: findings as text and as JSON. */
#include "findings_out.h"

#include <inttypes.h>
#include <string.h>

#include "stack_out.h"

static enum text_style severity_style(enum finding_severity s)
{
	return s == SEV_ERROR ? STYLE_RED
	       : s == SEV_WARNING ? STYLE_YELLOW : STYLE_CYAN;
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
		fprintf(f, "%s%s%s [%s]", text_style(t, severity_style(
							      fd->severity)),
			finding_severity_name(fd->severity),
			text_style(t, STYLE_PLAIN), fd->kind);
		/* The headline is the one line people read: wrapped below the
		 * kind when it is long, never cut. */
		size_t room = TEXT_WIDTH - 12 - strlen(fd->kind);
		if (strlen(fd->headline) <= room) {
			fputc(' ', f);
			text_put_fit(f, fd->headline, strlen(fd->headline), room);
			fputc('\n', f);
		} else {
			fputc('\n', f);
			text_wrap(f, fd->headline, 2);
		}
		if (fd->explanation)
			text_wrap(f, fd->explanation, 2);
		for (size_t s = 0; s < fd->n_stacks; s++) {
			const struct finding_stack *st = &fd->stacks[s];
			char lead[32] = "";
			if (st->thread)
				snprintf(lead, sizeof(lead), "thread %" PRIu64
					 ": ", st->thread);
			fprintf(f, "  %s", lead);
			const char *label = st->label ? st->label : "stack";
			text_put_fit(f, label, strlen(label),
				     TEXT_WIDTH - 3 - strlen(lead));
			fputc('\n', f);
			stack_print_text(t, sym, st->frames, st->n, 4);
		}
		for (size_t d = 0; d < fd->n_details; d++) {
			const struct finding_detail *de = &fd->details[d];
			/* Structured details are for programs (--json); the
			 * explanation says the same in words. */
			if (de->type == DETAIL_JSON)
				continue;
			if (de->type == DETAIL_INT) {
				fprintf(f, "  %s: %" PRId64 "\n", de->key, de->num);
			} else if (strlen(de->str) + strlen(de->key) + 4 <= TEXT_WIDTH) {
				fprintf(f, "  %s: ", de->key);
				text_put_fit(f, de->str, strlen(de->str),
					     TEXT_WIDTH - 4 - strlen(de->key));
				fputc('\n', f);
			} else {
				fprintf(f, "  %s:\n", de->key);
				text_wrap(f, de->str, 4);
			}
		}
		if (fd->fix) {
			fprintf(f, "  %sfix:%s\n", text_style(t, STYLE_BOLD),
				text_style(t, STYLE_PLAIN));
			text_wrap(f, fd->fix, 4);
		}
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
