/* text_out.c: terminal-safe text output for the renderers. */
#include "text_out.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void text_init(struct text_out *t, FILE *f)
{
	t->f = f;
	t->colour = isatty(fileno(f)) && getenv("NO_COLOR") == NULL;
}

const char *text_style(const struct text_out *t, enum text_style s)
{
	static const char *const seq[] = {
		[STYLE_PLAIN] = "\033[0m", [STYLE_BOLD] = "\033[1m",
		[STYLE_DIM] = "\033[2m", [STYLE_RED] = "\033[1;31m",
		[STYLE_YELLOW] = "\033[33m", [STYLE_CYAN] = "\033[36m",
		[STYLE_GREEN] = "\033[32m",
	};
	return t->colour ? seq[s] : "";
}

/* Length of a printable UTF-8 character at s, 0 if the byte must be
 * escaped. Continuation bytes are checked, not the finer points of
 * overlong forms: the aim is a harmless terminal, not validation. */
static size_t printable(const unsigned char *s, size_t n)
{
	unsigned char b = s[0];
	if (b >= 0x20 && b < 0x7f)
		return 1;
	size_t len = b >= 0xc2 && b <= 0xdf ? 2
		   : b >= 0xe0 && b <= 0xef ? 3
		   : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* C1 control characters (U+0080..U+009F) can drive terminals too. */
	if (b == 0xc2 && s[1] < 0xa0)
		return 0;
	return len;
}

/* Writes characters of s from *i while they fit in max columns. */
static size_t put_part(FILE *f, const unsigned char *s, size_t len,
		       size_t *i, size_t max)
{
	size_t cols = 0;
	while (*i < len) {
		size_t n = printable(s + *i, len - *i);
		size_t w = n ? 1 : 4;
		if (cols + w > max)
			break;
		if (n)
			fwrite(s + *i, 1, n, f);
		else
			fprintf(f, "\\x%02x", s[*i]);
		*i += n ? n : 1;
		cols += w;
	}
	return cols;
}

static size_t columns(const unsigned char *s, size_t len)
{
	size_t cols = 0;
	for (size_t i = 0; i < len;) {
		size_t n = printable(s + i, len - i);
		cols += n ? 1 : 4;
		i += n ? n : 1;
	}
	return cols;
}

size_t text_put_safe(FILE *f, const char *s, size_t len)
{
	size_t i = 0;
	return put_part(f, (const unsigned char *)s, len, &i, (size_t)-1);
}

size_t text_put_fit(FILE *f, const char *s, size_t len, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t total = columns(u, len);
	if (total <= max)
		return text_put_safe(f, s, len);
	if (max < 8) {
		size_t i = 0;
		return put_part(f, u, len, &i, max);
	}
	/* Keep the end (a file name's tail says the most) and a head. */
	size_t tail_cols = (max - 3) * 2 / 3, head_cols = max - 3 - tail_cols;
	size_t i = 0, cols = put_part(f, u, len, &i, head_cols);
	fputs("...", f);
	/* Find where the last tail_cols columns begin. */
	size_t skip = total - tail_cols, j = 0, seen = 0;
	while (j < len && seen < skip) {
		size_t n = printable(u + j, len - j);
		seen += n ? 1 : 4;
		j += n ? n : 1;
	}
	return cols + 3 + put_part(f, u, len, &j, tail_cols + 3);
}

void text_wrap(FILE *f, const char *text, int indent)
{
	size_t width = TEXT_WIDTH - (size_t)indent;
	const char *p = text;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		/* Take as many words as fit; a word longer than a line is
		 * cut. A newline in the text ends the line. */
		size_t len = strcspn(p, "\n");
		size_t take = len;
		if (take > width) {
			take = width;
			while (take > 0 && p[take] != ' ')
				take--;
			if (take == 0)
				take = width;
		}
		fprintf(f, "%*s", indent, "");
		text_put_safe(f, p, take);
		fputc('\n', f);
		p += take;
		if (*p == '\n')
			p++;
	}
}

void text_field(const struct text_out *t, const char *label,
		const char *value)
{
	FILE *f = t->f;
	size_t width = TEXT_WIDTH - TEXT_LABEL;
	fprintf(f, "%s%-*s%s", text_style(t, STYLE_BOLD), TEXT_LABEL - 1, label,
		text_style(t, STYLE_PLAIN));
	fputc(' ', f);
	const char *p = value;
	bool first = true;
	do {
		size_t len = strcspn(p, "\n"), take = len;
		if (take > width) {
			take = width;
			while (take > 0 && p[take] != ' ')
				take--;
			if (take == 0)
				take = width;
		}
		if (!first)
			fprintf(f, "%*s", TEXT_LABEL, "");
		text_put_safe(f, p, take);
		fputc('\n', f);
		first = false;
		p += take;
		while (*p == ' ' || *p == '\n')
			p++;
	} while (*p);
}
