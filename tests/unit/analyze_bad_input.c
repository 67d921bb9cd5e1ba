/* Unit test: every analyze command on traces that load but hold hostile
 * values (huge sizes, counts and addresses, records that contradict each
 * other, records missing). A command may report or refuse with one line
 * (status 2), never crash or hang: each runs in a child under a time
 * limit. The Makefile builds this test's analyzer with UBSan's checks
 * trapping, so undefined behaviour kills the command too. Run it under
 * ASan as well when changing a model (an out-of-bounds read need not
 * crash here).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TB_REGION (256u << 10)

#include "commands.h"
#include "trace_reader.h"
#include "tap.h"
#include "trace_builder.h"

#define LIMIT_S 10

static char dir[] = "/tmp/analyze_bad_input.XXXXXX";

/* The trace every case starts from: a process, a module, a stack, an
 * allocation (id 1) and the records after it. */
static void begin(struct tb *b)
{
	static const char *const argv[] = { "prog" };
	static const uint64_t frames[] = { 0x401010, 0x401100 };
	tb_init(b);
	tb_chunk(b, 10, 500);
	tb_process(b, 500, 10, 1, 0, "/bin/prog", 1, argv, "");
	tb_thread(b, 500, 10, 0);
	tb_module(b, 510, 1, 0x400000, 0x402000, 0, 5, "/bin/prog");
	tb_stack(b, 515, 1, frames, 2);
	tb_alloc(b, 520, TRACE_FN_MALLOC, 0x9010, 5, 1, 0);
}

/* Before the i-th of many records, every `every` of them: a new chunk of
 * main's at time t, so that a chunk stays inside its region. */
static void chunk_every(struct tb *b, uint64_t i, uint64_t every, uint64_t t)
{
	if (i % every)
		return;
	tb_chunk_end(b);
	tb_pad(b);
	tb_chunk(b, 10, t);
}

static void finish(struct tb *b)
{
	tb_exit(b, 900, TRACE_EXIT_RETURN, 0, 0);
	tb_endrec(b, 901);
	tb_chunk_end(b);
}

static const char *save(const struct tb *b, const char *name)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b->buf, 1, b->len, f) != b->len || fclose(f) != 0)
		abort();
	return path;
}

/* Runs one command on trace in a child; 1 when it exited 0, 1 or 2 (2
 * with a single line on stderr) within the limit. */
static int runs_clean(const struct command *c, struct cmd_args a)
{
	char err[160];
	snprintf(err, sizeof(err), "%s/stderr", dir);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (null < 0 || e < 0 || dup2(null, 1) < 0 || dup2(e, 2) < 0)
			_exit(99);
		alarm(LIMIT_S);
		_exit(c->run(&a));
	}
	int st;
	if (waitpid(pid, &st, 0) != pid)
		abort();
	if (WIFSIGNALED(st)) {
		diag("%s%s: killed by signal %d%s", c->name, a.json ? " --json" : "",
		     WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (a hang)" : "");
		return 0;
	}
	int rc = WEXITSTATUS(st);
	if (rc > 2) {
		diag("%s%s: exit status %d", c->name, a.json ? " --json" : "", rc);
		return 0;
	}
	int lines = 0, ch;
	FILE *f = fopen(err, "r");
	while (f && (ch = fgetc(f)) != EOF)
		lines += ch == '\n';
	if (f)
		fclose(f);
	if (rc == 2 && lines > 1) {
		diag("%s: status 2 with %d lines on stderr", c->name, lines);
		return 0;
	}
	return 1;
}

