/* cmd_threads.c: `analyze threads` (a table, one row per thread: lifetime,
 * CPU, context switches, run-queue delay, page faults, stack) and
 * `analyze sched` (the scheduling tax of the whole run in a few lines).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "json_writer.h"
#include "summary.h"
#include "symbolize.h"
#include "text_out.h"
#include "threads_model.h"

/* Rows shown in text; --json has every thread. */
#define TEXT_ROWS 60

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static const char *fn_name(struct symbolizer *sym, uint64_t addr)
{
	if (!addr)
		return "-";
	/* The start routine's address is not a return address: +1 so the
	 * lookup (address - 1) lands on its first byte. */
	const struct sym_frame *f = symbolizer_lookup(sym, addr + 1);
	return f->function ? f->function : "?";
}

static void thread_json(struct json_writer *w, struct symbolizer *sym,
			const struct trace_model *m, const struct thread_info *t)
{
	json_object_begin(w);
	json_field_uint(w, "tid", t->tid);
	json_field_uint(w, "incarnation", t->incarnation);
	json_field_uint(w, "creator", t->creator);
	json_key(w, "start_routine");
	if (t->start_fn)
		json_string(w, fn_name(sym, t->start_fn));
	else
		json_null(w);
	json_field_int(w, "created_ns", t->has_create ? trace_rel_ns(m, t->create_ts) : -1);
	json_field_int(w, "started_ns", t->has_start ? trace_rel_ns(m, t->start_ts) : -1);
	json_field_int(w, "ended_ns", t->has_end ? trace_rel_ns(m, t->end_ts) : -1);
	json_field_string(w, "end", t->has_end ? threads_end_name(t->how) : "not recorded");
	json_field_uint(w, "lifetime_ns", t->lifetime_ns);
	json_field_uint(w, "user_ns", t->user_ns);
	json_field_uint(w, "system_ns", t->sys_ns);
	json_field_uint(w, "voluntary_switches", t->nvcsw);
	json_field_uint(w, "involuntary_switches", t->nivcsw);
	json_field_uint(w, "run_ns", t->run_ns);
	json_field_uint(w, "runqueue_wait_ns", t->wait_ns);
	/* false: libspy sampled other threads' schedstat, not this one's */
	json_field_bool(w, "runqueue_measured", t->sched_read);
	json_field_uint(w, "minor_faults", t->minflt);
	json_field_uint(w, "major_faults", t->majflt);
	json_field_uint(w, "stack_size", t->stack_size);
	json_field_string(w, "stack_from", threads_stack_source_name(t->stack_from));
	json_field_uint(w, "create_ns", t->create_ns);
	json_field_uint(w, "join_wait_ns", t->join_ns);
	json_object_end(w);
}

static void proc_json(struct json_writer *w, const struct threads_model *tm)
{
	const struct process_stats *p = &tm->proc;
	json_key(w, "process_totals");
	if (!p->seen) {
		json_null(w);
		return;
	}
	json_object_begin(w);
	json_field_uint(w, "user_ns", p->user_ns);
	json_field_uint(w, "system_ns", p->sys_ns);
	json_field_uint(w, "voluntary_switches", p->nvcsw);
	json_field_uint(w, "involuntary_switches", p->nivcsw);
	json_field_uint(w, "minor_faults", p->minflt);
	json_field_uint(w, "major_faults", p->majflt);
	json_field_uint(w, "max_rss_kb", p->maxrss_kb);
	json_field_uint(w, "threads_created", p->created);
	json_field_uint(w, "peak_live_threads", p->peak_live);
	json_field_uint(w, "cpus", p->ncpu);
	json_object_end(w);
}

static int load_all(const struct cmd_args *a, struct trace_model *m,
		    struct threads_model *tm, struct symbolizer **sym)
{
	if (cmd_load(a->trace, m))
		return 2;
	if (threads_model_build(m, tm) < 0 || !(*sym = symbolizer_new(m))) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		threads_model_release(tm);
		trace_model_release(m);
		return 2;
	}
	return 0;
}

static void unload(struct trace_model *m, struct threads_model *tm,
		   struct symbolizer *sym)
{
	symbolizer_free(sym);
	threads_model_release(tm);
	trace_model_release(m);
}

/* The start routine's name, or what stands for it. */
static const char *routine(struct symbolizer *sym, const struct trace_model *m,
			   const struct thread_info *t)
{
	return t->start_fn ? fn_name(sym, t->start_fn)
	       : t->tid == m->process.tid ? "(main)" : "-";
}

/* The thread's id, with "#2", "#3" for later threads that got the same
 * id from the kernel. */
