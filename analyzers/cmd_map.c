/* cmd_map.c: `analyze map` (the process's address space as the trace saw
 * it, each region named: text, read-only data, data, bss, heap, stack,
 * mmap, guard, kernel) and `analyze where ADDR` (which region an address
 * is in, and which recorded heap block, variable, function or thread stack
 * holds it).
 *
 * The regions come from the trace's module records (/proc/self/maps read at
 * start and after each dlopen; a later snapshot replaces an earlier one
 * where they overlap). Thread stacks created later are not in those
 * snapshots: they are added from the threads' start records and marked so.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "json_writer.h"
#include "summary.h"
#include "symbolize.h"
#include "text_out.h"
#include "threads_model.h"
#include "trace_format.h"

struct region {
	uint64_t start, end, prot, file_offset;
	struct trace_str path;
	const char *kind;
	uint64_t thread;       /* for a thread's stack; 0 otherwise */
	bool main_stack;
	bool from_threads;     /* added from a thread record, not the map */
};

struct map {
	struct region *v;
	size_t n, cap;
};

static int push(struct map *mp, const struct region *r)
{
	if (mp->n == mp->cap) {
		size_t ncap = mp->cap ? mp->cap * 2 : 64;
		void *p = realloc(mp->v, ncap * sizeof(*mp->v));
		if (!p)
			return -1;
		mp->v = p;
		mp->cap = ncap;
	}
	mp->v[mp->n++] = *r;
	return 0;
}

static bool path_is(const struct trace_str *s, const char *lit)
{
	return s->len == strlen(lit) && !memcmp(s->p, lit, s->len);
}

static int by_start(const void *a, const void *b)
{
	const struct region *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The kind of a mapping, from its path, protection and neighbour. */
static const char *kind_of(const struct region *r, const struct region *prev)
{
	const struct trace_str *p = &r->path;
	if (p->len && p->p[0] == '/') {
		if (r->prot & 1)
			return "text";
		return (r->prot & 2) ? "data" : "read-only data";
	}
	if (path_is(p, "[heap]"))
		return "heap";
	if (path_is(p, "[stack]"))
		return "stack";
	if (path_is(p, "[vdso]") || path_is(p, "[vvar]") || path_is(p, "[vsyscall]") ||
	    path_is(p, "[vvar_vclock]"))
		return "kernel";
	if (!(r->prot & 7))
		return "guard";
	/* Anonymous memory right after a file's writable data is its bss. */
	if (!p->len && prev && prev->end == r->start && prev->path.len &&
	    prev->path.p[0] == '/' && (prev->prot & 2))
		return "bss";
	return "mmap";
}

/* Builds the final map of m, with thread stacks from tm. */
static int build_map(const struct trace_model *m, const struct threads_model *tm,
		     struct map *mp)
{
	memset(mp, 0, sizeof(*mp));
	for (size_t i = 0; i < m->n_modules; i++) {
		const struct trace_module *mod = &m->modules[i];
		if (mod->end <= mod->start)
			continue;
		/* A later snapshot replaces what it overlaps. */
		size_t k = 0;
		for (size_t j = 0; j < mp->n; j++) {
			struct region *o = &mp->v[j];
			bool overlap = o->start < mod->end && mod->start < o->end;
			if (!overlap)
				mp->v[k++] = *o;
		}
		mp->n = k;
		struct region r = { .start = mod->start, .end = mod->end, .prot = mod->prot,
				    .file_offset = mod->file_offset, .path = mod->path };
		if (push(mp, &r) < 0)
			return -1;
	}
	qsort(mp->v, mp->n, sizeof(*mp->v), by_start);
	for (size_t j = 0; j < mp->n; j++) {
		mp->v[j].kind = kind_of(&mp->v[j], j ? &mp->v[j - 1] : NULL);
		if (!strcmp(mp->v[j].kind, "stack")) {
			mp->v[j].main_stack = true;
			mp->v[j].thread = m->process.tid;
		}
	}
	size_t base = mp->n;
	for (size_t i = 0; tm && i < tm->n; i++) {
		const struct thread_info *t = &tm->v[i];
		if (!t->has_start || !t->stack_top || !t->stack_size || t->stack_size > t->stack_top)
			continue;
		struct region r = { .start = t->stack_top - t->stack_size, .end = t->stack_top,
				    .prot = 2 | 4 | 8, .kind = "stack", .thread = t->tid,
				    .from_threads = true };
		/* Mark the snapshot's region holding it, if any. */
		bool found = false;
		for (size_t j = 0; j < base; j++) {
			struct region *o = &mp->v[j];
			if (o->start < t->stack_top && t->stack_top <= o->end &&
			    !strcmp(o->kind, "mmap")) {
				o->kind = "stack";
				o->thread = t->tid;
				found = true;
			}
		}
		if (!found && push(mp, &r) < 0)
			return -1;
	}
	qsort(mp->v, mp->n, sizeof(*mp->v), by_start);
	return 0;
}

static void prot_text(uint64_t prot, char out[5])
{
	out[0] = (prot & 4) ? 'r' : '-';
	out[1] = (prot & 2) ? 'w' : '-';
	out[2] = (prot & 1) ? 'x' : '-';
	out[3] = (prot & 8) ? 'p' : 's';
	out[4] = 0;
}

static void size_text(char *buf, size_t len, uint64_t n)
{
	if (n >= (1u << 30))
		snprintf(buf, len, "%.1f GiB", (double)n / (1u << 30));
	else if (n >= (1u << 20))
		snprintf(buf, len, "%.1f MiB", (double)n / (1u << 20));
	else
		snprintf(buf, len, "%.1f KiB", (double)n / 1024);
}

static void region_name(FILE *f, const struct region *r, uint64_t main_tid)
{
	if (!strcmp(r->kind, "stack")) {
		if (r->main_stack || r->thread == main_tid)
			fprintf(f, "main thread's stack");
		else
			fprintf(f, "stack of thread %" PRIu64 "%s", r->thread,
				r->from_threads ? " (from its start record)" : "");
		return;
	}
	if (r->path.len)
		text_put_safe(f, r->path.p, r->path.len);
	else if (!strcmp(r->kind, "mmap"))
		fputs("(anonymous: malloc's big blocks and arenas, thread stacks, mmap)", f);
	else if (!strcmp(r->kind, "bss"))
		fputs("(the zero-filled variables of the file before it)", f);
}

static void region_json(struct json_writer *w, const struct region *r)
{
	char prot[5];
	prot_text(r->prot, prot);
	json_object_begin(w);
	json_key(w, "start"); json_hex(w, r->start);
	json_key(w, "end"); json_hex(w, r->end);
	json_field_uint(w, "size", r->end - r->start);
	json_field_string(w, "prot", prot);
	json_field_string(w, "kind", r->kind);
	json_key(w, "path");
	if (r->path.len)
		json_string_len(w, r->path.p, r->path.len);
	else
		json_null(w);
	json_key(w, "thread");
	if (r->thread)
		json_uint(w, r->thread);
	else
		json_null(w);
	json_field_bool(w, "from_thread_record", r->from_threads);
	json_object_end(w);
}

struct loaded {
	struct trace_model m;
	struct threads_model tm;
	struct map mp;
};

static int load(const struct cmd_args *a, struct loaded *l)
{
	if (cmd_load(a->trace, &l->m))
		return 2;
	if (threads_model_build(&l->m, &l->tm) < 0 || build_map(&l->m, &l->tm, &l->mp) < 0) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		free(l->mp.v);
		threads_model_release(&l->tm);
		trace_model_release(&l->m);
		return 2;
	}
	return 0;
}

