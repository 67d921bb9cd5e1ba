/* report_html.c: `analyze report --html`: the page, its summary, and every
 * finding with stacks and the source lines around each frame. Everything
 * from the trace is untrusted and goes through html_esc. */
#include "report_html.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "summary.h"
#include "trace_format.h"
#include "text_out.h"

/* ---- escaping ---------------------------------------------------------- */

static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char b = s[0];
	size_t len = b >= 0xc2 && b <= 0xdf ? 2
		   : b >= 0xe0 && b <= 0xef ? 3
		   : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong three-byte forms and surrogates are not valid UTF-8. */
	if (b == 0xe0 && s[1] < 0xa0)
		return 0;
	if (b == 0xed && s[1] >= 0xa0)
		return 0;
	if (b == 0xf0 && s[1] < 0x90)
		return 0;
	if (b == 0xf4 && s[1] >= 0x90)
		return 0;
	return len;
}

void html_esc(FILE *f, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		unsigned char c = u[i];
		if (c < 0x80) {
			switch (c) {
			case '&': fputs("&amp;", f); break;
			case '<': fputs("&lt;", f); break;
			case '>': fputs("&gt;", f); break;
			case '"': fputs("&quot;", f); break;
			case '\'': fputs("&#39;", f); break;
			case '\t': fputc('\t', f); break;
			case '\n': fputc('\n', f); break;
			default:
				if (c < 0x20 || c == 0x7f)
					fputs("\xef\xbf\xbd", f);
				else
					fputc(c, f);
			}
			i++;
			continue;
		}
		size_t n = utf8_len(u + i, len - i);
		if (n) {
			fwrite(u + i, 1, n, f);
			i += n;
		} else {
			fputs("\xef\xbf\xbd", f);
			i++;
		}
	}
}

void html_escz(FILE *f, const char *s)
{
	if (!s)
		s = "?";
	html_esc(f, s, strlen(s));
}

static void esc_str(FILE *f, const struct trace_str *s)
{
	html_esc(f, s->p, s->len);
}

void html_bytes(char *buf, size_t len, uint64_t bytes)
{
	summary_format_bytes(buf, len, bytes);
}

void html_ns(char *buf, size_t len, int64_t ns)
{
	summary_format_ns(buf, len, ns);
}

/* ---- source files ------------------------------------------------------- */

#define SRC_FILES 32
#define SRC_MAX (4u << 20)
#define SRC_CONTEXT 2

struct src_file {
	char *path;
	char *text;          /* NULL: not readable */
	size_t size;
	size_t *line_at;     /* offsets of line starts */
	size_t n_lines;
};

static struct src_file src_cache[SRC_FILES];
static size_t n_src;
static const struct trace_model *src_model;

/* A trace names its source files through the debug information of the
 * program it ran, which whoever built the program controls: only files
 * that look like source code are ever read, so that a report cannot be
 * made to quote /etc/shadow or a key. */
static bool looks_like_source(const char *path)
{
	static const char *const ext[] = {
		".c", ".h", ".cc", ".cpp", ".cxx", ".C", ".hh", ".hpp", ".hxx",
		".inl", ".tcc", ".S", ".s", ".rs", ".go", ".m", ".f", ".f90",
	};
	const char *dot = strrchr(path, '.');
	if (!dot || strchr(dot, '/') || !strncmp(path, "/proc/", 6) ||
	    !strncmp(path, "/sys/", 5) || !strncmp(path, "/dev/", 5))
		return false;
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
		if (!strcmp(dot, ext[i]))
			return true;
	return false;
}

/* A relative file name (as compilers record them) is tried as it is, then
 * next to the program and one directory up (demos/x.c of demos/x). */
static FILE *src_open(const char *path)
{
	if (!looks_like_source(path))
		return NULL;
	FILE *f = fopen(path, "r");
	if (f || path[0] == '/' || !src_model)
		return f;
	const struct trace_str *exe = &src_model->process.exe;
	char dir[4096];
	if (!exe->len || exe->len >= sizeof(dir) || memchr(exe->p, 0, exe->len))
		return NULL;
	memcpy(dir, exe->p, exe->len);
	dir[exe->len] = 0;
	for (int up = 0; up < 2 && !f; up++) {
		char *slash = strrchr(dir, '/');
		if (!slash)
			break;
		*slash = 0;
		char full[8192];
		snprintf(full, sizeof(full), "%s/%s", dir, path);
		f = fopen(full, "r");
	}
	return f;
}

