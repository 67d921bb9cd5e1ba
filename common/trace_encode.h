/* trace_encode.h: byte-level encoders for the trace format (trace_format.h).
 * Pure functions over a caller's buffer: no allocation, no I/O, no errno,
 * safe inside hooks and signal handlers. The caller guarantees room:
 * a varint takes at most TRACE_VARINT_MAX bytes.
 */
#ifndef SPY_TRACE_ENCODE_H
#define SPY_TRACE_ENCODE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "trace_format.h"

#define TRACE_VARINT_MAX 10

static inline uint8_t *trace_put_varint(uint8_t *p, uint64_t v)
{
	/* most fields of a record take one or two bytes: no loop for them */
	if (v < 0x80) {
		*p = (uint8_t)v;
		return p + 1;
	}
	if (v < 0x4000) {
		p[0] = (uint8_t)(v | 0x80);
		p[1] = (uint8_t)(v >> 7);
		return p + 2;
	}
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint64_t trace_zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline uint8_t *trace_put_svarint(uint8_t *p, int64_t v)
{
	return trace_put_varint(p, trace_zigzag(v));
}

/* Writes a str field; at most max bytes of s are kept. */
static inline uint8_t *trace_put_str(uint8_t *p, const char *s, size_t len)
{
	p = trace_put_varint(p, len);
	memcpy(p, s, len);
	return p + len;
}

static inline void trace_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void trace_put_u64(uint8_t *p, uint64_t v)
{
	trace_put_u32(p, (uint32_t)v);
	trace_put_u32(p + 4, (uint32_t)(v >> 32));
}

/* Fills the 24-byte file header. */
static inline void trace_put_file_header(uint8_t *p, uint32_t region_size)
{
	memcpy(p, TRACE_MAGIC, TRACE_MAGIC_LEN);
	trace_put_u32(p + 8, TRACE_VERSION);
	trace_put_u32(p + 12, TRACE_FILE_HEADER_SIZE);
	trace_put_u32(p + 16, region_size);
	trace_put_u32(p + 20, 0);
}

/* Fills the 24-byte chunk header. */
static inline void trace_put_chunk_header(uint8_t *p, uint32_t payload_len,
					  uint32_t tid, uint64_t base_ns)
{
	trace_put_u32(p, TRACE_CHUNK_MAGIC);
	trace_put_u32(p + 4, payload_len);
	trace_put_u32(p + 8, tid);
	trace_put_u32(p + 12, 0);
	trace_put_u64(p + 16, base_ns);
}

/* Records are built body-first into scratch space, then framed:
 * trace_put_record copies kind, body_len and the body to p. */
static inline uint8_t *trace_put_record(uint8_t *p, unsigned kind,
					const uint8_t *body, size_t body_len)
{
	*p++ = (uint8_t)kind;
	p = trace_put_varint(p, body_len);
	memmove(p, body, body_len);
	return p + body_len;
}

#endif
