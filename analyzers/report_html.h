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

/* The heap at the moment its holes held the most bytes: the blocks of
 * each heap region, and the holes between neighbouring live blocks. A
 * hole is the room between one block's chunk (its size plus glibc's 8-byte
 * header, rounded up to 16, at least 32) and the next block, when it is at
 * least 32 bytes (the smallest free chunk); blocks of 128 KiB and more are
 * served by mmap and are not part of a heap region; a gap of 1 MiB or more
 * starts a new region. */
struct heap_block {
	uint64_t addr, size;
};

struct heap_snapshot {
	uint64_t ts;              /* when (absolute ns); 0: no heap events */
	struct heap_block *v;     /* live heap blocks, by address */
	size_t n;
	uint64_t live_bytes;      /* of those blocks */
	uint64_t holes, hole_bytes, largest_hole;
	uint64_t regions;
	uint64_t big_blocks, big_bytes;   /* mmap-sized blocks, left out */
};

/* Fills s (the caller frees s->v). Returns 0, or -1 when memory ran out. */
int heap_snapshot_take(const struct trace_model *m, struct heap_snapshot *s);

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
