/* detect_threads.c: the detectors of the threads lessons: thread-storm
 * (many short threads that mostly wait) and stack-overflow (a SIGSEGV at a
 * thread's stack limit, with the repeating frames compressed).
 *
 * thread-storm fires when all of these hold (docs/threads.md):
 *   - at least STORM_MIN_THREADS threads were created during the run;
 *   - they were short-lived: the median lifetime is under STORM_MAX_LIFE;
 *   - most of them mostly waited: at least half of the threads blocked at
 *     least once (a voluntary context switch) and were on a CPU for less
 *     than half of their own lifetime.
 * Each thread is judged on its own times, so a loaded machine, which
 * stretches lifetimes by queueing, cannot turn waiting threads into busy
 * ones; and a thread that never blocked (it only computed, and was
 * preempted) is never counted as waiting however long it was queued.
 * A thread's own lifetime leaves out the run-queue delay inside it where
 * libspy read it (schedstat's delay counts from the thread's creation,
 * its lifetime from its start).
 */
#include "detect_threads.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharing_model.h"
#include "summary.h"
#include "symbolize.h"
#include "text_out.h"
#include "threads_model.h"
#include "u64map.h"
#include "trace_decode.h"
#include "trace_format.h"

#define STORM_MIN_THREADS 100
#define STORM_MAX_LIFE 1000000000ull /* 1 s */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* t's lifetime less the time it was queued for a CPU while alive, where
 * that is known. */
static uint64_t own_life(const struct thread_info *t)
{
	if (!t->sched_read)
		return t->lifetime_ns;
	uint64_t before = t->has_create && t->has_start && t->start_ts > t->create_ts
				  ? t->start_ts - t->create_ts : 0;
	uint64_t queued = t->wait_ns > before ? t->wait_ns - before : 0;
	uint64_t cpu = t->user_ns + t->sys_ns;
	if (queued > t->lifetime_ns || t->lifetime_ns - queued < cpu)
		return t->lifetime_ns > cpu ? cpu : t->lifetime_ns;
	return t->lifetime_ns - queued;
}

/* A thread mostly waited: it blocked at least once, and it was on a CPU
 * for less than half of its own lifetime. */
static bool mostly_waited(const struct thread_info *t, uint64_t life)
{
	return t->nvcsw > 0 && 2 * (t->user_ns + t->sys_ns) < life;
}

static int storm(const struct trace_model *m, const struct threads_model *tm,
		 struct finding_list *out)
{
	size_t n = 0, waiting = 0;
	uint64_t *life = malloc((tm->n ? tm->n : 1) * sizeof(*life));
	if (!life)
		return -1;
	uint64_t life_sum = 0, cpu_sum = 0, vol = 0, invol = 0;
	uint64_t stack = 0, create_ns = 0, join_ns = 0;
	const struct thread_info *first = NULL;
	for (size_t i = 0; i < tm->n; i++) {
		const struct thread_info *t = &tm->v[i];
		/* still running at the end: a pool, whatever its life */
		if (!t->has_create || !t->has_end || t->how == TRACE_THREAD_AT_EXIT)
			continue;
		if (!first)
			first = t;
		uint64_t own = own_life(t);
		life[n++] = own;
		waiting += mostly_waited(t, own);
		life_sum += own;
		cpu_sum += t->user_ns + t->sys_ns;
		vol += t->nvcsw;
		invol += t->nivcsw;
		create_ns += t->create_ns;
		join_ns += t->join_ns;
		if (t->stack_size > stack)
			stack = t->stack_size;
	}
	int rc = 0;
	if (n < STORM_MIN_THREADS || !life_sum)
		goto done;
	qsort(life, n, sizeof(*life), cmp_u64);
	uint64_t median = life[n / 2];
	if (median >= STORM_MAX_LIFE || 2 * waiting < n)
		goto done;
	double busy = (double)cpu_sum / (double)life_sum;
	size_t measured = 0, ended = 0;
	uint64_t runq = threads_model_runq_estimate(tm, &measured, &ended);

