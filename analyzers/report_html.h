/* report_html.h: the one-page HTML report (`analyze report --html`): the
 * summary, every finding with its stacks and source lines, and pictures
 * drawn from the trace as inline SVG. The page loads nothing from anywhere
 * (no network, no other file), and every byte that came from the traced
 * program is escaped on the way out.
 */
#ifndef SPY_REPORT_HTML_H
#define SPY_REPORT_HTML_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "findings.h"
#include "heap_frag.h"
#include "heap_replay.h"
#include "symbolize.h"
#include "trace_reader.h"

/* Everything a section of the page reads. */
struct html_page {
	FILE *f;
	const struct trace_model *m;
	struct symbolizer *sym;
	const struct finding_list *fl;
	const struct heap_stats *h;
};

/* Writes the whole page to p->f. Returns 0, or -1 when memory ran out
 * (the page is then incomplete). */
int report_html_write(const struct html_page *p);

/* Writes s[0..len) as HTML text or attribute value: & < > " ' escaped,
 * control characters dropped to U+FFFD, invalid UTF-8 as U+FFFD. Cannot
 * fail. */
void html_esc(FILE *f, const char *s, size_t len);
/* The same for a NUL-terminated string; NULL writes "?". */
void html_escz(FILE *f, const char *s);

/* The brk heap at the moment `analyze fragmentation` looks at first (the
 * first failed allocation, else the end of the trace): heap_frag's figures
 * (the holes, the largest hole) and the live blocks inside the heap, to
 * draw them. */
struct heap_block {
	uint64_t addr, size;
};

struct heap_snapshot {
	struct heap_frag frag;
	struct heap_block *v;     /* live blocks in the brk heap, by address */
	size_t n;
};

/* Fills s (the caller frees s->v). Returns 0, or -1 when memory ran out. */
int heap_snapshot_take(const struct trace_model *m, struct heap_snapshot *s);

/* Writes s's brk heap (one with a [heap] to draw) as one
 * <svg id="heap-picture"> element at (x, y) of an enclosing SVG; *height
 * receives its height (the width is 760). 0, or -1 out of memory. */
int report_heap_picture(FILE *f, const struct heap_snapshot *s, int x, int y,
			int *height);

/* The pictures, each an <svg> (or a short paragraph when the trace holds
 * nothing to draw). Each returns 0 or -1 when memory ran out. */
int report_html_heap(const struct html_page *p);
int report_html_locks(const struct html_page *p);
int report_html_threads(const struct html_page *p);
int report_html_syscalls(const struct html_page *p);
int report_html_map(const struct html_page *p);

/* Short forms for the pictures' labels. */
void html_bytes(char *buf, size_t len, uint64_t bytes);
void html_ns(char *buf, size_t len, int64_t ns);

#endif
