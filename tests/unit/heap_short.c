/* heap_short.c: the short heap records (trace_format.h: ALLOC_SHORT,
 * FREE_SHORT) as libspy.so's writer stores them (spy_writer_heap_short,
 * compiled here against a buffer of the test's) read back by the reader
 * into the events their long forms make; the cases without a short form
 * write nothing; a malformed short record is refused.
 */
#include <stdio.h>
#include <string.h>

#include "spy_writer.h"
#include "tap.h"
#include "trace_builder.h"
#include "trace_decode.h"
#include "trace_reader.h"

/* What the writer's inline path reads of libspy.so's state. */
__thread struct spy_thread spy_self;
volatile int spy_tracing = 1;
volatile int spy_state = SPY_STATE_READY;
uint64_t spy_writer_rate_q32;

static const char *argv0[] = { "prog" };
static struct spy_buffer buf;

/* Points the writer at the chunk tb has open, its time and address where
 * the chunk's last record left them. The clock runs so slowly that every
 * record reads base_ns: dt is base_ns minus the last record's time. */
static void writer_attach(struct tb *b, size_t region_at, uint64_t base_ns)
{
	tb_room(b, TB_REGION);
	memset(b->buf + b->len, 0, region_at + TB_REGION - b->len);
	buf.region = b->buf + region_at;
	buf.chunk = (uint32_t)(b->chunk_at - region_at);
	buf.used = (uint32_t)(b->len - region_at);
	buf.last_ns = b->last_time;
	buf.last_addr = b->addr;
	buf.base_ns = base_ns;
	buf.base_tsc = spy_read_tsc();
	spy_writer_rate_q32 = 1;
	spy_self.buf = &buf;
}

static int alloc_short(uintptr_t addr, uint16_t size, uint32_t stack)
{
	return spy_writer_heap_short(TRACE_ALLOC_SHORT, TRACE_FN_MALLOC, addr,
				     size | (uint64_t)stack << 16,
				     2 + spy_writer_short_stack_len(stack));
}

static int free_short(uintptr_t addr, uint32_t stack)
{
	return spy_writer_heap_short(TRACE_FREE_SHORT, TRACE_FN_FREE, addr,
				     stack, spy_writer_short_stack_len(stack));
}

/* A trace whose thread 7 defines stacks 5 and 70000, allocates 0x10000
 * the long way, and then has the writer's short records. */
static void start(struct tb *b)
{
	static const uint64_t frames[] = { 0x401000 };
	tb_init(b);
	tb_pad(b);
	tb_chunk(b, 7, 100000);
	tb_thread(b, 100000, 7, 0);
	tb_process(b, 100001, 7, 1, TRACE_CAUSE_START, "/bin/prog", 1, argv0, "");
	tb_stack(b, 100002, 5, frames, 1);
	tb_stack(b, 100003, 70000, frames, 1);
	tb_alloc(b, 100004, TRACE_FN_MALLOC, 0x10000, 24, 5, 0);
}

static int load(struct tb *b, struct trace_model *m, struct trace_error *err)
{
	b->len = (size_t)(buf.region - b->buf) + buf.used;
	tb_pad(b);
	return trace_load_buffer("mem", tb_copy(b), b->len, m, err);
}

