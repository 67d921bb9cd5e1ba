/* Unit test: the text helpers keep to 80 columns counted in characters,
 * cut strings only in their middle, wrap without losing a word, and put
 * the noun after a count of one in the singular. */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "text_out.h"

/* Characters (UTF-8 sequences) of s: the columns a terminal gives it. */
static size_t chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

/* The widest line of out, in characters. */
static size_t widest(const char *out)
{
	size_t w = 0;
	for (const char *p = out; *p;) {
		size_t len = strcspn(p, "\n"), c = chars(p, len);
		w = c > w ? c : w;
		p += len + (p[len] == '\n');
	}
	return w;
}

/* out with its line breaks and runs of spaces made single spaces. */
static char *words(const char *out)
{
	char *w = malloc(strlen(out) + 1), *q = w;
	for (const char *p = out; *p; p++) {
		char c = *p == '\n' ? ' ' : *p;
		if (c == ' ' && (q == w || q[-1] == ' '))
			continue;
		*q++ = c;
	}
	while (q > w && q[-1] == ' ')
		q--;
	*q = 0;
	return w;
}

static char *capture_fit(const char *s, size_t max, size_t *ret)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	*ret = text_put_fit(f, s, strlen(s), max);
	fclose(f);
	return out;
}

static char *capture_hang(const char *s, size_t col, int indent)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	fprintf(f, "%*s", (int)col, "");
	text_hang(f, s, col, indent);
	fclose(f);
	return out;
}

int main(void)
{
	size_t r;
	char *out;

	out = capture_fit("short", 10, &r);
	ok(!strcmp(out, "short") && r == 5, "a string that fits is written whole");
	free(out);

	const char *path = "/usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so";
	out = capture_fit(path, 30, &r);
	ok(chars(out, strlen(out)) == 30 && r == 30,
	   "a long path is cut to exactly 30 columns (got %zu)", chars(out, strlen(out)));
	ok(strstr(out, TEXT_ELLIPSIS) && !strncmp(out, "/usr/", 5) &&
	   strstr(out, "gnu.so"), "it keeps its start and its end around the ellipsis: %s", out);
	free(out);

	/* Twenty two-byte characters: 20 columns, 40 bytes. */
	const char *accents = "éééééééééééééééééééé";
	out = capture_fit(accents, 20, &r);
	ok(!strcmp(out, accents) && r == 20, "UTF-8 counts a column per character");
	free(out);
	ok(text_columns(accents, strlen(accents)) == 20, "text_columns agrees");
	ok(text_columns("a\033b", 3) == 6, "an escaped control byte takes four columns");

	const char *text = "Thread 3274 holds 'accounts[1].m' and has waited 4 ms for "
			   "'accounts[0].m', held by thread 3273. None of them can "
			   "ever go on: élan vital, ünïcödé wörds wrap by characters.";
	out = capture_hang(text, 30, 4);
	ok(widest(out) <= TEXT_WIDTH, "text_hang keeps to 80 columns (widest %zu)", widest(out));
	char *w = words(out), *want = words(text);
	ok(!strcmp(w, want), "and loses no word");
	free(w);
	free(out);

	/* A line of exactly 80 columns of two-byte characters is one line. */
	char line[256] = "";
	for (int i = 0; i < 74; i++)
		strcat(line, i % 10 == 9 ? " " : "é");
	out = capture_hang(line, 6, 6);
	ok(widest(out) == 80 && strchr(out, '\n') == out + strlen(out) - 1,
	   "80 columns of UTF-8 stay on one line (bytes do not count)");
	free(out);

	/* A word that does not fit after the caller's text starts the next
	 * line whole rather than being split. */
	out = capture_hang(path, 40, 6);
	ok(strstr(out, path) && widest(out) <= TEXT_WIDTH,
	   "a long word moves to the next line whole");
	free(out);

	/* A word longer than any line is cut into lines, nothing dropped. */
	char big[200];
	memset(big, 'x', 199);
	big[199] = 0;
	out = capture_hang(big, 2, 2);
	w = words(out);
	size_t xs = 0;
	for (char *p = w; *p; p++)
		xs += *p == 'x';
	ok(widest(out) <= TEXT_WIDTH && xs == 199, "a 199-column word is cut, not lost");
	free(w);
	free(out);

	ok(!strcmp(text_plural(1, "block", "blocks"), "block") &&
	   !strcmp(text_plural(0, "block", "blocks"), "blocks") &&
	   !strcmp(text_plural(2, "", "s"), "s") &&
	   !strcmp(text_plural(UINT64_MAX, "", "s"), "s"),
	   "a count of one takes the singular, every other count the plural");
	return tap_done();
}
