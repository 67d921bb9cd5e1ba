/* spy_runner.c: `spy PROGRAM`, run a program with libspy.so preloaded, keep
 * its exit status, then print the analyzer's report of the trace it left.
 *
 * spy refuses, with one line and status 2, what libspy cannot trace: a
 * missing or non-executable program, a statically linked one (no PT_INTERP:
 * the dynamic loader, which honours LD_PRELOAD, never runs), a setuid or
 * setgid one (the loader ignores LD_PRELOAD there) and one built for another
 * machine than libspy.so. Everything else is the program's business.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
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

#define EXIT_REFUSED 2
#define MAX_OPTS 64
#define MAX_SHEBANG_DEPTH 4

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
	F_SETS, F_REPORT,
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
};

static void die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("spy: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* snprintf for paths: a path that does not fit is an error, never cut. */
static void pathf(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap)
		die(EXIT_REFUSED, "path too long: '%.64s...'", dst);
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
		fprintf(f, "  %-26s %s\n", head, fl->help);
	}
	fprintf(f,
		"\nSPY_OPTIONS (--opt NAME=VALUE, or SPY_OPTIONS=name=value:name=value):\n");
	for (i = 0; i < NLIB_OPTIONS; i++) {
		const struct lib_option *o = &lib_options[i];
		char head[64];

		snprintf(head, sizeof(head), "%s=%s", o->name, o->kind);
		fprintf(f, "  %-26s %s (default: %s)\n", head, o->help, o->def);
	}
	fprintf(f,
		"\nThe exit status is PROGRAM's (128+N if signal N killed it), or 2\n"
		"when spy cannot trace it. Examples:\n"
		"  spy ./demos/stack_heap\n"
		"  spy -o run.log --opt stack_depth=8 -- ./prog --its-own-flag\n"
		"  spy --json --report-file report.json ./prog\n");
}

/* ---- command line -------------------------------------------------------- */

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
		die(EXIT_REFUSED, "bad --opt '%s': expected NAME=VALUE (see spy --help)",
		    entry);
	if (!lib_option_find(entry, (size_t)(eq - entry)))
		die(EXIT_REFUSED, "unknown SPY_OPTIONS option '%.*s' (see spy --help)",
		    (int)(eq - entry), entry);
	if (strchr(eq + 1, ':'))
		die(EXIT_REFUSED, "bad --opt '%s': a value cannot contain ':'", entry);
	if (r->nopts == MAX_OPTS)
		die(EXIT_REFUSED, "too many --opt (at most %d)", MAX_OPTS);
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
	case F_REPORT:
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
				die(EXIT_REFUSED, "option '--%s' takes no value",
				    fl->name);
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
			die(EXIT_REFUSED, "unknown option '%s' (see spy --help)", a);
		if (fl->arg && !val) {
			if (i + 1 >= argc)
				die(EXIT_REFUSED, "option '%s' needs %s", a,
				    fl->arg);
			val = argv[++i];
		}
		apply_flag(r, fl, val);
		i++;
	}
	if (i >= argc)
		die(EXIT_REFUSED, "no program to run (see spy --help)");
	r->argv = argv + i;
}

/* ---- finding our companions and the program ----------------------------- */

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
		die(EXIT_REFUSED, "cannot find myself: readlink /proc/self/exe: %s",
		    strerror(errno));
	self[n] = '\0';
	slash = strrchr(self, '/');
	*slash = '\0';
	pathf(r->self_dir, sizeof(r->self_dir), "%s", self[0] ? self : "/");

	pathf(r->libspy, sizeof(r->libspy), "%s/libspy.so", r->self_dir);
	if (!is_file(r->libspy))
		pathf(r->libspy, sizeof(r->libspy),
			 "%s/../lib/libspy/libspy.so", r->self_dir);
	if (!is_file(r->libspy))
		die(EXIT_REFUSED, "cannot find libspy.so next to '%s' nor in "
		    "'%s/../lib/libspy'", r->self_dir, r->self_dir);
	/* The loader splits LD_PRELOAD at spaces and colons, with no escape. */
	if (strpbrk(r->libspy, " :"))
		die(EXIT_REFUSED, "cannot preload '%s': LD_PRELOAD cannot hold "
		    "a path with a space or a colon", r->libspy);

	pathf(r->analyze, sizeof(r->analyze), "%s/analyze", r->self_dir);
	if (access(r->analyze, X_OK))
		r->analyze[0] = '\0';
}

