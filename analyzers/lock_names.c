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

/* Where stack ref was taken, into buf: "file.c:12" of the first frame
 * outside libc and the loader that has a line; without one (a stripped
 * program), that first frame as "function in module" or "module+0x12".
 * Not a line inside libc (pthread_once.c, the start of main) that a
 * stripped caller would leave first. */
static int where(const struct trace_model *m, struct symbolizer *sym,
		 uint32_t ref, char *buf, size_t cap)
{
	if (!ref || ref > m->n_stacks)
		return -1;
	const struct trace_stack *s = &m->stacks[ref - 1];
	if (!s->n)
		return -1;
	size_t u = io_user_frame(sym, s);
	const struct sym_frame *first = symbolizer_lookup(sym, s->frames[u]);
	for (uint32_t i = (uint32_t)u; i < s->n; i++) {
		const struct sym_frame *f = symbolizer_lookup(sym, s->frames[i]);
		if (f->module && io_runtime_module(f->module))
			continue;
		if (!f->file || !f->line)
			continue;
		snprintf(buf, cap, "%s:%u", base_name(f->file), f->line);
		return 0;
	}
	if (first->module && first->function)
		snprintf(buf, cap, "%s in %s", first->function,
			 base_name(first->module));
	else if (first->module)
		snprintf(buf, cap, "%s+0x%lx", base_name(first->module),
			 (unsigned long)first->offset);
	else
		return -1;
	return 0;
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

void lock_names_fill(const struct trace_model *m, struct lock_model *lm,
		     struct symbolizer *sym)
{
	for (size_t i = 0; i < lm->n_locks; i++) {
		struct lock_info *l = &lm->locks[i];
		char base[320], at[160];
		if (l->name)
			continue;
		if (l->block_addr) {
			if (where(m, sym, l->block_stack, at, sizeof(at)) < 0)
				snprintf(at, sizeof(at), "an unknown place");
			snprintf(base, sizeof(base),
				 "the lock at offset %lu of the %lu-byte block "
				 "0x%lx allocated at %s",
				 (unsigned long)(l->addr - l->block_addr),
				 (unsigned long)l->block_size,
				 (unsigned long)l->block_addr, at);
		} else if (data_symbol(sym, l->addr, base, sizeof(base)) < 0 &&
			   bss_variable(m, l->addr, base, sizeof(base)) < 0) {
			if (where(m, sym, l->first_stack, at, sizeof(at)) < 0)
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
}