static void unload(struct loaded *l)
{
	free(l->mp.v);
	threads_model_release(&l->tm);
	trace_model_release(&l->m);
}

int cmd_map(const struct cmd_args *a)
{
	struct loaded l;
	if (load(a, &l))
		return 2;
	if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 2);
		json_object_begin(&w);
		json_key(&w, "regions");
		json_array_begin(&w);
		for (size_t i = 0; i < l.mp.n; i++)
			region_json(&w, &l.mp.v[i]);
		json_array_end(&w);
		json_object_end(&w);
		fputc('\n', stdout);
	} else {
		printf("%-18s %-18s %10s %-4s  %-14s %s\n", "start", "end", "size", "prot",
		       "kind", "what");
		for (size_t i = 0; i < l.mp.n; i++) {
			const struct region *r = &l.mp.v[i];
			char prot[5], size[32];
			prot_text(r->prot, prot);
			size_text(size, sizeof(size), r->end - r->start);
			printf("0x%016" PRIx64 " 0x%016" PRIx64 " %10s %-4s  %-14s ", r->start,
			       r->end, size, prot, r->kind);
			region_name(stdout, r, l.m.process.tid);
			fputc('\n', stdout);
		}
		if (!l.m.n_modules)
			printf("(the trace holds no module records)\n");
	}
	unload(&l);
	return cmd_finish(0);
}

/* ---- where ------------------------------------------------------------------ */

struct block {
	bool found, freed;
	uint64_t addr, size, alloc_ts, free_ts;
	uint32_t alloc_stack, free_stack;
	uint8_t fn;
};

/* The last recorded heap block that held addr (live or freed). */
static struct block find_block(const struct trace_model *m, uint64_t addr)
{
	struct block b = { 0 };
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		uint64_t p = 0, size = 0;
		if (e->kind == TRACE_ALLOC) {
			p = e->a;
			size = e->c;
		} else if (e->kind == TRACE_REALLOC) {
			if (b.found && !b.freed && e->a == b.addr && e->b) {
				b.freed = true;
				b.free_ts = e->ts;
				b.free_stack = e->stack;
			}
			p = e->b;
			size = e->c;
		} else if (e->kind == TRACE_FREE) {
			if (b.found && !b.freed && e->a == b.addr) {
				b.freed = true;
				b.free_ts = e->ts;
				b.free_stack = e->stack;
			}
			continue;
		} else {
			continue;
		}
		if (p && p <= addr && addr < p + (size ? size : 1))
			b = (struct block){ .found = true, .addr = p, .size = size,
					    .alloc_ts = e->ts, .alloc_stack = e->stack,
					    .fn = e->fn };
	}
	return b;
}