	uint64_t peak = tm->proc.peak_live ? tm->proc.peak_live : 0;
	uint64_t ncpu = tm->proc.ncpu;
	uint64_t reserved = peak > 1 ? (peak - 1) * stack : stack;
	char s_n[32], s_cs[32], b_life[32], b_runq[32], b_create[32], b_join[32],
		b_stack[64], b_cpu[32], s_wait[32], runq_text[160];
	summary_format_count(s_n, sizeof(s_n), n);
	summary_format_count(s_wait, sizeof(s_wait), waiting);
	summary_format_count(s_cs, sizeof(s_cs), vol + invol);
	summary_format_ns(b_life, sizeof(b_life), (int64_t)median);
	summary_format_ns(b_runq, sizeof(b_runq), (int64_t)runq);
	summary_format_ns(b_create, sizeof(b_create), (int64_t)create_ns);
	summary_format_ns(b_join, sizeof(b_join), (int64_t)join_ns);
	summary_format_ns(b_cpu, sizeof(b_cpu), (int64_t)cpu_sum);
	summary_format_bytes(b_stack, sizeof(b_stack), reserved);
	if (!measured)
		snprintf(runq_text, sizeof(runq_text), "the run-queue delay was not "
			 "measured (thread_sched=0)");
	else if (measured < ended)
		snprintf(runq_text, sizeof(runq_text), "runnable threads queued for "
			 "a CPU for about %s in total (estimated from %zu of %zu threads)",
			 b_runq, measured, ended);
	else
		snprintf(runq_text, sizeof(runq_text), "runnable threads queued for "
			 "a CPU for %s in total", b_runq);

	char headline[256], expl[1400];
	snprintf(headline, sizeof(headline),
		 "%s short threads, mostly waiting: %s switches", s_n, s_cs);
	snprintf(expl, sizeof(expl),
		 "The program started %s threads (up to %" PRIu64 " alive at once on "
		 "%" PRIu64 " CPU%s). Half of them lived less than %s, and %s of "
		 "them blocked and were on a CPU for less than half of their lives "
		 "(all together %.0f%%, %s): they mostly "
		 "waited. Each thread costs a clone, a stack (%s of address space "
		 "reserved at the peak), kernel bookkeeping and context switches "
		 "(%" PRIu64 " voluntary, %" PRIu64 " involuntary, %.1f per thread); "
		 "%s. Creating them "
		 "took %s inside pthread_create and joining them %s.",
		 s_n, peak, ncpu, text_plural(ncpu, "", "s"), b_life, s_wait, busy * 100, b_cpu, b_stack, vol, invol,
		 (double)(vol + invol) / (double)n, runq_text, b_create, b_join);
	struct finding *f = finding_add(
		out, "thread-storm", SEV_WARNING, headline, expl,
		"Wait for many things in one thread instead of one thread per "
		"waiting task: an event loop (epoll or poll with a timer queue, "
		"or io_uring) that sleeps until the next request is ready and "
		"handles every ready one, or a small pool of worker threads "
		"(about one per CPU) fed from a queue for the CPU-bound part.");
	if (!f) {
		rc = -1;
		goto done;
	}
	if (first && first->create_stack) {
		const struct trace_stack *st = &m->stacks[first->create_stack - 1];
		if (finding_add_stack(f, "the threads are created here", first->creator,
				      st->frames, st->n) < 0)
			rc = -1;
	}
	if (finding_add_int(f, "threads", (int64_t)n) < 0 ||
	    finding_add_int(f, "peak_live_threads", (int64_t)peak) < 0 ||
	    finding_add_int(f, "cpus", (int64_t)ncpu) < 0 ||
	    finding_add_int(f, "median_lifetime_ns", (int64_t)median) < 0 ||
	    finding_add_int(f, "thread_cpu_ns", (int64_t)cpu_sum) < 0 ||
	    finding_add_int(f, "voluntary_switches", (int64_t)vol) < 0 ||
	    finding_add_int(f, "involuntary_switches", (int64_t)invol) < 0 ||
	    finding_add_int(f, "waiting_threads", (int64_t)waiting) < 0 ||
	    finding_add_int(f, "runqueue_wait_ns", (int64_t)runq) < 0 ||
	    finding_add_int(f, "runqueue_threads_measured", (int64_t)measured) < 0 ||
	    finding_add_int(f, "stack_reserved_at_peak", (int64_t)reserved) < 0 ||
	    finding_add_int(f, "create_ns", (int64_t)create_ns) < 0 ||
	    finding_add_int(f, "join_wait_ns", (int64_t)join_ns) < 0)
		rc = -1;
done:
	free(life);
	return rc;
}

