/* cmd_report.c: `analyze summary` (the facts about the process) and
 * `analyze report` (the headline facts, then every finding). */
#include <stdio.h>

#include "commands.h"
#include "detect_threads.h"
#include "findings.h"
#include "findings_out.h"
#include "heap_replay.h"
#include "json_writer.h"
#include "summary.h"
#include "symbolize.h"
#include "text_out.h"

int cmd_summary(const struct cmd_args *a)
{
	struct trace_model m;
	if (cmd_load(a->trace, &m))
		return 2;
	struct heap_stats h;
	if (heap_replay(&m, &h, NULL) < 0) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		trace_model_release(&m);
		return 2;
	}
	if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 2);
		json_object_begin(&w);
		summary_print_json(&w, &m, &h);
		json_object_end(&w);
	} else {
		struct text_out t;
		text_init(&t, stdout);
		summary_print_text(&t, &m, &h, false);
	}
	trace_model_release(&m);
	return cmd_finish(0);
}

int cmd_report(const struct cmd_args *a)
{
	if (a->html)
		return cmd_report_html(a);
	struct report_input in;
	int rc = report_input_load(a->trace, &in);
	if (rc)
		return rc;
	if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 2);
		json_object_begin(&w);
		summary_print_json(&w, &in.m, &in.h);
		json_key(&w, "findings");
		findings_print_json(&w, in.sym, &in.fl);
		json_key(&w, "not_checked");
		json_array_begin(&w);
		if (sharing_unchecked(&in.m))
			json_string(&w, "false-sharing");
		json_array_end(&w);
		json_object_end(&w);
	} else {
		struct text_out t;
		text_init(&t, stdout);
		summary_print_text(&t, &in.m, &in.h, true);
		fputc('\n', stdout);
		findings_print_text(&t, in.sym, &in.fl);
		if (sharing_unchecked(&in.m)) {
			if (in.fl.n)
				fputc('\n', stdout);
			text_wrap(stdout, "(false sharing was not checked: "
				  "threads ran at the same time, but no samples "
				  "were taken; run with spy --opt sample_hz=1000 "
				  "to check it)", 0);
		}
	}
	int status = in.fl.n ? 1 : 0;
	report_input_release(&in);
	return cmd_finish(status);
}
