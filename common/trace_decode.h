/* trace_decode.h: bounds-checked decoders for the trace format
 * (trace_format.h), the mirror of trace_encode.h. A cursor walks a byte range
 * it never reads past; every getter returns 0 on success and -1, leaving the
 * cursor where it was, when the field would run past the end or is malformed.
 * No allocation, no I/O.
 */
#ifndef SPY_TRACE_DECODE_H
#define SPY_TRACE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "trace_format.h"

struct trace_cursor {
	const uint8_t *p;   /* next byte to read */
	const uint8_t *end; /* one past the last readable byte */
};

static inline struct trace_cursor trace_cursor_make(const uint8_t *p,
						    size_t len)
{
	struct trace_cursor c = { p, p + len };
	return c;
}

static inline size_t trace_cursor_left(const struct trace_cursor *c)
{
	return (size_t)(c->end - c->p);
}

static inline int trace_get_u8(struct trace_cursor *c, uint8_t *out)
{
	if (c->p >= c->end)
		return -1;
	*out = *c->p++;
	return 0;
}

/* Unsigned LEB128, at most 10 bytes; a tenth byte may carry only the top
 * bit of a uint64_t, anything more is rejected as malformed. */
static inline int trace_get_varint(struct trace_cursor *c, uint64_t *out)
{
	uint64_t v = 0;
	const uint8_t *p = c->p;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		if (p >= c->end)
			return -1;
		uint8_t b = *p++;
		if (shift == 63 && (b & 0x7e))
			return -1;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			c->p = p;
			*out = v;
			return 0;
		}
	}
	return -1;
}

static inline int64_t trace_unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline int trace_get_svarint(struct trace_cursor *c, int64_t *out)
{
	uint64_t v;
	if (trace_get_varint(c, &v) < 0)
		return -1;
	*out = trace_unzigzag(v);
	return 0;
}

/* A str field: *s points into the cursor's buffer (not NUL-terminated, may
 * contain any byte), *len its length. */
static inline int trace_get_str(struct trace_cursor *c, const uint8_t **s,
				size_t *len)
{
	struct trace_cursor save = *c;
	uint64_t n;
	if (trace_get_varint(c, &n) < 0)
		return -1;
	if (n > trace_cursor_left(c)) {
		*c = save;
		return -1;
	}
	*s = c->p;
	*len = (size_t)n;
	c->p += n;
	return 0;
}

static inline uint32_t trace_load_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t trace_load_u64(const uint8_t *p)
{
	return (uint64_t)trace_load_u32(p) | (uint64_t)trace_load_u32(p + 4) << 32;
}

static inline int trace_get_u32(struct trace_cursor *c, uint32_t *out)
{
	if (trace_cursor_left(c) < 4)
		return -1;
	*out = trace_load_u32(c->p);
	c->p += 4;
	return 0;
}

/* A little-endian integer of n bytes (1 to 8). */
static inline int trace_get_uint(struct trace_cursor *c, unsigned n,
				 uint64_t *out)
{
	if (trace_cursor_left(c) < n)
		return -1;
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)c->p[i] << (8 * i);
	c->p += n;
	*out = v;
	return 0;
}

/* The address step of a short heap record (addr16: i24 in units of 16
 * bytes), in bytes. */
static inline int trace_get_addr16(struct trace_cursor *c, int64_t *step)
{
	uint64_t v;
	if (trace_get_uint(c, 3, &v) < 0)
		return -1;
	*step = ((int64_t)(v << 40) >> 40) * 16;
	return 0;
}

static inline int trace_get_u64(struct trace_cursor *c, uint64_t *out)
{
	if (trace_cursor_left(c) < 8)
		return -1;
	*out = trace_load_u64(c->p);
	c->p += 8;
	return 0;
}

#endif