/* The names of the functions in the repeating cycle, "a → b". */
static void cycle_names(struct symbolizer *sym, const struct trace_stack *st,
			uint64_t period, char *buf, size_t len)
{
	buf[0] = 0;
	size_t o = 0;
	for (uint64_t i = 1; st && i <= period && i < st->n; i++) {
		const struct sym_frame *fr = symbolizer_lookup(sym, st->frames[i]);
		o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s",
				      i > 1 ? " -> " : "", fr->function ? fr->function : "??");
		if (o >= len)
			break;
	}
	if (!buf[0] && st && st->n) {
		const struct sym_frame *fr = symbolizer_lookup(sym, st->frames[0]);
		snprintf(buf, len, "%s", fr->function ? fr->function : "??");
	}
}

/* 1 if name is one of the functions of the cycle. */
static int in_cycle(struct symbolizer *sym, const struct trace_stack *inner,
		    uint64_t period, const char *name)
{
	for (uint64_t i = 0; inner && i <= period && i < inner->n; i++) {
		const struct sym_frame *fr = symbolizer_lookup(sym, inner->frames[i]);
		if (fr->function && name && !strcmp(fr->function, name))
			return 1;
	}
	return 0;
}

static int overflow(const struct trace_model *m, const struct threads_model *tm,
		    struct finding_list *out)
{
	const struct stack_overflow *o = &tm->overflow;
	if (!o->seen)
		return 0;
	struct symbolizer *sym = symbolizer_new(m);
	if (!sym)
		return -1;
	const struct trace_stack *inner = o->inner ? &m->stacks[o->inner - 1] : NULL;
	const struct trace_stack *outer = o->outer ? &m->stacks[o->outer - 1] : NULL;
	uint64_t period = o->period ? o->period : 1;
	char names[256];
	cycle_names(sym, inner, o->period, names, sizeof(names));
	/* Frames outside the cycle (main and what calls it) are not repeats. */
	uint64_t others = 0;
	for (uint32_t i = 0; outer && i < outer->n; i++) {
		const struct sym_frame *fr = symbolizer_lookup(sym, outer->frames[i]);
		if (!in_cycle(sym, inner, period, fr->function))
			others++;
	}
	uint64_t repeats = o->depth > others ? (o->depth - others) / period : 0;
	uint64_t used = o->stack_top > o->sp ? o->stack_top - o->sp : 0;
	uint64_t per_frame = o->cycle_bytes ? o->cycle_bytes / period
			     : (o->depth ? used / o->depth : 0);
	char s_rep[32], s_depth[32], b_limit[64], headline[400], expl[1400];
	summary_format_count(s_rep, sizeof(s_rep), repeats);
	summary_format_count(s_depth, sizeof(s_depth), o->depth);
	summary_format_bytes(b_limit, sizeof(b_limit), o->limit);
	const char *from = threads_stack_source_name(o->limit_from);
	bool main_thread = o->tid == m->process.tid || o->limit_from == TRACE_STACK_FROM_RLIMIT;
	char b_mib[32];
	if (o->limit >= (1u << 20))
		snprintf(b_mib, sizeof(b_mib), "%.3g MiB", (double)o->limit / (1 << 20));
	else
		snprintf(b_mib, sizeof(b_mib), "%" PRIu64 " KiB", o->limit / 1024);
	if (o->depth)
		snprintf(headline, sizeof(headline),
			 "%s \u00d7 %s, %" PRIu64 " B a call, %s stack full",
			 names[0] ? names : "??", s_rep, per_frame, b_mib);
	else
		snprintf(headline, sizeof(headline), "thread %" PRIu64
			 " filled its %s stack", o->tid, b_mib);
	char frames_said[400] = "Its frames could not be walked at the "
		"fault.";
	if (o->depth)
		snprintf(frames_said, sizeof(frames_said), "At the fault %s "
			 "frames were on the stack (%s), and the same %s "
			 "repeated about %s times, each time taking about %"
			 PRIu64 " bytes for its frame (return address, saved "
			 "registers, locals).", s_depth, o->complete
			 ? "counted to the outermost frame"
			 : "counted as far as unwinding went",
			 o->period > 1 ? "cycle of calls" : "function", s_rep,
			 per_frame);
	snprintf(expl, sizeof(expl),
		 "The %s ran out of stack: its %s limit comes from %s. %s The "
		 "next call touched the page below the stack (0x%" PRIx64 ") and "
		 "the kernel sent SIGSEGV: a recursion that never reaches its "
		 "base case, or that goes deeper than the stack allows.",
		 main_thread ? "main thread" : "thread", b_limit, from,
		 frames_said, o->fault_addr);
	struct finding *f = finding_add(
		out, "stack-overflow", SEV_ERROR, headline, expl,
		"Give the recursion a base case that is always reached, or turn it "
		"into a loop with an explicit stack (or a counter) on the heap. "
		"Large local arrays in a recursive function belong on the heap. "
		"Raising the limit (ulimit -s, pthread_attr_setstacksize) only moves "
		"the wall.");
	int rc = 0;
	if (!f) {
		rc = -1;
	} else {
		/* One turn of the cycle is enough to see; the headline
		 * says how many there were. */
		size_t n_in = inner ? inner->n : 0;
		if (o->period && n_in > o->period + 1)
			n_in = (size_t)o->period + 1;
		size_t skip = 0;
		while (outer && o->period && skip + o->period < outer->n &&
		       in_cycle(sym, inner, period,
				symbolizer_lookup(sym, outer->frames[skip + o->period])->function))
			skip++;
		if (inner && finding_add_stack(f, "the innermost frames, at the fault",
					       o->tid, inner->frames, n_in) < 0)
			rc = -1;
		if (outer && finding_add_stack(f, "the outermost frames, where it began",
					       o->tid, outer->frames + skip, outer->n - skip) < 0)
			rc = -1;
		char hex[32];
		snprintf(hex, sizeof(hex), "0x%" PRIx64, o->fault_addr);
		if (finding_add_int(f, "thread", (int64_t)o->tid) < 0 ||
		    finding_add_int(f, "depth", (int64_t)o->depth) < 0 ||
		    finding_add_int(f, "repeats", (int64_t)repeats) < 0 ||
		    finding_add_str(f, "repeating", names) < 0 ||
		    finding_add_int(f, "cycle_frames", (int64_t)o->period) < 0 ||
		    finding_add_int(f, "bytes_per_frame", (int64_t)per_frame) < 0 ||
		    finding_add_int(f, "stack_limit", (int64_t)o->limit) < 0 ||
		    finding_add_str(f, "limit_from", from) < 0 ||
		    finding_add_str(f, "fault_address", hex) < 0)
			rc = -1;
	}
	symbolizer_free(sym);
	return rc;
}