static const char *tid_label(char *buf, size_t n, const struct thread_info *t)
{
	if (t->incarnation > 1)
		snprintf(buf, n, "%" PRIu32 "#%" PRIu32, t->tid, t->incarnation);
	else
		snprintf(buf, n, "%" PRIu32, t->tid);
	return buf;
}

/* What the column heads of the two tables stand for, and their units:
 * the heads are short to fit 80 columns. */
static void threads_legend(void)
{
	static const char *const legend[][2] = {
		{ "tid", "the kernel's id (ID#2: a later thread that got it again)" },
		{ "creator", "the thread that created it (0: none, as for main)" },
		{ "start routine", "the function it started in; (main): the first thread" },
		{ "lifetime ms", "from the thread's start to its end" },
		{ "stack", "the stack it reserved, in KiB (K)" },
		{ "end", "how it ended: return, pthread_exit, cancelled, at exit" },
		{ "user/system ms", "CPU time in user space / in the kernel" },
		{ "vol.cs", "voluntary context switches: it blocked or yielded" },
		{ "invol.cs", "involuntary ones: the kernel took the CPU from it" },
		{ "runq wait ms", "time runnable but waiting for a CPU" },
		{ "minflt/majflt", "page faults served from memory / read from disk" },
	};
	for (size_t i = 0; i < sizeof(legend) / sizeof(legend[0]); i++) {
		printf("%-8s%-15s ", i ? "" : "legend:", legend[i][0]);
		text_hang(stdout, legend[i][1], 24, 24);
	}
}

/* Two tables with the thread id as their key, so that each fits the
 * terminal: who the threads were, then what they cost. */
static void threads_text(const struct trace_model *m,
			 const struct threads_model *tm, struct symbolizer *sym)
{
	size_t rows = tm->n < TEXT_ROWS ? tm->n : TEXT_ROWS, unread = 0;
	printf("%-8s %-8s %-26s %11s %8s  %s\n", "tid", "creator",
	       "start routine", "lifetime ms", "stack", "end");
	for (size_t i = 0; i < rows; i++) {
		const struct thread_info *t = &tm->v[i];
		const char *name = routine(sym, m, t);
		char id[24];
		printf("%-8s %-8" PRIu64 " ", tid_label(id, sizeof(id), t),
		       t->creator);
		size_t w = text_put_fit(stdout, name, strlen(name), 26);
		printf("%*s %11.3f %7" PRIu64 "K  %s\n", (int)(26 - w), "",
		       ms(t->lifetime_ns), t->stack_size / 1024,
		       t->has_end ? threads_end_name(t->how) : "not recorded");
	}
	printf("\n%-8s %10s %10s %8s %8s %12s %8s %6s\n", "tid", "user ms",
	       "system ms", "vol.cs", "invol.cs", "runq wait ms", "minflt",
	       "majflt");
	for (size_t i = 0; i < rows; i++) {
		const struct thread_info *t = &tm->v[i];
		char runq[24] = "-"; /* not read: libspy took a sample */
		if (t->sched_read)
			snprintf(runq, sizeof(runq), "%.3f", ms(t->wait_ns));
		char id[24];
		printf("%-8s %10.3f %10.3f %8" PRIu64 " %8" PRIu64
		       " %12s %8" PRIu64 " %6" PRIu64 "\n",
		       tid_label(id, sizeof(id), t),
		       ms(t->user_ns), ms(t->sys_ns), t->nvcsw, t->nivcsw,
		       runq, t->minflt, t->majflt);
		unread += !t->sched_read && t->has_end;
	}
	if (unread)
		printf("\"-\" under runq wait: not read for that thread (libspy "
		       "reads the run queue\nof long threads and of a sample of "
		       "short ones; analyze sched estimates\nthe total)\n");
	if (tm->n > rows)
		printf("... %zu more thread%s (analyze threads --json lists every one)\n",
		       tm->n - rows, text_plural(tm->n - rows, "", "s"));
	fputc('\n', stdout);
	threads_legend();
	const struct process_stats *p = &tm->proc;
	char line[512];
	if (p->seen)
		snprintf(line, sizeof(line), "%" PRIu64 " %s created, at most %" PRIu64
			 " alive at once on %" PRIu64 " CPU%s; %.3f ms user, %.3f ms system; "
			 "context switches: %" PRIu64 " voluntary, %" PRIu64 " involuntary; "
			 "page faults: %" PRIu64 " minor, %" PRIu64 " major; peak RSS %" PRIu64 " KiB",
			 p->created, text_plural(p->created, "thread", "threads"),
			 p->peak_live, p->ncpu, text_plural(p->ncpu, "", "s"),
			 ms(p->user_ns), ms(p->sys_ns), p->nvcsw, p->nivcsw,
			 p->minflt, p->majflt, p->maxrss_kb);
	else
		snprintf(line, sizeof(line), "no totals recorded (the trace ended "
			 "before the process did)");
	fputs("\nprocess: ", stdout);
	text_hang(stdout, line, 9, 9);
}

