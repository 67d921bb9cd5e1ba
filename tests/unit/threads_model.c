/* Unit test: the threads model read back from rec_threads' records built
 * with the writer's encoders: creation, start and end matched by handle
 * (also when a start's clock runs a little ahead of its creation), joins,
 * a cut-short end record read with zeros, the process totals; the
 * thread-storm detector both ways (150 short waiting threads flagged, 150
 * busy ones not, 50 short ones not); a stack-overflow record turned into a
 * finding with its numbers; and two threads the kernel gave one id.
 */
#include <string.h>

#include "detect_threads.h"
#include "tap.h"
#include "threads_model.h"
#define TB_REGION 65536u /* main's chunk holds 150 creations and joins */
#include "trace_builder.h"
#include "trace_reader.h"

static void create(struct tb *b, uint64_t t, uint64_t handle, uint64_t stack)
{
	tb_begin(b, t);
	tb_v(b, handle); tb_v(b, 0x401100); tb_v(b, 8 << 20); tb_v(b, 4096);
	tb_v(b, TRACE_STACK_FROM_DEFAULT); tb_v(b, 30000); tb_v(b, 0); tb_v(b, stack);
	tb_end_record(b, TRACE_THREAD_CREATE);
}

static void start(struct tb *b, uint64_t t, uint64_t tid, uint64_t handle)
{
	tb_begin(b, t);
	tb_v(b, tid); tb_v(b, 100); tb_v(b, handle); tb_v(b, 0x7f0000800000);
	tb_v(b, 8 << 20); tb_v(b, TRACE_STACK_FROM_DEFAULT);
	tb_end_record(b, TRACE_THREAD_START);
}

/* An end record: cpu_ns of user time in a life of life_ns, wait_ns queued. */
static void end(struct tb *b, uint64_t t, uint64_t tid, uint64_t how,
		uint64_t cpu_ns, uint64_t life_ns, uint64_t wait_ns)
{
	tb_begin(b, t);
	tb_v(b, tid); tb_v(b, how); tb_v(b, cpu_ns); tb_v(b, 0);
	tb_v(b, 3); tb_v(b, 1); tb_v(b, 20); tb_v(b, 0);
	tb_v(b, cpu_ns); tb_v(b, wait_ns); tb_v(b, life_ns); tb_v(b, 8 << 20);
	tb_end_record(b, TRACE_THREAD_END);
}

static void join(struct tb *b, uint64_t t, uint64_t handle, uint64_t wait)
{
	tb_begin(b, t);
	tb_v(b, handle); tb_v(b, wait); tb_v(b, 0);
	tb_end_record(b, TRACE_THREAD_JOIN);
}

static void totals(struct tb *b, uint64_t t, uint64_t created, uint64_t peak)
{
	tb_begin(b, t);
	tb_v(b, 5000000); tb_v(b, 7000000); tb_v(b, 400); tb_v(b, 50);
	tb_v(b, 900); tb_v(b, 2); tb_v(b, 4096); tb_v(b, created); tb_v(b, peak);
	tb_v(b, 2);
	tb_end_record(b, TRACE_PROCESS_STATS);
}

