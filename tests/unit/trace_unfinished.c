/* trace_unfinished.c: traces left by a writer that died in the middle of a
 * record (trace_format.h): bytes past a chunk that start with 0, and a
 * covered record whose kind byte was never set. Both must read. */
#include "tap.h"
#include "trace_builder.h"
#include "trace_reader.h"

static const char *argv0[] = {"prog"};

/* A trace with one chunk: process, one alloc, then whatever tail() adds. */
static int load(void (*tail)(struct tb *), struct trace_model *m)
{
	struct tb b;
	struct trace_error err;
	tb_init(&b);
	tb_pad(&b);
	tb_chunk(&b, 7, 1000);
	tb_thread(&b, 1000, 7, 0);
	tb_process(&b, 1001, 7, 1, TRACE_CAUSE_START, "/bin/prog", 1, argv0, "");
	tb_alloc(&b, 1002, TRACE_FN_MALLOC, 0x5000, 64, 0, 0);
	tail(&b);
	tb_pad(&b);
	int rc = trace_load_buffer("t", tb_copy(&b), b.len, m, &err);
	if (rc < 0)
		diag("%s", err.msg);
	free(b.buf);
	return rc;
}

/* The writer had stored part of a record's body past the chunk's length,
 * and not yet its kind byte. */
static void uncovered(struct tb *b)
{
	tb_chunk_end(b);
	static const uint8_t partial[] = {0x00, 0x09, 0x05, 0x00, 0x80, 0x40};
	tb_room(b, sizeof(partial));
	memcpy(b->buf + b->len, partial, sizeof(partial));
	b->len += sizeof(partial);
}

/* The chunk's length already covers the record; its kind is still 0. */
static void covered(struct tb *b)
{
	tb_begin(b, 1003);
	tb_v(b, TRACE_FN_MALLOC);
	tb_v(b, 0x40);
	tb_end_record(b, 0);
	tb_chunk_end(b);
}

int main(void)
{
	struct trace_model m;
	ok(load(uncovered, &m) == 0, "a partial record past the chunk reads");
	ok(m.kind_count[TRACE_ALLOC] == 1, "the complete alloc is kept");
	ok(m.truncated, "and the trace is marked cut short");
	trace_model_release(&m);

	ok(load(covered, &m) == 0, "a covered record of kind 0 reads");
	ok(m.unfinished_records == 1, "it is counted as unfinished");
	ok(m.kind_count[TRACE_ALLOC] == 1, "and not taken for an alloc");
	size_t notes = 0;
	for (size_t i = 0; i < m.n_notes; i++)
		notes += m.notes[i].from_reader &&
			 memmem(m.notes[i].text.p, m.notes[i].text.len,
				"unfinished", 10) != NULL;
	ok(notes == 1, "a note says so");
	trace_model_release(&m);
	return tap_done();
}