/* Every command, text and JSON, on trace; the number that failed. */
static int run_all(const char *trace)
{
	int bad = 0;
	for (const struct command *c = analyze_commands; c->name; c++) {
		for (int json = 0; json < 2; json++) {
			struct cmd_args a = { .trace = trace, .json = json,
					      .out = "/dev/null" };
			if (!strcmp(c->name, "where")) {
				a.trace = "0x9010";
				a.arg = trace;
			} else if (!strcmp(c->name, "export")) {
				if (json)
					continue;
				a.chrome = true;
			}
			bad += !runs_clean(c, a);
			if (!strcmp(c->name, "report") && !json) {
				a.html = true;
				bad += !runs_clean(c, a);
			}
			if (!strcmp(c->name, "fragmentation")) {
				a.svg = !json;
				bad += !runs_clean(c, a);
				a.svg = false;
				a.compare = true;
				a.arg = trace;
				bad += !runs_clean(c, a);
			}
		}
	}
	return bad;
}

/* The one command name, text and JSON: for traces too big to run every
 * command on, where the cost is the loading that all of them share. */
static int run_named(const char *trace, const char *name)
{
	int bad = 0;
	for (int json = 0; json < 2; json++)
		bad += !runs_clean(command_find(name),
				   (struct cmd_args){ .trace = trace,
						      .json = json });
	return bad;
}

/* A heap-overrun record whose block is 2^60 bytes: the canary compare
 * must cover the bytes the record carries, not the whole block. */
static void test_overrun_huge_block(void)
{
	struct tb b;
	begin(&b);
	tb_begin(&b, 600);
	tb_v(&b, 0x9010);            /* addr */
	tb_v(&b, 1ull << 60);        /* usable */
	tb_s(&b, "xxxxxxxxxxxxxxxxxxxxxxxx"); /* tail */
	tb_v(&b, 1);                 /* stack */
	tb_end_record(&b, TRACE_HEAP_OVERRUN);
	finish(&b);
	ok(run_all(save(&b, "overrun")) == 0,
	   "a heap overrun in a block of 2^60 bytes");
	free(b.buf);
}

/* One thread taking 1000 locks without releasing any: each lock held
 * adds an edge at every later acquisition, with the held set copied into
 * each; unbounded, that is cubic (a minute and gigabytes here). */
static void test_locks_nested(void)
{
	struct tb b;
	begin(&b);
	for (uint64_t i = 0; i < 1000; i++) {
		tb_begin(&b, 600 + i);
		tb_v(&b, 0x100000 + 64 * i);   /* lock */
		tb_v(&b, TRACE_LOCK_MUTEX);    /* flags: blocking */
		tb_v(&b, 1);                   /* stack */
		tb_v(&b, 0);                   /* wait_ns */
		tb_end_record(&b, TRACE_LOCK_ACQUIRE);
	}
	finish(&b);
	ok(run_all(save(&b, "nested")) == 0, "1000 locks held at once");
	free(b.buf);
}

/* 800,000 locks outside every heap block, each taken and released once:
 * the search for the heap block holding a new lock tried 4096 addresses
 * below it for each (more than 10 s for `locks`). */
static void test_many_global_locks(void)
{
	struct tb b;
	begin(&b);
	for (uint64_t i = 0; i < 800000; i++) {
		chunk_every(&b, i, 1000, 600);
		tb_begin(&b, 600);
		tb_v(&b, 0x40000000 + 64 * i); /* lock */
		tb_v(&b, TRACE_LOCK_MUTEX);    /* flags: blocking */
		tb_v(&b, 1);                   /* stack */
		tb_v(&b, 0);                   /* wait_ns */
		tb_end_record(&b, TRACE_LOCK_ACQUIRE);
		tb_begin(&b, 600);
		tb_v(&b, 0x40000000 + 64 * i);
		tb_end_record(&b, TRACE_LOCK_RELEASE);
	}
	finish(&b);
	ok(run_named(save(&b, "globallocks"), "locks") == 0,
	   "800,000 locks outside the heap");
	free(b.buf);
}

/* 300,000 lines of anonymous memory in one module snapshot and no
 * end-map record, and 100,000 threads whose stacks lie in them: each line
 * dropped what it overlapped from all the lines before it, each region
 * of the start map was looked for among all of the end map's, and each
 * thread's stack among all the lines, quadratic (minutes for `map`). */