/* Resolves the program as execvp would: a name with a slash as it is, a bare
 * name through PATH (first executable regular file wins). */
static void resolve_program(struct run *r)
{
	const char *name = r->argv[0], *path, *p;
	int saw_noexec = 0;
	struct stat st;

	if (!*name)
		die(EXIT_REFUSED, "cannot trace '': no such file");
	if (strchr(name, '/')) {
		if (stat(name, &st))
			die(EXIT_REFUSED, "cannot trace '%s': %s", name,
			    strerror(errno));
		if (S_ISDIR(st.st_mode))
			die(EXIT_REFUSED, "cannot trace '%s': it is a directory",
			    name);
		if (!S_ISREG(st.st_mode) || access(name, X_OK))
			die(EXIT_REFUSED, "cannot trace '%s': it is not executable",
			    name);
		snprintf(r->prog, sizeof(r->prog), "%s", name);
		return;
	}
	path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/bin:/usr/bin";
	for (p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		snprintf(r->prog, sizeof(r->prog), "%.*s%s%s", (int)len, p,
			 len ? "/" : "", name);
		if (!stat(r->prog, &st) && S_ISREG(st.st_mode)) {
			if (!access(r->prog, X_OK))
				return;
			saw_noexec = 1;
		}
		if (!end)
			break;
		p = end;
	}
	if (saw_noexec)
		die(EXIT_REFUSED, "cannot trace '%s': it is not executable", name);
	die(EXIT_REFUSED, "cannot trace '%s': command not found in PATH", name);
}

/* ---- what kind of program is it ------------------------------------------ */

struct elf_info {
	int bad;          /* 1: cut short or of an unknown class or byte order */
	int cls;          /* ELFCLASS32 or ELFCLASS64 */
	unsigned machine; /* e_machine */
	int has_interp;   /* a PT_INTERP program header */
};

/* Reads the ELF header and program headers of an open file. Returns 0, or
 * -1 when the file is not ELF (or not one for this byte order). */
static int elf_read(int fd, struct elf_info *ei)
{
	unsigned char id[EI_NIDENT];
	uint64_t phoff;
	unsigned phnum, phentsize, i;

	memset(ei, 0, sizeof(*ei));
	if (pread(fd, id, sizeof(id), 0) != (ssize_t)sizeof(id) ||
	    memcmp(id, ELFMAG, SELFMAG))
		return -1;
	ei->cls = id[EI_CLASS];
	ei->bad = 1;
	if (id[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ?
			    ELFDATA2LSB : ELFDATA2MSB))
		return 0; /* another machine's byte order */
	if (ei->cls == ELFCLASS64) {
		Elf64_Ehdr eh;

		if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
			return 0;
		ei->machine = eh.e_machine;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
	} else if (ei->cls == ELFCLASS32) {
		Elf32_Ehdr eh;

		if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
			return 0;
		ei->machine = eh.e_machine;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
	} else {
		return 0;
	}
	ei->bad = 0;
	/* PN_XNUM (0xffff) would put the count in section 0; no executable
	 * with a loader has that many headers, so scanning 0xffff is enough. */
	for (i = 0; i < phnum && phentsize >= sizeof(uint32_t); i++) {
		uint32_t type;

		if (pread(fd, &type, sizeof(type),
			  (off_t)(phoff + (uint64_t)i * phentsize)) !=
		    (ssize_t)sizeof(type))
			break;
		if (type == PT_INTERP) {
			ei->has_interp = 1;
			break;
		}
	}
	return 0;
}

