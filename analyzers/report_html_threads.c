/* report_html_threads.c: the thread timeline: one row per thread from its
 * start to its end, with the time it waited for locks and held them, drawn
 * from the thread records and the lock events. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "report_html.h"
#include "threads_model.h"
#include "text_out.h"
#include "trace_decode.h"
#include "trace_format.h"
#include "u64map.h"

#define LEFT 120
#define BAR_W 630
#define ROW 16
#define MAX_ROWS 120

struct row {
	uint32_t tid;
	uint64_t from, to;
	int last_wait_px, last_hold_px, last_cond_px; /* merging tiny marks */
	uint64_t waits, wait_ns;
};

struct timeline {
	FILE *f;
	struct row *rows;
	size_t n;
	struct u64map row_of;     /* tid -> row index + 1 */
	uint64_t t0, t1;
	size_t marks;
};

static double px(const struct timeline *t, uint64_t ts)
{
	if (ts < t->t0)
		ts = t->t0;
	if (ts > t->t1)
		ts = t->t1;
	return LEFT + (double)(ts - t->t0) * BAR_W / (double)(t->t1 - t->t0);
}

static struct row *row_for(struct timeline *t, uint32_t tid)
{
	uint64_t *v = u64map_get(&t->row_of, tid);
	return v ? &t->rows[*v - 1] : NULL;
}

/* A mark on a thread's row; marks closer than a pixel to the previous one
 * of the same kind are merged into it. */
enum mark_kind { MARK_HOLD, MARK_WAIT, MARK_COND };

static void mark(struct timeline *t, uint32_t tid, uint64_t from, uint64_t to,
		 enum mark_kind kind)
{
	static const char *const cls[] = { "hold", "wait", "cond" };
	static const char *const fill[] = { "#1e6fd9", "#d32f2f", "#f0a030" };
	static const int dy[] = { 8, 2, 2 }, h[] = { 4, 6, 6 };
	struct row *r = row_for(t, tid);
	if (!r)
		return;
	int a = (int)px(t, from), b = (int)px(t, to);
	int *last = kind == MARK_HOLD ? &r->last_hold_px : kind == MARK_WAIT
		    ? &r->last_wait_px : &r->last_cond_px;
	if (b <= *last)
		return;
	if (a < *last)
		a = *last;
	if (b == a)
		b = a + 1;
	*last = b;
	size_t i = (size_t)(r - t->rows);
	fprintf(t->f, "<rect class=\"%s\" x=\"%d\" y=\"%zu\" width=\"%d\" "
		"height=\"%d\" fill=\"%s\"/>\n", cls[kind], a,
		30 + i * ROW + dy[kind], b - a, h[kind], fill[kind]);
	t->marks++;
}

/* The fields of a LOCK_PAIRS record (lock, flags, stack, count,
 * hold_total_ns, hold_max_ns, span_ns, ago_ns); 0, or -1 if it does not
 * decode. */
static int pairs_run(const struct trace_model *m, const struct trace_event *e,
		     uint64_t v[8])
{
	if (e->b > m->size || e->a > m->size - e->b)
		return -1;
	struct trace_cursor c = trace_cursor_make(m->data + e->b, (size_t)e->a);
	for (int k = 0; k < 8; k++)
		if (trace_get_varint(&c, &v[k]) < 0)
			return -1;
	return 0;
}

static uint64_t key(uint32_t tid, uint64_t lock)
{
	return (lock << 16) ^ tid ^ ((uint64_t)tid << 56);
}

