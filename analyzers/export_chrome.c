/* export_chrome.c: `analyze export --chrome TRACE`: the trace as Chrome
 * Trace Event JSON (the format Perfetto and chrome://tracing open): one
 * track per thread with its lifetime, its lock waits and holds as slices,
 * the read/write calls as slices and counters, and the live heap as a
 * counter. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "json_writer.h"
#include "lock_model.h"
#include "symbolize.h"
#include "trace_decode.h"
#include "trace_format.h"
#include "u64map.h"

struct exporter {
	struct json_writer w;
	const struct trace_model *m;
	const struct lock_model *lm;
	struct u64map lock_of;     /* address -> lock index + 1 (first) */
	uint64_t t0;
	uint64_t pid;
};

/* Microseconds since the start, as Chrome's "ts" wants them. */
static void ts_field(struct exporter *x, const char *key, uint64_t ts)
{
	char buf[40];
	uint64_t rel = ts > x->t0 ? ts - x->t0 : 0;
	snprintf(buf, sizeof(buf), "%" PRIu64 ".%03" PRIu64, rel / 1000,
		 rel % 1000);
	json_key(&x->w, key);
	json_raw(&x->w, buf);
}

static void begin(struct exporter *x, const char *ph, const char *name,
		  const char *cat, uint64_t tid)
{
	json_object_begin(&x->w);
	json_field_string(&x->w, "ph", ph);
	json_field_string(&x->w, "name", name);
	if (cat)
		json_field_string(&x->w, "cat", cat);
	json_field_uint(&x->w, "pid", x->pid);
	json_field_uint(&x->w, "tid", tid);
}

static const char *lock_name(const struct exporter *x, uint64_t addr)
{
	uint64_t *i = u64map_get(&x->lock_of, addr);
	return i && x->lm->locks[*i - 1].name ? x->lm->locks[*i - 1].name : "lock";
}

static void slice(struct exporter *x, const char *what, const char *name,
		  const char *cat, uint32_t tid, uint64_t from, uint64_t to,
		  bool unfinished)
{
	char label[300];
	snprintf(label, sizeof(label), "%s %s", what, name);
	begin(x, "X", label, cat, tid);
	ts_field(x, "ts", from);
	ts_field(x, "dur", x->t0 + (to > from ? to - from : 0));
	if (unfinished) {
		json_key(&x->w, "args");
		json_object_begin(&x->w);
		json_field_bool(&x->w, "unfinished", true);
		json_object_end(&x->w);
	}
	json_object_end(&x->w);
}

static uint64_t key(uint32_t tid, uint64_t lock)
{
	return (lock << 16) ^ tid ^ ((uint64_t)tid << 56);
}

/* A LOCK_PAIRS record: a counted run of short holds of one lock, as one
 * slice over its span (fields: lock, flags, stack, count, hold_total_ns,
 * hold_max_ns, span_ns, ago_ns). */
static void pairs_run(struct exporter *x, const struct trace_event *e)
{
	const struct trace_model *m = x->m;
	uint64_t v[8];
	if (e->b > m->size || e->a > m->size - e->b)
		return;
	struct trace_cursor c = trace_cursor_make(m->data + e->b, (size_t)e->a);
	for (int k = 0; k < 8; k++)
		if (trace_get_varint(&c, &v[k]) < 0)
			return;
	uint64_t end = e->ts > v[7] ? e->ts - v[7] : 0;
	uint64_t from = end > v[6] ? end - v[6] : 0;
	char label[300];
	snprintf(label, sizeof(label), "hold %s x%" PRIu64, lock_name(x, v[0]),
		 v[3]);
	begin(x, "X", label, "lock", e->tid);
	ts_field(x, "ts", from);
	ts_field(x, "dur", x->t0 + (end - from));
	json_key(&x->w, "args");
	json_object_begin(&x->w);
	json_field_uint(&x->w, "holds", v[3]);
	json_field_uint(&x->w, "hold_total_ns", v[4]);
	json_field_uint(&x->w, "hold_max_ns", v[5]);
	json_object_end(&x->w);
	json_object_end(&x->w);
}

