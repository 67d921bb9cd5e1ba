/* json_writer.h: a small streaming JSON writer. Every string goes through
 * one escaper that makes untrusted bytes (paths, argv, symbol names from
 * the traced program) valid JSON: quotes, backslashes and control
 * characters are escaped, and bytes that are not valid UTF-8 become U+FFFD.
 */
#ifndef SPY_JSON_WRITER_H
#define SPY_JSON_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

struct json_writer {
	FILE *f;
	int depth;
	int pretty_depth;           /* containers above this depth break lines */
	bool has_items[JSON_MAX_DEPTH];
	bool after_key;
};

/* Starts writing to f. Containers opened at a depth below pretty_depth put
 * each member on its own indented line; 0 writes everything on one line. */
void json_init(struct json_writer *w, FILE *f, int pretty_depth);

void json_object_begin(struct json_writer *w);
void json_object_end(struct json_writer *w);
void json_array_begin(struct json_writer *w);
void json_array_end(struct json_writer *w);

/* The name of the next member of the current object. */
void json_key(struct json_writer *w, const char *key);

/* Values. A NULL string is written as null. */
void json_string(struct json_writer *w, const char *s);
void json_string_len(struct json_writer *w, const char *s, size_t len);
void json_int(struct json_writer *w, int64_t v);
void json_uint(struct json_writer *w, uint64_t v);
void json_double(struct json_writer *w, double v);
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);
/* Valid JSON text written by analyze itself (never untrusted bytes),
 * inserted as one value. */
void json_raw(struct json_writer *w, const char *json);
/* An address as a string, "0x401136". */
void json_hex(struct json_writer *w, uint64_t v);

/* A member of the current object: key and value in one call. */
static inline void json_field_uint(struct json_writer *w, const char *key,
				   uint64_t v)
{
	json_key(w, key);
	json_uint(w, v);
}

static inline void json_field_int(struct json_writer *w, const char *key,
				  int64_t v)
{
	json_key(w, key);
	json_int(w, v);
}

static inline void json_field_string(struct json_writer *w, const char *key,
				     const char *s)
{
	json_key(w, key);
	json_string(w, s);
}

static inline void json_field_bool(struct json_writer *w, const char *key,
				   bool v)
{
	json_key(w, key);
	json_bool(w, v);
}

/* key: v when present, else null. */
static inline void json_field_uint_or_null(struct json_writer *w,
					   const char *key, bool present,
					   uint64_t v)
{
	json_key(w, key);
	if (present)
		json_uint(w, v);
	else
		json_null(w);
}

/* Writes s[0..len) to f as a quoted, escaped JSON string. */
void json_write_escaped(FILE *f, const char *s, size_t len);

#endif
