/* detect_threads.h: the detectors of the threads lessons (thread-storm,
 * stack-overflow, false-sharing), registered in findings.c. */
#ifndef SPY_DETECT_THREADS_H
#define SPY_DETECT_THREADS_H

#include "findings.h"

/* Appends thread-storm and stack-overflow findings; 0 or -1 (no memory). */
int detect_threads(const struct trace_model *m, struct finding_list *out);

#endif