static void print_stack(struct symbolizer *sym, const struct trace_model *m,
			uint32_t ref, const char *label)
{
	if (!ref || !m->stacks[ref - 1].defined)
		return;
	const struct trace_stack *st = &m->stacks[ref - 1];
	printf("  %s:\n", label);
	for (uint32_t i = 0; i < st->n && i < 8; i++) {
		const struct sym_frame *f = symbolizer_lookup(sym, st->frames[i]);
		printf("    #%-2u %s", i, f->function ? f->function : "??");
		if (f->file)
			printf(" at %s:%u", f->file, f->line);
		fputc('\n', stdout);
	}
}

int cmd_where(const struct cmd_args *a)
{
	if (!a->arg) {
		fprintf(stderr, "analyze: 'where' needs an address: analyze where TRACE ADDR\n");
		return 2;
	}
	char *end = NULL;
	uint64_t addr = strtoull(a->arg, &end, 0);
	if (!end || *end || end == a->arg) {
		fprintf(stderr, "analyze: bad address '%s' (write it like 0x7ffd1234 or 4096)\n",
			a->arg);
		return 2;
	}
	struct loaded l;
	if (load(a, &l))
		return 2;
	struct symbolizer *sym = symbolizer_new(&l.m);
	if (!sym) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		unload(&l);
		return 2;
	}
	const struct region *r = NULL;
	for (size_t i = 0; i < l.mp.n; i++)
		if (l.mp.v[i].start <= addr && addr < l.mp.v[i].end &&
		    (!r || l.mp.v[i].from_threads))
			r = &l.mp.v[i];
	struct block b = find_block(&l.m, addr);
	/* Names for code and for variables: the symbol holding addr. */
	const char *symbol = NULL;
	const struct sym_frame *f = NULL;
	if (r && r->path.len && r->path.p[0] == '/') {
		f = symbolizer_lookup(sym, addr + 1);
		symbol = f->function;
	}
	if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 2);
		json_object_begin(&w);
		json_key(&w, "address"); json_hex(&w, addr);
		json_key(&w, "region");
		if (r)
			region_json(&w, r);
		else
			json_null(&w);
		json_key(&w, "symbol");
		json_string(&w, symbol);
		json_key(&w, "block");
		if (b.found) {
			json_object_begin(&w);
			json_key(&w, "address"); json_hex(&w, b.addr);
			json_field_uint(&w, "size", b.size);
			json_field_uint(&w, "offset", addr - b.addr);
			json_field_string(&w, "allocated_by", trace_alloc_fn_name(b.fn));
			json_field_bool(&w, "freed", b.freed);
			json_object_end(&w);
		} else {
			json_null(&w);
		}
		json_object_end(&w);
		fputc('\n', stdout);
	} else {
		printf("0x%" PRIx64 ": ", addr);
		if (!r && b.found) {
			printf("heap (a block malloc handed out; no recorded map covers it)\n");
		} else if (!r) {
			printf("not in any mapping the trace recorded\n");
		} else {
			char size[32];
			size_text(size, sizeof(size), r->end - r->start);
			if (!strcmp(r->kind, "stack"))
				printf("stack: ");
			else
				printf("%s, %" PRIu64 " bytes into ", r->kind, addr - r->start);
			region_name(stdout, r, l.m.process.tid);
			printf(" (0x%" PRIx64 "-0x%" PRIx64 ", %s)\n", r->start, r->end, size);
			if (!strcmp(r->kind, "stack"))
				printf("  %" PRIu64 " bytes below the top of that stack\n",
				       r->end - addr);
			if (symbol)
				printf("  %s %s%s%s\n", !strcmp(r->kind, "text") ? "in the code of"
					: "in the variable", symbol,
				       f && f->file && !strcmp(r->kind, "text") ? " at " : "",
				       f && f->file && !strcmp(r->kind, "text") ? f->file : "");
		}
		if (b.found) {
			printf("  inside a heap block of %" PRIu64 " bytes at 0x%" PRIx64
			       " (offset %" PRIu64 "), from %s, %s\n", b.size, b.addr,
			       addr - b.addr, trace_alloc_fn_name(b.fn),
			       b.freed ? "freed since" : "still live at the end");
			print_stack(sym, &l.m, b.alloc_stack, "allocated at");
			if (b.freed)
				print_stack(sym, &l.m, b.free_stack, "freed at");
		}
	}
	symbolizer_free(sym);
	unload(&l);
	return cmd_finish(0);
}
