/* threads_model.c: builds the threads model from rec_threads' records.
 * The records' fields are decoded here from the bytes the reader kept
 * (event a = length, b = offset); a record shorter than this reader
 * expects leaves the missing fields 0 (records only grow at their end).
 */
#include "threads_model.h"

#include <stdlib.h>
#include <string.h>

#include "trace_decode.h"
#include "trace_format.h"
#include "u64map.h"

const char *threads_end_name(uint64_t how)
{
	switch (how) {
	case TRACE_THREAD_RETURNED: return "return";
	case TRACE_THREAD_EXITED: return "pthread_exit";
	case TRACE_THREAD_CANCELLED: return "cancelled";
	case TRACE_THREAD_AT_EXIT: return "at exit";
	default: return "unknown";
	}
}

const char *threads_stack_source_name(uint64_t from)
{
	switch (from) {
	case TRACE_STACK_FROM_RLIMIT: return "ulimit -s (RLIMIT_STACK)";
	case TRACE_STACK_FROM_DEFAULT:
		return "pthread's default stack size (ulimit -s at start)";
	case TRACE_STACK_FROM_ATTR:
		return "the thread's attributes (pthread_attr_setstacksize)";
	default: return "unknown";
	}
}

uint32_t threads_stack_ref(const struct trace_model *m, uint64_t id)
{
	if (!id)
		return 0;
	uint64_t *slot = u64map_get(&m->stack_index, id);
	if (!slot || *slot > m->n_stacks || !m->stacks[*slot - 1].defined)
		return 0;
	return (uint32_t)*slot;
}

/* Reads up to n varint fields of e's record into v (missing ones 0). */
static void fields(const struct trace_model *m, const struct trace_event *e,
		   uint64_t *v, size_t n)
{
	memset(v, 0, n * sizeof(*v));
	if (e->b > m->size || e->a > m->size - e->b)
		return;
	struct trace_cursor c = trace_cursor_make(m->data + e->b, (size_t)e->a);
	for (size_t i = 0; i < n; i++)
		if (trace_get_varint(&c, &v[i]) < 0)
			return;
}

static struct thread_info *add(struct threads_model *tm, size_t *cap)
{
	if (tm->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		void *p = realloc(tm->v, ncap * sizeof(*tm->v));
		if (!p)
			return NULL;
		tm->v = p;
		*cap = ncap;
	}
	struct thread_info *t = &tm->v[tm->n++];
	memset(t, 0, sizeof(*t));
	return t;
}

