/* spy_gate.h: libspy's own system calls stop before a seccomp filter goes
 * in on every thread (SECCOMP_FILTER_FLAG_TSYNC), which could refuse them
 * or kill the process for one.
 *
 * Each thread that runs libspy code has a slot, in memory libspy never
 * unmaps, saying whether it is inside libspy now (spy_core.h: the hooks
 * mark it on entry and clear it on leaving, with no fence: the closing
 * thread's membarrier serves as one for every thread). The thread about
 * to install the filter stops tracing, then waits, for a bounded time,
 * until no other thread is inside. A thread that enters afterwards sees
 * tracing stopped and leaves at once; one that comes back from the
 * program's own blocking call made inside a hook (a lock wait, a read:
 * "parked", not waited for) records nothing more.
 */
#ifndef SPY_GATE_H
#define SPY_GATE_H

#include "spy_core.h"

/* The calling thread's slot, claimed now; NULL when none can be had (the
 * thread then records nothing) or tracing has stopped. */
struct spy_gate_slot *spy_gate_claim(struct spy_thread *t);

/* The calling thread ends: its slot goes back. */
void spy_gate_release(struct spy_thread *t);

/* A section of libspy outside the hooks (a thread's start or end, the
 * end of the process): 1 if it may make system calls; pair with
 * spy_gate_leave whatever it returns. Nests in a hook (a signal handler's
 * section). */
int spy_gate_enter(void);
void spy_gate_leave(void);

/* Tracing has stopped for good (confinement): makes that visible to
 * every thread, then waits for those inside libspy to leave, 1 second at
 * most. Called by the thread about to install the filter. */
void spy_gate_close(void);

/* At start: readies the barrier spy_gate_close makes. */
void spy_gate_init(void);

/* In a forked child: the slot of the thread that forked is this
 * process's; the other threads' slots are free. */
void spy_gate_after_fork_child(void);

#endif
