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
	printf("\noptions (at most one of --json, --dot, --svg, --html, --chrome):\n"
	       "  --json     write JSON instead of text (all but export)\n"
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

/* The flags that choose an output other than text. */
static const struct {
	const char *flag;
	enum cmd_format format;
} format_flags[] = {
	{ "--json", FMT_JSON }, { "--dot", FMT_DOT }, { "--svg", FMT_SVG },
	{ "--html", FMT_HTML }, { "--chrome", FMT_CHROME },
};

/* The flag of a format, or NULL when s names none. */
static const char *format_flag(const char *s, enum cmd_format *format)
{
	for (size_t k = 0; k < sizeof(format_flags) / sizeof(format_flags[0]); k++)
		if (!strcmp(s, format_flags[k].flag)) {
			*format = format_flags[k].format;
			return format_flags[k].flag;
		}
	return NULL;
}

int main(int argc, char **argv)
{
	static char outbuf[1 << 16];
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	struct cmd_args a = { 0 };
	const char *cmd = NULL, *format = NULL;
	enum cmd_format fmt = 0;
	bool options_done = false;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!options_done && s[0] == '-' && s[1]) {
			enum cmd_format f;
			const char *flag;
			if (!strcmp(s, "--")) {
				options_done = true;
			} else if ((flag = format_flag(s, &f))) {
				/* One output a run: which of two would be a
				 * guess. */
				if (format && f != fmt)
					return cmd_bad_usage("'%s' and '%s' are two "
						"output formats: give one", format, flag);
				format = flag;
				fmt = f;
			} else if (!strcmp(s, "--compare")) {
				a.compare = true;
			} else if (!strcmp(s, "-o") || !strcmp(s, "--out")) {
				if (i + 1 == argc)
					return cmd_bad_usage("'%s' needs a file name", s);
				if (a.out)
					return cmd_bad_usage("'%s' given twice", s);
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
	if (fmt && !(c->formats & fmt))
		return cmd_bad_usage("'%s' writes no %s output", cmd, format);
	/* -o names the file of an output made to be saved: a page or a
	 * trace for another viewer. */
	if (a.out && !(fmt & (FMT_HTML | FMT_CHROME)))
		return cmd_bad_usage("'-o' is for report --html and export "
				     "--chrome, not '%s%s%s'", cmd,
				     format ? " " : "", format ? format : "");
	a.json = fmt == FMT_JSON;
	a.dot = fmt == FMT_DOT;
	a.svg = fmt == FMT_SVG;
	a.html = fmt == FMT_HTML;
	a.chrome = fmt == FMT_CHROME;
	return c->run(&a);
}
