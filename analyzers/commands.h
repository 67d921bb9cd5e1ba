/* commands.h: the table of `analyze` commands. A new view of a trace is a
 * new module with one run function and one line in the table
 * (commands.c); main parses the options and dispatches.
 */
#ifndef SPY_COMMANDS_H
#define SPY_COMMANDS_H

#include <stdbool.h>

#include "findings.h"
#include "heap_replay.h"
#include "symbolize.h"
#include "trace_reader.h"

struct cmd_args {
	const char *trace;  /* the trace file */
	const char *arg;    /* what follows TRACE (analyze where TRACE ADDR) */
	bool json;          /* --json */
	bool dot;           /* --dot (lock-graph) */
	bool svg;           /* --svg (lock-graph) */
	bool html;          /* --html (report) */
	bool chrome;        /* --chrome (export) */
	bool compare;       /* --compare (fragmentation: TRACE and arg) */
	const char *out;    /* -o FILE (report --html, export) */
};

/* The outputs a command can write instead of text, one per run: the
 * flags --json, --dot, --svg, --html and --chrome. */
enum cmd_format {
	FMT_JSON = 1, FMT_DOT = 2, FMT_SVG = 4, FMT_HTML = 8, FMT_CHROME = 16,
};

struct command {
	const char *name;
	const char *help;   /* one line for `analyze --help` */
	unsigned formats;   /* enum cmd_format: the ones it writes */
	/* Returns the exit status: 0 no findings, 1 findings, 2 bad input. */
	int (*run)(const struct cmd_args *a);
};

/* Every command, terminated by a NULL name. */
extern const struct command analyze_commands[];

const struct command *command_find(const char *name);

/* Loads a trace for a command; on failure prints the one-line error on
 * stderr and returns 2, else 0. */
int cmd_load(const char *path, struct trace_model *m);

/* Flushes stdout; returns status, or 2 when writing failed. */
int cmd_finish(int status);

/* Says what is wrong with the command line on one line of stderr,
 * "analyze: unknown option '--x' (see analyze --help)" (control
 * characters of the user's words shown as '?'); returns 2, the status of
 * bad usage. */
int cmd_bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* What every full report shows: the trace, the heap replayed, every
 * finding, and a symbolizer for the stacks. */
struct report_input {
	struct trace_model m;
	struct heap_stats h;
	struct finding_list fl;
	struct symbolizer *sym;
};

/* Loads trace into in. Returns 0, or the exit status (2) after saying why
 * on stderr (in is then empty). Release with report_input_release. */
int report_input_load(const char *trace, struct report_input *in);
void report_input_release(struct report_input *in);

int cmd_dump(const struct cmd_args *a);
int cmd_summary(const struct cmd_args *a);
int cmd_report(const struct cmd_args *a);
/* report --html (report_html.c) and export --chrome (export_chrome.c) */
int cmd_report_html(const struct cmd_args *a);
int cmd_export(const struct cmd_args *a);
int cmd_syscalls(const struct cmd_args *a);
int cmd_leaks(const struct cmd_args *a);
int cmd_heap(const struct cmd_args *a);
int cmd_fragmentation(const struct cmd_args *a);
/* fragmentation --compare A B: trace is A, arg is B (cmd_frag_compare.c) */
int cmd_frag_compare(const struct cmd_args *a);
int cmd_lock_graph(const struct cmd_args *a);
int cmd_locks(const struct cmd_args *a);
int cmd_deadlock(const struct cmd_args *a);
int cmd_livelock(const struct cmd_args *a);
int cmd_threads(const struct cmd_args *a);
int cmd_sched(const struct cmd_args *a);
int cmd_map(const struct cmd_args *a);
int cmd_where(const struct cmd_args *a);
int cmd_sharing(const struct cmd_args *a);

/* 1 if c takes an argument after the trace (where: an address). */
int command_takes_arg(const struct command *c);

#endif