/* Refuses (exits 2) unless the loader will honour LD_PRELOAD in the process
 * that `path` becomes. A #! script becomes its interpreter. */
static void check_program(const struct run *r, const char *shown,
			  const char *path, int depth)
{
	struct elf_info ei, lib;
	char buf[256];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die(EXIT_REFUSED, "cannot trace '%s': cannot read '%s': %s",
		    shown, path, strerror(errno));
	if (fstat(fd, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID))) {
		/* Linux ignores set-id bits on scripts, so for one only its
		 * interpreter's bits matter (checked one level down). */
		n = pread(fd, buf, 2, 0);
		if (!(n == 2 && buf[0] == '#' && buf[1] == '!'))
			die(EXIT_REFUSED, "cannot trace '%s': %s is set%cid "
			    "(LD_PRELOAD is ignored for set-id programs)", shown,
			    depth ? "its interpreter" : "it",
			    (st.st_mode & S_ISUID) ? 'u' : 'g');
	}
	if (elf_read(fd, &ei) == 0) {
		close(fd);
		if (ei.bad)
			die(EXIT_REFUSED, "cannot trace '%s': %s is an ELF file "
			    "cut short or not for this machine", shown,
			    depth ? "its interpreter" : "it");
		if (!ei.has_interp)
			die(EXIT_REFUSED, "cannot trace '%s': %s is statically "
			    "linked (no PT_INTERP); libspy needs a dynamically "
			    "linked program", shown, depth ? "its interpreter" : "it");
		fd = open(r->libspy, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && elf_read(fd, &lib) == 0 &&
		    (lib.cls != ei.cls || lib.machine != ei.machine))
			die(EXIT_REFUSED, "cannot trace '%s': it is a %d-bit "
			    "program for ELF machine %u and libspy.so is a "
			    "%d-bit library for machine %u", shown,
			    ei.cls == ELFCLASS32 ? 32 : 64, ei.machine,
			    lib.cls == ELFCLASS32 ? 32 : 64, lib.machine);
		if (fd >= 0)
			close(fd);
		return;
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
		char *interp = buf + 2, *end;

		buf[n] = '\0';
		interp += strspn(interp, " \t");
		end = interp + strcspn(interp, " \t\n");
		*end = '\0';
		if (!*interp)
			die(EXIT_REFUSED, "cannot trace '%s': its #! line names "
			    "no interpreter", shown);
		if (depth >= MAX_SHEBANG_DEPTH)
			die(EXIT_REFUSED, "cannot trace '%s': too many levels of "
			    "#! interpreters", shown);
		if (access(interp, X_OK))
			die(EXIT_REFUSED, "cannot trace '%s': its interpreter "
			    "'%s': %s", shown, interp, strerror(errno));
		check_program(r, shown, interp, depth + 1);
	}
	/* Anything else runs through /bin/sh, as execvp does. */
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
		die(EXIT_REFUSED, "out of memory");
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

/* Expands %p, %e and %% as libspy does; other '%' stay as they are. */
static void expand(char *dst, size_t cap, const char *pat, long pid,
		   const char *exe)
{
	size_t n = 0;

	for (; *pat && n + 1 < cap; pat++) {
		if (pat[0] == '%' && pat[1] == 'p')
			n += (size_t)snprintf(dst + n, cap - n, "%ld", pid), pat++;
		else if (pat[0] == '%' && pat[1] == 'e')
			n += (size_t)snprintf(dst + n, cap - n, "%s", exe), pat++;
		else if (pat[0] == '%' && pat[1] == '%')
			dst[n++] = '%', pat++;
		else
			dst[n++] = *pat;
		if (n >= cap)
			n = cap - 1;
	}
	dst[n] = '\0';
}

/* A file-name pattern for fnmatch: %e matches anything, %p the given pid
 * (or anything when pid < 0), the rest literally. */