static int locks(struct exporter *x)
{
	const struct trace_model *m = x->m;
	struct u64map taken = U64MAP_INIT, waiting = U64MAP_INIT;
	int rc = 0;
	for (size_t i = 0; i < m->n_events && rc == 0; i++) {
		const struct trace_event *e = &m->events[i];
		uint64_t k = key(e->tid, e->a), since;
		switch (e->kind) {
		case TRACE_LOCK_WAIT:
			rc = u64map_put(&waiting, k, e->ts);
			break;
		case TRACE_LOCK_ACQUIRE:
			u64map_remove(&waiting, k, NULL);
			if (e->c)
				slice(x, "wait", lock_name(x, e->a), "lock",
				      e->tid, e->ts > e->c ? e->ts - e->c : 0,
				      e->ts, false);
			rc = u64map_put(&taken, k, e->ts);
			break;
		case TRACE_LOCK_FAIL:
			u64map_remove(&waiting, k, NULL);
			begin(x, "i", "trylock failed", "lock", e->tid);
			ts_field(x, "ts", e->ts);
			json_field_string(&x->w, "s", "t");
			json_object_end(&x->w);
			break;
		case TRACE_LOCK_RELEASE:
			if (u64map_remove(&taken, k, &since))
				slice(x, "hold", lock_name(x, e->a), "lock",
				      e->tid, since, e->ts, false);
			break;
		case TRACE_LOCK_PAIRS:
			pairs_run(x, e);
			break;
		default:
			break;
		}
	}
	/* Waits that never ended: the thread was stuck when the trace did. */
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		uint64_t since;
		if (e->kind == TRACE_LOCK_WAIT &&
		    u64map_remove(&waiting, key(e->tid, e->a), &since))
			slice(x, "wait", lock_name(x, e->a), "lock", e->tid,
			      since, m->last_ts, true);
	}
	u64map_release(&taken);
	u64map_release(&waiting);
	return rc;
}

/* IO_SITE records: the calls one thread made from one site since the
 * previous record; their wall time is estimated from the timed sample. */
static void io_sites(struct exporter *x)
{
	const struct trace_model *m = x->m;
	uint64_t totals[TRACE_IO_FN_MAX] = { 0 };
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		if (e->kind != TRACE_IO_SITE || e->b > m->size ||
		    e->a > m->size - e->b)
			continue;
		struct trace_cursor c = trace_cursor_make(m->data + e->b,
							  (size_t)e->a);
		uint64_t v[11];
		bool ok = true;
		for (int k = 0; k < 11 && ok; k++)
			ok = trace_get_varint(&c, &v[k]) == 0;
		/* tid fn fd desc stack calls bytes errors timed_calls
		 * timed_ns max_size */
		if (!ok || v[1] >= TRACE_IO_FN_MAX || !v[5])
			continue;
		const char *fn = trace_io_fn_name((unsigned)v[1]);
		uint64_t est = v[8] ? v[9] * v[5] / v[8] : 0;
		char label[96];
		snprintf(label, sizeof(label), "%s x%" PRIu64 " (fd %" PRId64 ")",
			 fn, v[5], v[2] == UINT32_MAX ? -1 : (int64_t)v[2]);
		begin(x, "X", label, "syscall", v[0]);
		ts_field(x, "ts", e->ts > est ? e->ts - est : e->ts);
		ts_field(x, "dur", x->t0 + est);
		json_key(&x->w, "args");
		json_object_begin(&x->w);
		json_field_uint(&x->w, "calls", v[5]);
		json_field_uint(&x->w, "bytes", v[6]);
		json_field_uint(&x->w, "errors", v[7]);
		json_field_uint(&x->w, "timed_calls", v[8]);
		json_field_string(&x->w, "duration", v[8] ? "estimated from the "
				  "timed calls" : "not timed");
		json_object_end(&x->w);
		json_object_end(&x->w);
		totals[v[1]] += v[5];
		char cname[64];
		snprintf(cname, sizeof(cname), "%s calls", fn);
		begin(x, "C", cname, "syscall", 0);
		ts_field(x, "ts", e->ts);
		json_key(&x->w, "args");
		json_object_begin(&x->w);
		json_field_uint(&x->w, "calls", totals[v[1]]);
		json_object_end(&x->w);
		json_object_end(&x->w);
	}
}

/* The live heap as a counter track, at most about 2000 points: a point
 * when the value has moved and the last point is a 2000th of the run old. */
static int heap_counter(struct exporter *x)
{
	const struct trace_model *m = x->m;
	struct u64map live = U64MAP_INIT;
	uint64_t bytes = 0, shown = 0, last_ts = 0, size;
	uint64_t step = (m->last_ts > x->t0 ? m->last_ts - x->t0 : 0) / 2000;
	bool pending = false;
	for (size_t i = 0; i <= m->n_events; i++) {
		const struct trace_event *e = i < m->n_events ? &m->events[i] : NULL;
		if (e && e->kind == TRACE_ALLOC) {
			if (u64map_remove(&live, e->a, &size))
				bytes -= size;
			if (u64map_put(&live, e->a, e->c) < 0)
				goto no_memory;
			bytes += e->c;
		} else if (e && e->kind == TRACE_FREE) {
			if (u64map_remove(&live, e->a, &size))
				bytes -= size;
		} else if (e && e->kind == TRACE_REALLOC &&
			   !(e->b == 0 && e->c > 0)) {
			if (e->a && u64map_remove(&live, e->a, &size))
				bytes -= size;
			if (e->b) {
				if (u64map_put(&live, e->b, e->c) < 0)
					goto no_memory;
				bytes += e->c;
			}
		} else if (e) {
			continue;
		}
		pending |= bytes != shown;
		uint64_t ts = e ? e->ts : m->last_ts;
		if (pending && (!e || !last_ts || ts - last_ts >= step)) {
			begin(x, "C", "heap live bytes", "heap", 0);
			ts_field(x, "ts", ts);
			json_key(&x->w, "args");
			json_object_begin(&x->w);
			json_field_uint(&x->w, "bytes", bytes);
			json_object_end(&x->w);
			json_object_end(&x->w);
			shown = bytes;
			last_ts = ts;
			pending = false;
		}
	}
	u64map_release(&live);
	return 0;
no_memory:
	u64map_release(&live);
	return -1;
}

