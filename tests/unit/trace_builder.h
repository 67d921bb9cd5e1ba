/* trace_builder.h: builds trace files in memory for the unit tests, with
 * the writer's encoders (common/trace_encode.h). Records go into the open
 * chunk; the chunk header's payload length is filled in when it closes.
 * Regions are TB_REGION bytes; tb_pad fills the current one with zeros, and
 * the caller keeps each chunk inside one region.
 */
#ifndef SPY_TRACE_BUILDER_H
#define SPY_TRACE_BUILDER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace_encode.h"

#ifndef TB_REGION
#define TB_REGION 4096u
#endif

struct tb {
	uint8_t *buf;
	size_t len, cap;
	size_t chunk_at;     /* offset of the open chunk's header */
	uint64_t last_time;  /* absolute time of the chunk's last record */
	uint64_t addr;       /* running ":delta" value */
	uint8_t body[4096];  /* the record being built */
	uint8_t *bp;
};

static inline void tb_room(struct tb *b, size_t n)
{
	if (b->len + n <= b->cap)
		return;
	b->cap = (b->len + n) * 2;
	b->buf = realloc(b->buf, b->cap);
	if (!b->buf)
		abort();
}

static inline void tb_init(struct tb *b)
{
	memset(b, 0, sizeof(*b));
	tb_room(b, TRACE_FILE_HEADER_SIZE);
	trace_put_file_header(b->buf, TB_REGION);
	b->len = TRACE_FILE_HEADER_SIZE;
}

/* Zero padding up to the end of the current region. */
static inline void tb_pad(struct tb *b)
{
	size_t end = (b->len + TB_REGION - 1) / TB_REGION * TB_REGION;
	tb_room(b, end - b->len);
	memset(b->buf + b->len, 0, end - b->len);
	b->len = end;
}

static inline void tb_chunk(struct tb *b, uint32_t tid, uint64_t base_ns)
{
	tb_room(b, TRACE_CHUNK_HEADER_SIZE);
	b->chunk_at = b->len;
	trace_put_chunk_header(b->buf + b->len, 0, tid, base_ns);
	b->len += TRACE_CHUNK_HEADER_SIZE;
	b->last_time = base_ns;
	b->addr = 0;
}

static inline void tb_chunk_end(struct tb *b)
{
	size_t payload = b->len - b->chunk_at - TRACE_CHUNK_HEADER_SIZE;
	trace_put_u32(b->buf + b->chunk_at + 4, (uint32_t)payload);
}

/* Starts a record body at absolute time t (t >= the last record's). */
static inline void tb_begin(struct tb *b, uint64_t t)
{
	b->bp = trace_put_varint(b->body, t - b->last_time);
	b->last_time = t;
}

static inline void tb_v(struct tb *b, uint64_t v) { b->bp = trace_put_varint(b->bp, v); }
static inline void tb_s(struct tb *b, const char *s)
{
	b->bp = trace_put_str(b->bp, s, strlen(s));
}
static inline void tb_delta(struct tb *b, uint64_t addr)
{
	b->bp = trace_put_svarint(b->bp, (int64_t)(addr - b->addr));
	b->addr = addr;
}

static inline void tb_end_record(struct tb *b, unsigned kind)
{
	size_t n = (size_t)(b->bp - b->body);
	tb_room(b, n + 1 + TRACE_VARINT_MAX);
	b->len = (size_t)(trace_put_record(b->buf + b->len, kind, b->body, n) -
			  b->buf);
}

static inline void tb_process(struct tb *b, uint64_t t, uint64_t pid, uint64_t ppid,
		       uint64_t cause, const char *exe, int argc,
		       const char *const *argv, const char *parent)
{
	tb_begin(b, t);
	tb_v(b, pid); tb_v(b, ppid); tb_v(b, cause);
	tb_v(b, 1700000000000000000ull); tb_v(b, t);
	tb_s(b, exe);
	tb_v(b, (uint64_t)argc);
	for (int i = 0; i < argc; i++)
		tb_s(b, argv[i]);
	tb_s(b, parent);
	tb_v(b, 24); tb_v(b, TRACE_PF_STACKS);
	tb_end_record(b, TRACE_PROCESS);
}

static inline void tb_module(struct tb *b, uint64_t t, uint64_t snap, uint64_t start,
		      uint64_t end, uint64_t off, uint64_t prot,
		      const char *path)
{
	tb_begin(b, t);
	tb_v(b, snap); tb_v(b, start); tb_v(b, end); tb_v(b, off);
	tb_v(b, prot); tb_s(b, path);
	tb_end_record(b, TRACE_MODULE);
}

static inline void tb_stack(struct tb *b, uint64_t t, uint64_t id,
		     const uint64_t *frames, size_t n)
{
	tb_begin(b, t);
	tb_v(b, id); tb_v(b, n);
	for (size_t i = 0; i < n; i++) {
		if (i == 0)
			tb_v(b, frames[0]);
		else
			b->bp = trace_put_svarint(
				b->bp, (int64_t)(frames[i] - frames[i - 1]));
	}
	tb_end_record(b, TRACE_STACK);
}

static inline void tb_thread(struct tb *b, uint64_t t, uint64_t tid, uint64_t creator)
{
	tb_begin(b, t);
	tb_v(b, tid); tb_v(b, creator);
	tb_end_record(b, TRACE_THREAD);
}

static inline void tb_alloc(struct tb *b, uint64_t t, unsigned fn, uint64_t addr,
		     uint64_t size, uint64_t stack, uint64_t align)
{
	tb_begin(b, t);
	tb_v(b, fn); tb_delta(b, addr); tb_v(b, size); tb_v(b, stack);
	tb_v(b, align);
	tb_end_record(b, TRACE_ALLOC);
}

static inline void tb_free(struct tb *b, uint64_t t, uint64_t addr, uint64_t stack)
{
	tb_begin(b, t);
	tb_v(b, TRACE_FN_FREE); tb_delta(b, addr); tb_v(b, stack);
	tb_end_record(b, TRACE_FREE);
}

static inline void tb_realloc(struct tb *b, uint64_t t, uint64_t old, uint64_t nw,
		       uint64_t size, uint64_t stack)
{
	tb_begin(b, t);
	tb_v(b, TRACE_FN_REALLOC); tb_delta(b, old); tb_delta(b, nw);
	tb_v(b, size); tb_v(b, stack);
	tb_end_record(b, TRACE_REALLOC);
}

static inline void tb_exit(struct tb *b, uint64_t t, uint64_t how, uint64_t status,
		    uint64_t sig)
{
	tb_begin(b, t);
	tb_v(b, how); tb_v(b, status); tb_v(b, sig);
	tb_end_record(b, TRACE_EXIT);
}

static inline void tb_note(struct tb *b, uint64_t t, uint64_t level, const char *s)
{
	tb_begin(b, t);
	tb_v(b, level); tb_s(b, s);
	tb_end_record(b, TRACE_NOTE);
}

static inline void tb_endrec(struct tb *b, uint64_t t)
{
	tb_begin(b, t);
	tb_end_record(b, TRACE_END);
}

/* A copy of the built bytes that the reader may take ownership of. */
static inline uint8_t *tb_copy(const struct tb *b)
{
	uint8_t *p = malloc(b->len ? b->len : 1);
	if (!p)
		abort();
	memcpy(p, b->buf, b->len);
	return p;
}

#endif
