/* Unit test: the reader's time order over a trace big enough to span many
 * slabs of the sort: four threads' chunks interleaved, many equal times,
 * and lock pairs whose acquisition moves back in time (runs that dip),
 * checked event by event against a plain stable sort of the file order.
 */
#include <stdlib.h>
#include <string.h>

#define TB_REGION 65536u
#include "tap.h"
#include "trace_builder.h"
#include "trace_reader.h"

/* What the reader should make of each record, in file order. */
struct want {
	uint64_t ts, seq;
	uint8_t kind;
	uint32_t tid;
};

static struct want *wants;
static size_t n_wants, cap_wants;

static void expect(uint64_t ts, uint64_t seq, uint8_t kind, uint32_t tid)
{
	if (n_wants == cap_wants) {
		cap_wants = cap_wants ? cap_wants * 2 : 1024;
		wants = realloc(wants, cap_wants * sizeof(*wants));
		if (!wants)
			abort();
	}
	wants[n_wants++] = (struct want){ ts, seq, kind, tid };
}

static int by_time(const void *x, const void *y)
{
	const struct want *a = x, *b = y;
	if (a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq; /* file order */
}

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void build(struct tb *b)
{
	static const char *const argv[] = { "prog" };
	uint64_t clock[4] = { 1000, 1000, 1000, 1000 }, seq = 0;
	tb_init(b);
	tb_chunk(b, 100, 1000);
	tb_process(b, 1000, 4242, 1, TRACE_CAUSE_EXEC, "/bin/prog", 1, argv,
		   "");
	expect(1000, seq++, TRACE_PROCESS, 100);
	tb_chunk_end(b);
	for (int chunk = 0; chunk < 3000; chunk++) {
		int t = (int)(next() % 4);
		uint32_t tid = 100 + (uint32_t)t;
		if (b->len % TB_REGION > TB_REGION - 4096)
			tb_pad(b);
		tb_chunk(b, tid, clock[t]);
		int n = 1 + (int)(next() % 100);
		for (int k = 0; k < n; k++) {
			clock[t] += next() % 3; /* equal times are common */
			uint64_t at = clock[t], s = seq++;
			if (next() % 8 == 0) {
				/* a pair: taken hold ns before it is written */
				uint64_t hold = next() % 50;
				tb_begin(b, at);
				tb_v(b, s); tb_v(b, 0); tb_v(b, 0); tb_v(b, 0);
				tb_v(b, hold);
				tb_end_record(b, TRACE_LOCK_PAIR);
				expect(hold < at ? at - hold : 0, s,
				       TRACE_LOCK_ACQUIRE, tid);
				expect(at, seq++, TRACE_LOCK_RELEASE, tid);
			} else {
				tb_alloc(b, at, TRACE_FN_MALLOC,
					 0x100000 + s * 16, s, 0, 0);
				expect(at, s, TRACE_ALLOC, tid);
			}
		}
		tb_chunk_end(b);
	}
	uint64_t end = clock[0];
	for (int t = 1; t < 4; t++)
		end = clock[t] > end ? clock[t] : end;
	tb_chunk(b, 100, end);
	tb_endrec(b, end);
	expect(end, seq++, TRACE_END, 100);
	tb_chunk_end(b);
}

int main(void)
{
	struct tb b;
	build(&b);
	struct trace_model m;
	struct trace_error err;
	int r = trace_load_buffer("mem", tb_copy(&b), b.len, &m, &err);
	if (!ok(r == 0, "a trace of %zu events loads (%s)", n_wants, err.msg))
		return tap_done();
	ok(m.n_events == n_wants, "%zu events (want %zu)", m.n_events, n_wants);
	qsort(wants, n_wants, sizeof(*wants), by_time);
	size_t bad = 0;
	for (size_t i = 0; i < n_wants && i < m.n_events; i++) {
		const struct trace_event *e = &m.events[i];
		const struct want *w = &wants[i];
		uint64_t seq = e->kind == TRACE_ALLOC ? e->c : e->a;
		bool same = e->ts == w->ts && e->kind == w->kind &&
			    e->tid == w->tid &&
			    (e->kind == TRACE_LOCK_RELEASE ||
			     e->kind == TRACE_PROCESS || e->kind == TRACE_END ||
			     seq == w->seq);
		if (!same && bad++ < 3)
			diag("event %zu: ts %llu kind %u (want ts %llu kind %u)",
			     i, (unsigned long long)e->ts, e->kind,
			     (unsigned long long)w->ts, w->kind);
	}
	ok(bad == 0, "the order is the stable sort by time (%zu differ)", bad);
	trace_model_release(&m);
	free(b.buf);
	free(wants);
	return tap_done();
}
