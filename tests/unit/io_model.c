/* Unit test: the I/O model read back from io-site, io-fd, io-proc and
 * io-mode records built with the writer's encoders: totals of two threads
 * at one site add up, the same description from two threads is one
 * descriptor, a damaged record is counted and left out, the kernel
 * cross-check, the median bucket; and the unbuffered-io detector both
 * ways (many one-byte writes flagged, a few large ones not).
 */
#include <string.h>

#include "detect_io.h"
#include "io_model.h"
#include "tap.h"
#include "trace_builder.h"
#include "trace_reader.h"

/* An io-site record: calls each of `size` bytes. */
static void site(struct tb *b, uint64_t t, uint64_t tid, unsigned fn,
		 uint64_t fd, uint64_t desc, uint64_t stack, uint64_t calls,
		 uint64_t size)
{
	tb_begin(b, t);
	tb_v(b, tid); tb_v(b, fn); tb_v(b, fd); tb_v(b, desc); tb_v(b, stack);
	tb_v(b, calls); tb_v(b, calls * size); tb_v(b, 0);
	tb_v(b, calls / 16); tb_v(b, calls / 16 * 200); tb_v(b, size);
	unsigned bucket = size ? 64u - (unsigned)__builtin_clzll(size) : 0;
	tb_v(b, bucket + 1);
	for (unsigned i = 0; i <= bucket; i++)
		tb_v(b, i == bucket ? calls : 0);
	tb_end_record(b, TRACE_IO_SITE);
}

static void fd_desc(struct tb *b, uint64_t t, uint64_t id, uint64_t fd,
		    unsigned type, const char *path)
{
	tb_begin(b, t);
	tb_v(b, id); tb_v(b, fd); tb_v(b, type); tb_s(b, path);
	tb_end_record(b, TRACE_IO_FD);
}

static void proc(struct tb *b, uint64_t t, unsigned phase, uint64_t syscw,
		 uint64_t seen)
{
	tb_begin(b, t);
	tb_v(b, phase);
	for (int i = 0; i < 6; i++)
		tb_v(b, i == 3 ? syscw : 0);
	tb_v(b, seen); tb_v(b, 0); tb_v(b, 1);
	tb_end_record(b, TRACE_IO_PROC);
}

static void build(struct tb *b)
{
	static const char *const argv[] = { "prog" };
	static const uint64_t frames[] = { 0x401010, 0x401200 };
	tb_init(b);
	tb_chunk(b, 100, 1000);
	tb_process(b, 1000, 4242, 1, TRACE_CAUSE_START, "/bin/prog", 1, argv, "");
	tb_thread(b, 1000, 100, 0);
	tb_module(b, 1000, 1, 0x400000, 0x402000, 0, 5, "/bin/prog");
	tb_begin(b, 1000);
	tb_v(b, TRACE_IO_MODE_PLT | TRACE_IO_MODE_PATCH);
	tb_v(b, 1u << TRACE_IO_WRITE);
	tb_end_record(b, TRACE_IO_MODE);
	proc(b, 1000, 0, 10, 0);
	tb_stack(b, 1100, 7, frames, 2);
	fd_desc(b, 1100, 1, 3, TRACE_FD_CHAR, "/dev/null");
	fd_desc(b, 1100, 2, 3, TRACE_FD_CHAR, "/dev/null");
	fd_desc(b, 1100, 3, 4, TRACE_FD_FILE, "/tmp/out");
	/* Two threads' writes from one site to /dev/null, described twice. */
	site(b, 1200, 100, TRACE_IO_WRITE, 3, 1, 7, 3000, 1);
	site(b, 1300, 101, TRACE_IO_WRITE, 3, 2, 7, 2000, 1);
	/* Later totals of the same thread and site add up. */
	site(b, 1350, 100, TRACE_IO_WRITE, 3, 1, 7, 1000, 1);
	/* A few large writes: not flagged. */
	site(b, 1400, 100, TRACE_IO_WRITE, 4, 3, 7, 5, 65536);
	/* Many small reads: reads are never unbuffered-io. */
	site(b, 1450, 100, TRACE_IO_READ, 4, 3, 7, 9000, 1);
	/* Damaged: 99 buckets is more than any trace has. */
	tb_begin(b, 1500);
	tb_v(b, 100); tb_v(b, 0); tb_v(b, 3); tb_v(b, 1); tb_v(b, 7);
	for (int i = 0; i < 6; i++)
		tb_v(b, 1);
	tb_v(b, 99);
	tb_end_record(b, TRACE_IO_SITE);
	proc(b, 1600, 1, 6017, 6005);
	tb_chunk_end(b);
	tb_pad(b);
}

int main(void)
{
	struct tb b;
	build(&b);
	struct trace_model m;
	struct trace_error err;
	ok(trace_load_buffer("io", b.buf, b.len, &m, &err) == 0,
	       "the trace with I/O records loads");
	struct io_model io;
	ok(io_model_build(&m, &io) == 0, "the I/O model builds");
	ok(io.has_mode && io.patched == (1u << TRACE_IO_WRITE),
	       "how calls were seen is read");
	ok(io.bad_records == 1, "the damaged record is counted as bad");
	ok(io.n_sites == 3, "three sites: the two threads' writes are one");
	const struct io_site *w = NULL, *big = NULL, *rd = NULL;
	for (size_t i = 0; i < io.n_sites; i++) {
		const struct io_site *s = &io.sites[i];
		if (s->fn == TRACE_IO_WRITE && s->fd == 3)
			w = s;
		else if (s->fn == TRACE_IO_WRITE && s->fd == 4)
			big = s;
		else if (s->fn == TRACE_IO_READ)
			rd = s;
	}
	ok(w && w->calls == 6000 && w->bytes == 6000 && w->threads == 2,
	       "the small writes of both threads add up to 6000 calls");
	ok(w && io_site_median_below(w) == 2, "their median is under 2 bytes");
	const struct io_desc *d = w ? io_site_desc(&io, w) : NULL;
	ok(d && d->type == TRACE_FD_CHAR && d->path.len == 9 &&
	       !memcmp(d->path.p, "/dev/null", 9), "their descriptor is /dev/null");
	ok(big && big->calls == 5 && io_site_median_below(big) == 131072,
	       "the large writes: 5 calls of 64 KiB");
	ok(rd && rd->calls == 9000, "the reads are their own site");
	ok(io_model_bypassed_writes(&io) == 2,
	       "the kernel counted 6007 writes, hooks saw 6005: 2 bypassed");
	ok(io_syscall_name(1) && !strcmp(io_syscall_name(1), "write") &&
	       io_syscall_name(100000) == NULL, "system call names");

	struct finding_list fl = { 0 };
	ok(detect_io(&m, &fl) == 0, "the detector runs");
	ok(fl.n == 1 && !strcmp(fl.v[0].kind, "unbuffered-io"),
	       "one unbuffered-io finding: the small writes, not the large ones or the reads");
	int found = 0;
	for (size_t i = 0; fl.n && i < fl.v[0].n_details; i++) {
		const struct finding_detail *x = &fl.v[0].details[i];
		if (!strcmp(x->key, "calls") && x->num == 6000)
			found++;
		if (!strcmp(x->key, "calls_with_64k_buffer") && x->num == 1)
			found++;
	}
	ok(found == 2, "it counts 6000 calls, and 1 call with a 64 KiB buffer");
	ok(fl.n && fl.v[0].n_stacks == 1 && fl.v[0].stacks[0].n == 2,
	       "it carries the site's stack");
	finding_list_release(&fl);
	io_model_release(&io);
	trace_model_release(&m);
	return tap_done();
}
