/* sharing_model.h: which threads wrote which 64-byte cache lines, from the
 * samples libspy took with sample_hz= (TRACE_SAMPLE). Each sample's
 * instruction is read from the program's file on disk and decoded
 * (capstone); the write it made is computed from the saved registers.
 * Lines written by two or more threads are classified:
 *   false sharing: the threads wrote different bytes of the line;
 *   true sharing:  they wrote the same bytes (a shared counter, a lock).
 */
#ifndef SPY_SHARING_MODEL_H
#define SPY_SHARING_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_reader.h"

#define SHARING_LINE 64
/* A thread counts as a writer of a line with at least this many write
 * samples there (one stray sample is not evidence). */
#define SHARING_MIN_SAMPLES 3

struct line_writer {
	uint32_t tid;
	size_t samples;
	uint64_t offsets;       /* bit i: byte i of the line was written */
	uint64_t first_ts, last_ts;
	uint64_t pc;            /* the writing instruction (most frequent) */
	uint64_t addr;          /* an address it wrote (the lowest) */
	unsigned width;         /* bytes that instruction writes */
};

enum sharing_kind { SHARING_FALSE, SHARING_TRUE, SHARING_APART };

struct shared_line {
	uint64_t line;          /* address of the line's first byte */
	struct line_writer *w;  /* writers, most samples first */
	size_t n_writers;
	enum sharing_kind kind; /* APART: the writers never ran at the same time */
};

struct sharing_model {
	size_t samples;          /* samples in the trace */
	size_t decoded;          /* decoded to an instruction */
	size_t writes;           /* of which wrote memory (not the stack) */
	struct shared_line *lines; /* lines with two or more writers */
	size_t n_lines;
};

/* Builds sm from m. 0, or -1 when memory ran out. Samples whose code
 * cannot be read (a deleted file, JIT code) are left out and counted. */
int sharing_model_build(const struct trace_model *m, struct sharing_model *sm);

void sharing_model_release(struct sharing_model *sm);

/* "false sharing", "true sharing", "not at the same time". */
const char *sharing_kind_name(enum sharing_kind k);

/* A name for the variable at addr ("stats.misses"), from the debug
 * information of the file it belongs to, or from the heap block holding
 * it ("heap block of 128 bytes +8"); "" when unknown. */
void sharing_name(const struct trace_model *m, uint64_t addr, char *buf, size_t cap);

#endif