static void test_many_map_lines(void)
{
	struct tb b;
	begin(&b);
	for (uint64_t i = 0; i < 300000; i++) {
		uint64_t at = 0x10000000 + 0x2000 * i;
		chunk_every(&b, i, 10000, 600);
		tb_module(&b, 600, 1, at, at + 0x1000, 0, 6, "");
	}
	for (uint64_t i = 0; i < 100000; i++) {
		chunk_every(&b, i, 5000, 700);
		tb_begin(&b, 700);
		tb_v(&b, 100 + i);                            /* tid */
		tb_v(&b, 10);                                 /* creator */
		tb_v(&b, 0x7000 + i);                         /* handle */
		tb_v(&b, 0x10000000 + 0x2000 * i + 0x800);    /* stack_top */
		tb_v(&b, 0x400);                              /* stack_size */
		tb_v(&b, TRACE_STACK_FROM_ATTR);
		tb_end_record(&b, TRACE_THREAD_START);
	}
	finish(&b);
	ok(run_named(save(&b, "maplines"), "map") == 0,
	   "300,000 map lines and 100,000 thread stacks");
	free(b.buf);
}

/* 200,000 module records, and 100,000 of each of leaks with a stack of
 * their own, frees of globals and samples at distinct addresses, none
 * of them in a module: each looked for its module among all the records,
 * quadratic (minutes for `report`). */
static void test_many_module_lookups(void)
{
	struct tb b;
	begin(&b);
	for (uint64_t i = 0; i < 200000; i++) {
		uint64_t at = 0x10000000 + 0x2000 * i;
		chunk_every(&b, i, 10000, 600);
		tb_module(&b, 600, 1, at, at + 0x1000, 0, 5, "/x");
	}
	for (uint64_t i = 0; i < 100000; i++) {
		uint64_t frame = 0x90000000 + 16 * i;
		chunk_every(&b, i, 2000, 700);
		tb_stack(&b, 700, 2 + i, &frame, 1);
		tb_alloc(&b, 700, TRACE_FN_MALLOC, 0x1000000 + 64 * i, 32, 2 + i, 0);
		tb_begin(&b, 700);
		tb_v(&b, 0x1000000 + 64 * i);  /* addr */
		tb_v(&b, 40);                  /* size */
		tb_v(&b, TRACE_LEAK_DEFINITE);
		tb_end_record(&b, TRACE_LEAK);
		tb_begin(&b, 700);
		tb_v(&b, TRACE_FN_FREE);
		tb_v(&b, 0x90000008 + 16 * i); /* addr */
		tb_v(&b, 1);                   /* stack */
		tb_v(&b, TRACE_BAD_GLOBAL);
		tb_v(&b, 0);                   /* base */
		tb_end_record(&b, TRACE_BAD_FREE);
		tb_begin(&b, 700);
		tb_v(&b, frame);               /* pc */
		for (int r = 0; r < 16; r++)
			tb_v(&b, 0x1000000);
		tb_end_record(&b, TRACE_SAMPLE);
	}
	finish(&b);
	const char *t = save(&b, "lookups");
	ok(run_named(t, "leaks") == 0 && run_named(t, "sharing") == 0 &&
	   run_named(t, "report") == 0,
	   "100,000 lookups each of 200,000 module records");
	free(b.buf);
}

/* 500,000 live blocks and 1,000 interval heap-info records: each
 * snapshot of the series sorted and laid out every live block (minutes
 * for `fragmentation`). */
static void test_many_heap_snapshots(void)
{
	struct tb b;
	begin(&b);
	for (uint64_t i = 0; i < 500000; i++) {
		chunk_every(&b, i, 20000, 600);
		tb_alloc(&b, 600, TRACE_FN_MALLOC, 0x1000000 + 64 * i, 32, 1, 0);
	}
	for (uint64_t i = 0; i < 1000; i++) {
		tb_begin(&b, 700 + i);       /* heap-info: interval */
		tb_v(&b, 2);
		for (int k = 0; k < 10; k++)
			tb_v(&b, 4096);
		tb_end_record(&b, TRACE_HEAP_INFO);
	}
	finish(&b);
	ok(run_named(save(&b, "snapshots"), "fragmentation") == 0,
	   "1,000 heap snapshots of 500,000 live blocks");
	free(b.buf);
}

