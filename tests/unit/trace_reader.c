/* Unit test: a trace built with the writer's encoders reads back with every
 * field in place: two threads' chunks interleaved, a stack defined after its
 * first use by another thread, unknown kinds and grown records skipped.
 */
#include <string.h>

#include "heap_replay.h"
#include "tap.h"
#include "trace_builder.h"
#include "trace_reader.h"

static int str_is(struct trace_str s, const char *want)
{
	return s.len == strlen(want) && !memcmp(s.p, want, s.len);
}

static void build(struct tb *b)
{
	static const char *const argv[] = { "prog", "-x", "two words" };
	static const uint64_t frames[] = { 0x401000, 0x401100, 0x400f00 };
	tb_init(b);
	/* Thread 100, first chunk. */
	tb_chunk(b, 100, 1000);
	tb_process(b, 1000, 4242, 1, TRACE_CAUSE_EXEC, "/bin/prog", 3, argv,
		   "spy.parent.1.log");
	tb_thread(b, 1000, 100, 0);
	tb_module(b, 1000, 1, 0x400000, 0x401000, 0, 4, "/bin/prog");
	tb_module(b, 1000, 1, 0x401000, 0x402000, 0x1000, 5, "/bin/prog");
	/* An alloc with a field this reader does not know at its end. */
	tb_begin(b, 1100);
	tb_v(b, TRACE_FN_MALLOC); tb_delta(b, 0x5000); tb_v(b, 32);
	tb_v(b, 7); tb_v(b, 0); tb_v(b, 0xdeadbeef);
	tb_end_record(b, TRACE_ALLOC);
	/* A kind from the future: skipped, its dt still counts. */
	tb_begin(b, 1140);
	tb_v(b, 12345); tb_s(b, "future");
	tb_end_record(b, 200);
	tb_note(b, 1150, 1, "hello from libspy");
	tb_chunk_end(b);
	tb_pad(b);
	/* Thread 200 uses stack 7 and then defines it. */
	tb_chunk(b, 200, 1050);
	tb_thread(b, 1050, 200, 100);
	tb_alloc(b, 1120, TRACE_FN_CALLOC, 0x6000, 64, 7, 0);
	tb_stack(b, 1130, 7, frames, 3);
	tb_realloc(b, 1200, 0x6000, 0x7000, 128, 0);
	tb_alloc(b, 1210, TRACE_FN_ALIGNED_ALLOC, 0x8000, 16, 0, 64);
	tb_chunk_end(b);
	tb_pad(b);
	/* Thread 100 again; the last region is left short. */
	tb_chunk(b, 100, 1300);
	tb_free(b, 1300, 0x5000, 0);
	tb_free(b, 1310, 0x1234, 0);
	tb_exit(b, 1400, TRACE_EXIT_RETURN, 3, 0);
	tb_endrec(b, 1410);
	tb_chunk_end(b);
}

