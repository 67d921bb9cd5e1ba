/* json_writer.c: streaming JSON output with strict string escaping. */
#include "json_writer.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

void json_init(struct json_writer *w, FILE *f, int pretty_depth)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->pretty_depth = pretty_depth;
}

static void newline(struct json_writer *w)
{
	fputc('\n', w->f);
	for (int i = 0; i < w->depth; i++)
		fputs("  ", w->f);
}

/* Separates a value from the one before it in the current container. */
static void before_value(struct json_writer *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth == 0)
		return;
	int d = w->depth < JSON_MAX_DEPTH ? w->depth : JSON_MAX_DEPTH - 1;
	if (w->has_items[d])
		fputc(',', w->f);
	w->has_items[d] = true;
	if (w->depth <= w->pretty_depth)
		newline(w);
}

static void open_container(struct json_writer *w, char c)
{
	before_value(w);
	fputc(c, w->f);
	w->depth++;
	if (w->depth < JSON_MAX_DEPTH)
		w->has_items[w->depth] = false;
}

static void close_container(struct json_writer *w, char c)
{
	int d = w->depth < JSON_MAX_DEPTH ? w->depth : JSON_MAX_DEPTH - 1;
	bool had = w->has_items[d];
	w->depth--;
	if (had && w->depth + 1 <= w->pretty_depth)
		newline(w);
	fputc(c, w->f);
	if (w->depth == 0)
		fputc('\n', w->f);
}

void json_object_begin(struct json_writer *w) { open_container(w, '{'); }
void json_object_end(struct json_writer *w) { close_container(w, '}'); }
void json_array_begin(struct json_writer *w) { open_container(w, '['); }
void json_array_end(struct json_writer *w) { close_container(w, ']'); }

void json_key(struct json_writer *w, const char *key)
{
	before_value(w);
	json_write_escaped(w->f, key, strlen(key));
	fputs(w->depth <= w->pretty_depth ? ": " : ":", w->f);
	w->after_key = true;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when the
 * bytes there are not one: overlong forms, surrogates and code points past
 * U+10FFFF are rejected too. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char b = s[0];
	size_t len;
	uint32_t c, min;
	if (b < 0x80) {
		*cp = b;
		return 1;
	} else if (b >= 0xc2 && b <= 0xdf) {
		len = 2, c = b & 0x1f, min = 0x80;
	} else if (b >= 0xe0 && b <= 0xef) {
		len = 3, c = b & 0x0f, min = 0x800;
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4, c = b & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

void json_write_escaped(FILE *f, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	fputc('"', f);
	/* Characters that need no escape go out a run at a time: a JSON
	 * dump writes millions of names. */
	size_t i = 0, run = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_seq(s + i, len - i, &cp);
		bool plain = n > 0 && cp >= 0x20 && cp != '"' && cp != '\\' &&
			     cp != 0x7f && cp != 0x2028 && cp != 0x2029;
		if (plain) {
			i += n;
			continue;
		}
		fwrite(s + run, 1, i - run, f);
		if (n == 0) {
			fputs("\\ufffd", f);
			i++;
			run = i;
			continue;
		}
		switch (cp) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			/* Control characters, DEL, and the two line
			 * separators that break JavaScript string literals. */
			fprintf(f, "\\u%04x", (unsigned)cp);
		}
		i += n;
		run = i;
	}
	fwrite(s + run, 1, i - run, f);
	fputc('"', f);
}

void json_string(struct json_writer *w, const char *s)
{
	if (!s) {
		json_null(w);
		return;
	}
	json_string_len(w, s, strlen(s));
}

void json_string_len(struct json_writer *w, const char *s, size_t len)
{
	before_value(w);
	json_write_escaped(w->f, s, len);
}

void json_int(struct json_writer *w, int64_t v)
{
	before_value(w);
	fprintf(w->f, "%" PRId64, v);
}

void json_uint(struct json_writer *w, uint64_t v)
{
	before_value(w);
	fprintf(w->f, "%" PRIu64, v);
}

void json_double(struct json_writer *w, double v)
{
	before_value(w);
	if (isfinite(v))
		fprintf(w->f, "%.9g", v);
	else
		fputs("null", w->f);
}

void json_bool(struct json_writer *w, bool v)
{
	before_value(w);
	fputs(v ? "true" : "false", w->f);
}

void json_null(struct json_writer *w)
{
	before_value(w);
	fputs("null", w->f);
}

void json_hex(struct json_writer *w, uint64_t v)
{
	before_value(w);
	fprintf(w->f, "\"0x%" PRIx64 "\"", v);
}

void json_raw(struct json_writer *w, const char *json)
{
	before_value(w);
	fputs(json, w->f);
}
