/* heap_checks.h: the heap checks of a trace, joined to the blocks they are
 * about: each bad free, write after free and leak with the event that
 * allocated its block and the one that freed it; leaks grouped by
 * allocation stack. One model for the detectors and `analyze leaks`.
 */
#ifndef SPY_HEAP_CHECKS_H
#define SPY_HEAP_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_reader.h"

/* One BAD_FREE, HEAP_UAF, GUARD_FAULT, MISMATCHED_FREE or HEAP_DAMAGE
 * event with its block's history (for HEAP_DAMAGE: the block before). */
struct heap_issue {
	const struct trace_event *e;      /* the check's own event */
	const struct trace_event *alloc;  /* the block's allocation, or NULL */
	const struct trace_event *freed;  /* its (first) free, or NULL */
};

/* Leaks of one allocation stack and class. */
struct leak_group {
	uint32_t stack;        /* as trace_event.stack (0: none) */
	unsigned cls;          /* trace_leak_class */
	bool runtime;          /* allocated by the C/C++ runtime alone */
	bool unseen;           /* allocated before the trace began (a
				* fork child's inherited blocks) */
	uint64_t blocks, bytes;
	uint64_t example;      /* one block's address */
};

struct heap_checks {
	struct heap_issue *issues;
	size_t n_issues;
	struct leak_group *groups; /* biggest first (bytes) */
	size_t n_groups;
	bool scanned;              /* a LEAK_SCAN record was seen */
	uint64_t scan_blocks, scan_bytes, scan_ns;
	uint64_t scan_inherited;   /* a forked child's parent's live blocks */
	uint64_t totals[3][2];     /* by class: blocks, bytes (user's) */
	uint64_t runtime_totals[2];/* lost blocks/bytes of the runtime, or
				    * allocated before the trace began */
};

/* Builds the model from m (which must outlive it). 0, or -1 when memory
 * ran out. */
int heap_checks_build(const struct trace_model *m, struct heap_checks *hc);
void heap_checks_release(struct heap_checks *hc);

/* 1 if every frame of the stack is in the C or C++ runtime (libc, the
 * dynamic loader, libstdc++, libgcc, libm) or in libspy. */
bool heap_stack_is_runtime(const struct trace_model *m,
			   const struct trace_stack *s);

const char *heap_leak_class_name(unsigned cls);
const char *heap_bad_free_name(unsigned what);

#endif
