/* text_out.h: helpers for the text renderers: colour only on a terminal
 * (and never when NO_COLOR is set), untrusted strings printed so that they
 * cannot move the cursor or change the terminal, and word wrapping to fit
 * 80 columns. Widths are counted in columns (a UTF-8 character is one),
 * not bytes.
 */
#ifndef SPY_TEXT_OUT_H
#define SPY_TEXT_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TEXT_WIDTH 80

enum text_style {
	STYLE_PLAIN, STYLE_BOLD, STYLE_DIM, STYLE_RED, STYLE_YELLOW,
	STYLE_CYAN, STYLE_GREEN,
};

struct text_out {
	FILE *f;
	bool colour;
};

/* Colour is on when f is a terminal and NO_COLOR is not set. */
void text_init(struct text_out *t, FILE *f);

/* Escape sequence that starts style (STYLE_PLAIN ends any), or "" when
 * colour is off. */
const char *text_style(const struct text_out *t, enum text_style s);

/* Writes s[0..len): printable UTF-8 as is; control characters, DEL and
 * invalid bytes as \xNN. Returns the number of columns written (one per
 * character). */
size_t text_put_safe(FILE *f, const char *s, size_t len);

/* A byte count for people in at most 8 columns: "7 B", "31.8 MiB",
 * "260 KiB", "1 MiB" (one decimal below 100 unless whole). Cannot fail
 * (truncates to n). */
void text_size(char *buf, size_t n, uint64_t bytes);

/* The word that goes with count n: one when n is 1, else many ("1 block",
 * "0 blocks"; text_plural(n, "", "s") for a suffix). Cannot fail. */
const char *text_plural(uint64_t n, const char *one, const char *many);

/* A fault's access in words, before its address: "read of", "write to",
 * "jump to" or "access to" (enum trace_crash_access). */
const char *text_access(unsigned access);

/* The columns text_put_safe would take to write s[0..len). */
size_t text_columns(const char *s, size_t len);

/* What a string cut short to fit shows in place of its middle (one
 * column). */
#define TEXT_ELLIPSIS "\u2026"

/* The same as text_put_safe, keeping to at most max columns: a longer
 * string loses its middle, shown as TEXT_ELLIPSIS (below 8 columns, it
 * keeps its start). Only for text whose whole is available another way
 * (--json). Returns the columns written. */
size_t text_put_fit(FILE *f, const char *s, size_t len, size_t max);

/* Writes text word-wrapped to TEXT_WIDTH columns with every line indented
 * by indent spaces, ending with a newline; a newline in text starts a new
 * line, a word longer than a line is cut. Nothing is lost. */
void text_wrap(FILE *f, const char *text, int indent);

/* The same for text that goes on a line where col columns are already
 * written: it continues there and its further lines are indented by
 * indent spaces (when less than 16 columns are left, it starts on the
 * next line). */
void text_hang(FILE *f, const char *text, size_t col, int indent);

/* A labelled line of a summary: the label in a column of TEXT_LABEL
 * characters, then value wrapped to fit with continuation lines indented
 * to the value column. The label is styled with style. */
#define TEXT_LABEL 11
void text_field(const struct text_out *t, const char *label,
		const char *value);

#endif