/* No module and no end-map record (they were cut out): the maps of the
 * address space start empty. */
static void test_no_maps(void)
{
	static const char *const argv[] = { "prog" };
	struct tb b;
	tb_init(&b);
	tb_chunk(&b, 10, 500);
	tb_process(&b, 500, 10, 1, 0, "/bin/prog", 1, argv, "");
	tb_alloc(&b, 520, TRACE_FN_MALLOC, 0x9010, 5, 0, 0);
	finish(&b);
	ok(run_all(save(&b, "nomaps")) == 0, "a trace without map records");
	free(b.buf);
}

/* Two threads whose stacks (from their start records) lie side by side
 * where no map line is: the two lines made for them were compared by
 * path, and a line made up has no path at all (memcmp given NULL). */
static void test_adjacent_thread_stacks(void)
{
	struct tb b;
	begin(&b);
	for (uint64_t i = 0; i < 2; i++) {
		tb_begin(&b, 600);
		tb_v(&b, 20 + i);                     /* tid */
		tb_v(&b, 10);                         /* creator */
		tb_v(&b, 0x7000 + i);                 /* handle */
		tb_v(&b, 0x7f0000002000 + 0x1000 * i); /* stack_top */
		tb_v(&b, 0x1000);                     /* stack_size */
		tb_v(&b, TRACE_STACK_FROM_ATTR);
		tb_end_record(&b, TRACE_THREAD_START);
	}
	finish(&b);
	ok(run_all(save(&b, "stacks")) == 0,
	   "two thread stacks side by side outside every map line");
	free(b.buf);
}

/* A record 2^63 ns after the process started: its time since the start
 * is INT64_MIN as an int64_t, whose negation is undefined. */
static void test_time_far_from_start(void)
{
	struct tb b;
	begin(&b);
	tb_note(&b, 500 + (1ull << 63), 0, "far");
	finish(&b);
	ok(run_all(save(&b, "far")) == 0, "a record 2^63 ns after the start");
	free(b.buf);
}

/* syscalls=all records naming 300,000 distinct call numbers: each number
 * was looked for among those seen before, quadratic (minutes). */
static void test_many_syscalls(void)
{
	struct tb b;
	begin(&b);
	for (uint64_t r = 0; r < 3000; r++) {
		chunk_every(&b, r, 100, 600 + r);
		tb_begin(&b, 600 + r);
		tb_v(&b, 10);                  /* tid */
		tb_v(&b, 100);                 /* n */
		for (uint64_t k = 0; k < 100; k++) {
			tb_v(&b, 1000 + r * 100 + k); /* nr */
			tb_v(&b, 1);           /* calls */
			tb_v(&b, 0);           /* errors */
		}
		tb_end_record(&b, TRACE_SYSCALLS);
	}
	finish(&b);
	ok(run_all(save(&b, "syscalls")) == 0, "300,000 distinct system calls");
	free(b.buf);
}

/* 100,000 I/O call sites, each on a descriptor of its own, every other
 * one described: each site was looked for among those before it, and
 * again among the merged ones, quadratic (about 40 s). */
