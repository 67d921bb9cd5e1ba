/* spy_runner.c: `spy PROGRAM`, run a program with libspy.so preloaded, keep
 * its exit status, then print the analyzer's report of the trace it left.
 *
 * spy refuses, with one line and status 2, what libspy cannot trace: a
 * missing or non-executable program, a statically linked one (no PT_INTERP:
 * the dynamic loader, which honours LD_PRELOAD, never runs), a setuid or
 * setgid one (the loader ignores LD_PRELOAD there) and one built for another
 * machine than libspy.so. Everything else is the program's business.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "options_table.h"
#include "spy_program.h"
#include "spy_runner.h"
#include "spy_traces.h"
#include "text_out.h"

#define MAX_OPTS 64

/* ---- the runner's own flags ---------------------------------------------
 * One row per flag. A flag either sets a field of struct run (handled in
 * apply_flag) or is one of two generic kinds, so that most new flags are
 * one row here:
 *   F_SETS    adds `sets` (NAME=VALUE) to the program's SPY_OPTIONS
 *             (a library switch: `--guard` would set guard=1);
 *   F_REPORT  passes `sets` to `analyze report` (a report format: `--json`,
 *             and `--html` when the analyzer has it). */
enum flag_id {
	F_HELP, F_OUT, F_NO_REPORT, F_REPORT_FILE, F_OPT, F_QUIET, F_RM,
	F_SETS, F_REPORT, F_ALLOCATOR,
};

struct flag {
	const char *name;  /* long name, without "--" */
	char short_name;   /* 0 when there is none */
	const char *arg;   /* argument's name in --help, NULL for none */
	enum flag_id id;
	const char *sets;  /* F_SETS: the SPY_OPTIONS entry it adds */
	const char *help;
};

static const struct flag flags[] = {
	{ "help", 'h', NULL, F_HELP, NULL, "print this help and exit" },
	{ "out", 'o', "FILE", F_OUT, NULL,
	  "trace file (%p: pid, %e: program name); default: out= below" },
	{ "json", 0, NULL, F_REPORT, "--json", "write the report as JSON" },
	{ "html", 0, NULL, F_REPORT, "--html",
	  "write the report as HTML, next to the trace" },
	{ "no-report", 0, NULL, F_NO_REPORT, NULL,
	  "only record the trace, do not run the analyzer" },
	{ "report-file", 0, "FILE", F_REPORT_FILE, NULL,
	  "write the report to FILE instead of standard error" },
	{ "opt", 0, "NAME=VALUE", F_OPT, NULL,
	  "pass one SPY_OPTIONS entry (listed below); repeatable" },
	{ "quiet", 'q', NULL, F_QUIET, NULL,
	  "no messages from spy or libspy except errors (quiet=1)" },
	{ "rm", 0, NULL, F_RM, NULL,
	  "delete the traces after the report has been printed" },
	{ "allocator", 0, "NAME", F_ALLOCATOR, NULL,
	  "run the program on another malloc: jemalloc (glibc: the default)" },
	{ "guard", 0, NULL, F_SETS, "guard=1",
	  "guard mode: a use after free or an overflow stops the program at once (guard=1)" },
	{ "no-stacks", 0, NULL, F_SETS, "stacks=0",
	  "do not capture call stacks (stacks=0)" },
};

#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

/* The SPY_OPTIONS the library understands, from the one shared table. */
struct lib_option {
	const char *name, *kind, *def, *help;
};

#define SPY_LIB_OPTION(name, kind, def, help) { #name, #kind, def, help },
static const struct lib_option lib_options[] = {
	SPY_OPTIONS_LIST(SPY_LIB_OPTION)
};
#undef SPY_LIB_OPTION

#define NLIB_OPTIONS (sizeof(lib_options) / sizeof(lib_options[0]))

struct run {
	const char *out;         /* -o, or NULL */
	const char *report_file; /* --report-file, or NULL */
	const char *opts[MAX_OPTS];
	int nopts;
	const char *report_args[8]; /* from F_REPORT flags */
	int nreport_args;
	int no_report, quiet, rm;
	char **argv;             /* PROGRAM ARGS... */
	char prog[PATH_MAX];     /* the program, resolved like execvp */
	char self_dir[PATH_MAX]; /* where this spy binary lives */
	char libspy[PATH_MAX];
	char analyze[PATH_MAX];  /* empty: look it up in PATH */
	char allocator[PATH_MAX]; /* --allocator: a malloc to preload after libspy */
};

