/* frag_out.h: what `analyze fragmentation` and its --compare share:
 * sizes in words that fit a column, and a snapshot (heap_frag.h) as JSON.
 */
#ifndef SPY_FRAG_OUT_H
#define SPY_FRAG_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "heap_frag.h"
#include "json_writer.h"
#include "trace_reader.h"

/* "malloc(25165824) failed", "the end" or "0.250 s": the moment f shows,
 * in at most 40 characters (57 for a calloc with two 20-digit arguments;
 * a smaller buf cuts it). Cannot fail. */
/* The failed call of an ALLOC_FAIL event as the program wrote it: calloc
 * and reallocarray with their two size arguments when the trace has them,
 * any other with its size ("calloc(10, 4)", "malloc(100)"). */
void frag_failed_call(char *buf, size_t n, const struct trace_event *e);

void frag_moment(char *buf, size_t n, const struct trace_model *m,
		 const struct heap_frag *f);

/* Writes f as one JSON object: the keys of docs/heap.md. */
void frag_json(struct json_writer *w, const struct trace_model *m,
	       const struct heap_frag *f);

#endif