static const struct src_file *src_get(const char *path)
{
	for (size_t i = 0; i < n_src; i++)
		if (!strcmp(src_cache[i].path, path))
			return &src_cache[i];
	if (n_src == SRC_FILES)
		return NULL;
	struct src_file *s = &src_cache[n_src];
	memset(s, 0, sizeof(*s));
	if (!(s->path = strdup(path)))
		return NULL;
	n_src++;
	struct stat st;
	FILE *f = src_open(path);
	if (!f)
		return s;
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size > 0 && (uint64_t)st.st_size <= SRC_MAX &&
	    (s->text = malloc((size_t)st.st_size + 1))) {
		s->size = fread(s->text, 1, (size_t)st.st_size, f);
		s->text[s->size] = 0;
		/* A NUL byte: not a text file, whatever its name says. */
		if (memchr(s->text, 0, s->size)) {
			free(s->text);
			s->text = NULL;
			fclose(f);
			return s;
		}
		size_t lines = 1;
		for (size_t i = 0; i < s->size; i++)
			lines += s->text[i] == '\n';
		if ((s->line_at = malloc(lines * sizeof(size_t)))) {
			s->line_at[s->n_lines++] = 0;
			for (size_t i = 0; i < s->size; i++)
				if (s->text[i] == '\n' && i + 1 < s->size)
					s->line_at[s->n_lines++] = i + 1;
		} else {
			free(s->text);
			s->text = NULL;
		}
	}
	fclose(f);
	return s;
}

static void src_release(void)
{
	for (size_t i = 0; i < n_src; i++) {
		free(src_cache[i].path);
		free(src_cache[i].text);
		free(src_cache[i].line_at);
	}
	n_src = 0;
}

/* The lines around line of file, the line itself marked; nothing when the
 * file is not at hand. */
static void src_lines(FILE *f, const char *file, unsigned line)
{
	const struct src_file *s = file && line ? src_get(file) : NULL;
	if (!s || !s->text || line > s->n_lines)
		return;
	unsigned from = line > SRC_CONTEXT ? line - SRC_CONTEXT : 1;
	unsigned to = line + SRC_CONTEXT;
	if (to > s->n_lines)
		to = (unsigned)s->n_lines;
	fputs("<pre class=\"src\">", f);
	for (unsigned l = from; l <= to; l++) {
		size_t at = s->line_at[l - 1];
		size_t end = l < s->n_lines ? s->line_at[l] : s->size;
		while (end > at && (s->text[end - 1] == '\n' ||
				    s->text[end - 1] == '\r'))
			end--;
		fprintf(f, "<span class=\"%s\"><span class=\"ln\">%5u</span> ",
			l == line ? "hl" : "cl", l);
		html_esc(f, s->text + at, end - at);
		fputs("</span>", f);
	}
	fputs("</pre>", f);
}

/* ---- the page ------------------------------------------------------------ */

static const char page_style[] =
	"body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;"
	"background:#f6f7f9}"
	"header{background:#1d2330;color:#fff;padding:14px 28px}"
	"header h1{margin:0;font-size:21px}header p{margin:4px 0 0;color:#c8cfdb}"
	"nav{padding:8px 28px;background:#e8ebf0;font-size:14px}"
	"nav a{margin-right:16px;color:#1d4ed8}"
	"main{padding:8px 28px 40px;max-width:1100px}"
	"section{margin-top:22px}h2{font-size:18px;border-bottom:1px solid #ccd;"
	"padding-bottom:4px}"
	"table{border-collapse:collapse}td,th{padding:2px 12px 2px 0;"
	"text-align:left;vertical-align:top}th{color:#556;font-weight:600}"
	".finding{background:#fff;border:1px solid #d5d9e0;border-left:6px solid"
	" #888;border-radius:4px;padding:10px 16px;margin:14px 0}"
	".sev-error{border-left-color:#c62828}.sev-warning{border-left-color:"
	"#e69500}.sev-info{border-left-color:#1e88e5}"
	".finding h3{margin:2px 0 6px;font-size:16px}"
	".kind{font:12px monospace;background:#eef;border-radius:3px;"
	"padding:1px 6px;margin-right:8px}"
	".fix{background:#eef8ee;border-radius:3px;padding:6px 10px}"
	"ol.stack{margin:4px 0;padding-left:24px;font:13px monospace}"
	"ol.stack li{margin:2px 0}.where{color:#667}"
	"pre.src{margin:2px 0 6px;background:#f3f4f7;padding:4px 8px;tab-size:8;"
	"font:12px monospace;overflow-x:auto}"
	"pre.src .hl{background:#fff2b3;display:block}"
	"pre.src .cl{display:block}.ln{color:#99a}"
	"details summary{cursor:pointer;font-weight:600;margin-top:6px}"
	"svg{background:#fff;border:1px solid #d5d9e0;max-width:100%;height:auto}"
	"svg text{font:11px sans-serif}svg .mono{font:11px monospace}"
	".note{color:#556;font-size:14px}"
	".ok{color:#2e7d32;font-weight:600}";

