/* Unit test: the reader treats traces as untrusted. Empty, cut, random,
 * foreign, newer, oversized and corrupted inputs either load (a cut trace
 * as truncated) or fail with a one-line error naming the byte offset; none
 * may crash or hang. Run it under valgrind or ASan when changing the reader.
 */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "trace_builder.h"
#include "trace_reader.h"

static void build(struct tb *b)
{
	static const char *const argv[] = { "prog", "arg" };
	static const uint64_t frames[] = { 0x401000, 0x401100 };
	tb_init(b);
	tb_chunk(b, 10, 500);
	tb_process(b, 500, 10, 1, 0, "/bin/prog", 2, argv, "");
	tb_thread(b, 500, 10, 0);
	tb_module(b, 510, 1, 0x400000, 0x402000, 0, 5, "/bin/prog");
	tb_alloc(b, 520, TRACE_FN_MALLOC, 0x9000, 10, 1, 0);
	tb_chunk_end(b);
	tb_pad(b);
	tb_chunk(b, 11, 530);
	tb_thread(b, 530, 11, 10);
	tb_stack(b, 531, 1, frames, 2);
	tb_alloc(b, 540, TRACE_FN_MALLOC, 0x9100, 20, 1, 0);
	tb_chunk_end(b);
	tb_pad(b);
	tb_chunk(b, 10, 600);
	tb_free(b, 600, 0x9000, 1);
	tb_note(b, 610, 0, "note");
	tb_exit(b, 700, TRACE_EXIT_SIGNAL, 139, 11);
	tb_endrec(b, 701);
	tb_chunk_end(b);
}

/* Loads a copy of data[0..len). Returns 0 when it loaded, 1 when it failed
 * properly (a message, and an offset inside the data when it gives one),
 * -1 on a failure without a proper message. */
static int try_load(const uint8_t *data, size_t len, struct trace_model *m,
		    struct trace_error *err)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (len)
		memcpy(copy, data, len);
	if (trace_load_buffer("mem", copy, len, m, err) == 0)
		return 0;
	if (!err->msg[0] || strchr(err->msg, '\n'))
		return -1;
	if (err->has_offset && err->offset > len)
		return -1;
	return 1;
}

static int loads(const uint8_t *data, size_t len)
{
	struct trace_model m;
	struct trace_error err;
	int r = try_load(data, len, &m, &err);
	if (r == 0)
		trace_model_release(&m);
	return r;
}

static int fails_with(const uint8_t *data, size_t len, const char *text)
{
	struct trace_model m;
	struct trace_error err;
	int r = try_load(data, len, &m, &err);
	if (r == 0) {
		trace_model_release(&m);
		diag("loaded, expected \"%s\"", text);
		return 0;
	}
	if (!strstr(err.msg, text))
		diag("message: %s", err.msg);
	return r == 1 && strstr(err.msg, text) != NULL;
}

static uint64_t rng_state;
static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

static void test_cuts(const struct tb *b)
{
	/* The process record ends at this offset: cuts from there on load. */
	size_t proc_end = 0;
	int crashes = 0, wrong = 0;
	for (size_t n = 0; n <= b->len; n++) {
		struct trace_model m;
		struct trace_error err;
		int r = try_load(b->buf, n, &m, &err);
		if (r < 0)
			crashes++;
		if (r == 0) {
			if (!proc_end)
				proc_end = n;
			if (n < b->len && !m.truncated)
				wrong++;
			trace_model_release(&m);
		} else if (proc_end) {
			diag("cut at %zu failed: %s", n, err.msg);
			wrong++;
		} else if (!err.has_offset) {
			wrong++;
		}
	}
	ok(crashes == 0, "cut at every byte: every failure has a message");
	ok(proc_end > TRACE_FILE_HEADER_SIZE + TRACE_CHUNK_HEADER_SIZE,
	   "cuts load once the process record is whole (from byte %zu)",
	   proc_end);
	ok(wrong == 0, "every cut before that fails with an offset, every "
	   "cut after it loads as truncated");
}