/* n threads from main (tid 100), each living life_ns with cpu_ns of CPU. */
static struct trace_model *build(struct trace_model *m, unsigned n,
				 uint64_t cpu_ns, uint64_t life_ns, int extras)
{
	static const char *const argv[] = { "prog" };
	static const uint64_t frames[] = { 0x401010, 0x401200 };
	struct tb b;
	tb_init(&b);
	tb_chunk(&b, 100, 1000);
	tb_process(&b, 1000, 100, 1, TRACE_CAUSE_START, "/bin/prog", 1, argv, "");
	tb_thread(&b, 1000, 100, 0);
	tb_module(&b, 1000, 1, 0x400000, 0x402000, 0, 5, "/bin/prog");
	tb_stack(&b, 1000, 7, frames, 2);
	uint64_t t = 2000;
	for (unsigned i = 0; i < n; i++, t += 1000)
		create(&b, t, 0x7f0000001000 + i * 0x1000, 7);
	for (unsigned i = 0; i < n; i++, t += 1000)
		join(&b, t, 0x7f0000001000 + i * 0x1000, 500);
	if (extras) {
		/* A start whose clock ran ahead of its creation, and a
		 * thread whose end record was cut after its first fields. */
		start(&b, t, 9000, 0x7f00000ff000);
		create(&b, t + 10, 0x7f00000ff000, 7);
	}
	totals(&b, t + 100000, n + (extras ? 1 : 0), 60);
	tb_chunk_end(&b);
	tb_pad(&b);
	for (unsigned i = 0; i < n; i++) {
		tb_chunk(&b, 200 + i, 2500 + i * 1000);
		start(&b, 2500 + i * 1000, 200 + i, 0x7f0000001000 + i * 0x1000);
		end(&b, 2600 + i * 1000, 200 + i, i % 3 == 1 ? TRACE_THREAD_EXITED
			: TRACE_THREAD_RETURNED, cpu_ns, life_ns, life_ns / 10);
		tb_chunk_end(&b);
		tb_pad(&b);
	}
	if (extras) {
		tb_chunk(&b, 9000, t + 50);
		tb_begin(&b, t + 50);
		tb_v(&b, 9000); tb_v(&b, TRACE_THREAD_CANCELLED); tb_v(&b, 1234);
		tb_end_record(&b, TRACE_THREAD_END);
		tb_chunk_end(&b);
		tb_pad(&b);
	}
	struct trace_error err;
	if (trace_load_buffer("threads", b.buf, b.len, m, &err) != 0)
		return NULL;
	return m;
}

static size_t count_kind(const struct finding_list *fl, const char *kind)
{
	size_t n = 0;
	for (size_t i = 0; i < fl->n; i++)
		n += !strcmp(fl->v[i].kind, kind);
	return n;
}

static int64_t detail(const struct finding *f, const char *key)
{
	for (size_t i = 0; i < f->n_details; i++)
		if (!strcmp(f->details[i].key, key))
			return f->details[i].num;
	return -1;
}