static int false_sharing(const struct trace_model *m, struct finding_list *out)
{
	struct sharing_model sm;
	if (sharing_model_build(m, &sm) < 0)
		return -1;
	struct symbolizer *sym = NULL;
	int rc = 0;
	for (size_t i = 0; i < sm.n_lines && rc == 0; i++) {
		const struct shared_line *l = &sm.lines[i];
		if (l->kind != SHARING_FALSE)
			continue;
		if (!sym && !(sym = symbolizer_new(m))) {
			rc = -1;
			break;
		}
		char names[2][160], headline[400], expl[1600], who[900];
		size_t o = 0;
		who[0] = 0;
		for (size_t k = 0; k < l->n_writers; k++) {
			const struct line_writer *w = &l->w[k];
			char name[160];
			sharing_name(m, w->addr, name, sizeof(name));
			if (k < 2)
				snprintf(names[k], sizeof(names[k]), "%s", name[0] ? name : "?");
			o += (size_t)snprintf(who + o, o < sizeof(who) ? sizeof(who) - o : 0,
					      "%sthread %" PRIu32 " writes %s (byte %" PRIu64
					      " of the line, %zu samples)", k ? "; " : "", w->tid,
					      name[0] ? name : "an unnamed variable",
					      w->addr & (SHARING_LINE - 1), w->samples);
			if (o >= sizeof(who))
				break;
		}
		snprintf(headline, sizeof(headline), "%s and %s share a cache line",
			 names[0], names[1]);
		snprintf(expl, sizeof(expl),
			 "%zu threads write different bytes of the same 64-byte cache line "
			 "(0x%" PRIx64 "): %s. They never touch each other's data, but caches "
			 "keep memory coherent a whole line at a time: each write by one core "
			 "takes the line away from the other, so the line moves back and forth "
			 "between cores and both threads wait for it. Seen in samples of where "
			 "each thread was (sample_hz), decoded to the instruction and the "
			 "address it wrote: no hardware counters are needed, and the cost "
			 "itself is not measured (the demo times it).",
			 l->n_writers, l->line, who);
		struct finding *f = finding_add(
			out, "false-sharing", SEV_WARNING, headline, expl,
			"Give each thread's data a cache line of its own: align each "
			"field to 64 bytes (_Alignas(64), alignas(64) in C++, or padding), "
			"or let each thread count in its own variable and combine the "
			"results once at the end.");
		if (!f) {
			rc = -1;
			break;
		}
		for (size_t k = 0; k < l->n_writers && rc == 0; k++) {
			const struct line_writer *w = &l->w[k];
			char label[200], name[160];
			sharing_name(m, w->addr, name, sizeof(name));
			snprintf(label, sizeof(label), "writes %s here", name[0] ? name : "the line");
			/* The writing instruction, as a one-frame stack (+1: the
			 * reader looks up return addresses minus one). */
			uint64_t frame = w->pc + 1;
			if (finding_add_stack(f, label, w->tid, &frame, 1) < 0)
				rc = -1;
		}
		char hex[32], json[1200];
		snprintf(hex, sizeof(hex), "0x%" PRIx64, l->line);
		o = (size_t)snprintf(json, sizeof(json), "[");
		for (size_t k = 0; k < l->n_writers && o < sizeof(json); k++) {
			const struct line_writer *w = &l->w[k];
			char name[160];
			sharing_name(m, w->addr, name, sizeof(name));
			for (char *c = name; *c; c++)
				if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
					*c = '?';
			o += (size_t)snprintf(json + o, sizeof(json) - o,
					      "%s{\"thread\": %" PRIu32 ", \"variable\": \"%s\", "
					      "\"offset\": %" PRIu64 ", \"samples\": %zu}",
					      k ? ", " : "", w->tid, name,
					      w->addr & (SHARING_LINE - 1), w->samples);
		}
		if (o + 2 < sizeof(json))
			snprintf(json + o, sizeof(json) - o, "]");
		if (rc == 0 && (finding_add_str(f, "line", hex) < 0 ||
				finding_add_int(f, "threads", (int64_t)l->n_writers) < 0 ||
				(o + 2 < sizeof(json) && finding_add_json(f, "writers", json) < 0) ||
				finding_add_int(f, "samples", (int64_t)sm.samples) < 0))
			rc = -1;
	}
	if (sym)
		symbolizer_free(sym);
	sharing_model_release(&sm);
	return rc;
}

