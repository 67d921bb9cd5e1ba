/* cmd_frag_compare.c: `analyze fragmentation --compare A B`: two runs'
 * heaps side by side at the moment that matters in each (the first failed
 * allocation, else the end), and which one fragmented worse, in words.
 * Text fits 80 columns. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "frag_out.h"
#include "heap_frag.h"
#include "json_writer.h"
#include "text_out.h"
#include "trace_format.h"

#define COL 28  /* columns of each run's values */

struct run {
	const char *label;   /* "A" or "B" */
	const char *trace;
	struct trace_model m;
	struct heap_frag f;
	size_t failures;
	uint64_t stranded;   /* free bytes outside the largest free region */
	double unused;       /* share of the footprint holding no live block */
};

static int run_load(struct run *r, const char *label, const char *trace)
{
	r->label = label;
	r->trace = trace;
	if (cmd_load(trace, &r->m))
		return 2;
	const struct trace_event *fail = NULL;
	for (size_t i = 0; i < r->m.n_events; i++)
		if (r->m.events[i].kind == TRACE_ALLOC_FAIL) {
			if (!fail)
				fail = &r->m.events[i];
			r->failures++;
		}
	if (heap_frag_at(&r->m, fail, &r->f) < 0) {
		fprintf(stderr, "analyze: %s: out of memory\n", trace);
		trace_model_release(&r->m);
		return 2;
	}
	const struct heap_frag *f = &r->f;
	uint64_t free_all = f->free_bytes + f->top_bytes;
	uint64_t big = f->largest_hole > f->top_bytes ? f->largest_hole
						       : f->top_bytes;
	r->stranded = free_all - big;
	r->unused = f->footprint
		? (double)f->footprint_free / (double)f->footprint : 0;
	return 0;
}

/* The program's name: the last part of its path, or "?". */
static struct trace_str program(const struct trace_model *m)
{
	struct trace_str s = m->process.exe;
	if (!m->process.seen || !s.len)
		return (struct trace_str){ "?", 1 };
	for (size_t i = s.len; i > 0; i--)
		if (s.p[i - 1] == '/')
			return (struct trace_str){ s.p + i, s.len - i };
	return s;
}

static void cell(const char *s, size_t len, bool last)
{
	size_t w = text_put_fit(stdout, s, len, COL);
	if (!last)
		printf("%*s", (int)(COL + 1 - w), "");
}

static void row(const char *label, const char *a, const char *b)
{
	printf("  %-18s ", label);
	cell(a, strlen(a), false);
	cell(b, strlen(b), true);
	printf("\n");
}

static void row_size(const char *label, uint64_t a, uint64_t b)
{
	char x[16], y[16];
	text_size(x, sizeof(x), a);
	text_size(y, sizeof(y), b);
	row(label, x, y);
}

/* Rows whose values only mean something for one allocator. */
static void row_if(const char *label, const char *a, const char *b,
		   bool a_has, bool b_has)
{
	row(label, a_has ? a : "-", b_has ? b : "-");
}

