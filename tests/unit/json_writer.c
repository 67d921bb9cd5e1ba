/* Unit test: the JSON writer's output is valid JSON whatever bytes the
 * traced program put in its paths, arguments and symbol names. */
#include <stdlib.h>
#include <string.h>

#include "json_writer.h"
#include "tap.h"

/* Escapes s[0..len) into a fresh string. */
static char *escaped(const char *s, size_t len)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	json_write_escaped(f, s, len);
	fclose(f);
	return out;
}

static int escapes_to(const char *in, size_t len, const char *want)
{
	char *got = escaped(in, len);
	int same = !strcmp(got, want);
	if (!same)
		diag("got %s, want %s", got, want);
	free(got);
	return same;
}

/* A strict check that out is one JSON string with no raw control bytes
 * and only valid UTF-8. */
static int valid_json_string(const char *out)
{
	const unsigned char *p = (const unsigned char *)out;
	size_t n = strlen(out);
	if (n < 2 || p[0] != '"' || p[n - 1] != '"')
		return 0;
	for (size_t i = 1; i < n - 1; i++) {
		if (p[i] < 0x20)
			return 0;
		if (p[i] == '"')
			return 0;
		if (p[i] == '\\') {
			i++;
			if (i >= n - 1 || !strchr("\"\\/bfnrtu", p[i]))
				return 0;
			if (p[i] == 'u') {
				for (int k = 1; k <= 4; k++)
					if (i + (size_t)k >= n - 1 ||
					    !strchr("0123456789abcdefABCDEF",
						    p[i + (size_t)k]))
						return 0;
				i += 4;
			}
		} else if (p[i] >= 0x80) {
			size_t len = p[i] >= 0xf0 ? 4 : p[i] >= 0xe0 ? 3 : 2;
			if (p[i] < 0xc2 || p[i] > 0xf4)
				return 0;
			for (size_t k = 1; k < len; k++)
				if ((p[i + k] & 0xc0) != 0x80)
					return 0;
			i += len - 1;
		}
	}
	return 1;
}

int main(void)
{
	ok(escapes_to("plain", 5, "\"plain\""), "plain text is unchanged");
	ok(escapes_to("a\"b\\c", 5, "\"a\\\"b\\\\c\""),
	   "quotes and backslashes");
	ok(escapes_to("\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\""),
	   "the short escapes");
	ok(escapes_to("\x01\x1b[2J\x7f", 6, "\"\\u0001\\u001b[2J\\u007f\""),
	   "control characters and DEL as \\u00XX");
	ok(escapes_to("a\0b", 3, "\"a\\u0000b\""), "an embedded NUL");
	ok(escapes_to("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x9b", 14,
		      "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x9b\""),
	   "valid UTF-8 passes through");
	ok(escapes_to("\xff\xfe", 2, "\"\\ufffd\\ufffd\""),
	   "invalid bytes become U+FFFD");
	ok(escapes_to("\xc0\xaf", 2, "\"\\ufffd\\ufffd\""),
	   "an overlong encoding is invalid");
	ok(escapes_to("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""),
	   "a UTF-16 surrogate is invalid");
	ok(escapes_to("\xe2\x82", 2, "\"\\ufffd\\ufffd\""),
	   "a sequence cut at the end");
	ok(escapes_to("\xf4\x90\x80\x80", 4,
		      "\"\\ufffd\\ufffd\\ufffd\\ufffd\""),
	   "past U+10FFFF is invalid");
	ok(escapes_to("\xe2\x80\xa8", 3, "\"\\u2028\""),
	   "U+2028 is escaped for JavaScript");

	/* Every byte value, and random byte strings, give valid JSON. */
	char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	char *out = escaped(all, sizeof(all));
	ok(valid_json_string(out), "all 256 byte values");
	free(out);
	int bad = 0;
	uint64_t st = 1;
	for (int round = 0; round < 2000; round++) {
		char buf[64];
		size_t n = (size_t)round % sizeof(buf);
		for (size_t i = 0; i < n; i++) {
			st = st * 6364136223846793005ull + 1;
			buf[i] = (char)(st >> 56);
		}
		out = escaped(buf, n);
		bad += !valid_json_string(out);
		free(out);
	}
	ok(bad == 0, "2000 random byte strings");

	/* Structure: commas, keys, nesting, null strings. */
	char *doc = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&doc, &n);
	struct json_writer w;
	json_init(&w, f, 0);
	json_object_begin(&w);
	json_key(&w, "argv");
	json_array_begin(&w);
	json_string(&w, "a\"");
	json_string_len(&w, "b\n", 2);
	json_array_end(&w);
	json_key(&w, "n");
	json_int(&w, -3);
	json_key(&w, "file");
	json_string(&w, NULL);
	json_key(&w, "addr");
	json_hex(&w, 0x401136);
	json_key(&w, "ok");
	json_bool(&w, 1);
	json_key(&w, "empty");
	json_object_begin(&w);
	json_object_end(&w);
	json_object_end(&w);
	fclose(f);
	ok(!strcmp(doc, "{\"argv\":[\"a\\\"\",\"b\\n\"],\"n\":-3,\"file\":null,"
		   "\"addr\":\"0x401136\",\"ok\":true,\"empty\":{}}\n"),
	   "document structure: %s", doc);
	free(doc);
	return tap_done();
}
