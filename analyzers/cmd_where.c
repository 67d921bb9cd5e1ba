/* cmd_where.c: `analyze where ADDR TRACE` (or TRACE ADDR): which region of
 * the start and end maps holds an address, what code or variable is there,
 * and which recorded heap block held it: its size, the offset, the thread,
 * live or freed, where it was allocated and freed, and the blocks that
 * held the address before it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "map_out.h"
#include "stack_out.h"
#include "text_out.h"
#include "trace_format.h"

/* Earlier blocks shown in text; --json lists up to WHERE_JSON_MAX. */
#define WHERE_TEXT_EARLIER 3
#define WHERE_JSON_MAX 100

static int parse_addr(const char *s, uint64_t *out)
{
	char *end = NULL;
	if (!s || !*s || *s == '-')
		return -1;
	*out = strtoull(s, &end, 0);
	return end && !*end && end != s ? 0 : -1;
}

/* Which argument is the address: TRACE ADDR, or ADDR TRACE. */
static int pick_args(const struct cmd_args *a, const char **trace, uint64_t *addr)
{
	if (!a->arg) {
		cmd_bad_usage("'where' needs an address: analyze where ADDR TRACE");
		return -1;
	}
	bool second = parse_addr(a->arg, addr) == 0;
	uint64_t first_addr;
	bool first = parse_addr(a->trace, &first_addr) == 0;
	if (second && (!first || access(a->trace, F_OK) == 0)) {
		*trace = a->trace;
		return 0;
	}
	if (first) {
		*addr = first_addr;
		*trace = a->arg;
		return 0;
	}
	/* Neither is an address: name the one that is not a file. */
	const char *bad = access(a->arg, F_OK) == 0 ? a->trace : a->arg;
	cmd_bad_usage("'%s' is not an address: write it like 0x7ffd1234 or 4096",
		      bad);
	return -1;
}

/* The blocks that ever held addr, oldest first. */
struct holders {
	size_t *v;
	size_t n;
};

static int find_holders(const struct heap_history *h, uint64_t addr, struct holders *out)
{
	out->v = NULL;
	out->n = 0;
	size_t cap = 0;
	for (size_t i = 0; i < h->n; i++) {
		if (!heap_life_holds(&h->v[i], addr))
			continue;
		if (out->n == cap) {
			cap = cap ? cap * 2 : 8;
			void *p = realloc(out->v, cap * sizeof(*out->v));
			if (!p)
				return -1;
			out->v = p;
		}
		out->v[out->n++] = i;
	}
	return 0;
}

static const struct trace_stack *stack_of(const struct trace_model *m, uint32_t ref)
{
	return ref && ref <= m->n_stacks && m->stacks[ref - 1].defined ? &m->stacks[ref - 1]
									 : NULL;
}

/* ---- text ---------------------------------------------------------------- */

/* "at the end:   559d16597000-559d165b8000 (132 KiB, rw-p), 672 bytes in";
 * with named, the region's kind and description on a line first. */
static void region_text(const char *label, const struct map_region *r,
			const struct map_input *in, uint64_t addr, bool named)
{
	char prot[5], size[16], what[512];
	printf("  %-13s ", label);
	if (!r) {
		printf("not mapped\n");
		return;
	}
	if (named) {
		proc_map_describe(r, in->pm.main_tid, what, sizeof(what));
		int used = printf("%s: ", r->kind);
		text_put_fit(stdout, what, strlen(what), (size_t)(TEXT_WIDTH - 16 - used));
		printf("\n  %-13s ", "");
	}
	map_prot_text(r->prot, prot);
	text_size(size, sizeof(size), r->end - r->start);
	printf("%" PRIx64 "-%" PRIx64 " (%s, %s), ", r->start, r->end, size, prot);
	uint64_t off = !strcmp(r->kind, "stack") ? r->end - addr : addr - r->start;
	printf("%" PRIu64 " byte%s %s\n", off, text_plural(off, "", "s"),
	       !strcmp(r->kind, "stack") ? "below its top" : "in");
}

static void block_line(const struct heap_life *b, uint64_t addr, int indent)
{
	char size[24] = "", line[320];
	if (b->size >= 1024) {
		size[0] = ' ';
		size[1] = '(';
		text_size(size + 2, sizeof(size) - 3, b->size);
		strcat(size, ")");
	}
	snprintf(line, sizeof(line), "%" PRIu64 " byte%s%s at 0x%" PRIx64 ", offset %" PRIu64
		 ", by %s in thread %u", b->size, text_plural(b->size, "", "s"),
		 size, b->addr, addr - b->addr,
		 trace_alloc_fn_name(b->alloc_fn), (unsigned)b->alloc_tid);
	text_wrap(stdout, line, indent);
}