/* "spy: <message><tail>" on one line, whatever bytes the user's words
 * hold (control characters show as '?'), then exit(status). */
static void die_line(int status, const char *tail, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0), noreturn));
static void die_line(int status, const char *tail, const char *fmt, va_list ap)
{
	char what[1024];

	vsnprintf(what, sizeof(what), fmt, ap);
	for (char *c = what; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = '?';
	fprintf(stderr, "spy: %s%s\n", what, tail);
	exit(status);
}

void spy_die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	die_line(status, "", fmt, ap);
}

/* A command line spy cannot take: one line that says what is wrong, and
 * status 2. */
static void bad_usage(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
static void bad_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	die_line(EXIT_REFUSED, " (see spy --help)", fmt, ap);
}

/* snprintf for paths: a path that does not fit is an error, never cut. */
void spy_pathf(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap)
		spy_die(EXIT_REFUSED, "path too long: '%.64s...'", dst);
}

static void info(const struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->quiet)
		return;
	fputs("spy: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"usage: spy [options] [--] PROGRAM [ARGS...]\n"
		"Run PROGRAM with libspy.so preloaded, keep its exit status, then\n"
		"print the report of the trace it left (on standard error).\n\n"
		"options:\n");
	for (i = 0; i < NFLAGS; i++) {
		char head[64];
		const struct flag *fl = &flags[i];

		if (fl->short_name)
			snprintf(head, sizeof(head), "-%c, --%s%s%s",
				 fl->short_name, fl->name, fl->arg ? " " : "",
				 fl->arg ? fl->arg : "");
		else
			snprintf(head, sizeof(head), "    --%s%s%s", fl->name,
				 fl->arg ? " " : "", fl->arg ? fl->arg : "");
		fprintf(f, "  %-26s ", head);
		text_hang(f, fl->help, 29, 29);
	}
	fprintf(f,
		"\nSPY_OPTIONS (--opt NAME=VALUE, or SPY_OPTIONS=name=value:name=value):\n");
	for (i = 0; i < NLIB_OPTIONS; i++) {
		const struct lib_option *o = &lib_options[i];
		char head[64];

		char text[512];

		snprintf(head, sizeof(head), "%s=%s", o->name, o->kind);
		snprintf(text, sizeof(text), "%s (default: %s)", o->help, o->def);
		fprintf(f, "  %-26s ", head);
		text_hang(f, text, 29, 29);
	}
	fprintf(f,
		"\nThe exit status is PROGRAM's (128+N if signal N killed it), or 2\n"
		"when spy cannot trace it. Examples:\n"
		"  spy ./demos/stack_heap\n"
		"  spy -o run.log --opt stack_depth=8 -- ./prog --its-own-flag\n"
		"  spy --json --report-file report.json ./prog\n");
}

/* ---- command line -------------------------------------------------------- */

/* --allocator NAME: glibc (nothing to preload) or jemalloc, found where
 * Debian and others install it. */
static void find_allocator(struct run *r, const char *name)
{
	static const char *const dirs[] = {
		"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
		"/usr/lib64", "/usr/lib", "/usr/local/lib", NULL,
	};
	r->allocator[0] = '\0';
	if (!strcmp(name, "glibc"))
		return;
	if (strcmp(name, "jemalloc"))
		bad_usage("unknown allocator '%s': glibc or jemalloc", name);
	for (int i = 0; dirs[i]; i++) {
		snprintf(r->allocator, sizeof(r->allocator), "%s/libjemalloc.so.2",
			 dirs[i]);
		if (access(r->allocator, R_OK) == 0)
			return;
	}
	spy_die(EXIT_REFUSED, "cannot find libjemalloc.so.2 (install libjemalloc2)");
}

static const struct lib_option *lib_option_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NLIB_OPTIONS; i++)
		if (strlen(lib_options[i].name) == len &&
		    !strncmp(lib_options[i].name, name, len))
			return &lib_options[i];
	return NULL;
}

