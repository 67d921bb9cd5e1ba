/* Unit test: the reader's limit on distinct stacks (built here with
 * TRACE_STACKS_MAX 1000), met both ways: a trace with as many loads, one
 * with more fails with a one-line error.
 */
#include <string.h>

#include "tap.h"
#include "trace_builder.h"
#include "trace_reader.h"

/* A trace whose allocations name n distinct stacks. */
static void build(struct tb *b, unsigned n)
{
	static const char *const argv[] = { "prog" };
	static const uint64_t frames[] = { 0x401000 };
	tb_init(b);
	tb_chunk(b, 100, 1000);
	tb_process(b, 1000, 4242, 1, TRACE_CAUSE_EXEC, "/bin/prog", 1, argv,
		   "");
	for (unsigned i = 1; i <= n; i++) {
		if (b->len % TB_REGION > TB_REGION - 256) {
			tb_chunk_end(b);
			tb_pad(b);
			tb_chunk(b, 100, 1000 + i);
		}
		tb_stack(b, 1000 + i, i, frames, 1);
		tb_alloc(b, 1000 + i, TRACE_FN_MALLOC, 0x5000 + 16 * i, 16, i, 0);
	}
	tb_endrec(b, 1000 + n);
	tb_chunk_end(b);
}

int main(void)
{
	struct tb b;
	struct trace_model m;
	struct trace_error err;
	build(&b, TRACE_STACKS_MAX);
	int r = trace_load_buffer("mem", tb_copy(&b), b.len, &m, &err);
	ok(r == 0 && m.n_stacks == TRACE_STACKS_MAX,
	   "%u distinct stacks load (%s)", TRACE_STACKS_MAX, err.msg);
	if (r == 0)
		trace_model_release(&m);
	free(b.buf);

	build(&b, TRACE_STACKS_MAX + 1);
	r = trace_load_buffer("mem", tb_copy(&b), b.len, &m, &err);
	ok(r < 0 && !strcmp(err.msg, "mem: more than 1000 distinct stacks: "
			    "analyze holds at most that many"),
	   "one more fails: %s", err.msg);
	free(b.buf);
	return tap_done();
}