static void threads(struct exporter *x)
{
	const struct trace_model *m = x->m;
	char name[64];
	begin(x, "M", "process_name", NULL, 0);
	json_key(&x->w, "args");
	json_object_begin(&x->w);
	json_key(&x->w, "name");
	if (m->process.argc)
		json_string_len(&x->w, m->process.argv[0].p, m->process.argv[0].len);
	else
		json_string_len(&x->w, m->process.exe.p, m->process.exe.len);
	json_object_end(&x->w);
	json_object_end(&x->w);
	for (size_t i = 0; i < m->n_threads; i++) {
		const struct trace_thread *t = &m->threads[i];
		snprintf(name, sizeof(name), "%s %u",
			 t->tid == m->process.pid ? "main" : "thread", t->tid);
		begin(x, "M", "thread_name", NULL, t->tid);
		json_key(&x->w, "args");
		json_object_begin(&x->w);
		json_field_string(&x->w, "name", name);
		json_object_end(&x->w);
		json_object_end(&x->w);
		begin(x, "M", "thread_sort_index", NULL, t->tid);
		json_key(&x->w, "args");
		json_object_begin(&x->w);
		json_field_uint(&x->w, "sort_index", i);
		json_object_end(&x->w);
		json_object_end(&x->w);
		uint64_t from = i == 0 ? x->t0 : t->first_ts;
		slice(x, "alive:", name, "thread", t->tid, from, t->last_ts, false);
	}
}

int cmd_export(const struct cmd_args *a)
{
	if (!a->chrome)
		return cmd_bad_usage("'export' needs a format: --chrome");
	struct trace_model m;
	if (cmd_load(a->trace, &m))
		return 2;
	struct lock_model lm = { 0 };
	struct symbolizer *sym = NULL;
	struct exporter x = { .m = &m, .lm = &lm, .lock_of = U64MAP_INIT };
	int status = 0;
	if (lock_model_build(&m, &lm) < 0 || !(sym = symbolizer_new(&m))) {
		status = -1;
	} else {
		lock_names_fill(&m, &lm, sym);
		for (size_t i = lm.n_locks; i-- > 0;)
			if (u64map_put(&x.lock_of, lm.locks[i].addr, i + 1) < 0)
				status = -1;
	}
	FILE *f = stdout;
	if (status == 0 && a->out && strcmp(a->out, "-") &&
	    !(f = fopen(a->out, "w"))) {
		fprintf(stderr, "analyze: cannot write '%s': %s\n", a->out,
			strerror(errno));
		status = 2;
	}
	if (status == 0) {
		x.pid = m.process.pid;
		x.t0 = m.process.seen && m.process.start_mono_ns &&
		       m.process.start_mono_ns <= m.first_ts ?
		       m.process.start_mono_ns : m.first_ts;
		json_init(&x.w, f, 1);
		json_object_begin(&x.w);
		json_field_string(&x.w, "displayTimeUnit", "ns");
		json_key(&x.w, "traceEvents");
		json_array_begin(&x.w);
		threads(&x);
		if (locks(&x) < 0)
			status = -1;
		io_sites(&x);
		if (heap_counter(&x) < 0)
			status = -1;
		json_array_end(&x.w);
		json_key(&x.w, "otherData");
		json_object_begin(&x.w);
		json_field_string(&x.w, "producer", "libspy analyze export");
		json_key(&x.w, "exe");
		json_string_len(&x.w, m.process.exe.p, m.process.exe.len);
		json_field_uint(&x.w, "pid", m.process.pid);
		json_object_end(&x.w);
		json_object_end(&x.w);
		fputc('\n', f);
		if (f != stdout && fclose(f) != 0) {
			fprintf(stderr, "analyze: cannot write '%s'\n", a->out);
			status = 2;
		}
	}
	if (status < 0) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		status = 2;
	}
	u64map_release(&x.lock_of);
	symbolizer_free(sym);
	lock_model_release(&lm);
	trace_model_release(&m);
	return cmd_finish(status);
}
