/* lock_names.c: names for locks that people recognise: the global variable
 * that holds the lock ("lock_a", "accounts+48"), else the heap block it
 * lives in ("in the 48-byte block allocated at bank.c:40, offset 8"), else
 * the place where it was first locked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_model.h"
#include "lock_dwarf.h"
#include "lock_model.h"
#include "symbolize.h"

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

/* The frame of stack s that names where it was taken, looking from frame
 * from on: the first outside libc and the loader that has a line; without
 * one (a stripped program), the first at or after from. Not a line inside
 * libc (pthread_once.c, the start of main) that a stripped caller would
 * leave first. */
static uint32_t naming_frame(struct symbolizer *sym, const struct trace_stack *s,
			     uint32_t from)
{
	for (uint32_t i = from; i < s->n; i++) {
		const struct sym_frame *f = symbolizer_lookup(sym, s->frames[i]);
		if (f->module && io_runtime_module(f->module))
			continue;
		if (f->file && f->line)
			return i;
	}
	return from;
}

static const struct trace_stack *stack_of(const struct trace_model *m,
					  uint32_t ref)
{
	if (!ref || ref > m->n_stacks || !m->stacks[ref - 1].n)
		return NULL;
	return &m->stacks[ref - 1];
}

/* Frame k of stack s as "file.c:12", else "function in module" or
 * "module+0x12", into buf; -1 if none. */
static int where_at(struct symbolizer *sym, const struct trace_stack *s,
		    uint32_t k, char *buf, size_t cap)
{
	const struct sym_frame *f = symbolizer_lookup(sym, s->frames[k]);
	if (f->file && f->line)
		snprintf(buf, cap, "%s:%u", base_name(f->file), f->line);
	else if (f->module && f->function)
		snprintf(buf, cap, "%s in %s", f->function, base_name(f->module));
	else if (f->module)
		snprintf(buf, cap, "%s+0x%lx", base_name(f->module),
			 (unsigned long)f->offset);
	else
		return -1;
	return 0;
}

/* ---- wrappers ---------------------------------------------------------------
 * A program that takes its locks, or allocates the blocks that hold them,
 * through a function of its own (lock_account(a), xmalloc, libuv's
 * uv_mutex_lock) would name every lock after the one line inside it. A
 * place where locks are named that is reached from different callers is
 * such a wrapper: those locks are named after the caller instead, one
 * level out at a time. */

struct naming {
	const struct trace_stack *s; /* the stack that names it, or NULL */
	uint32_t k;                  /* its naming frame */
	int block;                   /* named by its block's allocation */
};

static uint64_t pc_at(const struct naming *n, uint32_t k)
{
	return k < n->s->n ? n->s->frames[k] : 0;
}

static int by_place(const void *x, const void *y, void *arg)
{
	const struct naming *v = arg;
	const struct naming *a = &v[*(const size_t *)x], *b = &v[*(const size_t *)y];
	uint64_t pa = pc_at(a, a->k), pb = pc_at(b, b->k);
	if (a->block != b->block)
		return a->block < b->block ? -1 : 1;
	return pa < pb ? -1 : pa > pb;
}

#define WRAPPER_LEVELS 4

static void step_out_of_wrappers(struct symbolizer *sym, struct naming *v,
				 size_t n)
{
	size_t *idx = malloc((n ? n : 1) * sizeof(*idx));
	if (!idx)
		return;
	for (int level = 0; level < WRAPPER_LEVELS; level++) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (v[i].s)
				idx[k++] = i;
		qsort_r(idx, k, sizeof(*idx), by_place, v);
		int moved = 0;
		for (size_t i = 0, j; i < k; i = j) {
			const struct naming *a = &v[idx[i]];
			int callers = 0;
			for (j = i + 1; j < k && !by_place(&idx[i], &idx[j], v); j++)
				if (pc_at(&v[idx[j]], v[idx[j]].k + 1) !=
				    pc_at(a, a->k + 1))
					callers = 1;
			if (!callers)
				continue;
			for (size_t q = i; q < j; q++) {
				struct naming *x = &v[idx[q]];
				if (x->k + 1 < x->s->n) {
					x->k = naming_frame(sym, x->s, x->k + 1);
					moved = 1;
				}
			}
		}
		if (!moved)
			break;
	}
	free(idx);
}