int sharing_unchecked(const struct trace_model *m)
{
	for (size_t i = 0; i < m->n_events; i++)
		if (m->events[i].kind == TRACE_SAMPLE)
			return 0;
	struct threads_model tm;
	if (threads_model_build(m, &tm) < 0)
		return 0;
	int found = 0;
	for (size_t i = 0; i < tm.n && !found; i++) {
		const struct thread_info *a = &tm.v[i];
		if (a->user_ns + a->sys_ns < SHARING_UNCHECKED_CPU_NS)
			continue;
		for (size_t k = i + 1; k < tm.n && !found; k++) {
			const struct thread_info *b = &tm.v[k];
			uint64_t a0 = a->start_ts ? a->start_ts : a->create_ts;
			uint64_t b0 = b->start_ts ? b->start_ts : b->create_ts;
			found = b->user_ns + b->sys_ns >= SHARING_UNCHECKED_CPU_NS &&
				(!a->end_ts || b0 < a->end_ts) &&
				(!b->end_ts || a0 < b->end_ts);
		}
	}
	threads_model_release(&tm);
	return found;
}

/* ---- pthread_join that failed ------------------------------------------ */

static int add_stack_id(struct finding *f, const struct trace_model *m,
			const char *label, uint64_t stack, uint64_t tid)
{
	if (!stack || stack > m->n_stacks)
		return 0;
	const struct trace_stack *s = &m->stacks[stack - 1];
	return finding_add_stack(f, label, tid, s->frames, s->n);
}

