/* spy_writer.h: the trace file and the per-thread buffers that feed it.
 * Records are appended to the calling thread's buffer without any shared
 * lock; a full or stale buffer goes out as one chunk in one write(2).
 * A write failure turns tracing off for good with one warning; the program
 * never notices. All of this may run inside hooks: no allocation.
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

/* Starts a record of kind with a body of at most max_body bytes in the
 * calling thread's buffer; writes the time field and returns where the next
 * field goes, or NULL when nothing can be recorded. The buffer stays locked
 * until spy_writer_end(end), where end is one past the last byte written. */
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

/* Writes out every thread's buffer now. SPY_FLUSH_FORCE also takes buffers
 * that are locked (only when the process is about to die). */
enum { SPY_FLUSH_TRY = 0, SPY_FLUSH_FORCE = 1 };
void spy_writer_flush_all(int how);

/* Records the exit and the end marker, writes everything out, and from
 * then on writes each record as soon as it is complete. */
void spy_writer_finish(unsigned how, int status, int sig);

/* The calling thread is exiting: write its buffer and hand it back. */
void spy_writer_thread_exit(void);

/* Starts the background thread that writes out stale buffers (once per
 * process; cheap to call again). */
void spy_writer_start_flusher(void);

/* Fork support: before fork (in the parent), and in the child afterwards,
 * where the parent's buffers are dropped and a new trace is opened. */
void spy_writer_before_fork(void);
void spy_writer_after_fork_parent(void);
void spy_writer_after_fork_child(void);

/* Before exec: the path of this trace for the next image to name, and
 * spy_writer_after_failed_exec when the exec did not happen. */
void spy_writer_after_failed_exec(void);

#endif