static void table(const struct run *a, const struct run *b)
{
	char x[64], y[64];
	row("", "A", "B");
	printf("  %-18s ", "trace");
	cell(a->trace, strlen(a->trace), false);
	cell(b->trace, strlen(b->trace), true);
	printf("\n  %-18s ", "program");
	struct trace_str pa = program(&a->m), pb = program(&b->m);
	cell(pa.p, pa.len, false);
	cell(pb.p, pb.len, true);
	printf("\n");
	row("allocator", heap_frag_allocator(&a->f), heap_frag_allocator(&b->f));
	frag_moment(x, sizeof(x), &a->m, &a->f);
	frag_moment(y, sizeof(y), &b->m, &b->f);
	row("moment", x, y);
	snprintf(x, sizeof(x), "%zu", a->failures);
	snprintf(y, sizeof(y), "%zu", b->failures);
	row("failed allocations", x, y);
	row_size("live", a->f.live_bytes, b->f.live_bytes);
	snprintf(x, sizeof(x), "%" PRIu64, a->f.live_blocks);
	snprintf(y, sizeof(y), "%" PRIu64, b->f.live_blocks);
	row("live blocks", x, y);
	row_size("footprint", a->f.footprint, b->f.footprint);
	char fa[16], fb[16];
	text_size(fa, sizeof(fa), a->f.footprint_free);
	text_size(fb, sizeof(fb), b->f.footprint_free);
	snprintf(x, sizeof(x), "%s (%.0f%%)", fa, a->unused * 100);
	snprintf(y, sizeof(y), "%s (%.0f%%)", fb, b->unused * 100);
	row("free in it", x, y);
	bool ha = heap_frag_has_holes(&a->f), hb = heap_frag_has_holes(&b->f);
	snprintf(x, sizeof(x), "%" PRIu64, a->f.holes);
	snprintf(y, sizeof(y), "%" PRIu64, b->f.holes);
	row_if("holes", x, y, ha, hb);
	text_size(x, sizeof(x), a->f.largest_hole);
	text_size(y, sizeof(y), b->f.largest_hole);
	row_if("largest hole", x, y, ha, hb);
	snprintf(x, sizeof(x), "%.2f", a->f.external);
	snprintf(y, sizeof(y), "%.2f", b->f.external);
	row_if("external frag.", x, y, ha, hb);
	text_size(x, sizeof(x), a->stranded);
	text_size(y, sizeof(y), b->stranded);
	row_if("free, not largest", x, y, ha, hb);
	const struct heap_info *ia = &a->f.info, *ib = &b->f.info;
	bool va = ia->valid, vb = ib->valid;
	text_size(x, sizeof(x), ia->rss);
	text_size(y, sizeof(y), ib->rss);
	row_if("RSS", x, y, va, vb);
	text_size(x, sizeof(x), ia->vm_size);
	text_size(y, sizeof(y), ib->vm_size);
	row_if("address space", x, y, va, vb);
	text_size(fa, sizeof(fa), ia->arena);
	text_size(fb, sizeof(fb), ia->fordblks);
	snprintf(x, sizeof(x), "%s, %s free", fa, fb);
	text_size(fa, sizeof(fa), ib->arena);
	text_size(fb, sizeof(fb), ib->fordblks);
	snprintf(y, sizeof(y), "%s, %s free", fa, fb);
	row_if("glibc heap", x, y, va, vb);
	text_size(fa, sizeof(fa), ia->hblkhd);
	snprintf(x, sizeof(x), "%s in %" PRIu64 " block%s", fa, ia->hblks,
		 text_plural(ia->hblks, "", "s"));
	text_size(fb, sizeof(fb), ib->hblkhd);
	snprintf(y, sizeof(y), "%s in %" PRIu64 " block%s", fb, ib->hblks,
		 text_plural(ib->hblks, "", "s"));
	row_if("glibc mmapped", x, y, va, vb);
	bool ja = va && ia->allocator == HEAP_JEMALLOC;
	bool jb = vb && ib->allocator == HEAP_JEMALLOC;
	if (!ja && !jb)
		return;
	static const char *const names[] = { "allocated", "active", "mapped",
		"resident", "retained", "metadata" };
	const uint64_t va6[] = { ia->je_allocated, ia->je_active, ia->je_mapped,
		ia->je_resident, ia->je_retained, ia->je_metadata };
	const uint64_t vb6[] = { ib->je_allocated, ib->je_active, ib->je_mapped,
		ib->je_resident, ib->je_retained, ib->je_metadata };
	for (int i = 0; i < 6; i++) {
		char label[32];
		snprintf(label, sizeof(label), "jemalloc %s", names[i]);
		text_size(x, sizeof(x), va6[i]);
		text_size(y, sizeof(y), vb6[i]);
		row_if(label, x, y, ja, jb);
	}
}

struct verdict {
	const char *measure;       /* "stranded_free_bytes", "unused_share" */
	double a, b;
	const struct run *worse;   /* NULL: about the same */
	char text[1024];
};

/* Which heap fragmented worse. With glibc's layout on both sides: the
 * free bytes outside the largest free region (what a big request cannot
 * use). Otherwise the layouts differ, and only the share of each
 * footprint that holds no live block compares. */
