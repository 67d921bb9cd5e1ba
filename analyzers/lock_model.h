/* lock_model.h: the locks of a trace, replayed in time order: every lock
 * (identity = address + generation: a lock destroyed, re-initialised, or
 * inside freed memory starts a new generation at the same address), its
 * statistics, the lock-order graph with lockdep's rules, the deadlocks
 * libspy caught live, and per-thread trylock failures (for livelock).
 */
#ifndef SPY_LOCK_MODEL_H
#define SPY_LOCK_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_reader.h"
#include "u64map.h"

struct lock_info {
	uint64_t addr;
	uint32_t gen;             /* 1 for the first lock at addr */
	unsigned type;            /* TRACE_LOCK_MUTEX, _RWLOCK or _SPIN */
	uint32_t first_stack;     /* model stack ref of its first acquisition */
	uint32_t first_tid;
	uint64_t first_ts;
	uint64_t block_addr, block_size; /* heap block holding it, 0 if none */
	uint32_t block_stack;     /* where that block was allocated */
	uint64_t acquisitions, contended, wait_total, wait_max;
	uint64_t hold_total, hold_max;
	uint64_t hold_untimed;    /* holds estimated, not measured (then
				   * hold_total is an estimate and hold_max
				   * the longest measured) */
	uint64_t try_fail, timeouts;
	char *name;               /* for people; set by lock_names_fill */
};

#define LOCK_EDGE_TIDS 4

/* Bounds on what one trace can make the graph cost, lockdep's own kind of
 * limits (MAX_LOCK_DEPTH, MAX_LOCKDEP_ENTRIES): every lock a thread holds
 * adds an edge at each of its later acquisitions, so a trace nesting
 * thousands of locks would take quadratic time and memory. A thread's
 * acquisitions past LOCK_MAX_HELD held locks are counted but not held;
 * edges past LOCK_MAX_EDGES are not added (lock_model.edges_dropped). */
#define LOCK_MAX_HELD 48
#define LOCK_MAX_EDGES (1u << 21)

struct lock_edge {
	uint32_t from, to;        /* lock indices: 'to' taken while 'from' held */
	bool from_read, to_read;  /* rwlock modes */
	uint64_t count;           /* times seen (0: undone) */
	uint32_t tids[LOCK_EDGE_TIDS];
	size_t n_tids;            /* distinct threads, at most LOCK_EDGE_TIDS */
	uint32_t from_stack;      /* where 'from' was taken (first time seen) */
	uint32_t to_stack;        /* where 'to' was being taken */
	uint64_t ts;
	uint32_t *held;           /* every lock held then (first time seen) */
	size_t n_held;
	uint32_t *gates;          /* locks held at every occurrence, besides */
	size_t n_gates;           /* from and to: a gate serialises the edge */
};

#define LOCK_DEADLOCK_HELD 16

struct lock_deadlock_thread {
	uint32_t tid;
	uint32_t lock;            /* lock index it waits for */
	unsigned type;
	bool cond;                /* it waits to take its mutex back after a
				   * condition wait */
	bool join;                /* it waits in pthread_join for the next
				   * thread of the cycle to end (lock: none,
				   * UINT32_MAX) */
	uint32_t wait_stack;      /* model stack ref */
	uint64_t since;
	size_t n_held;
	uint32_t held[LOCK_DEADLOCK_HELD];
	uint32_t held_stack[LOCK_DEADLOCK_HELD];
};

struct lock_deadlock {
	uint64_t ts;
	int action;               /* 0 abort, 1 wait */
	size_t n;
	struct lock_deadlock_thread *t;
};

/* Trylocks and timed locks per thread, for the livelock detector. */
struct lock_retry {
	uint32_t tid;
	uint64_t fails, successes;      /* try/timed attempts */
	uint64_t fails_holding;         /* failures while it held a lock */
	uint64_t first_fail, last_fail; /* timestamps */
	uint64_t gap_total;             /* ns from a failure to the next attempt */
	uint64_t gaps;
	uint32_t locks[4];              /* the locks it failed on */
	size_t n_locks;
	uint32_t stack;                 /* a failing attempt */
	uint64_t last_fail_pending;     /* reader-private */
};

/* A lock used against its rules (TRACE_LOCK_MISUSE). */
struct lock_misuse {
	uint32_t tid;             /* the thread that did it */
	uint32_t lock;            /* lock index */
	unsigned what;            /* trace_lock_misuse */
	unsigned type;            /* TRACE_LOCK_MUTEX, _SPIN, or for an rwlock
				   * how its holder held it: _READ, _WRITE,
				   * _RWLOCK (nobody) */
	uint32_t owner;           /* the holder then, 0: none or unknown */
	uint32_t stack;           /* model stack ref */
	uint64_t ts;
};

struct lock_model {
	struct lock_info *locks;
	size_t n_locks, cap_locks;
	struct lock_misuse *misuses;
	size_t n_misuses;
	struct lock_edge *edges;
	size_t n_edges, cap_edges;
	struct lock_deadlock *deadlocks;
	size_t n_deadlocks;
	struct lock_retry *retries;
	size_t n_retries;
	uint64_t events;          /* lock records read */
	uint64_t max_held;        /* most locks one thread held at once */
	uint64_t held_dropped;    /* acquisitions past LOCK_MAX_HELD */
	uint64_t edges_dropped;   /* new edges past max_edges */
	size_t max_edges;         /* 0: LOCK_MAX_EDGES */
	uint64_t waits_unfinished; /* waits still pending at the end */
};

/* Replays m's lock records into lm (which the caller zeroes, but for
 * max_edges). Returns 0, or -1 when memory ran out. */
int lock_model_build(const struct trace_model *m, struct lock_model *lm);

void lock_model_release(struct lock_model *lm);

/* A cycle in the order graph: edges e[0..n) with e[i].to == e[i+1].from. */
struct lock_cycle {
	size_t n;
	uint32_t *e;              /* edge indices */
	bool gated;               /* every edge serialised by one common lock */
	uint32_t gate;            /* that lock */
	bool one_thread;          /* all its edges come from one thread */
	bool few_threads;         /* not one thread, but no way to give each
				   * edge a thread of its own (a thread waits
				   * for one lock at a time, so a deadlock
				   * around n edges needs n threads) */
	uint32_t *tid;            /* per edge: its thread in such a
				   * one-thread-per-edge assignment (or its
				   * first thread when there is none) */
};

/* A cycle that can deadlock: not serialised by a gate, and its edges come
 * from as many different threads as it has edges. */
static inline bool lock_cycle_can_deadlock(const struct lock_cycle *c)
{
	return !c->gated && !c->one_thread && !c->few_threads;
}

/* Finds the order graph's cycles (each once; at most max). Read-after-read
 * on an rwlock does not block and breaks a cycle. Returns the number found
 * (*out allocated, release with lock_cycles_free) or -1 on no memory. */
long lock_cycles_find(const struct lock_model *lm, struct lock_cycle **out,
		      size_t max);
void lock_cycles_free(struct lock_cycle *c, size_t n);

/* Fills every lock's name: a global's symbol ("audit", "accounts+48"), the
 * heap block it lives in, or else where it was first locked. */
struct symbolizer;
void lock_names_fill(const struct trace_model *m, struct lock_model *lm,
		     struct symbolizer *sym);

/* "thread 2" style label of a tid: the main thread is "main thread". */
const char *lock_type_name(unsigned type);

#endif