/* The thread a handle named at ts: the last one created with it. */
static const struct thread_info *by_handle(const struct threads_model *tm,
					   uint64_t handle, uint64_t ts)
{
	const struct thread_info *t = NULL;
	for (size_t i = 0; i < tm->n; i++)
		if (tm->v[i].handle == handle &&
		    (!tm->v[i].has_create || tm->v[i].create_ts <= ts) &&
		    (!t || tm->v[i].create_ts >= t->create_ts))
			t = &tm->v[i];
	return t;
}

/* The name of a join call (trace_join_call). */
static const char *join_name(uint64_t call)
{
	switch (call) {
	case TRACE_JOIN_TRY:
		return "pthread_tryjoin_np";
	case TRACE_JOIN_TIMED:
		return "pthread_timedjoin_np";
	case TRACE_JOIN_CLOCK:
		return "pthread_clockjoin_np";
	default:
		return "pthread_join";
	}
}

/* Each join that returned an error (the program seldom looks): joined
 * twice, joined after pthread_detach, a thread joining itself. A timed
 * join that timed out, or a try that found the thread running, is none. */
static int bad_joins(const struct trace_model *m, const struct threads_model *tm,
		     struct finding_list *out)
{
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		if (e->kind != TRACE_THREAD_JOIN || e->b > m->size ||
		    e->a > m->size - e->b)
			continue;
		uint64_t v[5] = { 0 };
		struct trace_cursor c = trace_cursor_make(m->data + e->b, (size_t)e->a);
		for (size_t k = 0; k < 5; k++)
			if (trace_get_varint(&c, &v[k]) < 0)
				break;
		uint64_t call = v[4];
		if (!v[2] || (call == TRACE_JOIN_TRY && v[2] == EBUSY) ||
		    ((call == TRACE_JOIN_TIMED || call == TRACE_JOIN_CLOCK) &&
		     v[2] == ETIMEDOUT))
			continue;
		const char *fn = join_name(call), *name, *what;
		char why[400];
		switch (v[2]) {
		case ESRCH:
			name = "ESRCH";
			what = "of a thread already joined";
			snprintf(why, sizeof(why), "%s returned ESRCH: no thread "
				 "with this ID can be joined. A thread is joined "
				 "once; after that its ID means nothing (glibc may "
				 "even have given it to a new thread, which this "
				 "join would then wait for).", fn);
			break;
		case EINVAL:
			name = "EINVAL";
			what = "of a thread that is not joinable";
			snprintf(why, sizeof(why), "%s returned EINVAL: the "
				 "thread was detached (pthread_detach, or created "
				 "detached), or another thread is joining it "
				 "already%s. A detached thread cannot be waited "
				 "for: its return value is gone, and the program "
				 "does not know when it ends.", fn,
				 call == TRACE_JOIN_TIMED || call == TRACE_JOIN_CLOCK
					 ? " (or the clock given is not one it "
					   "can wait on)" : "");
			break;
		case EDEADLK:
			name = "EDEADLK";
			what = "of a thread by itself";
			snprintf(why, sizeof(why), "%s returned EDEADLK: a "
				 "thread joined itself, a wait that could never "
				 "end.", fn);
			break;
		default:
			name = "an error";
			what = "failed";
			snprintf(why, sizeof(why), "%s returned an error: the "
				 "thread was not waited for.", fn);
			break;
		}
		char head[120], expl[600];
		snprintf(head, sizeof(head), "%s %s", fn, what);
		snprintf(expl, sizeof(expl), "%s A program that does not "
			 "check what %s returns goes on as if the thread had "
			 "ended and its result were there.", why, fn);
		struct finding *f = finding_add(out, "bad-join", SEV_ERROR,
			head, expl,
			"Join each thread exactly once, from one other thread, "
			"and only threads created joinable; check what "
			"pthread_join returns.");
		const struct thread_info *t = by_handle(tm, v[0], e->ts);
		if (!f ||
		    add_stack_id(f, m, "the join that failed", v[3], e->tid) < 0 ||
		    (t && add_stack_id(f, m, "the thread was created here",
				       t->create_stack, t->creator) < 0) ||
		    finding_add_str(f, "error", name) < 0 ||
		    finding_add_str(f, "call", fn) < 0 ||
		    (t && t->tid && finding_add_int(f, "thread", t->tid) < 0))
			return -1;
	}
	return 0;
}