static void add_opt(struct run *r, const char *entry)
{
	const char *eq = strchr(entry, '=');

	if (!eq || eq == entry)
		bad_usage("bad --opt '%s': expected NAME=VALUE", entry);
	if (!lib_option_find(entry, (size_t)(eq - entry)))
		bad_usage("unknown SPY_OPTIONS option '%.*s'",
		    (int)(eq - entry), entry);
	if (strchr(eq + 1, ':'))
		bad_usage("bad --opt '%s': a value cannot contain ':'", entry);
	if (r->nopts == MAX_OPTS)
		bad_usage("too many --opt (at most %d)", MAX_OPTS);
	r->opts[r->nopts++] = entry;
}

static void apply_flag(struct run *r, const struct flag *fl, const char *arg)
{
	switch (fl->id) {
	case F_HELP:
		usage(stdout);
		exit(0);
	case F_OUT: r->out = arg; break;
	case F_NO_REPORT: r->no_report = 1; break;
	case F_REPORT_FILE: r->report_file = arg; break;
	case F_OPT: add_opt(r, arg); break;
	case F_QUIET: r->quiet = 1; add_opt(r, "quiet=1"); break;
	case F_RM: r->rm = 1; break;
	case F_SETS: add_opt(r, fl->sets); break;
	case F_ALLOCATOR: find_allocator(r, arg); break;
	case F_REPORT:
		/* The report has one format: which of two would be a guess. */
		for (int i = 0; i < r->nreport_args; i++) {
			if (!strcmp(r->report_args[i], fl->sets))
				return;
			bad_usage("'%s' and '%s' are two report formats: give one",
				  r->report_args[i], fl->sets);
		}
		if (r->nreport_args < 8)
			r->report_args[r->nreport_args++] = fl->sets;
		break;
	}
}

/* Parses spy's flags up to the first non-flag word or "--"; what follows is
 * the program and its own arguments, never looked at. */
static void parse_args(struct run *r, int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-' && argv[i][1]) {
		const char *a = argv[i], *val = NULL;
		const struct flag *fl = NULL;
		size_t k, len;

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');

			len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			for (k = 0; k < NFLAGS; k++)
				if (strlen(flags[k].name) == len &&
				    !strncmp(flags[k].name, a + 2, len))
					fl = &flags[k];
			if (fl && eq && !fl->arg)
				bad_usage("option '--%s' takes no value", fl->name);
			if (eq)
				val = eq + 1;
		} else {
			for (k = 0; k < NFLAGS; k++)
				if (flags[k].short_name == a[1])
					fl = &flags[k];
			if (fl && a[2]) {
				if (!fl->arg)
					fl = NULL; /* no bundling: -qx is unknown */
				else
					val = a + 2;
			}
		}
		if (!fl)
			bad_usage("unknown option '%s'", a);
		if (fl->arg && !val) {
			if (i + 1 >= argc)
				bad_usage("option '%s' needs %s", a, fl->arg);
			val = argv[++i];
		}
		apply_flag(r, fl, val);
		i++;
	}
	if (i >= argc)
		bad_usage("no program to run");
	r->argv = argv + i;
}

/* ---- finding our companions -------------------------------------------- */

static int is_file(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISREG(st.st_mode);
}

