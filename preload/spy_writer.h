/* spy_writer.h: the trace file and the per-thread regions that feed it.
 * Records go straight into the calling thread's region of the file (a
 * shared mapping) without any shared lock or system call; only a full
 * region costs a few system calls. A failure turns tracing off for good
 * with one warning; the program never notices. All of this may run inside
 * hooks and signal handlers: no allocation.
 */
#ifndef SPY_WRITER_H
#define SPY_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "spy_core.h"

/* Opens the trace file named by the out= option for a process started the
 * way cause says (trace_cause), writes the file header. 0 on success, -1
 * (with one warning printed) when tracing is impossible. */
int spy_writer_open(int cause);

/* The trace's absolute path ("" before it is open). */
const char *spy_writer_path(void);

/* The largest max_body spy_writer_begin accepts. */
#define SPY_WRITER_MAX_BODY (16u * 1024 - 88)

/* Starts a record of kind with a body of at most max_body bytes in the
 * calling thread's region; writes the time field and returns where the
 * next field goes, or NULL when nothing can be recorded. The record counts
 * once spy_writer_end(end) is called, end being one past its last byte. */
uint8_t *spy_writer_begin(unsigned kind, size_t max_body);
/* The same with the record's time given (spy_now_ns() taken earlier),
 * for events that logically happened before the call that reveals them. */
uint8_t *spy_writer_begin_at(unsigned kind, size_t max_body, uint64_t when);
void spy_writer_end(uint8_t *end);

/* The time records are stamped with (CLOCK_MONOTONIC nanoseconds, read
 * cheaply). */
uint64_t spy_writer_now(void);

/* Writes addr as a delta from the buffer's running address. Only between
 * begin and end. */
uint8_t *spy_writer_put_addr(uint8_t *p, uintptr_t addr);

/* Records the exit and the end marker. Records may still follow. */
void spy_writer_finish(unsigned how, int status, int sig);

/* The calling thread is exiting: hand its region on to the next thread. */
void spy_writer_thread_exit(void);

/* In a fork child: the parent's regions are gone; a new trace is opened
 * by the caller. */
void spy_writer_after_fork_child(void);

/* A SIGBUS at addr: if it is in a trace region (the file was truncated by
 * someone), replace the region with plain memory, stop tracing and return
 * 1, so the faulting store can simply be retried. Signal-safe. */
int spy_writer_absorb_fault(const void *addr);

#endif