static void to_glob(char *dst, size_t cap, const char *pat, long pid)
{
	size_t n = 0;

	for (; *pat && n + 24 < cap; pat++) {
		if (pat[0] == '%' && pat[1] == 'p') {
			if (pid < 0)
				dst[n++] = '*';
			else
				n += (size_t)snprintf(dst + n, cap - n, "%ld", pid);
			pat++;
		} else if (pat[0] == '%' && pat[1] == 'e') {
			dst[n++] = '*', pat++;
		} else {
			if (pat[0] == '%' && pat[1] == '%')
				pat++;
			if (strchr("*?[\\", *pat))
				dst[n++] = '\\';
			dst[n++] = *pat;
		}
	}
	dst[n] = '\0';
}

struct found {
	char *path;
	struct timespec mtime;
	ino_t ino;
};

/* A growing list of files; cannot fail (spy exits when memory runs out). */
struct found_list {
	struct found *v;
	int n, cap;
};

static int newer(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec != b->tv_sec ? a->tv_sec > b->tv_sec
				      : a->tv_nsec > b->tv_nsec;
}

static const struct found *list_find(const struct found_list *l,
				     const char *path)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].path, path))
			return &l->v[i];
	return NULL;
}

static void list_add(struct found_list *l, const char *path,
		     const struct stat *st)
{
	if (list_find(l, path))
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 32;
		l->v = realloc(l->v, (size_t)l->cap * sizeof(*l->v));
		if (!l->v)
			die(EXIT_REFUSED, "out of memory");
	}
	l->v[l->n].path = strdup(path);
	if (!l->v[l->n].path)
		die(EXIT_REFUSED, "out of memory");
	l->v[l->n].mtime = st->st_mtim;
	l->v[l->n++].ino = st->st_ino;
}

/* Adds to l the regular files in the pattern's directory whose names fit
 * it with the given pid (any pid when pid < 0). A pattern with '%' in its
 * directory part finds nothing: that is not worth a walk. */
static void find_traces(const char *abs_pat, long pid, struct found_list *l)
{
	char dir[PATH_MAX], glob[PATH_MAX * 2], path[PATH_MAX * 2];
	const char *slash = strrchr(abs_pat, '/');
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - abs_pat), abs_pat);
	if (!dir[0])
		strcpy(dir, "/");
	if (strchr(dir, '%'))
		return;
	to_glob(glob, sizeof(glob), slash + 1, pid);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st;

		if (fnmatch(glob, de->d_name, FNM_PERIOD))
			continue;
		snprintf(path, sizeof(path), "%s/%s",
			 strcmp(dir, "/") ? dir : "", de->d_name);
		if (!lstat(path, &st) && S_ISREG(st.st_mode))
			list_add(l, path, &st);
	}
	closedir(d);
}

/* A pattern without %p gives libspy's traces of forked or exec'd processes
 * a ".<pid>" (or ".<pid>-<n>") before a ".log" ending, or at the end. */
static void with_pid_pattern(char *dst, size_t cap, const char *pat)
{
	size_t len = strlen(pat);

	if (len >= 4 && !strcmp(pat + len - 4, ".log"))
		snprintf(dst, cap, "%.*s.%%p.log", (int)(len - 4), pat);
	else
		snprintf(dst, cap, "%s.%%p", pat);
}

/* Both patterns under which the run's traces may appear. */
static void find_all_traces(const char *abs_pat, long pid,
			    struct found_list *l)
{
	char alt[PATH_MAX + 8];

	find_traces(abs_pat, pid, l);
	if (!strstr(abs_pat, "%p")) {
		with_pid_pattern(alt, sizeof(alt), abs_pat);
		find_traces(alt, -1, l);
	}
}

/* Keeps only the files that the run wrote: absent from `before`, another
 * file now (libspy replaces an old trace), or changed since. File times are
 * too coarse to compare with a clock. */