static void test_many_io_sites(void)
{
	struct tb b;
	begin(&b);
	for (uint64_t r = 0; r < 100000; r++) {
		chunk_every(&b, r, 500, 600);
		if (r % 2 == 0) {
			char path[32];
			snprintf(path, sizeof(path), "/tmp/f%llu", (unsigned long long)r);
			tb_begin(&b, 600);
			tb_v(&b, r + 1);               /* id */
			tb_v(&b, 3 + r % 1000);        /* fd */
			tb_v(&b, 1);                   /* type */
			tb_s(&b, path);
			tb_end_record(&b, TRACE_IO_FD);
		}
		tb_begin(&b, 600);
		tb_v(&b, 10);                  /* tid */
		tb_v(&b, 0);                   /* fn: write */
		tb_v(&b, 3 + r % 1000);        /* fd */
		tb_v(&b, r % 2 ? 0 : r + 1);   /* desc */
		tb_v(&b, 1);                   /* stack */
		tb_v(&b, 1);                   /* calls */
		tb_v(&b, 10);                  /* bytes */
		tb_v(&b, 0);                   /* errors */
		tb_v(&b, 0);                   /* timed_calls */
		tb_v(&b, 0);                   /* timed_ns */
		tb_v(&b, 10);                  /* max_size */
		tb_v(&b, 0);                   /* nbuckets */
		tb_end_record(&b, TRACE_IO_SITE);
	}
	finish(&b);
	const char *t = save(&b, "iosites");
	ok(run_named(t, "syscalls") == 0 && run_named(t, "report") == 0,
	   "100,000 I/O call sites");
	free(b.buf);
}

/* 300,000 frees of addresses never allocated, at one instant: the loader
 * looks past each for another thread's allocation of the same address
 * (clocks that disagree), which was quadratic with no bound on the
 * events it looked at. */
static void test_many_unknown_frees(void)
{
	struct tb b;
	begin(&b);
	for (uint64_t i = 0; i < 300000; i++) {
		chunk_every(&b, i, 30000, 600);
		tb_free(&b, 600, 0x100000 + 16 * i, 0);
	}
	finish(&b);
	ok(run_named(save(&b, "frees"), "summary") == 0,
	   "300,000 frees of unknown addresses at one instant");
	free(b.buf);
}

/* Times scaled up from samples past 2^64: a thread measured waiting
 * 2^64-1 ns for a CPU, stood for by two that were not measured, and an
 * I/O call site whose one timed call of 2^64-1 ns stands for a million.
 * Converting those to integers was undefined. */
static void test_scaled_times(void)
{
	struct tb b;
	begin(&b);
	for (uint64_t tid = 20; tid < 23; tid++) {
		tb_begin(&b, 600);
		tb_v(&b, tid);
		tb_v(&b, TRACE_THREAD_RETURNED);
		for (int i = 0; i < 6; i++)   /* user .. majflt */
			tb_v(&b, 1);
		tb_v(&b, 5);                  /* run_ns */
		tb_v(&b, tid == 20 ? UINT64_MAX : 0); /* wait_ns */
		tb_v(&b, 1000);               /* lifetime_ns */
		tb_v(&b, 8192);               /* stack_size */
		tb_v(&b, tid == 20 ? TRACE_SCHED_READ : TRACE_SCHED_SKIPPED);
		tb_end_record(&b, TRACE_THREAD_END);
	}
	tb_begin(&b, 610);
	tb_v(&b, 10); tb_v(&b, TRACE_IO_WRITE); tb_v(&b, 1); tb_v(&b, 0);
	tb_v(&b, 1);                          /* stack */
	tb_v(&b, 1000000); tb_v(&b, 1000000); /* calls, bytes */
	tb_v(&b, 0);                          /* errors */
	tb_v(&b, 1); tb_v(&b, UINT64_MAX);    /* timed_calls, timed_ns */
	tb_v(&b, 1); tb_v(&b, 0);             /* max_size, nbuckets */
	tb_end_record(&b, TRACE_IO_SITE);
	finish(&b);
	ok(run_all(save(&b, "scaled")) == 0, "times scaled past 2^64");
	free(b.buf);
}

/* Lock misuses, joins and a deadlock of joins with values out of range:
 * a type, a what and a join call no libspy writes, a holder and a
 * result past 32 bits, stacks that do not exist, and a deadlock of two
 * threads joining each other in a trace with no lock at all. */