/* The data symbol holding addr and the offset into it, if any. */
static int data_symbol(struct symbolizer *sym, uint64_t addr, char *buf,
		       size_t cap)
{
	const struct sym_frame *f = symbolizer_lookup(sym, addr + 1);
	if (!f->function || !f->module || f->module[0] != '/')
		return -1;
	char name[256];
	snprintf(name, sizeof(name), "%s", f->function);
	/* Step back until the symbol changes: its start. */
	uint64_t off = 0;
	while (off < 4096 && addr - off - 8 < addr) {
		const struct sym_frame *g = symbolizer_lookup(sym, addr - off - 8 + 1);
		if (!g->function || strcmp(g->function, name))
			break;
		off += 8;
	}
	/* Not 8-aligned starts: find the exact one byte by byte. */
	while (off < 4096 + 8 && addr - off - 1 < addr) {
		const struct sym_frame *g = symbolizer_lookup(sym, addr - off - 1 + 1);
		if (!g->function || strcmp(g->function, name))
			break;
		off++;
	}
	/* The source's own words when the debug information has them. */
	uint64_t base = addr + 1 - f->offset;
	/* A function's static variable is "w.0" in the symbol table, "w" in
	 * the debug information. */
	char var[256];
	snprintf(var, sizeof(var), "%s", name);
	char *dot = strchr(var, '.');
	if (dot && dot != var)
		*dot = '\0';
	if (lock_dwarf_name(f->module, base, addr - off, off, var, buf, cap) == 0)
		return 0;
	if (off)
		snprintf(buf, cap, "%s+%lu", name, (unsigned long)off);
	else
		snprintf(buf, cap, "%s", name);
	return 0;
}

/* A lock in a program's .bss past its last file page lives in an anonymous
 * mapping right after the file's: name it from the file's DWARF by
 * address. */
static int bss_variable(const struct trace_model *m, uint64_t addr, char *buf,
			size_t cap)
{
	const struct trace_module *in = NULL;
	for (size_t i = 0; i < m->n_modules; i++) {
		const struct trace_module *t = &m->modules[i];
		if (addr >= t->start && addr < t->end)
			in = t; /* the latest snapshot wins */
	}
	if (!in || in->path.len)
		return -1;
	const struct trace_module *file = NULL;
	for (size_t i = 0; i < m->n_modules; i++) {
		const struct trace_module *t = &m->modules[i];
		if (t->snapshot == in->snapshot && t->end == in->start &&
		    t->path.len && t->path.p[0] == '/')
			file = t;
	}
	if (!file || file->path.len >= 4096)
		return -1;
	char path[4096];
	memcpy(path, file->path.p, file->path.len);
	path[file->path.len] = '\0';
	uint64_t base = UINT64_MAX;
	for (size_t i = 0; i < m->n_modules; i++) {
		const struct trace_module *t = &m->modules[i];
		if (t->snapshot == file->snapshot && t->file_offset == 0 &&
		    t->path.len == file->path.len &&
		    !memcmp(t->path.p, file->path.p, t->path.len) && t->start < base)
			base = t->start;
	}
	if (base == UINT64_MAX)
		return -1;
	return lock_dwarf_name(path, base, addr, 0, NULL, buf, cap);
}

/* Where each lock not named yet would be named from, if it is not in a
 * variable: its block's allocation, else its first acquisition. */
static struct naming *namings(const struct trace_model *m,
			      const struct lock_model *lm, struct symbolizer *sym)
{
	struct naming *v = calloc(lm->n_locks ? lm->n_locks : 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < lm->n_locks; i++) {
		const struct lock_info *l = &lm->locks[i];
		if (l->name)
			continue;
		v[i].block = l->block_addr != 0;
		v[i].s = stack_of(m, v[i].block ? l->block_stack : l->first_stack);
		if (v[i].s)
			v[i].k = naming_frame(sym, v[i].s,
					      (uint32_t)io_user_frame(sym, v[i].s));
	}
	step_out_of_wrappers(sym, v, lm->n_locks);
	return v;
}

void lock_names_fill(const struct trace_model *m, struct lock_model *lm,
		     struct symbolizer *sym)
{
	struct naming *v = namings(m, lm, sym);
	for (size_t i = 0; i < lm->n_locks; i++) {
		struct lock_info *l = &lm->locks[i];
		char base[320], at[160];
		if (l->name)
			continue;
		int placed = v && v[i].s &&
			     where_at(sym, v[i].s, v[i].k, at, sizeof(at)) == 0;
		if (l->block_addr) {
			if (!placed)
				snprintf(at, sizeof(at), "an unknown place");
			snprintf(base, sizeof(base),
				 "the lock at offset %lu of the %lu-byte block "
				 "0x%lx allocated at %s",
				 (unsigned long)(l->addr - l->block_addr),
				 (unsigned long)l->block_size,
				 (unsigned long)l->block_addr, at);
		} else if (data_symbol(sym, l->addr, base, sizeof(base)) < 0 &&
			   bss_variable(m, l->addr, base, sizeof(base)) < 0) {
			if (!placed)
				snprintf(base, sizeof(base), "lock 0x%lx",
					 (unsigned long)l->addr);
			else
				snprintf(base, sizeof(base),
					 "the lock first taken at %s", at);
		}
		size_t len = strlen(base) + 32;
		l->name = malloc(len);
		if (!l->name)
			continue;
		if (l->gen > 1)
			snprintf(l->name, len, "%s (#%u)", base, l->gen);
		else
			snprintf(l->name, len, "%s", base);
	}
	free(v);
}
