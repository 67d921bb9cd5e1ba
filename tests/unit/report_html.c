/* Unit test: the HTML report escapes whatever bytes the traced program put
 * in its names, and its heap picture counts the holes heap_frag counts. */
#include <stdlib.h>
#include <string.h>

#include "findings.h"
#include "heap_replay.h"
#include "report_html.h"
#include "symbolize.h"
#include "tap.h"
#include "trace_builder.h"

static char *escaped(const char *s, size_t len)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	html_esc(f, s, len);
	fclose(f);
	return out;
}

static int escapes_to(const char *in, size_t len, const char *want)
{
	char *got = escaped(in, len);
	int same = !strcmp(got, want);
	if (!same)
		diag("got '%s', want '%s'", got, want);
	free(got);
	return same;
}

#define FFFD "\xef\xbf\xbd"

static size_t count(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, what)); p++)
		n++;
	return n;
}

static void build(struct tb *b)
{
	static const char *const argv[] = { "<script>alert(1)</script>",
					    "\"q'&", "bad\xff\x01" };
	tb_init(b);
	tb_chunk(b, 100, 1000);
	tb_process(b, 1000, 4242, 1, TRACE_CAUSE_START,
		   "/tmp/<img src=x onerror=alert(2)>", 3, argv, "");
	tb_thread(b, 1000, 100, 0);
	tb_module(b, 1000, 1, 0x400000, 0x401000, 0, 5, "/tmp/<b>prog</b>");
	tb_module(b, 1000, 1, 0x600000, 0x700000, 0, 2, "[heap]");
	/* Three blocks with two 4064-byte holes between their chunks. */
	tb_alloc(b, 1100, TRACE_FN_MALLOC, 0x600010, 24, 0, 0);
	tb_alloc(b, 1200, TRACE_FN_MALLOC, 0x601010, 24, 0, 0);
	tb_alloc(b, 1300, TRACE_FN_MALLOC, 0x602010, 100, 0, 0);
	tb_exit(b, 1400, TRACE_EXIT_RETURN, 0, 0);
	tb_endrec(b, 1500);
	tb_chunk_end(b);
}

int main(void)
{
	ok(escapes_to("<a href=\"x\">&'</a>", 18,
		      "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"),
	   "markup characters become entities");
	ok(escapes_to("a\x01" "b\x7f" "c\x1b[31m", 10, "a" FFFD "b" FFFD "c" FFFD "[31m"),
	   "control characters become U+FFFD");
	ok(escapes_to("\xff\xfe", 2, FFFD FFFD), "bytes that are not UTF-8 become U+FFFD");
	ok(escapes_to("\xed\xa0\x80", 3, FFFD FFFD FFFD), "a UTF-16 surrogate is not UTF-8");
	ok(escapes_to("\xe0\x80\xbc", 3, FFFD FFFD FFFD), "an overlong '<' stays harmless");
	ok(escapes_to("h\xc3\xa9llo \xe2\x82\xac", 10, "h\xc3\xa9llo \xe2\x82\xac"),
	   "valid UTF-8 passes as it is");
	ok(escapes_to("cut \xe2\x82", 6, "cut " FFFD FFFD), "a sequence cut short");

	struct tb b;
	build(&b);
	struct trace_model m;
	struct trace_error err;
	int r = trace_load_buffer("mem", tb_copy(&b), b.len, &m, &err);
	ok(r == 0, "the built trace loads (%s)", r ? err.msg : "ok");
	if (r)
		return tap_done();
	struct heap_stats h;
	struct finding_list fl = { 0 };
	struct symbolizer *sym = symbolizer_new(&m);
	ok(heap_replay(&m, &h, NULL) == 0 && findings_run(&m, &fl) == 0 && sym,
	   "models and findings");
	char *page = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&page, &n);
	struct html_page p = { f, &m, sym, &fl, &h };
	ok(report_html_write(&p) == 0, "the page is written");
	fclose(f);
	ok(!strstr(page, "<script") && !strstr(page, "<img") &&
	   !strstr(page, "<b>prog"), "no markup from the trace reaches the page");
	ok(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL,
	   "the argument is shown, escaped");
	ok(strstr(page, "&quot;q&#39;&amp;") != NULL, "quotes and ampersands");
	ok(strstr(page, "bad" FFFD FFFD) != NULL, "bad bytes in an argument");
	ok(count(page, "http://") == count(page, "xmlns=\"http://www.w3.org/2000/svg\""),
	   "no address to fetch: the only URLs are the SVG namespace");
	ok(strstr(page, "default-src 'none'") != NULL, "the page forbids loading");
	ok(strstr(page, "data-holes=\"2\" data-hole-bytes=\"8128\" "
			"data-largest-hole=\"4064\"") != NULL,
	   "the heap picture counts two holes of 4064 bytes");
	free(page);
	symbolizer_free(sym);
	finding_list_release(&fl);
	trace_model_release(&m);
	return tap_done();
}