static void judge(const struct run *a, const struct run *b, struct verdict *v)
{
	char x[16], y[16], fx[16], fy[16];
	const char *pa = a->label, *pb = b->label;
	size_t k;
	if (heap_frag_has_holes(&a->f) && heap_frag_has_holes(&b->f)) {
		v->measure = "stranded_free_bytes";
		v->a = (double)a->stranded;
		v->b = (double)b->stranded;
		double hi = v->a > v->b ? v->a : v->b;
		double lo = v->a > v->b ? v->b : v->a;
		if (hi >= 64 * 1024 && hi >= lo * 1.25 + 64 * 1024)
			v->worse = v->a > v->b ? a : b;
		const struct run *w = v->worse ? v->worse : a;
		const struct run *o = w == a ? b : a;
		text_size(x, sizeof(x), w->stranded);
		text_size(y, sizeof(y), o->stranded);
		text_size(fx, sizeof(fx), w->f.largest_hole);
		if (v->worse) {
			k = (size_t)snprintf(v->text, sizeof(v->text),
				"%s's heap fragmented worse: %s of it was free "
				"outside its largest free region, in %" PRIu64
				" %s none bigger than %s (external "
				"fragmentation %.2f), against %s in %s (%.2f).",
				w->label, x, w->f.holes,
				text_plural(w->f.holes, "hole", "holes"), fx,
				w->f.external, y,
				o->label, o->f.external);
			if (o->stranded && k < sizeof(v->text))
				k += (size_t)snprintf(v->text + k,
					sizeof(v->text) - k,
					" That is %.1f times as much.",
					(double)w->stranded / (double)o->stranded);
		} else {
			k = (size_t)snprintf(v->text, sizeof(v->text),
				"%s and %s fragmented about the same: %s and %s "
				"free outside the largest free region (external "
				"fragmentation %.2f and %.2f).", pa, pb,
				w == a ? x : y, w == a ? y : x,
				a->f.external, b->f.external);
		}
	} else {
		v->measure = "unused_share";
		v->a = a->unused;
		v->b = b->unused;
		if (v->a - v->b >= 0.05 || v->b - v->a >= 0.05)
			v->worse = v->a > v->b ? a : b;
		const struct run *w = v->worse ? v->worse : a;
		const struct run *o = w == a ? b : a;
		text_size(fx, sizeof(fx), w->f.footprint);
		text_size(fy, sizeof(fy), o->f.footprint);
		bool je = a->f.info.allocator == HEAP_JEMALLOC ||
			  b->f.info.allocator == HEAP_JEMALLOC;
		if (!a->f.footprint && !b->f.footprint)
			k = (size_t)snprintf(v->text, sizeof(v->text),
				"Neither heap held any memory to fragment.");
		else
			k = (size_t)snprintf(v->text, sizeof(v->text),
				"%s: %.0f%% of %s's %s footprint (%s) held no "
				"live block, against %.0f%% of %s's %s (%s). %s",
				v->worse ? (w == a ? "A's heap wasted more"
					    : "B's heap wasted more")
				: "About the same", w->unused * 100, w->label,
				fx, heap_frag_allocator(&w->f), o->unused * 100,
				o->label, fy, heap_frag_allocator(&o->f),
				je ? "jemalloc's holes are not counted (it groups "
				     "blocks by size class), so the footprints "
				     "are compared."
				   : "A run without a brk heap has no holes to "
				     "count, so the footprints are compared.");
	}
	if (k < sizeof(v->text) && (a->failures || b->failures))
		snprintf(v->text + k, sizeof(v->text) - k,
			 a->failures && b->failures
			 ? " An allocation failed in both runs."
			 : " An allocation failed in %s only.",
			 a->failures ? pa : pb);
}

static void print_json(const struct run *r, size_t n, const struct verdict *v)
{
	struct json_writer w;
	json_init(&w, stdout, 3);
	json_object_begin(&w);
	json_key(&w, "runs");
	json_array_begin(&w);
	for (size_t i = 0; i < n; i++) {
		struct trace_str p = program(&r[i].m);
		json_object_begin(&w);
		json_field_string(&w, "label", r[i].label);
		json_field_string(&w, "trace", r[i].trace);
		json_key(&w, "program");
		json_string_len(&w, p.p, p.len);
		json_field_string(&w, "allocator", heap_frag_allocator(&r[i].f));
		json_field_uint(&w, "failures", r[i].failures);
		json_field_uint(&w, "stranded_free_bytes", r[i].stranded);
		json_key(&w, "unused_share");
		json_double(&w, r[i].unused);
		json_key(&w, "snapshot");
		frag_json(&w, &r[i].m, &r[i].f);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_key(&w, "verdict");
	json_object_begin(&w);
	json_field_string(&w, "measure", v->measure);
	json_key(&w, "a");
	json_double(&w, v->a);
	json_key(&w, "b");
	json_double(&w, v->b);
	json_key(&w, "worse");
	if (v->worse)
		json_string(&w, v->worse->label);
	else
		json_null(&w);
	json_field_string(&w, "text", v->text);
	json_object_end(&w);
	json_object_end(&w);
	fputc('\n', stdout);
}

int cmd_frag_compare(const struct cmd_args *args)
{
	if (args->svg)
		return cmd_bad_usage("fragmentation --compare draws no picture: "
				     "use --svg on each trace");
	struct run r[2];
	memset(r, 0, sizeof(r));
	if (run_load(&r[0], "A", args->trace))
		return 2;
	if (run_load(&r[1], "B", args->arg)) {
		trace_model_release(&r[0].m);
		return 2;
	}
	struct verdict v = { 0 };
	judge(&r[0], &r[1], &v);
	if (args->json) {
		print_json(r, 2, &v);
	} else {
		table(&r[0], &r[1]);
		printf("\n");
		text_wrap(stdout, v.text, 0);
	}
	int bad = 0;
	for (int i = 0; i < 2; i++) {
		bad |= heap_frag_is_bad(&r[i].f) || r[i].failures;
		trace_model_release(&r[i].m);
	}
	return cmd_finish(bad ? 1 : 0);
}
