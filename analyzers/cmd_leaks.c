/* cmd_leaks.c: `analyze leaks TRACE`: the blocks live at exit, as the leak
 * scan classed them, grouped by allocation stack with counts and bytes. */
#include <inttypes.h>
#include <stdio.h>

#include "commands.h"
#include "heap_checks.h"
#include "json_writer.h"
#include "stack_out.h"
#include "symbolize.h"
#include "text_out.h"
#include "trace_format.h"

static const char *group_class(const struct leak_group *g)
{
	if (g->unseen && g->cls != TRACE_LEAK_REACHABLE)
		return "not blamed (allocated before this trace began)";
	if (g->runtime && g->cls != TRACE_LEAK_REACHABLE)
		return "not blamed (the C/C++ runtime's own)";
	return heap_leak_class_name(g->cls);
}

/* A row of the totals; the nouns keep the columns whatever the count. */
static void total_row(const char *what, uint64_t blocks, uint64_t bytes)
{
	printf("  %-16s %8" PRIu64 " %-6s %12" PRIu64 " %s\n", what, blocks,
	       text_plural(blocks, "block", "blocks"), bytes,
	       text_plural(bytes, "byte", "bytes"));
}

static void print_text(const struct trace_model *m, struct symbolizer *sym,
		       const struct heap_checks *hc)
{
	struct text_out t;
	text_init(&t, stdout);
	if (!hc->scanned) {
		text_wrap(stdout, "no leak scan in this trace: the process did "
			  "not end through exit or a return from main (it was "
			  "killed, exec'd another program, or ran with "
			  "leaks=0)", 0);
		return;
	}
	char line[160];
	snprintf(line, sizeof(line), "leak scan at exit: %" PRIu64 " live "
		 "block%s, %" PRIu64 " byte%s of memory scanned in %.1f ms",
		 hc->scan_blocks, text_plural(hc->scan_blocks, "", "s"),
		 hc->scan_bytes, text_plural(hc->scan_bytes, "", "s"),
		 (double)hc->scan_ns / 1e6);
	text_wrap(stdout, line, 0);
	if (hc->scan_inherited) {
		snprintf(line, sizeof(line), "  (and %" PRIu64 " block%s this "
			 "forked process inherited from its parent, which "
			 "reports %s in its own trace)", hc->scan_inherited,
			 text_plural(hc->scan_inherited, "", "s"),
			 hc->scan_inherited == 1 ? "it" : "them");
		text_wrap(stdout, line, 2);
	}
	static const unsigned order[] = { TRACE_LEAK_DEFINITE,
					  TRACE_LEAK_INDIRECT,
					  TRACE_LEAK_REACHABLE };
	for (int k = 0; k < 3; k++)
		total_row(heap_leak_class_name(order[k]),
			  hc->totals[order[k]][0], hc->totals[order[k]][1]);
	total_row("not blamed", hc->runtime_totals[0], hc->runtime_totals[1]);
	printf("  (not blamed: lost by the C/C++ runtime, or allocated before "
	       "the trace began)\n");
	for (size_t i = 0; i < hc->n_groups; i++) {
		const struct leak_group *g = &hc->groups[i];
		printf("\n%s%s%s: %" PRIu64 " byte%s in %" PRIu64 " block%s\n",
		       text_style(&t, g->cls == TRACE_LEAK_DEFINITE && !g->runtime
					  ? STYLE_RED : STYLE_BOLD),
		       group_class(g), text_style(&t, STYLE_PLAIN), g->bytes,
		       text_plural(g->bytes, "", "s"), g->blocks,
		       text_plural(g->blocks, "", "s"));
		const struct trace_stack *s =
			g->stack ? &m->stacks[g->stack - 1] : NULL;
		if (s && s->n)
			stack_print_text(&t, sym, s->frames, s->n, 2);
		else
			printf("  (no allocation stack recorded)\n");
	}
}

static void print_json(const struct trace_model *m, struct symbolizer *sym,
		       const struct heap_checks *hc)
{
	struct json_writer w;
	json_init(&w, stdout, 3);
	json_object_begin(&w);
	json_field_bool(&w, "scanned", hc->scanned);
	json_field_uint(&w, "live_blocks", hc->scan_blocks);
	json_field_uint(&w, "inherited_blocks", hc->scan_inherited);
	json_field_uint(&w, "scanned_bytes", hc->scan_bytes);
	json_field_uint(&w, "scan_ns", hc->scan_ns);
	json_key(&w, "totals");
	json_object_begin(&w);
	for (unsigned c = 0; c < 3; c++) {
		json_key(&w, heap_leak_class_name(c));
		json_object_begin(&w);
		json_field_uint(&w, "blocks", hc->totals[c][0]);
		json_field_uint(&w, "bytes", hc->totals[c][1]);
		json_object_end(&w);
	}
	json_key(&w, "not_blamed");
	json_object_begin(&w);
	json_field_uint(&w, "blocks", hc->runtime_totals[0]);
	json_field_uint(&w, "bytes", hc->runtime_totals[1]);
	json_object_end(&w);
	json_object_end(&w);
	json_key(&w, "groups");
	json_array_begin(&w);
	for (size_t i = 0; i < hc->n_groups; i++) {
		const struct leak_group *g = &hc->groups[i];
		const struct trace_stack *s =
			g->stack ? &m->stacks[g->stack - 1] : NULL;
		json_object_begin(&w);
		json_field_string(&w, "class", group_class(g));
		json_field_uint(&w, "blocks", g->blocks);
		json_field_uint(&w, "bytes", g->bytes);
		json_key(&w, "frames");
		stack_print_json(&w, sym, s ? s->frames : NULL, s ? s->n : 0);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
	fputc('\n', stdout);
}

int cmd_leaks(const struct cmd_args *a)
{
	struct trace_model m;
	if (cmd_load(a->trace, &m))
		return 2;
	struct heap_checks hc;
	struct symbolizer *sym = NULL;
	if (heap_checks_build(&m, &hc) < 0 || !(sym = symbolizer_new(&m))) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		heap_checks_release(&hc);
		trace_model_release(&m);
		return 2;
	}
	if (a->json)
		print_json(&m, sym, &hc);
	else
		print_text(&m, sym, &hc);
	int status = hc.totals[TRACE_LEAK_DEFINITE][0] ? 1 : 0;
	symbolizer_free(sym);
	heap_checks_release(&hc);
	trace_model_release(&m);
	return cmd_finish(status);
}
