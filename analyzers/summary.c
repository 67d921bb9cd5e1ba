/* summary.c: the process summary, as text and as JSON. */
#include "summary.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "threads_model.h"
#include "u64map.h"
#include "trace_format.h"

void summary_format_ns(char *buf, size_t len, int64_t ns)
{
	double v = (double)ns;
	double a = v < 0 ? -v : v;
	if (a < 1e3)
		snprintf(buf, len, "%" PRId64 " ns", ns);
	else if (a < 1e6)
		snprintf(buf, len, "%.3f us", v / 1e3);
	else if (a < 1e9)
		snprintf(buf, len, "%.3f ms", v / 1e6);
	else
		snprintf(buf, len, "%.3f s", v / 1e9);
}

const char *summary_format_count(char *buf, size_t len, uint64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
	size_t o = 0;
	for (int i = 0; i < n && o + 2 < len; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = 0;
	return buf;
}

void summary_format_bytes(char *buf, size_t len, uint64_t bytes)
{
	if (bytes < 1024)
		snprintf(buf, len, "%" PRIu64 " byte%s", bytes,
			 text_plural(bytes, "", "s"));
	else if (bytes < 1024 * 1024)
		snprintf(buf, len, "%" PRIu64 " bytes (%.1f KiB)", bytes,
			 (double)bytes / 1024);
	else
		snprintf(buf, len, "%" PRIu64 " bytes (%.1f MiB)", bytes,
			 (double)bytes / (1024 * 1024));
}

const char *summary_cause_name(uint64_t cause)
{
	switch (cause) {
	case TRACE_CAUSE_START: return "start";
	case TRACE_CAUSE_FORK: return "fork";
	case TRACE_CAUSE_EXEC: return "exec";
	default: return "unknown";
	}
}

static const char *exit_how_name(uint64_t how)
{
	switch (how) {
	case TRACE_EXIT_RETURN: return "exit";
	case TRACE_EXIT_UNDERSCORE: return "_exit";
	case TRACE_EXIT_SIGNAL: return "signal";
	default: return "unknown";
	}
}

/* The last exec the process made, when it has no exit record: its image
 * was replaced and the story goes on in the exec'd program's trace. */
static const struct trace_str *replaced_by(const struct trace_model *m)
{
	if (m->has_exit)
		return NULL;
	for (size_t i = m->n_events; i-- > 0;)
		if (m->events[i].kind == TRACE_EXEC)
			return &m->strings[m->events[i].a];
	return NULL;
}

static uint64_t duration_ns(const struct trace_model *m)
{
	uint64_t start = m->process.start_mono_ns ? m->process.start_mono_ns
						  : m->first_ts;
	return m->last_ts > start ? m->last_ts - start : 0;
}

/* A growing string for building one field's value. */
struct sbuf {
	char *p;
	size_t len;
	FILE *f;
};

static FILE *sb_open(struct sbuf *b)
{
	b->p = NULL;
	b->len = 0;
	b->f = open_memstream(&b->p, &b->len);
	return b->f;
}

static void sb_emit(const struct text_out *t, struct sbuf *b,
		    const char *label)
{
	if (!b->f)
		return;
	fclose(b->f);
	text_field(t, label, b->p ? b->p : "");
	free(b->p);
}

static void put_str(FILE *f, struct trace_str s)
{
	text_put_safe(f, s.p, s.len);
}

static void text_process(const struct text_out *t, const struct trace_model *m)
{
	const struct trace_process *p = &m->process;
	struct sbuf b;
	FILE *f;
	if ((f = sb_open(&b))) {
		fprintf(f, "pid %" PRIu64 ", parent %" PRIu64, p->pid,
			p->ppid);
		sb_emit(t, &b, "process");
	}
	if ((f = sb_open(&b))) {
		put_str(f, p->exe);
		sb_emit(t, &b, "exe");
	}
	if ((f = sb_open(&b))) {
		for (size_t i = 0; i < p->argc; i++) {
			if (i)
				fputc(' ', f);
			bool q = !p->argv[i].len ||
				 memchr(p->argv[i].p, ' ', p->argv[i].len);
			if (q)
				fputc('\'', f);
			put_str(f, p->argv[i]);
			if (q)
				fputc('\'', f);
		}
		sb_emit(t, &b, "argv");
	}
}

static void text_started(const struct text_out *t, const struct trace_model *m)
{
	const struct trace_process *p = &m->process;
	struct sbuf b;
	FILE *f = sb_open(&b);
	if (!f)
		return;
	time_t secs = (time_t)(p->start_unix_ns / 1000000000u);
	struct tm tm;
	char when[64] = "at an unknown time";
	if (p->start_unix_ns && gmtime_r(&secs, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(f, "%s, ", when);
	switch (p->cause) {
	case TRACE_CAUSE_START:
		fputs("started with libspy preloaded", f);
		break;
	case TRACE_CAUSE_FORK:
		fputs("forked from a traced process", f);
		break;
	case TRACE_CAUSE_EXEC:
		fputs("exec'd by a traced process", f);
		break;
	default:
		fprintf(f, "unknown cause %" PRIu64, p->cause);
	}
	if (p->parent_trace.len) {
		fputs(" (parent trace ", f);
		put_str(f, p->parent_trace);
		fputc(')', f);
	}
	sb_emit(t, &b, "started");
}

static void text_exit(const struct text_out *t, const struct trace_model *m)
{
	char buf[160];
	const struct trace_str *exec = replaced_by(m);
	if (exec) {
		struct sbuf b;
		FILE *f = sb_open(&b);
		if (f) {
			fputs("replaced by exec of ", f);
			put_str(f, *exec);
			sb_emit(t, &b, "exit");
		}
		return;
	}
	if (!m->has_exit) {
		snprintf(buf, sizeof(buf), "not recorded (the trace %s)",
			 m->truncated ? "was cut short" : "has no exit record");
	} else if (m->exit_how == TRACE_EXIT_SIGNAL) {
		const char *abbrev = sigabbrev_np((int)m->exit_signal);
		snprintf(buf, sizeof(buf), "killed by signal %" PRIu64 "%s%s%s",
			 m->exit_signal, abbrev ? " (SIG" : "",
			 abbrev ? abbrev : "", abbrev ? ")" : "");
	} else if (m->exit_how == TRACE_EXIT_UNKNOWN) {
		snprintf(buf, sizeof(buf), "status not seen (the process "
			 "ended without calling exit)");
	} else {
		snprintf(buf, sizeof(buf), "status %" PRIu64 " (%s)",
			 m->exit_status, exit_how_name(m->exit_how));
	}
	text_field(t, "exit", buf);
}

static void text_heap(const struct text_out *t, const struct trace_model *m,
		      const struct heap_stats *h)
{
	char bytes[64], when[32], buf[192];
	summary_format_bytes(bytes, sizeof(bytes), h->peak_bytes);
	summary_format_ns(when, sizeof(when), trace_rel_ns(m, h->peak_ts));
	if (h->peak_bytes)
		snprintf(buf, sizeof(buf), "%s in %" PRIu64 " block%s, at %s",
			 bytes, h->peak_blocks, text_plural(h->peak_blocks, "", "s"),
			 when);
	else
		snprintf(buf, sizeof(buf), "no heap blocks recorded");
	text_field(t, "heap peak", buf);
	summary_format_bytes(bytes, sizeof(bytes), h->live_bytes);
	snprintf(buf, sizeof(buf), "%" PRIu64 " block%s, %s", h->live_blocks,
		 text_plural(h->live_blocks, "", "s"), bytes);
	text_field(t, "heap end", buf);
}

static void text_trace(const struct text_out *t, const struct trace_model *m)
{
	char buf[192];
	const char *chunks = text_plural(m->n_chunks, "chunk", "chunks");
	if (!m->truncated)
		snprintf(buf, sizeof(buf), "complete, %zu %s, %zu bytes",
			 m->n_chunks, chunks, m->size);
	else if (m->cut_at)
		snprintf(buf, sizeof(buf), "truncated at byte %" PRIu64
			 " of %zu, %zu %s", m->cut_at, m->size, m->n_chunks,
			 chunks);
	else
		snprintf(buf, sizeof(buf), "truncated (no end record), %zu "
			 "%s, %zu bytes", m->n_chunks, chunks, m->size);
	text_field(t, "trace", buf);
}

/* Thread starts beyond the first for the same id: a later thread that got
 * the id of one that had ended. The main thread has no start record. */
static size_t ids_given_again(const struct trace_model *m)
{
	struct u64map starts = U64MAP_INIT;
	size_t again = 0;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		if (e->kind != TRACE_THREAD_START)
			continue;
		uint64_t *n = u64map_get(&starts, e->tid);
		if (n) {
			again++;
		} else if (u64map_put(&starts, e->tid, 1) < 0) {
			again = 0;
			break;
		}
	}
	u64map_release(&starts);
	return again;
}

static void text_threads(const struct text_out *t,
			 const struct trace_model *m)
{
	struct sbuf b;
	FILE *f = sb_open(&b);
	if (!f)
		return;
	/* a few lines at most: a program of thousands of threads lists
	 * them all in --json and in `analyze threads` */
	enum { SHOWN = 24 };
	size_t shown = m->n_threads > SHOWN + 1 ? SHOWN : m->n_threads;
	/* The kernel gives a finished thread's id to a later one (pid_max
	 * may be as low as 32768): the threads' own records tell them apart. */
	size_t again = ids_given_again(m);
	if (again)
		fprintf(f, "%zu with %zu ids (the kernel gave %zu id%s again):",
			m->n_threads + again, m->n_threads, again,
			text_plural(again, "", "s"));
	else
		fprintf(f, "%zu:", m->n_threads);
	for (size_t i = 0; i < shown; i++)
		fprintf(f, " %" PRIu32, m->threads[i].tid);
	if (shown < m->n_threads)
		fprintf(f, " and %zu more", m->n_threads - shown);
	sb_emit(t, &b, "threads");
}

static void text_counts(const struct text_out *t, const struct trace_model *m,
			const struct heap_stats *h)
{
	struct sbuf b;
	FILE *f = sb_open(&b);
	if (f) {
		size_t total = 0;
		for (unsigned k = 0; k < 256; k++)
			total += m->kind_count[k];
		fprintf(f, "%zu record%s", total, text_plural(total, "", "s"));
		for (unsigned k = 0; k < 256; k++) {
			if (!m->kind_count[k])
				continue;
			if (trace_kind_known(k))
				fprintf(f, ", %s %zu", trace_kind_name(k),
					m->kind_count[k]);
			else
				fprintf(f, ", unknown kind %u %zu", k,
					m->kind_count[k]);
		}
		sb_emit(t, &b, "events");
	}
	if ((f = sb_open(&b))) {
		bool any = false;
		for (unsigned fn = 0; fn <= TRACE_FN_MAX; fn++) {
			if (!h->calls[fn])
				continue;
			fprintf(f, "%s%s %" PRIu64, any ? ", " : "",
				fn < TRACE_FN_MAX ? trace_alloc_fn_name(fn)
						  : "other",
				h->calls[fn]);
			any = true;
		}
		if (!any)
			fputs("none recorded", f);
		if (h->unknown_frees)
			fprintf(f, "; %" PRIu64 " %s", h->unknown_frees,
				text_plural(h->unknown_frees,
					    "free of an unknown address",
					    "frees of unknown addresses"));
		if (h->failed_reallocs)
			fprintf(f, "; %" PRIu64 " failed realloc%s",
				h->failed_reallocs,
				text_plural(h->failed_reallocs, "", "s"));
		sb_emit(t, &b, "heap calls");
	}
}

void summary_print_text(const struct text_out *t, const struct trace_model *m,
			const struct heap_stats *h, bool brief)
{
	char buf[64];
	text_process(t, m);
	if (!brief)
		text_started(t, m);
	summary_format_ns(buf, sizeof(buf), (int64_t)duration_ns(m));
	text_field(t, "duration", buf);
	text_exit(t, m);
	threads_summary_text(t, m);
	if (!brief) {
		text_threads(t, m);
		text_counts(t, m, h);
		snprintf(buf, sizeof(buf), "%zu distinct", m->n_stacks);
		text_field(t, "stacks", buf);
	}
	text_heap(t, m, h);
	text_trace(t, m);
	for (size_t i = 0; i < m->n_notes; i++) {
		struct sbuf b;
		FILE *f = sb_open(&b);
		if (!f)
			continue;
		fprintf(f, "%s", m->notes[i].level ? "warning: " : "");
		put_str(f, m->notes[i].text);
		sb_emit(t, &b, "note");
	}
}

static void json_str(struct json_writer *w, struct trace_str s)
{
	json_string_len(w, s.p, s.len);
}

static void json_process(struct json_writer *w, const struct trace_model *m)
{
	const struct trace_process *p = &m->process;
	json_key(w, "process");
	json_object_begin(w);
	json_field_uint(w, "pid", p->pid);
	json_field_uint(w, "ppid", p->ppid);
	json_key(w, "exe");
	json_str(w, p->exe);
	json_key(w, "argv");
	json_array_begin(w);
	for (size_t i = 0; i < p->argc; i++)
		json_str(w, p->argv[i]);
	json_array_end(w);
	json_key(w, "exit");
	json_object_begin(w);
	json_field_uint_or_null(w, "status",
				m->has_exit && m->exit_how != TRACE_EXIT_UNKNOWN,
				m->exit_status);
	json_field_uint_or_null(w, "signal",
				m->has_exit && m->exit_how == TRACE_EXIT_SIGNAL,
				m->exit_signal);
	json_key(w, "how");
	const struct trace_str *exec = replaced_by(m);
	if (m->has_exit)
		json_string(w, exit_how_name(m->exit_how));
	else if (exec)
		json_string(w, "exec");
	else
		json_null(w);
	if (exec) {
		json_key(w, "exec");
		json_str(w, *exec);
	}
	json_object_end(w);
	json_field_bool(w, "truncated", m->truncated);
	json_field_string(w, "cause", summary_cause_name(p->cause));
	json_key(w, "parent_trace");
	if (p->parent_trace.len)
		json_str(w, p->parent_trace);
	else
		json_null(w);
	json_field_uint(w, "start_unix_ns", p->start_unix_ns);
	json_field_uint(w, "duration_ns", duration_ns(m));
	json_field_bool(w, "stacks_captured", (p->flags & TRACE_PF_STACKS) != 0);
	json_object_end(w);
}

static void json_trace(struct json_writer *w, const struct trace_model *m)
{
	json_key(w, "trace");
	json_object_begin(w);
	json_field_string(w, "file", m->path);
	json_field_uint(w, "version", m->version);
	json_field_uint(w, "bytes", m->size);
	json_field_uint(w, "chunks", m->n_chunks);
	json_field_bool(w, "complete", !m->truncated);
	json_field_uint_or_null(w, "cut_at", m->cut_at, m->cut_at);
	json_field_uint(w, "stacks", m->n_stacks);
	json_object_end(w);
}

static void json_counts(struct json_writer *w, const struct trace_model *m,
			const struct heap_stats *h)
{
	json_key(w, "threads");
	json_array_begin(w);
	for (size_t i = 0; i < m->n_threads; i++) {
		const struct trace_thread *th = &m->threads[i];
		json_object_begin(w);
		json_field_uint(w, "tid", th->tid);
		json_field_uint_or_null(w, "creator", th->creator, th->creator);
		json_field_uint(w, "events", th->events);
		json_object_end(w);
	}
	json_array_end(w);
	json_key(w, "events");
	json_object_begin(w);
	for (unsigned k = 0; k < 256; k++) {
		if (!m->kind_count[k])
			continue;
		char name[32];
		if (trace_kind_known(k))
			snprintf(name, sizeof(name), "%s", trace_kind_name(k));
		else
			snprintf(name, sizeof(name), "unknown-%u", k);
		json_key(w, name);
		json_uint(w, m->kind_count[k]);
	}
	json_object_end(w);
	json_key(w, "calls");
	json_object_begin(w);
	for (unsigned fn = 0; fn <= TRACE_FN_MAX; fn++) {
		if (!h->calls[fn])
			continue;
		json_key(w, fn < TRACE_FN_MAX ? trace_alloc_fn_name(fn)
					      : "other");
		json_uint(w, h->calls[fn]);
	}
	json_object_end(w);
}

static void json_heap(struct json_writer *w, const struct trace_model *m,
		      const struct heap_stats *h)
{
	json_key(w, "heap");
	json_object_begin(w);
	json_field_uint(w, "peak_bytes", h->peak_bytes);
	json_field_uint(w, "peak_blocks", h->peak_blocks);
	json_key(w, "peak_at_ns");
	if (h->peak_bytes)
		json_int(w, trace_rel_ns(m, h->peak_ts));
	else
		json_null(w);
	json_field_uint(w, "live_blocks", h->live_blocks);
	json_field_uint(w, "live_bytes", h->live_bytes);
	json_field_uint(w, "allocated_bytes", h->allocated_bytes);
	json_field_uint(w, "unknown_frees", h->unknown_frees);
	json_field_uint(w, "null_frees", h->null_frees);
	json_field_uint(w, "failed_reallocs", h->failed_reallocs);
	json_object_end(w);
}

void summary_print_json(struct json_writer *w, const struct trace_model *m,
			const struct heap_stats *h)
{
	json_process(w, m);
	json_trace(w, m);
	json_counts(w, m, h);
	json_heap(w, m, h);
	threads_summary_json(w, m);
	json_key(w, "notes");
	json_array_begin(w);
	for (size_t i = 0; i < m->n_notes; i++) {
		json_object_begin(w);
		json_field_string(w, "level", m->notes[i].level ? "warning" : "info");
		json_field_string(w, "from", m->notes[i].from_reader ? "analyze" : "libspy");
		json_key(w, "text");
		json_str(w, m->notes[i].text);
		json_object_end(w);
	}
	json_array_end(w);
}