static void keep_written(struct found_list *l, const struct found_list *before)
{
	int i, kept = 0;

	for (i = 0; i < l->n; i++) {
		const struct found *old = list_find(before, l->v[i].path);

		if (old && old->ino == l->v[i].ino &&
		    !newer(&l->v[i].mtime, &old->mtime) &&
		    !newer(&old->mtime, &l->v[i].mtime))
			free(l->v[i].path);
		else
			l->v[kept++] = l->v[i];
	}
	l->n = kept;
}

static void list_release(struct found_list *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
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

	if (old && *old) {
		preload = malloc(strlen(r->libspy) + strlen(old) + 2);
		if (!preload)
			_exit(127);
		sprintf(preload, "%s:%s", r->libspy, old);
	} else {
		preload = (char *)r->libspy;
	}
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
		die(EXIT_REFUSED, "cannot fork: %s", strerror(errno));
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
			die(EXIT_REFUSED, "waitpid: %s", strerror(errno));
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

static const char *shown_path(const char *abs, const char *cwd)
{
	size_t n = strlen(cwd);

	if (!strncmp(abs, cwd, n) && abs[n] == '/' && strcmp(cwd, "/"))
		return abs + n + 1;
	return abs;
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
	resolve_program(&r);
	check_program(&r, r.argv[0], r.prog, 0);

	pat = out_pattern(&r, env);
	if (!*pat)
		die(EXIT_REFUSED, "the trace path is empty");
	if (strchr(pat, ':'))
		die(EXIT_REFUSED, "bad trace path '%s': it cannot contain ':'",
		    pat);
	if (!getcwd(cwd, sizeof(cwd)))
		die(EXIT_REFUSED, "cannot get the current directory: %s",
		    strerror(errno));
	if (pat[0] == '/')
		pathf(abs_pat, sizeof(abs_pat), "%s", pat);
	else
		pathf(abs_pat, sizeof(abs_pat), "%s/%s",
		      strcmp(cwd, "/") ? cwd : "", pat);
	/* libspy keeps at most 511 bytes of a text option. */
	if (strlen(abs_pat) > 511)
		die(EXIT_REFUSED, "trace path '%.40s...' is too long for libspy "
		    "(at most 511 bytes)", abs_pat);
	options = spy_options(&r, env, abs_pat);

	find_all_traces(abs_pat, -1, &before);
	status = run_program(&r, options, &pid);
	find_all_traces(abs_pat, -1, &after);
	keep_written(&after, &before);

	/* The trace is the one named as libspy names it; if %e came out
	 * otherwise (a #! script becomes its interpreter), the newest trace
	 * with the child's pid, which is the image the process ended as. */
	exe = realpath(r.prog, real) ? real : r.prog;
	exe = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	expand(expected, sizeof(expected), abs_pat, (long)pid, exe);
	if (list_find(&after, expected)) {
		main_trace = expected;
	} else {
		find_traces(abs_pat, (long)pid, &mine);
		keep_written(&mine, &before);
		for (i = 0; i < mine.n; i++)
			if (!main_trace || newer(&mine.v[i].mtime, &best)) {
				pathf(expected, sizeof(expected), "%s",
				      mine.v[i].path);
				best = mine.v[i].mtime;
				main_trace = expected;
			}
	}

	if (!main_trace) {
		fprintf(stderr, "spy: no trace was written to '%s' (did the "
			"program clear LD_PRELOAD, or could libspy not write "
			"there?)\n", shown_path(expected, cwd));
	} else {
		if (!r.no_report)
			run_report(&r, main_trace);
		info(&r, "trace written to %s", shown_path(main_trace, cwd));
		for (i = 0; i < after.n; i++)
			if (strcmp(after.v[i].path, main_trace))
				info(&r, "trace of a child or an exec'd image: %s",
				     shown_path(after.v[i].path, cwd));
		if (r.rm) {
			for (i = 0; i < after.n; i++)
				unlink(after.v[i].path);
			unlink(main_trace);
		}
	}
	list_release(&before);
	list_release(&after);
	list_release(&mine);
	free(options);
	return status;
}