static void test_random(const struct tb *b)
{
	int bad = 0, loaded = 0;
	uint8_t buf[4096];
	for (uint64_t seed = 1; seed <= 2000; seed++) {
		rng_state = seed;
		size_t n = rnd() % sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rnd();
		/* Half the inputs get a valid file header so that the chunk
		 * parser sees random bytes, not only the magic check. */
		if (seed % 2 && n >= TRACE_FILE_HEADER_SIZE)
			memcpy(buf, b->buf, TRACE_FILE_HEADER_SIZE);
		if (seed % 4 == 1 && n >= 48)
			memcpy(buf + 24, b->buf + 24, 4);
		int r = loads(buf, n);
		bad += r < 0;
		loaded += r == 0;
	}
	ok(bad == 0, "2000 random inputs: no crash, every failure explained "
	   "(%d loaded)", loaded);

	/* Corrupt a valid trace a few bytes at a time. */
	bad = 0;
	loaded = 0;
	uint8_t *copy = malloc(b->len);
	for (uint64_t seed = 1; seed <= 5000; seed++) {
		rng_state = seed * 7919;
		memcpy(copy, b->buf, b->len);
		int flips = 1 + (int)(rnd() % 4);
		for (int i = 0; i < flips; i++) {
			size_t at = TRACE_FILE_HEADER_SIZE +
				    rnd() % (b->len - TRACE_FILE_HEADER_SIZE);
			copy[at] = (uint8_t)rnd();
		}
		int r = loads(copy, b->len);
		bad += r < 0;
		loaded += r == 0;
	}
	free(copy);
	ok(bad == 0, "5000 corrupted traces: no crash, every failure "
	   "explained (%d still loaded)", loaded);
}

/* A file of one chunk holding the given record bytes (at byte 48). */
static size_t one_record(uint8_t *out, const uint8_t *rec, size_t n)
{
	trace_put_file_header(out, TB_REGION);
	trace_put_chunk_header(out + 24, (uint32_t)n, 1, 0);
	memcpy(out + 48, rec, n);
	return 48 + n;
}

static void test_lengths(void)
{
	uint8_t buf[256], rec[64], *p;
	size_t n;

	/* body_len of 2^60 */
	p = rec;
	*p++ = TRACE_ALLOC;
	p = trace_put_varint(p, 1ull << 60);
	n = one_record(buf, rec, (size_t)(p - rec));
	ok(fails_with(buf, n, "bad record at byte 48: length runs past the "
		      "chunk"), "a huge record length names the record");

	/* an 11-byte varint */
	p = rec;
	*p++ = TRACE_ALLOC;
	for (int i = 0; i < 10; i++)
		*p++ = 0xff;
	*p++ = 0x01;
	n = one_record(buf, rec, (size_t)(p - rec));
	ok(fails_with(buf, n, "malformed length"), "an overlong varint");

	/* a process record whose exe length is huge */
	uint8_t body[64], *q = body;
	for (int i = 0; i < 6; i++)
		q = trace_put_varint(q, 1);
	q = trace_put_varint(q, 1ull << 40);
	p = trace_put_record(rec, TRACE_PROCESS, body, (size_t)(q - body));
	n = one_record(buf, rec, (size_t)(p - rec));
	ok(fails_with(buf, n, "process record too short"),
	   "a string longer than its record");

	/* a process record claiming 2^50 arguments */
	q = body;
	for (int i = 0; i < 6; i++)
		q = trace_put_varint(q, 1);
	q = trace_put_str(q, "x", 1);
	q = trace_put_varint(q, 1ull << 50);
	p = trace_put_record(rec, TRACE_PROCESS, body, (size_t)(q - body));
	n = one_record(buf, rec, (size_t)(p - rec));
	ok(fails_with(buf, n, "at byte 48"), "a huge argc is refused, not "
	   "allocated");

	/* a chunk longer than its (whole) region */
	uint8_t *region = calloc(1, 2 * TB_REGION);
	trace_put_file_header(region, TB_REGION);
	trace_put_chunk_header(region + 24, TB_REGION, 1, 0);
	ok(fails_with(region, 2 * TB_REGION, "bad chunk at byte 24: chunk of "
		      "4096 bytes runs past its region"), "a chunk past its "
	   "region");
	/* a region size that is not a power of two */
	trace_put_file_header(region, 5000);
	ok(fails_with(region, 2 * TB_REGION, "bad trace at byte 16: region "
		      "size 5000 is impossible"), "a bad region size");
	free(region);
}