int report_html_threads(const struct html_page *p)
{
	FILE *f = p->f;
	const struct trace_model *m = p->m;
	struct threads_model tm = { 0 };
	if (threads_model_build(m, &tm) < 0)
		return -1;
	struct timeline t = { .f = f, .row_of = U64MAP_INIT };
	t.t0 = m->process.seen && m->process.start_mono_ns ?
	       m->process.start_mono_ns : m->first_ts;
	/* Records written after the exit record (the leak scan, late
	 * destructors) would stretch the axis past the program's end. */
	t.t1 = m->has_exit && m->exit_ts ? m->exit_ts : m->last_ts;
	if (t.t0 > m->first_ts && m->first_ts)
		t.t0 = m->first_ts;
	if (t.t1 <= t.t0)
		t.t1 = t.t0 + 1;
	size_t n_all = m->n_threads;
	t.rows = calloc(n_all ? n_all : 1, sizeof(*t.rows));
	if (!t.rows) {
		threads_model_release(&tm);
		return -1;
	}
	/* Rows in the order the threads appear in the trace. */
	for (size_t i = 0; i < m->n_threads && t.n < MAX_ROWS; i++) {
		const struct trace_thread *th = &m->threads[i];
		struct row *r = &t.rows[t.n];
		r->tid = th->tid;
		r->from = th->first_ts;
		r->to = th->last_ts;
		for (size_t k = 0; k < tm.n; k++) {
			const struct thread_info *x = &tm.v[k];
			if (x->tid != th->tid)
				continue;
			if (x->has_start && x->start_ts && x->start_ts < r->from)
				r->from = x->start_ts;
			if (x->has_end && x->end_ts > r->to)
				r->to = x->end_ts;
		}
		if (i == 0 && m->process.seen)
			r->from = t.t0;
		if (u64map_put(&t.row_of, th->tid, t.n + 1) < 0) {
			free(t.rows);
			threads_model_release(&tm);
			return -1;
		}
		t.n++;
	}
	int H = 30 + (int)t.n * ROW + 24;
	fprintf(f, "<svg id=\"thread-timeline\" xmlns=\"http://www.w3.org/2000/svg\""
		" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
		"data-threads=\"%zu\">\n", LEFT + BAR_W + 10, H, LEFT + BAR_W + 10,
		H, m->n_threads);
	for (int k = 0; k <= 4; k++) {
		char when[32];
		double x = LEFT + BAR_W * k / 4.0;
		html_ns(when, sizeof(when), (int64_t)((t.t1 - t.t0) * k / 4));
		fprintf(f, "<line x1=\"%.1f\" y1=\"18\" x2=\"%.1f\" y2=\"%d\" "
			"stroke=\"#dde\"/><text x=\"%.1f\" y=\"13\" text-anchor="
			"\"%s\" fill=\"#667\">%s</text>\n", x, x, H - 20, x,
			k == 0 ? "start" : k == 4 ? "end" : "middle", when);
	}
	for (size_t i = 0; i < t.n; i++) {
		const struct row *r = &t.rows[i];
		double a = px(&t, r->from), b = px(&t, r->to);
		fprintf(f, "<text x=\"4\" y=\"%zu\" class=\"mono\">%s %u</text>"
			"<rect class=\"life\" x=\"%.1f\" y=\"%zu\" width=\"%.1f\" "
			"height=\"10\" fill=\"#c9d3e0\"/>\n", 30 + i * ROW + 9,
			r->tid == m->process.pid ? "main" : "thread", r->tid, a,
			30 + i * ROW, b - a < 1 ? 1 : b - a);
	}
	/* Lock waits (ACQUIRE carries its wait; a WAIT never followed by an
	 * ACQUIRE or FAIL is still waiting at the end) and holds. */
	struct u64map taken = U64MAP_INIT, waiting = U64MAP_INIT,
		      cond = U64MAP_INIT;
	int rc = 0;
	uint64_t waits = 0;
	for (size_t i = 0; i < m->n_events && rc == 0; i++) {
		const struct trace_event *e = &m->events[i];
		uint64_t k = key(e->tid, e->a), since;
		switch (e->kind) {
		case TRACE_LOCK_WAIT:
			rc = u64map_put(&waiting, k, e->ts);
			break;
		case TRACE_COND_WAIT:
			/* The wait gives the mutex up until it returns. */
			k = key(e->tid, e->b);
			if (u64map_remove(&taken, k, &since))
				mark(&t, e->tid, since, e->ts, MARK_HOLD);
			rc = u64map_put(&cond, k, e->ts);
			break;
		case TRACE_LOCK_ACQUIRE:
			u64map_remove(&waiting, k, NULL);
			if (u64map_remove(&cond, k, &since)) {
				uint64_t woke = e->ts > e->c ? e->ts - e->c : 0;
				mark(&t, e->tid, since, woke > since ? woke : since,
				     MARK_COND);
			}
			if (e->c) {
				waits++;
				mark(&t, e->tid, e->ts > e->c ? e->ts - e->c : 0,
				     e->ts, MARK_WAIT);
			}
			rc = u64map_put(&taken, k, e->ts);
			break;
		case TRACE_LOCK_FAIL:
			u64map_remove(&waiting, k, NULL);
			break;
		case TRACE_LOCK_RELEASE:
			if (u64map_remove(&taken, k, &since))
				mark(&t, e->tid, since, e->ts, MARK_HOLD);
			break;
		case TRACE_LOCK_PAIRS: {
			/* A counted run of short holds: drawn as one hold over
			 * its span. */
			uint64_t v[8];
			if (pairs_run(m, e, v) == 0) {
				uint64_t end = e->ts > v[7] ? e->ts - v[7] : 0;
				mark(&t, e->tid, end > v[6] ? end - v[6] : 0, end,
				     MARK_HOLD);
			}
			break;
		}
		default:
			break;
		}
	}
	/* Still waiting when the trace ends: a hang (a deadlock). */
	size_t still = 0;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		uint64_t since;
		if (e->kind == TRACE_LOCK_WAIT &&
		    u64map_remove(&waiting, key(e->tid, e->a), &since)) {
			struct row *r = row_for(&t, e->tid);
			if (r)
				r->last_wait_px = 0;
			mark(&t, e->tid, since, t.t1, MARK_WAIT);
			still++;
		}
		if (e->kind == TRACE_COND_WAIT &&
		    u64map_remove(&cond, key(e->tid, e->b), &since)) {
			struct row *r = row_for(&t, e->tid);
			if (r)
				r->last_cond_px = 0;
			mark(&t, e->tid, since, t.t1, MARK_COND);
		}
	}
	u64map_release(&taken);
	u64map_release(&waiting);
	u64map_release(&cond);
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"8\" "
		"fill=\"#c9d3e0\"/><text x=\"%d\" y=\"%d\">alive</text>"
		"<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"6\" fill=\"#d32f2f\"/>"
		"<text x=\"%d\" y=\"%d\">waiting for a lock</text>"
		"<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"4\" fill=\"#1e6fd9\"/>"
		"<text x=\"%d\" y=\"%d\">holding a lock</text>"
		"<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"6\" fill=\"#f0a030\"/>"
		"<text x=\"%d\" y=\"%d\">waiting on a condition</text>\n</svg>\n",
		LEFT, H - 14, LEFT + 16, H - 6, LEFT + 70, H - 14, LEFT + 86,
		H - 6, LEFT + 210, H - 14, LEFT + 226, H - 6, LEFT + 320, H - 14,
		LEFT + 336, H - 6);
	fprintf(f, "<p>%zu thread%s", m->n_threads, text_plural(m->n_threads, "", "s"));
	if (m->n_threads > t.n)
		fprintf(f, " (the first %zu drawn)", t.n);
	fprintf(f, "; %" PRIu64 " lock acquisition%s had to wait", waits,
		text_plural(waits, "", "s"));
	if (still)
		fprintf(f, "; <b>%zu wait%s never ended</b> (the threads were "
			"stuck when the trace ended)", still, text_plural(still, "", "s"));
	fputs(".</p>\n", f);
	u64map_release(&t.row_of);
	free(t.rows);
	threads_model_release(&tm);
	return rc < 0 ? -1 : 0;
}
