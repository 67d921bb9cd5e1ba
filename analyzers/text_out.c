/* text_out.c: terminal-safe text output for the renderers. */
#include "text_out.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace_format.h"

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

/* Writes characters of s from *i while they fit in max columns: each
 * run of printable ones in one write (a dump writes millions of lines). */
static size_t put_part(FILE *f, const unsigned char *s, size_t len,
		       size_t *i, size_t max)
{
	size_t cols = 0, run = *i;
	while (*i < len) {
		size_t n = printable(s + *i, len - *i);
		size_t w = n ? 1 : 4;
		if (cols + w > max)
			break;
		if (!n) {
			fwrite(s + run, 1, *i - run, f);
			fprintf(f, "\\x%02x", s[*i]);
		}
		*i += n ? n : 1;
		cols += w;
		if (!n)
			run = *i;
	}
	fwrite(s + run, 1, *i - run, f);
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

size_t text_columns(const char *s, size_t len)
{
	return columns((const unsigned char *)s, len);
}

/* Bytes of s[0..len) that fit in max columns, cut between characters;
 * *cols gets their width. */
static size_t fit_bytes(const unsigned char *s, size_t len, size_t max,
			size_t *cols)
{
	size_t i = 0, c = 0;
	while (i < len) {
		size_t n = printable(s + i, len - i);
		size_t w = n ? 1 : 4;
		if (c + w > max)
			break;
		i += n ? n : 1;
		c += w;
	}
	*cols = c;
	return i;
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
	/* Keep the end (a file name's tail says the most) and a head; the
	 * ellipsis is one column. */
	size_t tail_cols = (max - 1) * 2 / 3, head_cols = max - 1 - tail_cols;
	size_t i = 0, cols = put_part(f, u, len, &i, head_cols);
	fputs(TEXT_ELLIPSIS, f);
	/* Find where the last tail_cols columns begin. */
	size_t skip = total - tail_cols, j = 0, seen = 0;
	while (j < len && seen < skip) {
		size_t n = printable(u + j, len - j);
		seen += n ? 1 : 4;
		j += n ? n : 1;
	}
	return cols + 1 + put_part(f, u, len, &j, tail_cols + 1);
}

void text_hang(FILE *f, const char *text, size_t col, int indent)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t width = TEXT_WIDTH > indent + 8 ? TEXT_WIDTH - (size_t)indent : 8;
	/* Too little room left on the caller's line: start below it. */
	if (col + 16 > TEXT_WIDTH && col > (size_t)indent) {
		fputc('\n', f);
		col = (size_t)indent;
		fprintf(f, "%*s", indent, "");
	}
	size_t room = TEXT_WIDTH > col ? TEXT_WIDTH - col : 8;
	bool first = true;
	do {
		if (!first) {
			while (*p == ' ')
				p++;
			if (!*p)
				break;
			if (*p != '\n')
				fprintf(f, "%*s", indent, "");
			room = width;
		}
		/* Take as many words as fit; a word longer than a line is
		 * cut. A newline in the text ends the line. */
		size_t len = strcspn((const char *)p, "\n"), cols;
		size_t take = fit_bytes(p, len, room, &cols);
		if (take < len) {
			size_t sp = take;
			while (sp > 0 && p[sp] != ' ')
				sp--;
			if (sp == 0 && first && col > (size_t)indent) {
				/* The first word does not fit after what the
				 * caller wrote: it starts the next line. */
				fputc('\n', f);
				first = false;
				continue;
			}
			if (sp > 0)
				take = sp;
			else if (take == 0)
				take = 1;
		}
		while (take > 0 && p[take - 1] == ' ')
			take--;
		text_put_safe(f, (const char *)p, take);
		fputc('\n', f);
		first = false;
		p += take;
		while (*p == ' ')
			p++;
		if (*p == '\n')
			p++;
	} while (*p);
}

void text_wrap(FILE *f, const char *text, int indent)
{
	while (*text == ' ')
		text++;
	if (!*text)
		return;
	fprintf(f, "%*s", indent, "");
	text_hang(f, text, (size_t)indent, indent);
}

void text_field(const struct text_out *t, const char *label,
		const char *value)
{
	FILE *f = t->f;
	fprintf(f, "%s%-*s%s ", text_style(t, STYLE_BOLD), TEXT_LABEL - 1, label,
		text_style(t, STYLE_PLAIN));
	while (*value == ' ')
		value++;
	text_hang(f, value, TEXT_LABEL, TEXT_LABEL);
}

void text_size(char *buf, size_t n, uint64_t bytes)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB" };
	double v = (double)bytes;
	unsigned u = 0;
	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v >= 100 || v == (double)(uint64_t)v)
		snprintf(buf, n, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, n, "%.1f %s", v, unit[u]);
}

const char *text_plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

const char *text_access(unsigned access)
{
	return access == TRACE_ACCESS_READ ? "read of"
		: access == TRACE_ACCESS_WRITE ? "write to"
		: access == TRACE_ACCESS_EXEC ? "jump to" : "access to";
}
