/* text_out.h: helpers for the text renderers: colour only on a terminal
 * (and never when NO_COLOR is set), untrusted strings printed so that they
 * cannot move the cursor or change the terminal, and word wrapping to fit
 * 80 columns.
 */
#ifndef SPY_TEXT_OUT_H
#define SPY_TEXT_OUT_H

#include <stdbool.h>
#include <stddef.h>
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

/* The same, keeping to at most max columns: a longer string loses its
 * middle, shown as "..." (below 8 columns, simply its end). */
size_t text_put_fit(FILE *f, const char *s, size_t len, size_t max);

/* Writes text word-wrapped to TEXT_WIDTH with every line indented by
 * indent spaces, ending with a newline. */
void text_wrap(FILE *f, const char *text, int indent);

/* A labelled line of a summary: the label in a column of TEXT_LABEL
 * characters, then value wrapped to fit with continuation lines indented
 * to the value column. The label is styled with style. */
#define TEXT_LABEL 11
void text_field(const struct text_out *t, const char *label,
		const char *value);

#endif