static void locate_tools(struct run *r)
{
	char self[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		spy_die(EXIT_REFUSED, "cannot find myself: readlink /proc/self/exe: %s",
		    strerror(errno));
	self[n] = '\0';
	slash = strrchr(self, '/');
	*slash = '\0';
	spy_pathf(r->self_dir, sizeof(r->self_dir), "%s", self[0] ? self : "/");

	spy_pathf(r->libspy, sizeof(r->libspy), "%s/libspy.so", r->self_dir);
	if (!is_file(r->libspy))
		spy_pathf(r->libspy, sizeof(r->libspy),
			 "%s/../lib/libspy/libspy.so", r->self_dir);
	if (!is_file(r->libspy))
		spy_die(EXIT_REFUSED, "cannot find libspy.so next to '%s' nor in "
		    "'%s/../lib/libspy'", r->self_dir, r->self_dir);
	/* The loader splits LD_PRELOAD at spaces and colons, with no escape. */
	if (strpbrk(r->libspy, " :"))
		spy_die(EXIT_REFUSED, "cannot preload '%s': LD_PRELOAD cannot hold "
		    "a path with a space or a colon", r->libspy);

	spy_pathf(r->analyze, sizeof(r->analyze), "%s/analyze", r->self_dir);
	if (access(r->analyze, X_OK))
		r->analyze[0] = '\0';
}

/* ---- SPY_OPTIONS and the trace's name ------------------------------------ */

/* The trace pattern in force: -o, else the last out= of --opt, else the last
 * out= of the inherited SPY_OPTIONS, else the table's default. */
static const char *out_pattern(const struct run *r, const char *env)
{
	static char from_env[PATH_MAX];
	const char *p, *found = NULL;
	int i;

	if (r->out)
		return r->out;
	for (i = r->nopts - 1; i >= 0; i--)
		if (!strncmp(r->opts[i], "out=", 4))
			return r->opts[i] + 4;
	for (p = env; p && *p; p += strcspn(p, ":"), p += *p == ':') {
		if (!strncmp(p, "out=", 4)) {
			size_t len = strcspn(p + 4, ":");

			snprintf(from_env, sizeof(from_env), "%.*s", (int)len,
				 p + 4);
			found = from_env;
		}
	}
	if (found && *found)
		return found;
	return lib_option_find("out", 3) ? lib_option_find("out", 3)->def
					 : "spy.%e.%p.log";
}

/* The child's SPY_OPTIONS: the inherited entries but out=, then --opt's
 * entries but out=, then out= with an absolute path, so that traces of
 * children that change directory land beside the first one. */
static char *spy_options(const struct run *r, const char *env,
			 const char *abs_out)
{
	size_t cap = (env ? strlen(env) : 0) + strlen(abs_out) + 8, len = 0;
	const char *p;
	char *s;
	int i;

	for (i = 0; i < r->nopts; i++)
		cap += strlen(r->opts[i]) + 1;
	s = malloc(cap);
	if (!s)
		spy_die(EXIT_REFUSED, "out of memory");
	s[0] = '\0';
	for (p = env; p && *p; p += strcspn(p, ":"), p += *p == ':') {
		size_t n = strcspn(p, ":");

		if (!n || !strncmp(p, "out=", 4))
			continue;
		len += (size_t)sprintf(s + len, "%.*s:", (int)n, p);
	}
	for (i = 0; i < r->nopts; i++)
		if (strncmp(r->opts[i], "out=", 4))
			len += (size_t)sprintf(s + len, "%s:", r->opts[i]);
	sprintf(s + len, "out=%s", abs_out);
	return s;
}

/* ---- running ------------------------------------------------------------- */

static volatile sig_atomic_t child_pid;
static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define NFORWARDED (sizeof(forwarded) / sizeof(forwarded[0]))

/* Signal handler: async-signal-safe calls only. A signal that the terminal
 * sent (SI_KERNEL) already went to the child, which shares our process
 * group; sending it again would deliver Ctrl-C twice. */
static void forward_signal(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;

	(void)uc;
	if (child_pid > 0 && si->si_code != SI_KERNEL)
		kill((pid_t)child_pid, sig);
	errno = saved;
}

static void set_forwarding(int on)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	if (on) {
		sa.sa_sigaction = forward_signal;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
	} else {
		sa.sa_handler = SIG_DFL;
	}
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < NFORWARDED; i++)
		sigaction(forwarded[i], &sa, NULL);
}

static void block_forwarded(int how)
{
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < NFORWARDED; i++)
		sigaddset(&set, forwarded[i]);
	sigprocmask(how, &set, NULL);
}