static void header(const struct html_page *p)
{
	FILE *f = p->f;
	const struct trace_model *m = p->m;
	const struct trace_str *exe = &m->process.exe;
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src"
	      " 'none'; style-src 'unsafe-inline'; img-src data:\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width\">\n"
	      "<title>libspy report: ", f);
	if (m->process.argc)
		esc_str(f, &m->process.argv[0]);
	else
		esc_str(f, exe);
	fprintf(f, "</title>\n<style>%s</style></head>\n<body>\n<header>"
		"<h1>libspy report</h1><p>", page_style);
	esc_str(f, exe);
	fprintf(f, " &middot; pid %" PRIu64 " &middot; %zu finding%s</p>"
		"</header>\n", m->process.pid, p->fl->n, text_plural(p->fl->n, "", "s"));
	fputs("<nav><a href=\"#summary\">summary</a><a href=\"#findings\">"
	      "findings</a><a href=\"#heap\">heap</a><a href=\"#locks\">locks"
	      "</a><a href=\"#threads\">threads</a><a href=\"#syscalls\">system"
	      " calls</a><a href=\"#map\">memory map</a></nav>\n<main>\n", f);
}

static void row(FILE *f, const char *label)
{
	fprintf(f, "<tr><th>%s</th><td>", label);
}

static void exit_words(FILE *f, const struct trace_model *m)
{
	if (!m->has_exit) {
		fputs(m->truncated ? "unknown: the trace was cut short"
				   : "no exit record", f);
		return;
	}
	switch (m->exit_how) {
	case TRACE_EXIT_SIGNAL:
		fprintf(f, "killed by signal %" PRIu64 " (%s)", m->exit_signal,
			strsignal((int)m->exit_signal));
		break;
	case TRACE_EXIT_UNDERSCORE:
		fprintf(f, "_exit(%" PRIu64 ")", m->exit_status);
		break;
	case TRACE_EXIT_UNKNOWN:
		fputs("exited, status not seen", f);
		break;
	default:
		fprintf(f, "exit status %" PRIu64, m->exit_status);
	}
}

static void summary(const struct html_page *p)
{
	FILE *f = p->f;
	const struct trace_model *m = p->m;
	const struct heap_stats *h = p->h;
	char a[48], b[48];
	fputs("<section id=\"summary\"><h2>Summary</h2><table>\n", f);
	row(f, "program");
	esc_str(f, &m->process.exe);
	fputs("</td></tr>\n", f);
	row(f, "command");
	for (size_t i = 0; i < m->process.argc && i < 64; i++) {
		fputs(i ? " <code>" : "<code>", f);
		esc_str(f, &m->process.argv[i]);
		fputs("</code>", f);
	}
	if (m->process.argc > 64)
		fprintf(f, " &hellip; (%zu arguments)", m->process.argc);
	fputs("</td></tr>\n", f);
	row(f, "process");
	fprintf(f, "pid %" PRIu64 ", parent %" PRIu64 ", started by %s",
		m->process.pid, m->process.ppid,
		summary_cause_name(m->process.cause));
	fputs("</td></tr>\n", f);
	row(f, "exit");
	exit_words(f, m);
	fputs("</td></tr>\n", f);
	uint64_t end = m->has_exit ? m->exit_ts : m->last_ts;
	html_ns(a, sizeof(a), end ? trace_rel_ns(m, end) : 0);
	row(f, "ran for");
	fprintf(f, "%s</td></tr>\n", a);
	row(f, "threads");
	fprintf(f, "%zu</td></tr>\n", m->n_threads);
	row(f, "events");
	fprintf(f, "%zu record%s read</td></tr>\n", m->n_events,
		text_plural(m->n_events, "", "s"));
	uint64_t calls = 0;
	for (int i = 0; i <= TRACE_FN_MAX; i++)
		calls += h->calls[i];
	html_bytes(a, sizeof(a), h->peak_bytes);
	html_bytes(b, sizeof(b), h->live_bytes);
	row(f, "heap");
	fprintf(f, "%" PRIu64 " call%s; peak %s in %" PRIu64 " block%s; %s in %"
		PRIu64 " block%s still live at the end</td></tr>\n", calls,
		text_plural(calls, "", "s"), a, h->peak_blocks,
		text_plural(h->peak_blocks, "", "s"), b, h->live_blocks,
		text_plural(h->live_blocks, "", "s"));
	row(f, "trace");
	fputs(m->truncated ? "cut short: the last events may be missing"
			   : "complete", f);
	fputs("</td></tr>\n</table>\n", f);
	size_t shown = 0;
	for (size_t i = 0; i < m->n_notes && shown < 20; i++, shown++) {
		fputs(shown ? "<br>" : "<p class=\"note\">", f);
		fputs(m->notes[i].level ? "warning: " : "note: ", f);
		esc_str(f, &m->notes[i].text);
	}
	if (shown)
		fputs("</p>\n", f);
	fputs("</section>\n", f);
}

