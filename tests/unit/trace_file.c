/* Unit test: a trace file is mapped, not copied, and a file cut shorter
 * while analyze holds it ends analyze with one line and status 2; a
 * SIGBUS from elsewhere still does what it would have done.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "trace_builder.h"
#include "trace_reader.h"

static void build(struct tb *b)
{
	static const char *const argv[] = { "prog" };
	tb_init(b);
	tb_chunk(b, 100, 1000);
	tb_process(b, 1000, 4242, 1, TRACE_CAUSE_EXEC, "/bin/prog", 1, argv,
		   "");
	tb_alloc(b, 1100, TRACE_FN_MALLOC, 0x5000, 32, 0, 0);
	tb_endrec(b, 1200);
	tb_chunk_end(b);
	tb_pad(b);
}

/* Runs fn in a child with stderr to errfile; returns its wait status. */
static int in_child(void (*fn)(const struct trace_model *),
		    const struct trace_model *m, const char *errfile)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		if (!freopen(errfile, "w", stderr))
			_exit(99);
		fn(m);
		_exit(0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid)
		abort();
	return st;
}

static void touch_exe(const struct trace_model *m)
{
	volatile char c = m->process.exe.p[0];
	(void)c;
}

static void raise_bus(const struct trace_model *m)
{
	(void)m;
	raise(SIGBUS);
}

int main(void)
{
	char dir[] = "/tmp/spy-trace-file.XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char path[64], errfile[64];
	snprintf(path, sizeof(path), "%s/t.log", dir);
	snprintf(errfile, sizeof(errfile), "%s/err", dir);
	struct tb b;
	build(&b);
	FILE *f = fopen(path, "w");
	if (!f || fwrite(b.buf, 1, b.len, f) != b.len || fclose(f))
		abort();

	struct trace_model m;
	struct trace_error err;
	int r = trace_load_file(path, &m, &err);
	if (!ok(r == 0, "the file loads (%s)", err.msg))
		return tap_done();
	ok(m.mapped && m.size == b.len, "mapped, all %zu bytes", b.len);
	ok(m.process.exe.len == 9 && !memcmp(m.process.exe.p, "/bin/prog", 9),
	   "a string of a region already let go reads back");

	int st = in_child(raise_bus, &m, errfile);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS,
	   "a SIGBUS not from the file still kills");

	if (truncate(path, 0) < 0)
		abort();
	st = in_child(touch_exe, &m, errfile);
	char line[200] = "";
	f = fopen(errfile, "r");
	int lines = 0;
	if (f) {
		char more[200];
		if (fgets(line, sizeof(line), f))
			lines++;
		while (fgets(more, sizeof(more), f))
			lines++;
		fclose(f);
	}
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 2 && lines == 1 &&
	   !strcmp(line, "analyze: the trace file shrank while it was read\n"),
	   "a file cut shorter under analyze: status 2, one line (%s)", line);

	trace_model_release(&m);
	unlink(errfile);
	unlink(path);
	rmdir(dir);
	free(b.buf);
	return tap_done();
}
