/* detect_locks.h: the lock detectors (lock-order-cycle, deadlock,
 * livelock), over the lock model of lock_model.h.
 */
#ifndef SPY_DETECT_LOCKS_H
#define SPY_DETECT_LOCKS_H

#include "findings.h"
#include "lock_model.h"

/* The registry's entry: builds the lock model of m, names its locks and
 * appends every lock finding. Returns 0, or -1 when memory ran out. */
int detect_locks(const struct trace_model *m, struct finding_list *out);

/* The same over a model already built and named. */
int detect_locks_all(const struct trace_model *m, struct lock_model *lm,
		     struct finding_list *out);

#endif