static void frame_line(FILE *f, size_t index, bool inlined, const char *fn,
		       const char *file, unsigned line,
		       const struct sym_frame *fr, bool with_source)
{
	fprintf(f, "<li value=\"%zu\">%s<b>", index, inlined ? "inlined " : "");
	html_escz(f, fn ? fn : "??");
	fputs("</b> <span class=\"where\">", f);
	if (file) {
		fputs("at ", f);
		html_escz(f, file);
		fprintf(f, ":%u", line);
	} else if (fr->module) {
		fputs("in ", f);
		html_escz(f, fr->module);
		fprintf(f, "+0x%" PRIx64, fr->offset);
	} else {
		fprintf(f, "0x%" PRIx64, fr->address);
	}
	fputs("</span>", f);
	if (with_source)
		src_lines(f, file, line);
	fputs("</li>\n", f);
}

static void stack(const struct html_page *p, const struct finding_stack *s,
		  bool open)
{
	FILE *f = p->f;
	fprintf(f, "<details%s><summary>", open ? " open" : "");
	html_escz(f, s->label);
	if (s->thread)
		fprintf(f, " <span class=\"where\">(thread %" PRIu64 ")</span>",
			s->thread);
	fputs("</summary>\n", f);
	if (!s->n) {
		fputs("<p class=\"note\">no stack was recorded</p></details>\n", f);
		return;
	}
	fputs("<ol class=\"stack\" start=\"0\">\n", f);
	size_t index = 0, with_src = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct sym_frame *fr = symbolizer_lookup(p->sym, s->frames[i]);
		for (unsigned k = 0; k < fr->n_inl; k++, index++) {
			bool isrc = fr->inl[k].file && with_src < 6;
			with_src += isrc;
			frame_line(f, index, true, fr->inl[k].function,
				   fr->inl[k].file, fr->inl[k].line, fr, isrc);
		}
		bool src = fr->file && with_src < 6;
		with_src += src;
		frame_line(f, index++, false, fr->function, fr->file, fr->line,
			   fr, src);
	}
	fputs("</ol></details>\n", f);
}

static void finding(const struct html_page *p, const struct finding *x,
		    size_t i)
{
	FILE *f = p->f;
	fprintf(f, "<article class=\"finding sev-%s\" id=\"finding-%zu\" "
		"data-kind=\"", finding_severity_name(x->severity), i + 1);
	html_escz(f, x->kind);
	fputs("\"><h3><span class=\"kind\">", f);
	html_escz(f, x->kind);
	fputs("</span>", f);
	html_escz(f, x->headline);
	fprintf(f, "</h3>\n<p><b>%s.</b> ", finding_severity_name(x->severity));
	html_escz(f, x->explanation);
	fputs("</p>\n", f);
	if (x->fix && *x->fix) {
		fputs("<p class=\"fix\"><b>Fix:</b> ", f);
		html_escz(f, x->fix);
		fputs("</p>\n", f);
	}
	/* A cycle of many edges has many stacks: the first few open. */
	for (size_t k = 0; k < x->n_stacks; k++)
		stack(p, &x->stacks[k], k < 4);
	if (x->n_details) {
		fputs("<details><summary>details</summary><table>\n", f);
		for (size_t k = 0; k < x->n_details; k++) {
			const struct finding_detail *d = &x->details[k];
			fputs("<tr><th>", f);
			html_escz(f, d->key);
			fputs("</th><td>", f);
			if (d->type == DETAIL_INT) {
				fprintf(f, "%" PRId64, d->num);
			} else {
				fputs(d->type == DETAIL_JSON ? "<code>" : "", f);
				html_escz(f, d->str);
				fputs(d->type == DETAIL_JSON ? "</code>" : "", f);
			}
			fputs("</td></tr>\n", f);
		}
		fputs("</table></details>\n", f);
	}
	fputs("</article>\n", f);
}

