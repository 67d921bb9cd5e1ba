/* summary.h: the facts about one traced process that every report starts
 * with (who it was, how it started and ended, its threads, its events and
 * its heap), as text or as members of a JSON object.
 */
#ifndef SPY_SUMMARY_H
#define SPY_SUMMARY_H

#include <stdbool.h>

#include "heap_replay.h"
#include "json_writer.h"
#include "text_out.h"
#include "trace_reader.h"

/* Text, one labelled line per fact. brief keeps only the headline lines
 * (process, exit, duration, heap, trace state) used at the top of a
 * report. */
void summary_print_text(const struct text_out *t, const struct trace_model *m,
			const struct heap_stats *h, bool brief);

/* Writes the members "process", "trace", "threads", "events", "calls",
 * "heap" and "notes" into the JSON object the caller has open. */
void summary_print_json(struct json_writer *w, const struct trace_model *m,
			const struct heap_stats *h);

/* Helpers shared with other renderers. */
void summary_format_ns(char *buf, size_t len, int64_t ns);
void summary_format_bytes(char *buf, size_t len, uint64_t bytes);
/* 1234567 -> "1,234,567"; returns buf. */
const char *summary_format_count(char *buf, size_t len, uint64_t v);
const char *summary_cause_name(uint64_t cause);

#endif
