/* commands.c: the command table and what every command shares (loading a
 * trace, finishing the output). Each command lives in its own cmd_*.c. */
#include "commands.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct command analyze_commands[] = {
	{ "report", "what the program did and every finding",
	  FMT_JSON | FMT_HTML, cmd_report },
	{ "summary", "process, threads, events and heap in a few lines",
	  FMT_JSON, cmd_summary },
	{ "dump", "every event, one a line, in time order, with stacks",
	  FMT_JSON, cmd_dump },
	{ "syscalls", "read/write calls per call site and descriptor; unbuffered writes",
	  FMT_JSON, cmd_syscalls },
	{ "lock-graph", "the lock-order graph and its cycles (--dot, --svg)",
	  FMT_JSON | FMT_DOT | FMT_SVG, cmd_lock_graph },
	{ "locks", "one row per lock: acquisitions, contention, wait and hold",
	  FMT_JSON, cmd_locks },
	{ "deadlock", "the deadlocks libspy saw form while the program ran",
	  FMT_JSON, cmd_deadlock },
	{ "livelock", "threads that kept failing to take locks, busy",
	  FMT_JSON, cmd_livelock },
	{ "threads", "one row per thread: lifetime, CPU, switches, run queue, faults",
	  FMT_JSON, cmd_threads },
	{ "sched", "the scheduling tax: switches, run-queue delay, stack memory",
	  FMT_JSON, cmd_sched },
	{ "map", "the address space at start and end, with the heap blocks in it",
	  FMT_JSON, cmd_map },
	{ "where", "what holds an address: region, block and its stacks (ADDR TRACE)",
	  FMT_JSON, cmd_where },
	{ "sharing", "cache lines written by several threads: false and true sharing",
	  FMT_JSON, cmd_sharing },
	{ "leaks", "blocks live at exit: definitely lost, indirectly lost, still reachable",
	  FMT_JSON, cmd_leaks },
	{ "heap", "the malloc family: calls, peak, live at the end, top allocation sites",
	  FMT_JSON, cmd_heap },
	{ "fragmentation", "the heap's holes at failures, the end, over time (--compare A B)",
	  FMT_JSON | FMT_SVG, cmd_fragmentation },
	{ "export", "the trace for other viewers: --chrome (Perfetto, chrome://tracing)",
	  FMT_CHROME, cmd_export },
	{ NULL, NULL, 0, NULL },
};

int command_takes_arg(const struct command *c)
{
	return c->run == cmd_where;
}

const struct command *command_find(const char *name)
{
	for (const struct command *c = analyze_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

int cmd_load(const char *path, struct trace_model *m)
{
	struct trace_error err;
	if (trace_load_file(path, m, &err) < 0) {
		/* One line, whatever bytes the file name holds. */
		for (char *c = err.msg; *c; c++)
			if ((unsigned char)*c < 0x20)
				*c = '?';
		fflush(stdout);
		fprintf(stderr, "analyze: %s\n", err.msg);
		return 2;
	}
	return 0;
}

int cmd_bad_usage(const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	for (char *c = what; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = '?';
	fflush(stdout);
	fprintf(stderr, "analyze: %s (see analyze --help)\n", what);
	return 2;
}

int cmd_finish(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("analyze: cannot write the output");
		return 2;
	}
	return status;
}

int report_input_load(const char *trace, struct report_input *in)
{
	*in = (struct report_input){ .fl = { 0 } };
	if (cmd_load(trace, &in->m))
		return 2;
	if (heap_replay(&in->m, &in->h, NULL) < 0 ||
	    findings_run(&in->m, &in->fl) < 0 ||
	    !(in->sym = symbolizer_new(&in->m))) {
		fprintf(stderr, "analyze: %s: out of memory\n", trace);
		report_input_release(in);
		return 2;
	}
	return 0;
}

void report_input_release(struct report_input *in)
{
	symbolizer_free(in->sym);
	finding_list_release(&in->fl);
	trace_model_release(&in->m);
	in->sym = NULL;
}
