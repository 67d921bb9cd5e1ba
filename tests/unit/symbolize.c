/* Unit test: the symbolizer finds this test's own functions, files and
 * lines from module records made of /proc/self/maps (a PIE, so the load
 * base matters), and gives "unknown" answers for missing, foreign and
 * special files without crashing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symbolize.h"
#include "tap.h"

static __attribute__((noinline)) uint64_t return_address(void)
{
	return (uint64_t)(uintptr_t)__builtin_return_address(0);
}

static __attribute__((noinline)) uint64_t marker_function(int *line)
{
	*line = __LINE__; uint64_t r = return_address(); /* same line */
	__asm__ volatile("" ::: "memory");
	return r;
}

static inline __attribute__((always_inline)) uint64_t
inlined_helper(int *line)
{
	*line = __LINE__; uint64_t r = return_address(); /* same line */
	return r;
}

static __attribute__((noinline)) uint64_t outer_function(int *inner,
							  int *outer)
{
	*outer = __LINE__; uint64_t r = inlined_helper(inner); /* same line */
	__asm__ volatile("" ::: "memory");
	return r;
}

#define MAX_MODS 512

static struct trace_module mods[MAX_MODS];
static char paths[MAX_MODS][256];

/* Module records for every file mapping of this process, snapshot 1. */
static size_t read_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	size_t n = 0;
	while (f && n < MAX_MODS - 8 && fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off;
		char prot[8];
		int pos = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &end,
			   prot, &off, &pos) < 4 || pos <= 0)
			continue;
		char *path = line + pos;
		path[strcspn(path, "\n")] = 0;
		if (path[0] != '/')
			continue;
		snprintf(paths[n], sizeof(paths[n]), "%s", path);
		mods[n] = (struct trace_module){
			.snapshot = 1, .start = start, .end = end,
			.file_offset = off,
			.prot = (prot[0] == 'r') * 4u + (prot[1] == 'w') * 2u +
				(prot[2] == 'x'),
			.path = { paths[n], strlen(paths[n]) },
		};
		n++;
	}
	if (f)
		fclose(f);
	return n;
}

static void add(size_t *n, uint64_t snap, uint64_t start, uint64_t end,
		uint64_t off, const char *path)
{
	mods[*n] = (struct trace_module){ .snapshot = snap, .start = start,
					  .end = end, .file_offset = off,
					  .prot = 5,
					  .path = { path, strlen(path) } };
	(*n)++;
}

int main(void)
{
	int line = 0, inner = 0, outer = 0;
	uint64_t ret = marker_function(&line);
	uint64_t ret_inl = outer_function(&inner, &outer);
	size_t n = read_maps();
	ok(n > 0, "read %zu file mappings of this process", n);

	/* Odd modules far away from real ones. */
	add(&n, 1, 0x100000000000, 0x100000001000, 0, "/nonexistent/lib.so");
	add(&n, 1, 0x100000002000, 0x100000003000, 0, "/etc/passwd");
	add(&n, 1, 0x100000004000, 0x100000005000, 0, "/dev/zero");
	add(&n, 1, 0x100000006000, 0x100000007000, 0, "");
	/* Snapshot 2 maps a missing file over part of snapshot 1's range. */
	add(&n, 1, 0x100000010000, 0x100000020000, 0, "/nonexistent/old.so");
	add(&n, 2, 0x100000018000, 0x100000019000, 0x3000,
	    "/nonexistent/new.so");

	struct trace_model m;
	memset(&m, 0, sizeof(m));
	m.modules = mods;
	m.n_modules = n;
	struct symbolizer *s = symbolizer_new(&m);
	ok(s != NULL, "symbolizer created");

	const struct sym_frame *f = symbolizer_lookup(s, ret);
	ok(f->function && !strcmp(f->function, "marker_function"),
	   "function of a return address: %s", f->function);
	ok(f->file && strstr(f->file, "symbolize.c"), "file: %s", f->file);
	ok(f->line == (unsigned)line, "line %u (want %d)", f->line, line);
	ok(f->module && strstr(f->module, "symbolize"), "module: %s",
	   f->module);
	ok(symbolizer_lookup(s, ret) == f, "the second lookup is cached");

	f = symbolizer_lookup(s, ret_inl);
	ok(f->n_inl == 1 && f->inl[0].function &&
	   !strcmp(f->inl[0].function, "inlined_helper") &&
	   f->inl[0].line == (unsigned)inner,
	   "an inlined call: %s line %u (want inlined_helper, %d)",
	   f->n_inl ? f->inl[0].function : "(none)",
	   f->n_inl ? f->inl[0].line : 0, inner);
	ok(f->function && !strcmp(f->function, "outer_function") &&
	   f->line == (unsigned)outer && f->file &&
	   strstr(f->file, "symbolize.c"),
	   "the function it was inlined into, at the call: %s line %u",
	   f->function, f->line);

	const struct sym_frame *g = symbolizer_lookup(
		s, (uint64_t)(uintptr_t)&return_address + 1);
	ok(g->function && !strcmp(g->function, "return_address"),
	   "a function's first byte (as address+1): %s", g->function);

	f = symbolizer_lookup(s, (uint64_t)(uintptr_t)&strlen + 4);
	ok(f->function != NULL && f->module && strstr(f->module, "libc"),
	   "a libc function: %s in %s", f->function, f->module);

	f = symbolizer_lookup(s, 0x100000000123);
	ok(!f->function && !f->file && f->module &&
	   !strcmp(f->module, "/nonexistent/lib.so") && f->offset == 0x123,
	   "a missing file: module and offset only");
	f = symbolizer_lookup(s, 0x100000002010);
	ok(!f->function && f->module, "a file that is not ELF");
	f = symbolizer_lookup(s, 0x100000004010);
	ok(!f->function && f->module, "a device is never opened");
	f = symbolizer_lookup(s, 0x100000006010);
	ok(!f->function && !f->module, "an anonymous mapping has no module");
	f = symbolizer_lookup(s, 0x100000018010);
	ok(f->module && !strcmp(f->module, "/nonexistent/new.so") &&
	   f->offset == 0x3010, "a later snapshot wins where it maps");
	f = symbolizer_lookup(s, 0x100000011010);
	ok(f->module && !strcmp(f->module, "/nonexistent/old.so"),
	   "the earlier snapshot keeps the rest");
	f = symbolizer_lookup(s, 0x10);
	ok(!f->function && !f->module && f->address == 0x10,
	   "an address outside every module");
	f = symbolizer_lookup(s, 0);
	ok(!f->function && !f->module, "address 0");
	symbolizer_free(s);
	return tap_done();
}