int threads_model_build(const struct trace_model *m, struct threads_model *tm)
{
	memset(tm, 0, sizeof(*tm));
	size_t cap = 0;
	struct u64map pending = U64MAP_INIT;  /* handle -> index + 1, not started */
	struct u64map by_handle = U64MAP_INIT; /* handle -> index + 1, started */
	struct u64map by_tid = U64MAP_INIT;   /* tid -> index + 1 */
	/* Clocks of different threads may disagree by a little, so a thread
	 * can seem to start before its creation record: such starts wait
	 * here (handle -> index + 1) for their creation. */
	struct u64map orphans = U64MAP_INIT;
	int rc = -1;
	uint64_t v[16];

	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		struct thread_info *t;
		uint64_t *slot, idx;
		switch (e->kind) {
		case TRACE_THREAD_CREATE:
			fields(m, e, v, 9); /* (detached, v[8]: 0 if absent) */
			tm->creates++;
			if (v[6]) {
				tm->create_failures++;
				break;
			}
			idx = 0;
			if (u64map_remove(&orphans, v[0], &idx) && idx) {
				t = &tm->v[idx - 1];
			} else {
				if (!(t = add(tm, &cap)))
					goto out;
				if (u64map_put(&pending, v[0], tm->n) < 0)
					goto out;
				/* glibc gives a handle again only once its
				 * last thread is gone: joins and detaches of
				 * it from now on are this thread's */
				u64map_remove(&by_handle, v[0], NULL);
			}
			t->has_create = true;
			t->creator = e->tid;
			t->create_ts = e->ts;
			t->handle = v[0];
			t->start_fn = v[1];
			t->stack_size = v[2];
			t->stack_from = v[4];
			t->create_ns = v[5];
			t->create_stack = threads_stack_ref(m, v[7]);
			t->detached = v[8] != 0;
			tm->create_ns += v[5];
			break;
		case TRACE_THREAD_START:
			fields(m, e, v, 6);
			idx = 0;
			if (u64map_remove(&pending, v[2], &idx) && idx) {
				t = &tm->v[idx - 1];
			} else {
				if (!(t = add(tm, &cap)))
					goto out;
				idx = tm->n;
				if (u64map_put(&orphans, v[2], idx) < 0)
					goto out;
				t->handle = v[2];
				t->creator = v[1];
				t->stack_size = v[4];
				t->stack_from = v[5];
			}
			t->has_start = true;
			t->stack_top = v[3];
			t->tid = (uint32_t)v[0];
			t->start_ts = e->ts;
			if (u64map_put(&by_handle, v[2], idx) < 0 ||
			    u64map_put(&by_tid, v[0], idx) < 0)
				goto out;
			break;
		case TRACE_THREAD_END:
			fields(m, e, v, 13);
			slot = u64map_get(&by_tid, v[0]);
			if (slot) {
				t = &tm->v[*slot - 1];
			} else {
				if (!(t = add(tm, &cap)))
					goto out;
				t->tid = (uint32_t)v[0];
				if (u64map_put(&by_tid, v[0], tm->n) < 0)
					goto out;
			}
			if (t->has_end)
				break;
			t->has_end = true;
			t->end_ts = e->ts;
			t->how = v[1];
			t->user_ns = v[2];
			t->sys_ns = v[3];
			t->nvcsw = v[4];
			t->nivcsw = v[5];
			t->minflt = v[6];
			t->majflt = v[7];
			t->run_ns = v[8];
			t->wait_ns = v[9];
			t->sched_read = v[12] ? v[12] == TRACE_SCHED_READ
					      : (v[8] || v[9]);
			t->lifetime_ns = v[10];
			/* A thread still running at the end, read for it by
			 * the exiting one: its life from its start record. */
			if (!v[10] && v[1] == TRACE_THREAD_AT_EXIT &&
			    t->has_start && e->ts > t->start_ts)
				t->lifetime_ns = e->ts - t->start_ts;
			if (v[11])
				t->stack_size = v[11];
			break;
		case TRACE_THREAD_JOIN:
			fields(m, e, v, 3);
			tm->join_ns += v[1];
			/* (stamped before the call: maybe before the
			 * thread's start) */
			slot = u64map_get(&by_handle, v[0]);
			if (!slot)
				slot = u64map_get(&pending, v[0]);
			if (slot && !v[2]) {
				t = &tm->v[*slot - 1];
				t->joined = true;
				t->join_ns += v[1];
			}
			break;
		case TRACE_THREAD_DETACH:
			fields(m, e, v, 2);
			/* by its creator, maybe before the thread's start */
			slot = u64map_get(&by_handle, v[0]);
			if (!slot)
				slot = u64map_get(&pending, v[0]);
			if (slot && !v[1])
				tm->v[*slot - 1].detached = true;
			break;
		case TRACE_PROCESS_STATS:
			if (tm->proc.seen)
				break;
			fields(m, e, v, 10);
			tm->proc = (struct process_stats){
				.seen = true, .user_ns = v[0], .sys_ns = v[1],
				.nvcsw = v[2], .nivcsw = v[3], .minflt = v[4],
				.majflt = v[5], .maxrss_kb = v[6], .created = v[7],
				.peak_live = v[8], .ncpu = v[9],
			};
			break;
		case TRACE_STACK_OVERFLOW:
			if (tm->overflow.seen)
				break;
			fields(m, e, v, 12);
			tm->overflow = (struct stack_overflow){
				.seen = true, .ts = e->ts, .tid = v[0],
				.fault_addr = v[1], .sp = v[2], .stack_top = v[3],
				.limit = v[4], .limit_from = v[5], .depth = v[6],
				.complete = v[7],
				.inner = threads_stack_ref(m, v[8]),
				.outer = threads_stack_ref(m, v[9]),
				.period = v[10], .cycle_bytes = v[11],
			};
			break;
		case TRACE_CLONE:
			tm->clones++;
			break;
		default:
			break;
		}
	}
	/* Threads that had the same id one after another, in the order
	 * they were created. */
	u64map_release(&by_tid);
	for (size_t i = 0; i < tm->n; i++) {
		struct thread_info *t = &tm->v[i];
		t->incarnation = 1;
		if (!t->tid) /* never seen running: no id to share */
			continue;
		uint64_t *seen = u64map_get(&by_tid, t->tid);
		t->incarnation = seen ? (uint32_t)++*seen : 1;
		if (!seen && u64map_put(&by_tid, t->tid, 1) < 0)
			goto out;
	}
	rc = 0;
out:
	u64map_release(&pending);
	u64map_release(&by_handle);
	u64map_release(&by_tid);
	u64map_release(&orphans);
	if (rc < 0)
		threads_model_release(tm);
	return rc;
}

void threads_model_release(struct threads_model *tm)
{
	free(tm->v);
	memset(tm, 0, sizeof(*tm));
}

/* libspy reads every thread that lived TRACE_SCHED_ALWAYS_NS or more, and
 * a sample of the shorter ones: each group is scaled apart, so that the
 * long ones are not counted as often as the short. */

uint64_t threads_model_runq_estimate(const struct threads_model *tm,
				     size_t *measured, size_t *ended)
{
	long double sum[2] = { 0, 0 };
	size_t n[2] = { 0, 0 }, all[2] = { 0, 0 };
	for (size_t i = 0; i < tm->n; i++) {
		const struct thread_info *t = &tm->v[i];
		if (!t->has_end)
			continue;
		int g = t->lifetime_ns >= TRACE_SCHED_ALWAYS_NS;
		all[g]++;
		if (t->sched_read) {
			n[g]++;
			sum[g] += (long double)t->wait_ns;
		}
	}
	if (measured)
		*measured = n[0] + n[1];
	if (ended)
		*ended = all[0] + all[1];
	if (!n[0] && !n[1])
		return 0;
	/* A group with none measured takes the mean of the other. */
	long double mean = (sum[0] + sum[1]) / (long double)(n[0] + n[1]);
	long double est = 0;
	for (int g = 0; g < 2; g++)
		est += n[g] ? sum[g] * (long double)all[g] / (long double)n[g]
			    : mean * (long double)all[g];
	/* Scaled up, hostile values can pass 2^64, where converting is
	 * undefined: the estimate saturates instead. */
	return est < 0x1p64L ? (uint64_t)est : UINT64_MAX;
}
