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
 * in at most 40 characters. Cannot fail. */
void frag_moment(char *buf, size_t n, const struct trace_model *m,
		 const struct heap_frag *f);

/* Writes f as one JSON object: the keys of docs/heap.md. */
void frag_json(struct json_writer *w, const struct trace_model *m,
	       const struct heap_frag *f);

#endif