/* The first frame with a source line, else the first: "f at x.c:3". */
static void frame_brief(struct symbolizer *sym, const struct trace_stack *st, char *buf,
			size_t len)
{
	snprintf(buf, len, "??");
	if (!st || !st->n)
		return;
	const struct sym_frame *pick = NULL;
	for (uint32_t i = 0; i < st->n && !pick; i++) {
		const struct sym_frame *f = symbolizer_lookup(sym, st->frames[i]);
		if (f->file)
			pick = f;
	}
	if (!pick)
		pick = symbolizer_lookup(sym, st->frames[0]);
	if (pick->file) {
		const char *base = strrchr(pick->file, '/');
		snprintf(buf, len, "%s at %s:%u", pick->function ? pick->function : "??",
			 base ? base + 1 : pick->file, pick->line);
	}
	else if (pick->function)
		snprintf(buf, len, "%s", pick->function);
}

static void block_stacks_text(const struct text_out *t, struct symbolizer *sym,
			      const struct map_input *in, const struct heap_life *b)
{
	const struct trace_stack *as = stack_of(&in->m, b->alloc_stack);
	const struct trace_stack *fs = stack_of(&in->m, b->free_stack);
	printf("  allocated at%s\n", as ? ":" : ": (no stack recorded)");
	if (as)
		stack_print_text(t, sym, as->frames, as->n, 4);
	if (!b->freed)
		return;
	printf("  freed by thread %u at%s\n", (unsigned)b->free_tid,
	       fs ? ":" : ": (no stack recorded)");
	if (fs)
		stack_print_text(t, sym, fs->frames, fs->n, 4);
}

static void where_text(const struct map_input *in, struct symbolizer *sym, uint64_t addr,
		       const struct map_region *re, const struct map_region *rs,
		       const struct sym_frame *symbol, const struct holders *hs)
{
	struct text_out t;
	text_init(&t, stdout);
	char line[160];
	if (!re && !rs && !hs->n) {
		snprintf(line, sizeof(line), "0x%" PRIx64 ": not mapped at the start or at the "
			 "end, and in no heap block", addr);
		text_wrap(stdout, line, 0);
		return;
	}
	const struct map_region *r = re ? re : rs;
	char what[512];
	printf("0x%" PRIx64 ": ", addr);
	if (r) {
		proc_map_describe(r, in->pm.main_tid, what, sizeof(what));
		int used = printf("%s, ", r->kind);
		text_put_fit(stdout, what, strlen(what), (size_t)(TEXT_WIDTH - 16 - used));
	} else {
		printf("a heap block in memory no recorded map covers");
	}
	fputc('\n', stdout);
	region_text("at the end:", re, in, addr, false);
	if (!rs || !re || rs->start != re->start || rs->end != re->end ||
	    strcmp(rs->kind, re->kind))
		region_text("at the start:", rs, in, addr, re != NULL);
	else
		printf("  %-13s the same region\n", "at the start:");
	if (symbol && symbol->function) {
		bool code = r && !strcmp(r->kind, "text");
		printf("  %-13s %s%s", code ? "code:" : "variable:", code ? "in " : "",
		       symbol->function);
		if (code && symbol->file)
			printf(" at %s:%u", symbol->file, symbol->line);
		fputc('\n', stdout);
	}
	if (!hs->n) {
		if (r && (!strcmp(r->kind, "heap") || !strcmp(r->kind, "mmap")))
			printf("  no recorded heap block ever held this address\n");
		return;
	}
	const struct heap_life *b = &in->h.v[hs->v[hs->n - 1]];
	if (!b->freed)
		printf("  in the heap block (still live at the end):\n");
	else if (b->free_fn == TRACE_FN_REALLOC || b->free_fn == TRACE_FN_REALLOCARRAY)
		printf("  the last heap block here (released by %s):\n",
		       trace_alloc_fn_name(b->free_fn));
	else
		printf("  the last heap block here (freed):\n");
	block_line(b, addr, 4);
	block_stacks_text(&t, sym, in, b);
	if (hs->n < 2)
		return;
	size_t shown = hs->n - 1 < WHERE_TEXT_EARLIER ? hs->n - 1 : WHERE_TEXT_EARLIER;
	printf("  before it at this address: %zu block%s, all freed%s\n", hs->n - 1,
	       text_plural(hs->n - 1, "", "s"),
	       hs->n - 1 > shown ? "; the last ones first" : "");
	for (size_t k = 0; k < shown; k++) {
		const struct heap_life *e = &in->h.v[hs->v[hs->n - 2 - k]];
		char af[256], ff[256], line[600];
		block_line(e, addr, 4);
		frame_brief(sym, stack_of(&in->m, e->alloc_stack), af, sizeof(af));
		frame_brief(sym, stack_of(&in->m, e->free_stack), ff, sizeof(ff));
		snprintf(line, sizeof(line), "allocated in %s%s%s", af,
			 e->freed ? "; freed in " : "", e->freed ? ff : "");
		text_wrap(stdout, line, 6);
	}
}