/* A thread that ended while the program still ran and was never joined
 * nor detached: glibc keeps its stack and descriptor until the process
 * ends. One finding per place such threads were created, counted. */
static bool leaked(const struct thread_info *t)
{
	return t->has_create && t->has_end && t->how != TRACE_THREAD_AT_EXIT &&
	       !t->joined && !t->detached;
}

/* The threads that leaked, by creating stack: per leaked thread, the
 * index + 1 of the first one of its stack (firsts), whose entries of n
 * and bytes count them all. 0, or -1 when memory ran out. */
struct leak_groups {
	struct u64map firsts;
	size_t *n;
	uint64_t *bytes;
};

static int leak_groups_build(const struct threads_model *tm,
			     struct leak_groups *g)
{
	g->firsts = (struct u64map)U64MAP_INIT;
	g->n = calloc(tm->n ? tm->n : 1, sizeof(*g->n));
	g->bytes = calloc(tm->n ? tm->n : 1, sizeof(*g->bytes));
	if (!g->n || !g->bytes)
		return -1;
	for (size_t i = 0; i < tm->n; i++) {
		const struct thread_info *t = &tm->v[i];
		if (!leaked(t))
			continue;
		uint64_t *first = u64map_get(&g->firsts, t->create_stack);
		size_t k = first ? (size_t)*first - 1 : i;
		if (!first && u64map_put(&g->firsts, t->create_stack, i + 1) < 0)
			return -1;
		g->n[k]++;
		g->bytes[k] += t->stack_size;
	}
	return 0;
}

static int thread_leaks(const struct trace_model *m,
			const struct threads_model *tm, struct finding_list *out)
{
	struct leak_groups g;
	int rc = leak_groups_build(tm, &g);
	for (size_t i = 0; i < tm->n && rc == 0; i++) {
		const struct thread_info *t = &tm->v[i];
		size_t n = g.n[i];
		uint64_t stack_bytes = g.bytes[i];
		if (!n)
			continue; /* not leaked, or counted with its stack's first */
		char head[160], expl[700];
		snprintf(head, sizeof(head), "%zu thread%s ended without being "
			 "joined or detached", n, text_plural(n, "", "s"));
		snprintf(expl, sizeof(expl), "A thread created joinable keeps "
			 "its stack and its descriptor after it ends, until "
			 "another thread joins it (pthread_join), so that its "
			 "result can be fetched; nothing here joined %s or "
			 "detached %s. Each such thread holds its stack until "
			 "the process ends (%.1f MiB reserved here), and a "
			 "program that keeps making them runs out of memory "
			 "or of threads.", n == 1 ? "it" : "them",
			 n == 1 ? "it" : "them",
			 (double)stack_bytes / (1024.0 * 1024.0));
		struct finding *f = finding_add(out, "thread-leak", SEV_WARNING,
			head, expl,
			"Join every thread whose end matters (pthread_join), "
			"or detach it (pthread_detach, or create it with "
			"PTHREAD_CREATE_DETACHED) when nobody waits for it.");
		if (!f ||
		    add_stack_id(f, m, "created here", t->create_stack,
				 t->creator) < 0 ||
		    finding_add_int(f, "threads", (int64_t)n) < 0 ||
		    finding_add_int(f, "stack_bytes", (int64_t)stack_bytes) < 0)
			rc = -1;
	}
	u64map_release(&g.firsts);
	free(g.n);
	free(g.bytes);
	return rc;
}

int detect_threads(const struct trace_model *m, struct finding_list *out)
{
	struct threads_model tm;
	if (threads_model_build(m, &tm) < 0)
		return -1;
	int rc = storm(m, &tm, out);
	if (rc == 0)
		rc = overflow(m, &tm, out);
	if (rc == 0)
		rc = false_sharing(m, out);
	if (rc == 0)
		rc = bad_joins(m, &tm, out);
	if (rc == 0)
		rc = thread_leaks(m, &tm, out);
	threads_model_release(&tm);
	return rc;
}
