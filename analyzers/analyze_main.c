/* analyze_main.c: `analyze CMD [--json] TRACE`: parses the command line and
 * runs one command from the table in commands.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "text_out.h"
#include "trace_format.h"

#define ANALYZE_VERSION "0.1"

static void help(void)
{
	printf("usage: analyze COMMAND [options] TRACE\n");
	printf("\nReads a trace written by libspy.so and reports on it.\n\n"
	       "commands:\n");
	/* The longest name sets the column; descriptions wrap under it. */
	for (const struct command *c = analyze_commands; c->name; c++) {
		printf("  %-13s ", c->name);
		text_hang(stdout, c->help, 16, 16);
	}
	printf("  %-13s %s\n", "help", "this text");
	printf("\noptions:\n"
	       "  --json     write JSON instead of text\n"
	       "  --dot      lock-graph: write the graph in Graphviz's DOT\n"
	       "  --svg      lock-graph: draw it as SVG (needs Graphviz);\n"
	       "             fragmentation: the heap and its series as SVG\n"
	       "  --html     report: one self-contained HTML page (default\n"
	       "             file: TRACE.html, its path printed)\n"
	       "  --chrome   export: Chrome Trace Event JSON (Perfetto)\n"
	       "  --compare  fragmentation --compare A B: two runs side by side\n"
	       "  -o FILE    report --html, export: write to FILE (- for stdout)\n"
	       "  --help     this text\n"
	       "  --version  the analyzer's version and trace format\n"
	       "\nexit status: 0 no findings, 1 findings, 2 bad usage or "
	       "unreadable trace\n");
}

int main(int argc, char **argv)
{
	static char outbuf[1 << 16];
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	struct cmd_args a = { 0 };
	const char *cmd = NULL;
	bool options_done = false;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!options_done && s[0] == '-' && s[1]) {
			if (!strcmp(s, "--")) {
				options_done = true;
			} else if (!strcmp(s, "--json")) {
				a.json = true;
			} else if (!strcmp(s, "--dot")) {
				a.dot = true;
			} else if (!strcmp(s, "--svg")) {
				a.svg = true;
			} else if (!strcmp(s, "--html")) {
				a.html = true;
			} else if (!strcmp(s, "--chrome")) {
				a.chrome = true;
			} else if (!strcmp(s, "--compare")) {
				a.compare = true;
			} else if (!strcmp(s, "-o") || !strcmp(s, "--out")) {
				if (i + 1 == argc)
					return cmd_bad_usage("'%s' needs a file name", s);
				a.out = argv[++i];
			} else if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
				help();
				return cmd_finish(0);
			} else if (!strcmp(s, "--version")) {
				printf("analyze %s (trace format %u)\n",
				       ANALYZE_VERSION, TRACE_VERSION);
				return cmd_finish(0);
			} else {
				return cmd_bad_usage("unknown option '%s'", s);
			}
		} else if (!cmd) {
			cmd = s;
		} else if (!a.trace) {
			a.trace = s;
		} else if (!a.arg) {
			a.arg = s;
		} else {
			return cmd_bad_usage("unexpected argument '%s'", s);
		}
	}
	if (!cmd)
		return cmd_bad_usage("no command given: analyze COMMAND [options] TRACE");
	if (!strcmp(cmd, "help")) {
		help();
		return cmd_finish(0);
	}
	const struct command *c = command_find(cmd);
	if (!c)
		return cmd_bad_usage("unknown command '%s'", cmd);
	if (!a.trace)
		return cmd_bad_usage("'%s' needs a trace file", cmd);
	if (a.compare && c->run != cmd_fragmentation)
		return cmd_bad_usage("'--compare' is for fragmentation, not '%s'", cmd);
	if (a.compare && !a.arg)
		return cmd_bad_usage("'%s --compare' needs two traces", cmd);
	if (a.arg && !a.compare && !command_takes_arg(c))
		return cmd_bad_usage("unexpected argument '%s'", a.arg);
	return c->run(&a);
}