int cmd_threads(const struct cmd_args *a)
{
	struct trace_model m;
	struct threads_model tm;
	struct symbolizer *sym = NULL;
	if (load_all(a, &m, &tm, &sym))
		return 2;
	if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 2);
		json_object_begin(&w);
		json_key(&w, "threads");
		json_array_begin(&w);
		for (size_t i = 0; i < tm.n; i++)
			thread_json(&w, sym, &m, &tm.v[i]);
		json_array_end(&w);
		proc_json(&w, &tm);
		json_object_end(&w);
		fputc('\n', stdout);
	} else {
		threads_text(&m, &tm, sym);
	}
	unload(&m, &tm, sym);
	return cmd_finish(0);
}

/* The numbers of the scheduling-tax lesson. */
struct sched_view {
	uint64_t threads, peak, ncpu, duration_ns;
	uint64_t switches, vol, invol, runq_ns, cpu_ns, stack_peak;
	uint64_t create_ns, join_ns;
	size_t runq_measured, runq_ended; /* threads whose schedstat was read */
};

static void sched_compute(const struct trace_model *m,
			  const struct threads_model *tm, struct sched_view *s)
{
	memset(s, 0, sizeof(*s));
	s->threads = tm->proc.seen ? tm->proc.created : tm->creates - tm->create_failures;
	s->peak = tm->proc.peak_live;
	s->ncpu = tm->proc.ncpu;
	s->duration_ns = m->last_ts > m->first_ts ? m->last_ts - m->first_ts : 0;
	uint64_t biggest_stack = 0;
	for (size_t i = 0; i < tm->n; i++) {
		const struct thread_info *t = &tm->v[i];
		s->cpu_ns += t->user_ns + t->sys_ns;
		if (t->has_create && t->stack_size > biggest_stack)
			biggest_stack = t->stack_size;
		if (!tm->proc.seen) {
			s->vol += t->nvcsw;
			s->invol += t->nivcsw;
		}
	}
	if (tm->proc.seen) {
		s->vol = tm->proc.nvcsw;
		s->invol = tm->proc.nivcsw;
	}
	s->runq_ns = threads_model_runq_estimate(tm, &s->runq_measured,
						 &s->runq_ended);
	s->switches = s->vol + s->invol;
	s->stack_peak = s->peak > 1 ? (s->peak - 1) * biggest_stack : 0;
	s->create_ns = tm->create_ns;
	s->join_ns = tm->join_ns;
}

