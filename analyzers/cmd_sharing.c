/* cmd_sharing.c: `analyze sharing`: the cache lines that two or more
 * threads wrote, from the samples taken with sample_hz=, each with its
 * writers, the bytes each wrote, the instruction, and the verdict (false
 * sharing, true sharing, or writers that never ran at the same time).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "json_writer.h"
#include "sharing_model.h"
#include "symbolize.h"
#include "text_out.h"


/* "bytes 8-15" of a writer's offsets mask, as one range when contiguous. */
static void bytes_text(uint64_t mask, char *buf, size_t cap)
{
	int lo = -1, hi = -1;
	for (int i = 0; i < 64; i++)
		if (mask & (1ull << i)) {
			if (lo < 0)
				lo = i;
			hi = i;
		}
	if (lo < 0)
		snprintf(buf, cap, "-");
	else if (lo == hi)
		snprintf(buf, cap, "byte %d", lo);
	else
		snprintf(buf, cap, "bytes %d-%d", lo, hi);
}

int cmd_sharing(const struct cmd_args *a)
{
	struct trace_model m;
	struct sharing_model sm;
	struct symbolizer *sym = NULL;
	if (cmd_load(a->trace, &m))
		return 2;
	if (sharing_model_build(&m, &sm) < 0 || !(sym = symbolizer_new(&m))) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		sharing_model_release(&sm);
		trace_model_release(&m);
		return 2;
	}
	char name[256], bytes[32];
	if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 3);
		json_object_begin(&w);
		json_field_uint(&w, "samples", sm.samples);
		json_field_uint(&w, "decoded_writes", sm.decoded);
		json_field_uint(&w, "shared_memory_writes", sm.writes);
		json_key(&w, "lines");
		json_array_begin(&w);
		for (size_t i = 0; i < sm.n_lines; i++) {
			const struct shared_line *l = &sm.lines[i];
			json_object_begin(&w);
			json_key(&w, "line"); json_hex(&w, l->line);
			json_field_string(&w, "verdict", sharing_kind_name(l->kind));
			json_key(&w, "writers");
			json_array_begin(&w);
			for (size_t k = 0; k < l->n_writers; k++) {
				const struct line_writer *lw = &l->w[k];
				const struct sym_frame *f = symbolizer_lookup(sym, lw->pc + 1);
				sharing_name(&m, lw->addr, name, sizeof(name));
				json_object_begin(&w);
				json_field_uint(&w, "thread", lw->tid);
				json_field_uint(&w, "samples", lw->samples);
				json_key(&w, "address"); json_hex(&w, lw->addr);
				json_field_uint(&w, "offset", lw->addr & (SHARING_LINE - 1));
				json_field_uint(&w, "offsets_mask", lw->offsets);
				json_field_string(&w, "variable", name[0] ? name : NULL);
				json_field_string(&w, "function", f->function);
				json_field_string(&w, "file", f->file);
				json_field_uint(&w, "line", f->line);
				json_object_end(&w);
			}
			json_array_end(&w);
			json_object_end(&w);
		}
		json_array_end(&w);
		json_object_end(&w);
		fputc('\n', stdout);
	} else {
		char head[160];
		snprintf(head, sizeof(head), "%zu sample%s, %zu decoded to a "
			 "memory write, %zu of them outside the writer's stack",
			 sm.samples, text_plural(sm.samples, "", "s"),
			 sm.decoded, sm.writes);
		text_wrap(stdout, head, 0);
		if (!sm.samples)
			printf("(no samples: run with SPY_OPTIONS=sample_hz=1000 to take them)\n");
		for (size_t i = 0; i < sm.n_lines; i++) {
			const struct shared_line *l = &sm.lines[i];
			printf("\nline 0x%" PRIx64 ": %s\n", l->line, sharing_kind_name(l->kind));
			for (size_t k = 0; k < l->n_writers; k++) {
				const struct line_writer *lw = &l->w[k];
				const struct sym_frame *f = symbolizer_lookup(sym, lw->pc + 1);
				sharing_name(&m, lw->addr, name, sizeof(name));
				bytes_text(lw->offsets, bytes, sizeof(bytes));
				/* The writer's row, then where it writes from
				 * on a line of its own. */
				const char *fn = f->function ? f->function : "??";
				printf("  thread %-7" PRIu32 " %-12s ", lw->tid, bytes);
				size_t w = text_put_fit(stdout, name[0] ? name : "?",
							strlen(name[0] ? name : "?"), 29);
				printf("%*s %4zu sample%s\n    ", (int)(29 - w), "",
				       lw->samples, text_plural(lw->samples, "", "s"));
				text_put_fit(stdout, fn, strlen(fn), 40);
				if (f->file) {
					fputs(" at ", stdout);
					text_put_fit(stdout, f->file, strlen(f->file), 28);
					printf(":%u", f->line);
				}
				fputc('\n', stdout);
			}
		}
		if (sm.samples && !sm.n_lines)
			printf("no line was written by two threads (%d samples or more each)\n",
			       SHARING_MIN_SAMPLES);
	}
	symbolizer_free(sym);
	sharing_model_release(&sm);
	trace_model_release(&m);
	return cmd_finish(0);
}