static void findings(const struct html_page *p)
{
	FILE *f = p->f;
	const struct finding_list *l = p->fl;
	fputs("<section id=\"findings\"><h2>Findings</h2>\n", f);
	if (!l->n)
		fputs("<p class=\"ok\" id=\"no-findings\">No findings: libspy saw "
		      "nothing wrong in this run.</p>\n", f);
	else
		fprintf(f, "<p>%zu finding%s, the most severe first.</p>\n",
			l->n, text_plural(l->n, "", "s"));
	for (size_t i = 0; i < l->n; i++)
		finding(p, &l->v[i], i);
	fputs("</section>\n", f);
}

static int picture(const struct html_page *p, const char *id,
		   const char *title, const char *intro,
		   int (*draw)(const struct html_page *))
{
	fprintf(p->f, "<section id=\"%s\"><h2>%s</h2>\n<p class=\"note\">%s"
		"</p>\n", id, title, intro);
	int rc = draw(p);
	fputs("</section>\n", p->f);
	return rc;
}

int report_html_write(const struct html_page *p)
{
	int rc = 0;
	src_model = p->m;
	header(p);
	summary(p);
	findings(p);
	rc |= picture(p, "heap", "The heap: blocks and holes",
		      "The brk heap from its start to its end, one pixel for "
		      "a fixed number of bytes: dark is live blocks, light is "
		      "free memory, either a hole between live blocks or the "
		      "free top. The numbers are those of <code>analyze "
		      "fragmentation</code>.", report_html_heap);
	rc |= picture(p, "locks", "The lock graph",
		      "An arrow from A to B: some thread took B while it held A. "
		      "A cycle in this graph is a deadlock waiting to happen; the "
		      "cycle a finding reports is drawn in red.",
		      report_html_locks);
	rc |= picture(p, "threads", "Threads over time",
		      "One row per thread from its start to its end; red marks "
		      "time spent waiting for a lock, blue time holding one, "
		      "orange time blocked in a condition wait.",
		      report_html_threads);
	rc |= picture(p, "syscalls", "System calls per call site",
		      "read/write-family calls, one bar per call site and "
		      "descriptor, with the bytes each call moved on average.",
		      report_html_syscalls);
	rc |= picture(p, "map", "The process map",
		      "The address space at start, from the lowest address at "
		      "the top to the highest: code, data, heap, libraries, "
		      "stacks. Sizes are drawn on a logarithmic scale.",
		      report_html_map);
	fputs("</main>\n<footer class=\"note\" style=\"padding:0 28px 20px\">"
	      "Written by libspy's analyze from ", p->f);
	html_escz(p->f, p->m->path);
	fputs(".</footer>\n</body></html>\n", p->f);
	src_release();
	return rc ? -1 : 0;
}

/* ---- the command ---------------------------------------------------------- */

int cmd_report_html(const struct cmd_args *a)
{
	struct report_input in;
	int rc0 = report_input_load(a->trace, &in);
	if (rc0)
		return rc0;
	/* Without -o the page goes next to the trace, and its path is
	 * printed (spy --html relies on it). */
	char *path = NULL;
	const char *out = a->out;
	if (!out) {
		if (asprintf(&path, "%s.html", a->trace) < 0)
			path = NULL;
		out = path;
	}
	FILE *f = NULL;
	int status = 2;
	if (!out) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
	} else if (!strcmp(out, "-")) {
		f = stdout;
	} else if (!(f = fopen(out, "w"))) {
		fprintf(stderr, "analyze: cannot write '%s': %s\n", out,
			strerror(errno));
	}
	if (f) {
		struct html_page p = { f, &in.m, in.sym, &in.fl, &in.h };
		int rc = report_html_write(&p);
		if (f != stdout) {
			if (fclose(f) != 0 || rc < 0) {
				fprintf(stderr, "analyze: cannot write '%s'%s\n",
					out, rc < 0 ? ": out of memory" : "");
			} else {
				status = in.fl.n ? 1 : 0;
				if (!a->out)
					printf("libspy: HTML report written to %s\n",
					       out);
			}
		} else {
			status = rc < 0 ? 2 : in.fl.n ? 1 : 0;
		}
	}
	free(path);
	report_input_release(&in);
	return cmd_finish(status);
}