/* ---- JSON ---------------------------------------------------------------- */

static void stack_json(struct json_writer *w, struct symbolizer *sym,
		       const struct trace_stack *st)
{
	if (st)
		stack_print_json(w, sym, st->frames, st->n);
	else
		json_null(w);
}

static void block_json(struct json_writer *w, struct symbolizer *sym, const struct map_input *in,
		       const struct heap_life *b, uint64_t addr)
{
	json_object_begin(w);
	json_key(w, "address"); json_hex(w, b->addr);
	json_field_uint(w, "size", b->size);
	json_field_uint(w, "offset", addr - b->addr);
	json_field_string(w, "allocated_by", trace_alloc_fn_name(b->alloc_fn));
	json_field_uint(w, "thread", b->alloc_tid);
	json_field_bool(w, "freed", b->freed);
	json_field_bool(w, "live_at_end", !b->freed);
	json_key(w, "freed_by");
	if (b->freed)
		json_string(w, trace_alloc_fn_name(b->free_fn));
	else
		json_null(w);
	json_key(w, "free_thread");
	if (b->freed)
		json_uint(w, b->free_tid);
	else
		json_null(w);
	json_field_uint(w, "alloc_ns", trace_rel_ns(&in->m, b->alloc_ts) > 0 ?
			(uint64_t)trace_rel_ns(&in->m, b->alloc_ts) : 0);
	json_key(w, "alloc_stack");
	stack_json(w, sym, stack_of(&in->m, b->alloc_stack));
	json_key(w, "free_stack");
	stack_json(w, sym, b->freed ? stack_of(&in->m, b->free_stack) : NULL);
	json_object_end(w);
}

static void where_json(const struct map_input *in, struct symbolizer *sym, uint64_t addr,
		       const struct map_region *re, const struct map_region *rs,
		       const struct sym_frame *symbol, const struct holders *hs)
{
	struct json_writer w;
	json_init(&w, stdout, 3);
	json_object_begin(&w);
	json_key(&w, "address"); json_hex(&w, addr);
	/* "region": the end map's, else the start map's (as before). */
	json_key(&w, "region");
	if (re || rs)
		map_region_json(&w, re ? re : rs, re ? &in->pm.end : &in->pm.start,
				in->pm.main_tid, re != NULL);
	else
		json_null(&w);
	json_key(&w, "end_region");
	if (re)
		map_region_json(&w, re, &in->pm.end, in->pm.main_tid, true);
	else
		json_null(&w);
	json_key(&w, "start_region");
	if (rs)
		map_region_json(&w, rs, &in->pm.start, in->pm.main_tid, false);
	else
		json_null(&w);
	json_field_bool(&w, "end_recorded", in->pm.end_recorded);
	json_key(&w, "symbol");
	json_string(&w, symbol ? symbol->function : NULL);
	json_key(&w, "block");
	if (hs->n)
		block_json(&w, sym, in, &in->h.v[hs->v[hs->n - 1]], addr);
	else
		json_null(&w);
	json_field_uint(&w, "blocks_total", hs->n);
	json_key(&w, "earlier_blocks");
	json_array_begin(&w);
	for (size_t k = 1; k < hs->n && k <= WHERE_JSON_MAX; k++)
		block_json(&w, sym, in, &in->h.v[hs->v[hs->n - 1 - k]], addr);
	json_array_end(&w);
	json_object_end(&w);
	fputc('\n', stdout);
}

int cmd_where(const struct cmd_args *a)
{
	const char *trace;
	uint64_t addr;
	if (pick_args(a, &trace, &addr) < 0)
		return 2;
	struct map_input in;
	if (map_input_load(trace, &addr, &in))
		return 2;
	struct symbolizer *sym = symbolizer_new(&in.m);
	struct holders hs = { 0 };
	if (!sym || find_holders(&in.h, addr, &hs) < 0) {
		fprintf(stderr, "analyze: %s: out of memory\n", trace);
		symbolizer_free(sym);
		map_input_release(&in);
		return 2;
	}
	const struct map_region *re = proc_map_find(&in.pm.end, addr);
	const struct map_region *rs = proc_map_find(&in.pm.start, addr);
	const struct map_region *r = re ? re : rs;
	/* Code and variables: the symbol of a file's mapping holding addr. */
	const struct sym_frame *symbol = NULL;
	if (r && r->path.len && r->path.p[0] == '/' && addr < UINT64_MAX)
		symbol = symbolizer_lookup(sym, addr + 1);
	if (a->json)
		where_json(&in, sym, addr, re, rs, symbol, &hs);
	else
		where_text(&in, sym, addr, re, rs, symbol, &hs);
	free(hs.v);
	symbolizer_free(sym);
	map_input_release(&in);
	return cmd_finish(0);
}