int cmd_sched(const struct cmd_args *a)
{
	struct trace_model m;
	struct threads_model tm;
	struct symbolizer *sym = NULL;
	if (load_all(a, &m, &tm, &sym))
		return 2;
	struct sched_view s;
	sched_compute(&m, &tm, &s);
	double secs = (double)s.duration_ns / 1e9;
	uint64_t requests = s.threads ? s.threads : 1;
	if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 2);
		json_object_begin(&w);
		json_field_uint(&w, "threads_created", s.threads);
		json_field_uint(&w, "peak_live_threads", s.peak);
		json_field_uint(&w, "cpus", s.ncpu);
		json_field_uint(&w, "duration_ns", s.duration_ns);
		json_field_uint(&w, "context_switches", s.switches);
		json_field_uint(&w, "voluntary_switches", s.vol);
		json_field_uint(&w, "involuntary_switches", s.invol);
		json_key(&w, "switches_per_second");
		json_double(&w, secs > 0 ? (double)s.switches / secs : 0);
		json_key(&w, "switches_per_thread");
		json_double(&w, (double)s.switches / (double)requests);
		json_field_uint(&w, "runqueue_wait_ns", s.runq_ns);
		json_field_uint(&w, "runqueue_threads_measured", s.runq_measured);
		json_field_uint(&w, "runqueue_threads_ended", s.runq_ended);
		json_field_bool(&w, "runqueue_estimated", s.runq_measured < s.runq_ended);
		json_field_uint(&w, "thread_cpu_ns", s.cpu_ns);
		json_field_uint(&w, "stack_reserved_at_peak", s.stack_peak);
		json_field_uint(&w, "create_ns", s.create_ns);
		json_field_uint(&w, "join_wait_ns", s.join_ns);
		json_object_end(&w);
		fputc('\n', stdout);
	} else {
		char b1[64], b2[64];
		struct text_out t;
		text_init(&t, stdout);
		snprintf(b1, sizeof(b1), "%" PRIu64 " created, at most %" PRIu64
			 " alive at once, on %" PRIu64 " CPU%s", s.threads, s.peak,
			 s.ncpu, text_plural(s.ncpu, "", "s"));
		text_field(&t, "threads", b1);
		summary_format_ns(b2, sizeof(b2), (int64_t)s.duration_ns);
		text_field(&t, "duration", b2);
		char line[256];
		snprintf(line, sizeof(line), "%" PRIu64 " (%" PRIu64 " voluntary, %" PRIu64
			 " involuntary): %.0f a second, %.1f per thread", s.switches, s.vol,
			 s.invol, secs > 0 ? (double)s.switches / secs : 0,
			 (double)s.switches / (double)requests);
		text_field(&t, "switches", line);
		summary_format_ns(b1, sizeof(b1), (int64_t)s.runq_ns);
		if (s.runq_ended && !s.runq_measured)
			snprintf(line, sizeof(line), "not measured (thread_sched=0)");
		else if (s.runq_measured < s.runq_ended)
			snprintf(line, sizeof(line), "about %s runnable but waiting for a "
				 "CPU, all threads together (estimated from %zu of %zu "
				 "thread%s)", b1, s.runq_measured, s.runq_ended,
				 text_plural(s.runq_ended, "", "s"));
		else
			snprintf(line, sizeof(line), "%s runnable but waiting for a CPU, "
				 "all threads together", b1);
		text_field(&t, "run queue", line);
		summary_format_bytes(b1, sizeof(b1), s.stack_peak);
		snprintf(line, sizeof(line), "%s of address space reserved for thread stacks at the peak", b1);
		text_field(&t, "stacks", line);
		summary_format_ns(b1, sizeof(b1), (int64_t)s.create_ns);
		summary_format_ns(b2, sizeof(b2), (int64_t)s.join_ns);
		snprintf(line, sizeof(line), "%s inside pthread_create, %s blocked in pthread_join", b1, b2);
		text_field(&t, "overhead", line);
		summary_format_ns(b1, sizeof(b1), (int64_t)s.cpu_ns);
		snprintf(line, sizeof(line), "%s of CPU used by the threads themselves", b1);
		text_field(&t, "work", line);
	}
	unload(&m, &tm, sym);
	return cmd_finish(0);
}

/* ---- the summary's line ------------------------------------------------------- */

void threads_summary_text(const struct text_out *t, const struct trace_model *m)
{
	struct threads_model tm;
	if (threads_model_build(m, &tm) < 0)
		return;
	const struct process_stats *p = &tm.proc;
	if (p->seen) {
		char line[256];
		snprintf(line, sizeof(line), "%.3f ms user, %.3f ms system; page "
			 "faults: %" PRIu64 " minor, %" PRIu64 " major; context "
			 "switches: %" PRIu64 " voluntary, %" PRIu64 " involuntary; %"
			 PRIu64 " %s created, at most %" PRIu64 " alive",
			 ms(p->user_ns), ms(p->sys_ns), p->minflt, p->majflt,
			 p->nvcsw, p->nivcsw, p->created,
			 text_plural(p->created, "thread", "threads"), p->peak_live);
		text_field(t, "machine", line);
	}
	threads_model_release(&tm);
}

void threads_summary_json(struct json_writer *w, const struct trace_model *m)
{
	struct threads_model tm;
	json_key(w, "machine");
	if (threads_model_build(m, &tm) < 0) {
		json_null(w);
		return;
	}
	const struct process_stats *p = &tm.proc;
	if (!p->seen) {
		json_null(w);
	} else {
		json_object_begin(w);
		json_field_uint(w, "user_ns", p->user_ns);
		json_field_uint(w, "system_ns", p->sys_ns);
		json_field_uint(w, "minor_faults", p->minflt);
		json_field_uint(w, "major_faults", p->majflt);
		json_field_uint(w, "voluntary_switches", p->nvcsw);
		json_field_uint(w, "involuntary_switches", p->nivcsw);
		json_field_uint(w, "max_rss_kb", p->maxrss_kb);
		json_field_uint(w, "threads_created", p->created);
		json_field_uint(w, "peak_live_threads", p->peak_live);
		json_field_uint(w, "cpus", p->ncpu);
		json_object_end(w);
	}
	threads_model_release(&tm);
}
