/* detect_heap.h: the heap detectors: double-free, invalid-free,
 * use-after-free (a freed block written to while in quarantine) and leak
 * (blocks no pointer reached at exit, grouped by allocation stack);
 * in guard mode, use-after-free and heap-overflow at the faulting access.
 */
#ifndef SPY_DETECT_HEAP_H
#define SPY_DETECT_HEAP_H

#include "findings.h"

int detect_heap(const struct trace_model *m, struct finding_list *out);

/* Adds the stack of a fault recorded in a signal handler, from the
 * faulting instruction pc on (the frames of the handler and the signal
 * trampoline above it left out). */
int detect_add_fault_stack(struct finding *f, const struct trace_model *m,
			   const struct trace_event *e, uint64_t pc,
			   const char *label);

#endif