int main(void)
{
	struct tb b;
	build(&b);
	struct trace_model m;
	struct trace_error err;
	int r = trace_load_buffer("mem", tb_copy(&b), b.len, &m, &err);
	if (!ok(r == 0, "a well-formed trace loads (%s)", err.msg))
		return tap_done();

	const struct trace_process *p = &m.process;
	ok(p->seen && p->pid == 4242 && p->ppid == 1, "pid and ppid");
	ok(p->cause == TRACE_CAUSE_EXEC, "cause");
	ok(str_is(p->exe, "/bin/prog"), "exe");
	ok(p->argc == 3 && str_is(p->argv[0], "prog") &&
	   str_is(p->argv[1], "-x") && str_is(p->argv[2], "two words"),
	   "argv");
	ok(str_is(p->parent_trace, "spy.parent.1.log"), "parent trace");
	ok(p->start_unix_ns == 1700000000000000000ull &&
	   p->start_mono_ns == 1000, "start times");
	ok(p->stack_depth == 24 && p->flags == TRACE_PF_STACKS,
	   "stack depth and flags");
	ok(p->tid == 100, "process record's thread");
	ok(m.version == TRACE_VERSION && m.n_chunks == 3, "version, chunks");

	ok(m.n_modules == 2, "two module records");
	ok(m.n_modules == 2 && m.modules[1].start == 0x401000 &&
	   m.modules[1].end == 0x402000 && m.modules[1].file_offset == 0x1000 &&
	   m.modules[1].prot == 5 && m.modules[1].snapshot == 1 &&
	   str_is(m.modules[1].path, "/bin/prog"), "module fields");

	ok(m.n_stacks == 1 && m.stacks[0].id == 7 && m.stacks[0].defined &&
	   m.stacks[0].n == 3, "stack defined after first use is resolved");
	ok(m.n_stacks == 1 && m.stacks[0].frames[0] == 0x401000 &&
	   m.stacks[0].frames[1] == 0x401100 &&
	   m.stacks[0].frames[2] == 0x400f00, "stack frames");

	ok(m.n_threads == 2 && m.threads[0].tid == 100 &&
	   m.threads[1].tid == 200, "two threads in order of appearance");
	ok(m.n_threads == 2 && m.threads[1].creator == 100 &&
	   m.threads[1].announced, "thread creator");

	/* Time order across the chunks. */
	static const struct { uint64_t ts; uint8_t kind; uint32_t tid; }
	want[] = {
		{ 1000, TRACE_PROCESS, 100 }, { 1000, TRACE_THREAD, 100 },
		{ 1000, TRACE_MODULE, 100 }, { 1000, TRACE_MODULE, 100 },
		{ 1050, TRACE_THREAD, 200 }, { 1100, TRACE_ALLOC, 100 },
		{ 1120, TRACE_ALLOC, 200 }, { 1140, 200, 100 },
		{ 1150, TRACE_NOTE, 100 }, { 1200, TRACE_REALLOC, 200 },
		{ 1210, TRACE_ALLOC, 200 }, { 1300, TRACE_FREE, 100 },
		{ 1310, TRACE_FREE, 100 }, { 1400, TRACE_EXIT, 100 },
		{ 1410, TRACE_END, 100 },
	};
	size_t nwant = sizeof(want) / sizeof(want[0]);
	ok(m.n_events == nwant, "%zu events (want %zu)", m.n_events, nwant);
	int order_ok = m.n_events == nwant;
	for (size_t i = 0; order_ok && i < nwant; i++)
		if (m.events[i].ts != want[i].ts ||
		    m.events[i].kind != want[i].kind ||
		    m.events[i].tid != want[i].tid) {
			diag("event %zu: ts %llu kind %u tid %u", i,
			     (unsigned long long)m.events[i].ts,
			     m.events[i].kind, m.events[i].tid);
			order_ok = 0;
		}
	ok(order_ok, "events merged by time, stable within a time");
	if (order_ok) {
		const struct trace_event *e = m.events;
		ok(e[5].fn == TRACE_FN_MALLOC && e[5].a == 0x5000 &&
		   e[5].c == 32 && e[5].stack == 1,
		   "alloc with an unknown trailing field");
		ok(e[6].fn == TRACE_FN_CALLOC && e[6].a == 0x6000 &&
		   e[6].c == 64 && trace_event_stack(&m, &e[6]) == &m.stacks[0],
		   "alloc on the other thread, same stack");
		ok(e[7].a > 0 && e[7].b > 0, "unknown kind kept with its length");
		ok(e[9].a == 0x6000 && e[9].b == 0x7000 && e[9].c == 128 &&
		   e[9].stack == 0, "realloc addresses from deltas");
		ok(e[10].fn == TRACE_FN_ALIGNED_ALLOC && e[10].b == 64,
		   "aligned_alloc with its alignment");
		ok(e[11].a == 0x5000 && e[12].a == 0x1234, "free addresses");
		ok(e[13].a == TRACE_EXIT_RETURN && e[13].b == 3, "exit fields");
	}
	ok(m.has_exit && m.exit_status == 3 && m.exit_ts == 1400, "exit");
	ok(m.has_end && !m.truncated && m.end_ts == 1410, "end, complete");
	ok(m.kind_count[200] == 1 && m.kind_count[TRACE_ALLOC] == 3,
	   "counts by kind");
	ok(m.n_notes == 1 && str_is(m.notes[0].text, "hello from libspy") &&
	   m.notes[0].level == 1 && !m.notes[0].from_reader, "libspy's note");
	ok(trace_rel_ns(&m, 1410) == 410, "time relative to process start");

	struct heap_stats h;
	ok(heap_replay(&m, &h, NULL) == 0, "heap replay runs");
	ok(h.peak_bytes == 32 + 128 + 16 && h.peak_ts == 1210,
	   "peak live heap and when (%llu)",
	   (unsigned long long)h.peak_bytes);
	ok(h.live_blocks == 2 && h.live_bytes == 144, "live at end");
	ok(h.unknown_frees == 1, "a free of an unknown address is counted");
	ok(h.calls[TRACE_FN_MALLOC] == 1 && h.calls[TRACE_FN_CALLOC] == 1 &&
	   h.calls[TRACE_FN_REALLOC] == 1 && h.calls[TRACE_FN_FREE] == 2,
	   "calls by function");
	trace_model_release(&m);

	/* Without its END record the same trace is "truncated". */
	size_t end_len = 3; /* kind, body_len, dt */
	uint8_t *cut = tb_copy(&b);
	trace_put_u32(cut + b.chunk_at + 4,
		      (uint32_t)(b.len - b.chunk_at - TRACE_CHUNK_HEADER_SIZE -
				 end_len));
	r = trace_load_buffer("mem", cut, b.len - end_len, &m, &err);
	ok(r == 0 && m.truncated && !m.has_end && m.cut_at == 0,
	   "no END record: loads, marked truncated");
	ok(r == 0 && m.n_notes == 2 && m.notes[1].from_reader,
	   "a reader note says so");
	if (r == 0)
		trace_model_release(&m);

	/* Cut inside the last chunk: loads up to the cut. */
	cut = tb_copy(&b);
	r = trace_load_buffer("mem", cut, b.len - 2, &m, &err);
	ok(r == 0 && m.truncated && m.cut_at == b.len - end_len,
	   "cut in the last record: truncated at its start");
	ok(r == 0 && m.has_exit && !m.has_end, "everything before the cut");
	if (r == 0) {
		const char *t = m.notes[m.n_notes - 1].text.p;
		ok(strstr(t, "trace ends early at byte") != NULL, "note: %s", t);
		trace_model_release(&m);
	}
	/* The same trace with its last region padded out reads the same. */
	tb_pad(&b);
	r = trace_load_buffer("mem", tb_copy(&b), b.len, &m, &err);
	ok(r == 0 && !m.truncated && m.n_events == nwant && m.n_chunks == 3,
	   "a padded last region reads the same (%s)", err.msg);
	if (r == 0)
		trace_model_release(&m);
	/* A trace of version 1 (before the short heap records) reads too. */
	uint8_t *old = tb_copy(&b);
	trace_put_u32(old + 8, 1);
	r = trace_load_buffer("mem", old, b.len, &m, &err);
	ok(r == 0 && m.version == 1 && m.n_events == nwant,
	   "a version 1 trace reads (%s)", err.msg);
	if (r == 0)
		trace_model_release(&m);
	free(b.buf);
	return tap_done();
}
