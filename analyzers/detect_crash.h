/* detect_crash.h: the fault or abort() a process died of, told by what
 * its address was (detect_crash.c). */
#ifndef SPY_DETECT_CRASH_H
#define SPY_DETECT_CRASH_H

#include "findings.h"

int detect_crash(const struct trace_model *m, struct finding_list *out);

#endif