static void test_round_trip(void)
{
	struct tb b;
	start(&b);
	writer_attach(&b, TB_REGION, 100100);
	ok(alloc_short(0x10040, 100, 5), "an alloc with a small stack id");
	uint8_t *rec = buf.region + buf.used;
	ok(alloc_short(0x100100, 65535, 70000), "one with a stack id of 3 bytes");
	ok(rec[0] == TRACE_ALLOC_SHORT && rec[1] == 6 + 2 + 3,
	   "kind and body length");
	ok(free_short(0x10000, 0), "a free without a stack, behind");
	uint8_t *tail = buf.region + buf.used;
	ok(!tail[0] && !tail[7], "bytes past the last record stay zero");
	ok(!alloc_short(0x10008, 16, 0), "no short form 8 bytes off");
	ok(!free_short(0x10000 + (128u << 20), 0), "none 128 MiB away");
	ok(free_short(0x10000 + (128u << 20) - 16, 0), "one just under it");
	buf.last_ns = 100100 - 16384;
	ok(!free_short(0x10000, 0), "none 16384 ns after the last record");
	buf.last_ns = 100100 - 16383;
	ok(free_short(0x10000, 5), "one at 16383 ns");
	spy_writer_rate_q32 = 0;
	ok(!free_short(0x10000, 5), "none while the clock's rate is unknown");
	spy_writer_rate_q32 = 1;

	struct trace_model m;
	struct trace_error err;
	if (!ok(load(&b, &m, &err) == 0, "the trace loads (%s)", err.msg))
		return;
	const struct trace_event *e = m.events;
	size_t n = m.n_events;
	ok(n >= 6, "every record became an event (%zu)", n);
	if (n < 6)
		return;
	e += n - 5;
	ok(e[0].kind == TRACE_ALLOC && e[0].a == 0x10040 && e[0].c == 100 &&
	   e[0].fn == TRACE_FN_MALLOC && trace_event_stack(&m, &e[0])->id == 5 &&
	   e[0].ts == 100100, "the first alloc, whole");
	ok(e[1].kind == TRACE_ALLOC && e[1].a == 0x100100 && e[1].c == 65535 &&
	   trace_event_stack(&m, &e[1])->id == 70000, "the second");
	ok(e[2].kind == TRACE_FREE && e[2].a == 0x10000 && !e[2].stack &&
	   e[2].fn == TRACE_FN_FREE, "the free, its address running back");
	ok(e[3].kind == TRACE_FREE && e[3].a == 0x10000 + (128u << 20) - 16,
	   "the farthest step forward");
	ok(e[4].kind == TRACE_FREE && e[4].a == 0x10000 &&
	   trace_event_stack(&m, &e[4])->id == 5, "and back");
	ok(m.kind_count[TRACE_ALLOC] == 3 && m.kind_count[TRACE_FREE] == 3 &&
	   !m.kind_count[TRACE_ALLOC_SHORT] && !m.kind_count[TRACE_FREE_SHORT],
	   "short records count as their long kinds");
	trace_model_release(&m);
	free(b.buf);
}

/* A FREE_SHORT whose body is built by hand: what follows addr16 is the
 * stack, which cannot be 1 byte or more than 3. */
static int load_free_body(const uint8_t *fields, size_t n, struct trace_error *err)
{
	struct tb b;
	start(&b);
	tb_begin(&b, 100100);
	b.bp = b.body;
	*b.bp++ = 0x80; /* dt 0, as a two-byte varint */
	*b.bp++ = 0x00;
	memcpy(b.bp, fields, n);
	b.bp += n;
	tb_end_record(&b, TRACE_FREE_SHORT);
	tb_chunk_end(&b);
	tb_pad(&b);
	struct trace_model m;
	int r = trace_load_buffer("mem", tb_copy(&b), b.len, &m, err);
	if (r == 0)
		trace_model_release(&m);
	free(b.buf);
	return r;
}

static void test_bad(void)
{
	struct trace_error err;
	static const uint8_t good[] = { TRACE_FN_FREE, 0, 0, 0, 5, 0 };
	ok(load_free_body(good, sizeof good, &err) == 0, "a hand-made one reads");
	ok(load_free_body(good, 5, &err) < 0 &&
	   strstr(err.msg, "free-short record has a field out of range"),
	   "a 1-byte stack is refused (%s)", err.msg);
	ok(load_free_body(good, 3, &err) < 0 &&
	   strstr(err.msg, "too short"), "a cut address is refused (%s)", err.msg);
}

/* The bytes docs/trace-format.md shows for a malloc(32) and its free. */
static void test_documented_bytes(void)
{
	static uint8_t region[64];
	static const uint8_t alloc_bytes[] = { 0x10, 0x0a, 0xf4, 0x03, 0x00, 0x2a,
					       0x05, 0x04, 0x20, 0x00, 0x01, 0x00 };
	static const uint8_t free_bytes[] = { 0x11, 0x08, 0xac, 0x02, 0x04,
					      0x00, 0x00, 0x00, 0x01, 0x00 };
	memset(&buf, 0, sizeof buf);
	buf.region = region;
	buf.chunk = 0;
	buf.used = TRACE_CHUNK_HEADER_SIZE;
	buf.base_ns = 1000500;
	buf.base_tsc = spy_read_tsc();
	buf.last_ns = 1000000;
	spy_writer_rate_q32 = 1;
	spy_self.buf = &buf;
	uint8_t *at = region + buf.used;
	ok(alloc_short(0x4052a0, 32, 1) &&
	   !memcmp(at, alloc_bytes, sizeof alloc_bytes), "malloc(32)'s bytes");
	buf.last_ns = 1000500 - 300;
	at = region + buf.used;
	ok(free_short(0x4052a0, 1) && !memcmp(at, free_bytes, sizeof free_bytes),
	   "its free's bytes");
	ok(trace_load_u32(region + 4) == sizeof alloc_bytes + sizeof free_bytes,
	   "the chunk's length covers both");
}

int main(void)
{
	test_documented_bytes();
	test_round_trip();
	test_bad();
	return tap_done();
}