int main(void)
{
	struct trace_model m;
	struct threads_model tm;
	ok(build(&m, 3, 1000, 5000000, 1) != NULL, "a trace with thread records loads");
	ok(threads_model_build(&m, &tm) == 0, "the threads model builds");
	ok(tm.n == 4 && tm.creates == 4, "four threads, four creations");
	const struct thread_info *t0 = NULL, *late = NULL;
	for (size_t i = 0; i < tm.n; i++) {
		if (tm.v[i].tid == 200)
			t0 = &tm.v[i];
		if (tm.v[i].tid == 9000)
			late = &tm.v[i];
	}
	ok(t0 && t0->has_create && t0->has_start && t0->has_end && t0->creator == 100,
	   "creation, start and end of one thread are matched by its handle");
	ok(t0 && t0->start_fn == 0x401100 && t0->create_ns == 30000 && t0->joined &&
	   t0->join_ns == 500 && t0->create_stack,
	   "its start routine, creation time, join and creating stack");
	ok(t0 && t0->lifetime_ns == 5000000 && t0->wait_ns == 500000 && t0->nvcsw == 3 &&
	   t0->minflt == 20 && t0->stack_size == (8u << 20), "its costs are read");
	ok(late && late->has_create && late->has_start,
	   "a start stamped before its creation is still matched");
	ok(late && late->has_end && late->how == TRACE_THREAD_CANCELLED &&
	   late->user_ns == 1234 && late->lifetime_ns == 0,
	   "a cut-short end record reads with the missing fields 0");
	ok(tm.proc.seen && tm.proc.created == 4 && tm.proc.peak_live == 60 &&
	   tm.proc.minflt == 900, "the process totals");
	ok(!strcmp(threads_end_name(TRACE_THREAD_EXITED), "pthread_exit") &&
	   !strcmp(threads_end_name(99), "unknown"), "end names");
	threads_model_release(&tm);
	trace_model_release(&m);

	struct finding_list fl = { 0 };
	ok(build(&m, 150, 100000, 5000000, 0) && detect_threads(&m, &fl) == 0,
	   "150 short threads that mostly wait: the detector runs");
	ok(count_kind(&fl, "thread-storm") == 1, "they are a thread-storm");
	ok(fl.n && detail(&fl.v[0], "threads") == 150 &&
	   detail(&fl.v[0], "voluntary_switches") == 450 &&
	   detail(&fl.v[0], "peak_live_threads") == 60 &&
	   detail(&fl.v[0], "stack_reserved_at_peak") == 59ll * (8 << 20),
	   "with their numbers (switches, peak, stack reserved)");
	ok(fl.n && fl.v[0].n_stacks == 1, "and the stack that creates them");
	finding_list_release(&fl);
	trace_model_release(&m);

	ok(build(&m, 150, 4000000, 5000000, 0) && detect_threads(&m, &fl) == 0 &&
	   count_kind(&fl, "thread-storm") == 0, "150 busy threads: no thread-storm");
	finding_list_release(&fl);
	trace_model_release(&m);
	ok(build(&m, 50, 100000, 5000000, 0) && detect_threads(&m, &fl) == 0 &&
	   count_kind(&fl, "thread-storm") == 0, "50 short waiting threads: under the threshold");
	finding_list_release(&fl);
	trace_model_release(&m);

	/* The kernel gives an ended thread's id to a later thread: two
	 * threads, one id, each with its own life. */
	{
		static const char *const argv[] = { "prog" };
		struct tb b;
		tb_init(&b);
		tb_chunk(&b, 100, 1000);
		tb_process(&b, 1000, 100, 1, TRACE_CAUSE_START, "/bin/prog", 1, argv, "");
		create(&b, 2000, 0x7f0000001000, 0);
		join(&b, 9000, 0x7f0000001000, 10);
		create(&b, 10000, 0x7f0000002000, 0);
		join(&b, 19000, 0x7f0000002000, 10);
		tb_chunk_end(&b);
		tb_pad(&b);
		tb_chunk(&b, 300, 2500);
		start(&b, 2500, 300, 0x7f0000001000);
		end(&b, 8000, 300, TRACE_THREAD_RETURNED, 1111, 5500, 0);
		start(&b, 10500, 300, 0x7f0000002000);
		end(&b, 18000, 300, TRACE_THREAD_EXITED, 2222, 7500, 0);
		tb_chunk_end(&b);
		tb_pad(&b);
		struct trace_error err;
		struct threads_model tm2;
		ok(trace_load_buffer("reuse", b.buf, b.len, &m, &err) == 0 &&
		   threads_model_build(&m, &tm2) == 0, "a trace with an id given twice loads");
		const struct thread_info *a = NULL, *c = NULL;
		for (size_t i = 0; i < tm2.n; i++) {
			if (tm2.v[i].handle == 0x7f0000001000)
				a = &tm2.v[i];
			if (tm2.v[i].handle == 0x7f0000002000)
				c = &tm2.v[i];
		}
		ok(a && c && a != c && a->tid == 300 && c->tid == 300,
		   "two threads with id 300");
		ok(a && c && a->user_ns == 1111 && a->how == TRACE_THREAD_RETURNED &&
		   c->user_ns == 2222 && c->how == TRACE_THREAD_EXITED,
		   "each with its own end");
		ok(a && c && a->incarnation == 1 && c->incarnation == 2,
		   "the first is id 300's first thread, the second its second");
		threads_model_release(&tm2);
		trace_model_release(&m); /* the model owns the buffer */
	}
	return tap_done();
}
