/* detect_threads.h: the detectors of the threads lessons (thread-storm,
 * stack-overflow, false-sharing), registered in findings.c. */
#ifndef SPY_DETECT_THREADS_H
#define SPY_DETECT_THREADS_H

#include "findings.h"

/* Appends thread-storm and stack-overflow findings; 0 or -1 (no memory). */
int detect_threads(const struct trace_model *m, struct finding_list *out);

/* 1 when false sharing went unchecked though it could have mattered: no
 * samples were taken (sample_hz is off by default) while two threads
 * each ran on a CPU for SHARING_UNCHECKED_CPU_NS or more at the same
 * time. The report says so, rather than a bare "no findings". */
#define SHARING_UNCHECKED_CPU_NS 20000000u
int sharing_unchecked(const struct trace_model *m);

#endif