static void exec_program(const struct run *r, const char *options)
{
	const char *old = getenv("LD_PRELOAD");
	char *preload;
	int argc = 0;

	/* libspy first: its hooks find the allocator that follows it. */
	preload = malloc(strlen(r->libspy) + strlen(r->allocator) +
			 (old ? strlen(old) : 0) + 3);
	if (!preload)
		_exit(127);
	strcpy(preload, r->libspy);
	if (r->allocator[0])
		strcat(strcat(preload, ":"), r->allocator);
	if (old && *old)
		strcat(strcat(preload, ":"), old);
	if (setenv("LD_PRELOAD", preload, 1) ||
	    setenv("SPY_OPTIONS", options, 1)) {
		fprintf(stderr, "spy: cannot set the environment: %s\n",
			strerror(errno));
		_exit(127);
	}
	execv(r->prog, r->argv);
	if (errno == ENOEXEC) {
		/* No #! and not ELF: a shell script, as execvp runs it. */
		char **sh;

		while (r->argv[argc])
			argc++;
		sh = calloc((size_t)argc + 2, sizeof(*sh));
		if (sh) {
			sh[0] = "sh";
			sh[1] = (char *)r->prog;
			memcpy(sh + 2, r->argv + 1, (size_t)argc * sizeof(*sh));
			execv("/bin/sh", sh);
		}
	}
	fprintf(stderr, "spy: cannot run '%s': %s\n", r->argv[0],
		strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* Runs the program, forwarding signals; returns its status as a shell
 * reports it (128+N for signal N). */
static int run_program(const struct run *r, const char *options, pid_t *pid)
{
	int status;
	pid_t p;

	fflush(NULL);
	block_forwarded(SIG_BLOCK);
	set_forwarding(1);
	p = fork();
	if (p < 0)
		spy_die(EXIT_REFUSED, "cannot fork: %s", strerror(errno));
	if (p == 0) {
		set_forwarding(0);
		block_forwarded(SIG_UNBLOCK);
		exec_program(r, options);
	}
	child_pid = p;
	*pid = p;
	block_forwarded(SIG_UNBLOCK);
	while (waitpid(p, &status, 0) < 0) {
		if (errno != EINTR)
			spy_die(EXIT_REFUSED, "waitpid: %s", strerror(errno));
	}
	child_pid = 0;
	set_forwarding(0);
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);

		info(r, "'%s' was killed by signal %d (%s)%s", r->argv[0], sig,
		     strsignal(sig), WCOREDUMP(status) ? ", core dumped" : "");
		return 128 + sig;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* Runs `analyze report [FORMAT FLAGS] TRACE` with its output on our stderr (or in
 * --report-file). The analyzer's own status does not change ours. */
static void run_report(const struct run *r, const char *trace)
{
	const char *args[13];
	int n = 0, i, status;
	pid_t p;

	args[n++] = "analyze";
	args[n++] = "report";
	for (i = 0; i < r->nreport_args; i++)
		args[n++] = r->report_args[i];
	args[n++] = trace;
	args[n] = NULL;
	fflush(NULL);
	p = fork();
	if (p < 0) {
		fprintf(stderr, "spy: cannot fork for the report: %s\n",
			strerror(errno));
		return;
	}
	if (p == 0) {
		int fd = 2;

		if (r->report_file) {
			fd = open(r->report_file,
				  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0) {
				fprintf(stderr, "spy: cannot write report '%s': %s\n",
					r->report_file, strerror(errno));
				_exit(127);
			}
		}
		dup2(fd, 1);
		if (r->analyze[0])
			execv(r->analyze, (char **)args);
		else
			execvp("analyze", (char **)args);
		fprintf(stderr, "spy: cannot run '%s': %s\n",
			r->analyze[0] ? r->analyze : "analyze", strerror(errno));
		_exit(127);
	}
	while (waitpid(p, &status, 0) < 0 && errno == EINTR)
		;
}

/* The traces of children and exec'd images read for findings: a build
 * under spy leaves hundreds, and each read is a run of analyze. */
#define CHILD_CHECKS_MAX 16

/* 1 when `analyze report` finds something in trace (its status 1): a
 * child's leak or bad free is named, not left behind a file name. */
static int has_findings(const struct run *r, const char *trace)
{
	const char *args[] = { "analyze", "report", trace, NULL };
	int status = 0;
	fflush(NULL);
	pid_t p = fork();
	if (p < 0)
		return 0;
	if (p == 0) {
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (r->analyze[0])
			execv(r->analyze, (char **)args);
		else
			execvp("analyze", (char **)args);
		_exit(127);
	}
	while (waitpid(p, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

static const char *shown_path(const char *abs, const char *cwd)
{
	size_t n = strlen(cwd);

	if (!strncmp(abs, cwd, n) && abs[n] == '/' && strcmp(cwd, "/"))
		return abs + n + 1;
	return abs;
}

/* 1 when spy itself runs under a seccomp filter (a sandbox started it):
 * so does the program, which libspy then leaves untraced (on_seccomp). */
static int under_seccomp(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int mode = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	return mode != 0;
}

int main(int argc, char **argv)
{
	static struct run r;
	struct found_list before = { 0 }, after = { 0 }, mine = { 0 };
	char cwd[PATH_MAX], abs_pat[PATH_MAX], expected[PATH_MAX], real[PATH_MAX];
	const char *env = getenv("SPY_OPTIONS"), *pat, *exe, *main_trace = NULL;
	struct timespec best = { 0, 0 };
	int status, i;
	pid_t pid;
	char *options;

	parse_args(&r, argc, argv);
	locate_tools(&r);
	spy_program_resolve(r.argv[0], r.prog, sizeof(r.prog));
	spy_program_check(r.argv[0], r.prog, r.libspy, 0);

	pat = out_pattern(&r, env);
	if (!*pat)
		spy_die(EXIT_REFUSED, "the trace path is empty");
	if (strchr(pat, ':'))
		spy_die(EXIT_REFUSED, "bad trace path '%s': it cannot contain ':'",
		    pat);
	if (!getcwd(cwd, sizeof(cwd)))
		spy_die(EXIT_REFUSED, "cannot get the current directory: %s",
		    strerror(errno));
	if (pat[0] == '/')
		spy_pathf(abs_pat, sizeof(abs_pat), "%s", pat);
	else
		spy_pathf(abs_pat, sizeof(abs_pat), "%s/%s",
		      strcmp(cwd, "/") ? cwd : "", pat);
	/* libspy keeps at most 511 bytes of a text option. */
	if (strlen(abs_pat) > 511)
		spy_die(EXIT_REFUSED, "trace path '%.40s...' is too long for libspy "
		    "(at most 511 bytes)", abs_pat);
	options = spy_options(&r, env, abs_pat);

	spy_traces_find_all(abs_pat, -1, &before);
	status = run_program(&r, options, &pid);
	spy_traces_find_all(abs_pat, -1, &after);
	spy_traces_keep_written(&after, &before);

	/* The trace is the one named as libspy names it; if %e came out
	 * otherwise (a #! script becomes its interpreter), the newest trace
	 * with the child's pid, which is the image the process ended as. */
	exe = realpath(r.prog, real) ? real : r.prog;
	exe = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	spy_traces_expand(expected, sizeof(expected), abs_pat, (long)pid, exe);
	if (spy_traces_list_find(&after, expected)) {
		main_trace = expected;
	} else {
		spy_traces_find(abs_pat, (long)pid, &mine);
		spy_traces_keep_written(&mine, &before);
		for (i = 0; i < mine.n; i++)
			if (!main_trace || spy_traces_newer(&mine.v[i].mtime, &best)) {
				spy_pathf(expected, sizeof(expected), "%s",
				      mine.v[i].path);
				best = mine.v[i].mtime;
				main_trace = expected;
			}
	}

	if (!main_trace && under_seccomp()) {
		fprintf(stderr, "spy: no trace was written to '%s': the program "
			"started under a seccomp filter, as spy did, and libspy "
			"leaves such a program untraced (--opt on_seccomp=trace "
			"traces it all the same)\n", shown_path(expected, cwd));
	} else if (!main_trace) {
		fprintf(stderr, "spy: no trace was written to '%s' (did the "
			"program clear LD_PRELOAD, or could libspy not write "
			"there?)\n", shown_path(expected, cwd));
	} else {
		if (!r.no_report)
			run_report(&r, main_trace);
		info(&r, "trace written to %s", shown_path(main_trace, cwd));
		size_t checked = 0, unchecked = 0;
		for (i = 0; i < after.n; i++) {
			const char *t = after.v[i].path;
			if (!strcmp(t, main_trace))
				continue;
			int check = !r.no_report && !r.rm;
			if (check && checked == CHILD_CHECKS_MAX) {
				check = 0;
				unchecked++;
			}
			if (check)
				checked++;
			if (check && has_findings(&r, t))
				info(&r, "trace of a child or an exec'd image, "
				     "with findings: %s (analyze report %s)",
				     shown_path(t, cwd), shown_path(t, cwd));
			else
				info(&r, "trace of a child or an exec'd image: %s",
				     shown_path(t, cwd));
		}
		if (unchecked)
			info(&r, "%zu more traces of children or exec'd images "
			     "were not read for findings (analyze report each)",
			     unchecked);
		if (r.rm) {
			for (i = 0; i < after.n; i++)
				unlink(after.v[i].path);
			unlink(main_trace);
		}
	}
	spy_traces_release(&before);
	spy_traces_release(&after);
	spy_traces_release(&mine);
	free(options);
	return status;
}
