/* detect_io.h: the unbuffered-io detector (detect_io.c). */
#ifndef SPY_DETECT_IO_H
#define SPY_DETECT_IO_H

#include "findings.h"

/* Appends one unbuffered-io finding per call site that made many small
 * writes to one descriptor. Returns 0, or -1 when memory ran out. */
int detect_io(const struct trace_model *m, struct finding_list *out);

#endif