static void test_misuse_and_joins(void)
{
	struct tb b;
	begin(&b);
	static const uint64_t types[] = { 0, 1, 2, 3, 4, 5, 6, 255, 1ull << 40 };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		tb_begin(&b, 600 + i);
		tb_v(&b, 0x7000 + 64 * (i % 3)); /* lock */
		tb_v(&b, i % 6);                 /* what: 0 and 5 unknown */
		tb_v(&b, i & 1 ? UINT64_MAX : 0);
		tb_v(&b, i & 2 ? 99 : 1);        /* stack */
		tb_v(&b, types[i]);
		tb_end_record(&b, TRACE_LOCK_MISUSE);
	}
	static const uint64_t results[] = { 0, 3, 16, 22, 35, 110, 1ull << 40 };
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		tb_begin(&b, 620 + i);
		tb_v(&b, 0x5000); tb_v(&b, UINT64_MAX); tb_v(&b, results[i]);
		tb_v(&b, i & 1 ? 99 : 1);
		tb_v(&b, i < 4 ? i : UINT64_MAX); /* call */
		tb_end_record(&b, TRACE_THREAD_JOIN);
	}
	finish(&b);
	ok(run_all(save(&b, "misuse")) == 0,
	   "lock misuses and joins with values out of range");
	free(b.buf);

	begin(&b);
	tb_begin(&b, 600);
	tb_v(&b, 0); tb_v(&b, 2);
	tb_v(&b, 10); tb_v(&b, 0x5000); tb_v(&b, TRACE_LOCK_JOIN);
	tb_v(&b, 1); tb_v(&b, 500); tb_v(&b, 0);
	tb_v(&b, 11); tb_v(&b, 0x6000); tb_v(&b, TRACE_LOCK_JOIN);
	tb_v(&b, 99); tb_v(&b, UINT64_MAX); tb_v(&b, 0);
	tb_end_record(&b, TRACE_DEADLOCK);
	finish(&b);
	ok(run_all(save(&b, "joinring")) == 0,
	   "a deadlock of two joins in a trace with no lock");
	free(b.buf);
}

/* The trace of every case so far in one, small, with a record of most
 * kinds. */
static void build_small(struct tb *b)
{
	static const uint64_t frames[] = { 0x401010, 0x401100 };
	begin(b);
	tb_alloc(b, 530, TRACE_FN_MALLOC, 0x9040, 24, 1, 0);
	tb_free(b, 540, 0x9040, 1);
	tb_realloc(b, 545, 0x9010, 0x9100, 40, 1);
	tb_stack(b, 546, 2, frames, 2);
	tb_begin(b, 550);            /* lock-acquire */
	tb_v(b, 0x7000); tb_v(b, TRACE_LOCK_MUTEX); tb_v(b, 2); tb_v(b, 5);
	tb_end_record(b, TRACE_LOCK_ACQUIRE);
	tb_begin(b, 560);            /* lock-release */
	tb_v(b, 0x7000);
	tb_end_record(b, TRACE_LOCK_RELEASE);
	tb_begin(b, 570);            /* heap-overrun */
	tb_v(b, 0x9100); tb_v(b, 56); tb_s(b, "abcdefgh"); tb_v(b, 1);
	tb_end_record(b, TRACE_HEAP_OVERRUN);
	tb_begin(b, 580);            /* leak */
	tb_v(b, 0x9100); tb_v(b, 40); tb_v(b, TRACE_LEAK_DEFINITE);
	tb_end_record(b, TRACE_LEAK);
	tb_begin(b, 590);            /* syscalls */
	tb_v(b, 10); tb_v(b, 1); tb_v(b, 1); tb_v(b, 3); tb_v(b, 0);
	tb_end_record(b, TRACE_SYSCALLS);
	tb_begin(b, 600);            /* heap-info at exit, glibc */
	for (int i = 0; i < 11; i++)
		tb_v(b, i ? 4096u * i : 0);
	tb_end_record(b, TRACE_HEAP_INFO);
	tb_begin(b, 610);            /* end-map: the heap */
	tb_v(b, 0x9000); tb_v(b, 0x20000); tb_v(b, 0); tb_v(b, 14);
	tb_s(b, "[heap]");
	tb_end_record(b, TRACE_END_MAP);
	finish(b);
}

