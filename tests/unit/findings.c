/* Unit test: the findings model and its two renderers. Findings carry
 * strings that come from the traced program; the JSON must stay valid and
 * the text must stay within 80 columns and free of terminal escapes. */
#include <stdlib.h>
#include <string.h>

#include "findings.h"
#include "findings_out.h"
#include "json_writer.h"
#include "symbolize.h"
#include "tap.h"
#include "text_out.h"

/* Outside strings: brackets balance, no raw control bytes anywhere. */
static int json_shape_ok(const char *s)
{
	int depth = 0, in_str = 0;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (in_str) {
			if (c < 0x20)
				return 0;
			if (c == '\\')
				p++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"')
			in_str = 1;
		else if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			depth--;
		if (depth < 0)
			return 0;
	}
	return depth == 0 && !in_str;
}

static int lines_fit(const char *s, size_t width)
{
	size_t col = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '\n') {
			col = 0;
			continue;
		}
		if (*p == '\033')
			return 0;
		/* Count characters, not UTF-8 continuation bytes. */
		if (((unsigned char)*p & 0xc0) != 0x80 && ++col > width)
			return 0;
	}
	return 1;
}

int main(void)
{
	struct trace_model m;
	memset(&m, 0, sizeof(m));
	struct finding_list fl = { 0 };
	ok(findings_run(&m, &fl) == 0, "the detector registry runs");
	size_t n_detectors = 0;
	for (const struct detector *d = detectors; d->run; d++)
		n_detectors++;
	diag("%zu detectors registered", n_detectors);

	struct symbolizer *sym = symbolizer_new(&m);
	ok(sym != NULL, "a symbolizer over no modules");

	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	struct text_out t;
	text_init(&t, f);
	struct finding_list empty = { 0 };
	findings_print_text(&t, sym, &empty);
	fclose(f);
	ok(!strcmp(out, "no findings\n"), "no findings, said in words");
	free(out);

	const char *hostile = "a \"quoted\" \\path\\ with \x1b[31mred\x1b[0m,"
			      " a\nnewline and \xff\xfe bad bytes";
	struct finding *fd = finding_add(&fl, "leak", SEV_WARNING, hostile,
					 "An explanation long enough that it "
					 "has to be wrapped over more than one "
					 "line of an eighty column terminal, "
					 "with a long word "
					 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
					 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
					 "aaaaaaaaaaaaa.",
					 "Free what you allocate.");
	ok(fd != NULL, "a finding is added");
	uint64_t frames[] = { 0x401136, 0x401020 };
	ok(finding_add_stack(fd, hostile, 42, frames, 2) == 0,
	   "a stack is added");
	ok(finding_add_str(fd, "path", hostile) == 0 &&
	   finding_add_int(fd, "bytes", 777) == 0 &&
	   finding_add_json(fd, "sizes", "[1,2,3]") == 0, "details are added");

	f = open_memstream(&out, &len);
	struct json_writer w;
	json_init(&w, f, 0);
	json_object_begin(&w);
	json_key(&w, "findings");
	findings_print_json(&w, sym, &fl);
	json_object_end(&w);
	fclose(f);
	ok(json_shape_ok(out), "JSON with hostile strings is well formed");
	ok(strstr(out, "\"kind\":\"leak\"") &&
	   strstr(out, "\"severity\":\"warning\""),
	   "kind and severity");
	ok(strstr(out, "\\\"quoted\\\" \\\\path\\\\ with \\u001b[31mred") &&
	   strstr(out, "\\ufffd\\ufffd"), "hostile text escaped");
	ok(strstr(out, "\"bytes\":777") && strstr(out, "\"sizes\":[1,2,3]"),
	   "details of each type");
	ok(strstr(out, "\"thread\":42") &&
	   strstr(out, "\"address\":\"0x401136\"") &&
	   strstr(out, "\"function\":null"), "stack frames per the contract");
	free(out);

	f = open_memstream(&out, &len);
	text_init(&t, f);
	findings_print_text(&t, sym, &fl);
	fclose(f);
	ok(lines_fit(out, 80), "text fits 80 columns, no escape bytes");
	ok(strstr(out, "warning") && strstr(out, "[leak]") &&
	   strstr(out, "fix:") && strstr(out, "#1"), "text has the parts");
	free(out);

	symbolizer_free(sym);
	finding_list_release(&fl);
	ok(fl.n == 0 && fl.v == NULL, "released");
	return tap_done();
}
