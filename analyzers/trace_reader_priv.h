/* trace_reader_priv.h: what the two halves of the trace reader share
 * (trace_reader.c: the file and its chunks; trace_records.c: the records
 * inside a chunk). Not for other modules.
 */
#ifndef SPY_TRACE_READER_PRIV_H
#define SPY_TRACE_READER_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_reader.h"

enum { CAP_MODULES, CAP_STACKS, CAP_FRAMES, CAP_THREADS, CAP_EVENTS,
       CAP_STRINGS, CAP_END_MAP };

/* Where parsing stands while the records of one chunk are read. */
struct chunk_state {
	uint64_t time;     /* running absolute time */
	uint64_t addr;     /* running value of ":delta" fields */
	uint32_t tid;
	uint64_t rec_off;  /* file offset of the current record */
};

struct loader {
	struct trace_model *m;
	struct trace_error *err;
	size_t notes_cap;
	size_t dup_stacks;
	size_t extra_process;
	bool too_many_stacks;  /* stack_ref met more than TRACE_STACKS_MAX */
};

/* Fills *err: "NAME: WHAT at byte OFF: WHY" when what is non-NULL, else
 * "NAME: WHY". */
void reader_error(struct trace_error *err, const char *name, const char *what,
		  uint64_t off, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Grows *arr (elem-sized items, *cap allocated) to hold n+1 items.
 * Returns 0 or -1 (out of memory, *arr unchanged). */
int reader_reserve(void **arr, size_t *cap, size_t n, size_t elem);

#define RESERVE(ld, field, count, which)                                     \
	reader_reserve((void **)&(ld)->m->field, &(ld)->m->caps[which],       \
		       (ld)->m->count, sizeof(*(ld)->m->field))

/* Grows m->events (a mapping of its own, trace_order.c) to hold one more
 * event. Returns 0 or -1 (out of memory, the array unchanged). */
int reader_event_reserve(struct trace_model *m);
void reader_events_release(struct trace_model *m);

/* Sorts the events by time (stable) and moves each allocation handed to
 * another thread before its free. Returns 0 or -1 (out of memory). */
int reader_order_events(struct trace_model *m);

/* Sets the "out of memory" error and returns -1. */
int reader_out_of_memory(struct loader *ld);

/* Ensures a thread entry for tid; NULL when memory runs out. */
struct trace_thread *reader_thread(struct loader *ld, uint32_t tid,
				   uint64_t ts);

/* Reads the records of one chunk's payload [p, p+len). cut says the file
 * ended inside this payload: then a record running past the end is where
 * the trace stops, not an error. Returns 0, 1 when the cut was reached
 * (cs->rec_off is where), or -1 with the error set. */
int reader_read_chunk(struct loader *ld, const uint8_t *p, size_t len,
		      bool cut, struct chunk_state *cs);

#endif