/* Runs every command on path in this process (for speed: a crash or a
 * hang ends the test), output to /dev/null; the number of runs whose
 * status was not 0, 1 or 2 or that said more than one line with 2. */
static size_t sweep_one(const char *path, size_t *runs)
{
	char err[160];
	snprintf(err, sizeof(err), "%s.err", path);
	fflush(stdout);
	int out = dup(1), errfd = dup(2);
	int null = open("/dev/null", O_WRONLY);
	int e = open(err, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (out < 0 || errfd < 0 || null < 0 || e < 0)
		abort();
	size_t bad = 0;
	for (const struct command *c = analyze_commands; c->name; c++) {
		for (int json = 0; json < 2; json++) {
			struct cmd_args a = { .trace = path, .json = json,
					      .out = "/dev/null" };
			if (!strcmp(c->name, "where")) {
				a.trace = "0x9010";
				a.arg = path;
			}
			a.chrome = !strcmp(c->name, "export");
			if (ftruncate(e, 0) < 0 || dup2(null, 1) < 0 ||
			    dup2(e, 2) < 0)
				abort();
			int rc = c->run(&a);
			fflush(stdout);
			fflush(stderr);
			dup2(out, 1);
			dup2(errfd, 2);
			(*runs)++;
			off_t said = lseek(e, 0, SEEK_END);
			char buf[400] = "";
			if (pread(e, buf, sizeof(buf) - 1, 0) < 0)
				abort();
			char *nl = strchr(buf, '\n');
			if (rc < 0 || rc > 2 ||
			    (rc == 2 && nl && (off_t)(nl - buf) + 1 < said)) {
				bad++;
				diag("%s%s: status %d: %s", c->name,
				     json ? " --json" : "", rc, buf);
			}
			lseek(e, 0, SEEK_SET);
		}
	}
	close(null);
	close(e);
	close(out);
	close(errfd);
	return bad;
}

/* The small trace cut at every byte, and each of its bytes past the file
 * header set to 0xff in turn: every command on each. */
static void test_sweep(void)
{
	struct tb b;
	build_small(&b);
	size_t len = b.len, cut_bad = 0, ff_bad = 0, runs = 0;
	const char *path = save(&b, "small");
	struct trace_model m;
	struct trace_error terr;
	ok(trace_load_file(path, &m, &terr) == 0 && m.n_events >= 16 &&
	   m.has_end && !m.truncated, "the small trace loads whole");
	trace_model_release(&m);
	alarm(120);
	for (b.len = TRACE_FILE_HEADER_SIZE; b.len < len; b.len++)
		cut_bad += sweep_one(save(&b, "cut"), &runs);
	ok(cut_bad == 0, "cut at each of %zu bytes: %zu runs, status 0, 1 or "
	   "2 (with one line)", len - TRACE_FILE_HEADER_SIZE, runs);
	b.len = len;
	runs = 0;
	for (size_t i = TRACE_FILE_HEADER_SIZE; i < len; i++) {
		uint8_t was = b.buf[i];
		b.buf[i] = 0xff;
		ff_bad += sweep_one(save(&b, "ff"), &runs);
		b.buf[i] = was;
	}
	alarm(0);
	ok(ff_bad == 0, "each of %zu bytes set to 0xff: %zu runs, status 0, "
	   "1 or 2 (with one line)", len - TRACE_FILE_HEADER_SIZE, runs);
	free(b.buf);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	test_overrun_huge_block();
	test_locks_nested();
	test_many_global_locks();
	test_no_maps();
	test_adjacent_thread_stacks();
	test_time_far_from_start();
	test_many_map_lines();
	test_many_module_lookups();
	test_many_heap_snapshots();
	test_many_syscalls();
	test_many_io_sites();
	test_many_unknown_frees();
	test_scaled_times();
	test_misuse_and_joins();
	test_sweep();
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return tap_done();
}
