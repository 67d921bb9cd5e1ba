/* threads_model.h: the threads of a trace, from rec_threads' records
 * (kinds 60-79): who created each thread, how long it lived, what it cost
 * (CPU, context switches, run-queue delay, page faults, stack), the process
 * totals, and the stack overflow that ended the process, if one did. Every
 * view and detector of threads reads this one model.
 */
#ifndef SPY_THREADS_MODEL_H
#define SPY_THREADS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_reader.h"

struct thread_info {
	uint32_t tid;           /* 0 until the thread was seen running */
	uint32_t incarnation;   /* 1 for the first thread with its tid, 2
				 * for the next: the kernel reuses ids */
	uint64_t creator;       /* tid, 0 if unknown */
	uint64_t handle;        /* pthread_t */
	uint64_t start_fn;      /* start routine address, 0 if unknown */
	uint32_t create_stack;  /* index + 1 into model.stacks, 0 = none */
	bool has_create, has_start, has_end, joined;
	bool detached;          /* created detached, or pthread_detach'ed */
	uint64_t create_ts, start_ts, end_ts;   /* absolute ns, 0 = unseen */
	uint64_t create_ns;     /* time inside pthread_create */
	uint64_t join_ns;       /* time its joiner was blocked */
	uint64_t how;           /* trace_thread_end */
	uint64_t user_ns, sys_ns, nvcsw, nivcsw, minflt, majflt;
	uint64_t run_ns, wait_ns;   /* schedstat: on a CPU, waiting for one */
	bool sched_read;            /* run_ns and wait_ns were read (else 0) */
	uint64_t lifetime_ns;
	uint64_t stack_size, stack_from;
	uint64_t stack_top;     /* near the top of its stack (start record) */
};

struct process_stats {
	bool seen;
	uint64_t user_ns, sys_ns, nvcsw, nivcsw, minflt, majflt, maxrss_kb;
	uint64_t created, peak_live, ncpu;
};

struct stack_overflow {
	bool seen;
	uint64_t ts, tid, fault_addr, sp, stack_top, limit, limit_from;
	uint64_t depth, complete, period, cycle_bytes;
	uint32_t inner, outer;  /* index + 1 into model.stacks, 0 = none */
};

struct threads_model {
	struct thread_info *v;  /* in order of creation (or first sight) */
	size_t n;
	struct process_stats proc;
	struct stack_overflow overflow;
	size_t creates, create_failures, clones;
	uint64_t create_ns, join_ns;   /* totals */
};

/* Builds tm from m (which must outlive it). 0, or -1 when memory ran out. */
int threads_model_build(const struct trace_model *m, struct threads_model *tm);

void threads_model_release(struct threads_model *tm);

/* The run-queue delay of every ended thread: the sum over those whose
 * schedstat was read, scaled by ended / measured (libspy reads it for
 * long-lived threads and a sample of short ones). Sets *measured and
 * *ended (either may be NULL); 0 when none was measured. */
uint64_t threads_model_runq_estimate(const struct threads_model *tm,
				     size_t *measured, size_t *ended);

/* "return", "pthread_exit", "cancelled", "at exit", "unknown". */
const char *threads_end_name(uint64_t how);

/* Where a stack limit came from, in words ("ulimit -s", ...). */
const char *threads_stack_source_name(uint64_t from);

/* The summary's "machine" line and JSON member (CPU, context switches,
 * page faults, threads), from the process totals; nothing (text) or null
 * (JSON) when the trace has none. In cmd_threads.c. */
struct text_out;
struct json_writer;
void threads_summary_text(const struct text_out *t, const struct trace_model *m);
void threads_summary_json(struct json_writer *w, const struct trace_model *m);

/* The stack index + 1 for a stack id found in a record, 0 if none. */
uint32_t threads_stack_ref(const struct trace_model *m, uint64_t id);

#endif