static void test_chunks(const struct tb *b)
{
	/* A zero-length chunk between two real ones is harmless. */
	size_t at = b->chunk_at;
	uint8_t *z = malloc(b->len + TRACE_CHUNK_HEADER_SIZE);
	memcpy(z, b->buf, at);
	trace_put_chunk_header(z + at, 0, 99, 650);
	memcpy(z + at + TRACE_CHUNK_HEADER_SIZE, b->buf + at, b->len - at);
	struct trace_model m;
	struct trace_error err;
	int r = try_load(z, b->len + TRACE_CHUNK_HEADER_SIZE, &m, &err);
	ok(r == 0 && !m.truncated && m.n_chunks == 4,
	   "a zero-length chunk loads (%s)", err.msg);
	if (r == 0)
		trace_model_release(&m);

	/* The last chunk claims more payload than the file has. */
	memcpy(z, b->buf, b->len);
	trace_put_u32(z + at + 4, 1000000);
	r = try_load(z, b->len, &m, &err);
	ok(r == 0 && m.truncated && m.cut_at == b->len && m.has_end,
	   "a last chunk longer than the file: loaded, truncated");
	if (r == 0)
		trace_model_release(&m);

	/* A chunk in the middle has no magic. */
	memcpy(z, b->buf, b->len);
	z[at] ^= 0xff;
	char want[64];
	snprintf(want, sizeof(want), "bad chunk at byte %zu", at);
	ok(fails_with(z, b->len, want), "a chunk without its magic: %s", want);

	/* A thread id no Linux hands out (events keep 24 bits of it). */
	memcpy(z, b->buf, b->len);
	trace_put_u32(z + at + 8, 1u << 24);
	snprintf(want, sizeof(want), "bad chunk at byte %zu: thread id "
		 "16777216 is impossible", at);
	ok(fails_with(z, b->len, want), "a thread id too large: %s", want);
	memcpy(z, b->buf, b->len);
	trace_put_u32(z + at + 8, (1u << 24) - 1);
	r = try_load(z, b->len, &m, &err);
	ok(r == 0, "the largest thread id loads (%s)", err.msg);
	if (r == 0)
		trace_model_release(&m);
	free(z);
}

/* The only stack defined has no frames: the pool of frames is never
 * allocated, and the stack must not point at NULL + 0. */
static void test_empty_stack(void)
{
	static const char *const argv[] = { "prog" };
	struct tb b;
	tb_init(&b);
	tb_chunk(&b, 10, 500);
	tb_process(&b, 500, 10, 1, 0, "/bin/prog", 1, argv, "");
	tb_stack(&b, 510, 1, NULL, 0);
	tb_alloc(&b, 520, TRACE_FN_MALLOC, 0x9000, 10, 1, 0);
	tb_endrec(&b, 530);
	tb_chunk_end(&b);
	struct trace_model m;
	struct trace_error err;
	int r = try_load(b.buf, b.len, &m, &err);
	ok(r == 0 && m.n_stacks == 1 && m.stacks[0].defined &&
	   m.stacks[0].n == 0 && m.stacks[0].frames,
	   "a stack of no frames, the only one (%s)", err.msg);
	if (r == 0)
		trace_model_release(&m);
	free(b.buf);
}

static void test_headers(const struct tb *b)
{
	uint8_t h[64];
	ok(fails_with(h, 0, "mem: bad trace at byte 0: the file is empty"),
	   "an empty file");
	memcpy(h, b->buf, 48);
	memcpy(h, "ELF\x7f....", 8);
	ok(fails_with(h, 48, "mem: not a libspy trace"), "wrong magic");
	ok(fails_with((const uint8_t *)"SPY", 3, "file ends inside the file "
		      "header"), "a file cut inside the magic");
	memcpy(h, b->buf, 48);
	trace_put_u32(h + 8, 7);
	char newer[96];
	snprintf(newer, sizeof newer, "trace version 7 is newer than this "
		 "analyze (%u); update libspy", TRACE_VERSION);
	ok(fails_with(h, 48, newer), "a newer version names both");
	trace_put_u32(h + 8, TRACE_VERSION);
	trace_put_u32(h + 12, 1u << 31);
	ok(fails_with(h, 48, "bad trace at byte 12"), "a huge header size");
	ok(fails_with(b->buf, TRACE_FILE_HEADER_SIZE, "before the process "
		      "record"), "a header and nothing else");
}

static void test_files(void)
{
	struct trace_model m;
	struct trace_error err;
	ok(trace_load_file("/", &m, &err) < 0 &&
	   strstr(err.msg, "Is a directory"), "a directory: %s", err.msg);
	ok(trace_load_file("/nonexistent/trace.log", &m, &err) < 0 &&
	   strstr(err.msg, "No such file or directory") &&
	   strstr(err.msg, "/nonexistent/trace.log"), "a missing file: %s",
	   err.msg);
	ok(trace_load_file("/dev/null", &m, &err) < 0 &&
	   strstr(err.msg, "not a regular file"), "a device: %s", err.msg);
}

int main(void)
{
	struct tb b;
	build(&b);
	ok(loads(b.buf, b.len) == 0, "the untouched trace loads");
	test_headers(&b);
	test_files();
	test_lengths();
	test_chunks(&b);
	test_empty_stack();
	test_cuts(&b);
	test_random(&b);
	free(b.buf);
	return tap_done();
}
