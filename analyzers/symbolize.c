/* symbolize.c: offline symbolization of recorded addresses with libdwfl.
 * The module records are flattened once into disjoint address ranges (a
 * later snapshot wins where snapshots overlap), each ELF file is opened at
 * most once per load base, and each address is resolved at most once.
 */
#include "symbolize.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "u64map.h"

/* From the C++ runtime (libstdc++). */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len,
			    int *status);

struct elf_module {
	char *path;        /* NUL-terminated copy, NULL when unusable */
	uint64_t base;     /* load base: start of the offset-0 mapping */
	Dwfl *dwfl;        /* NULL when the file could not be reported */
	Dwfl_Module *dmod;
};

struct symbolizer {
	const struct trace_model *m;
	struct trace_spans spans; /* the module records, flattened */
	uint64_t *base;    /* per module record: its file's load base */
	size_t *elf_of;    /* per module record: index + 1 into elfs, 0 unset */
	struct elf_module *elfs;
	size_t n_elfs, cap_elfs;
	/* Frames in blocks that never move: a result stays valid while
	 * later lookups add frames. */
	struct sym_frame **blocks;
	size_t n_frames, cap_blocks;
	struct u64map by_addr; /* address -> index into the frames */
};

static char *debuginfo_path;
static const Dwfl_Callbacks offline_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = &debuginfo_path,
};

/* A file's code against anonymous memory that cannot run code. */
static bool code_over_data(const struct trace_module *a,
			   const struct trace_module *b)
{
	return (a->prot & 1) && a->path.len && !(b->prot & 1) && !b->path.len;
}

/* Priority of a module record: later snapshot, then later in the file.
 * But a later snapshot's anonymous memory that cannot run code never
 * hides an earlier snapshot's module code: a return address pointed into
 * code when it was taken, so it belongs to the module unloaded since,
 * not to what was mapped at its addresses afterwards (PHP unloads its
 * extensions at exit and its memory grows into their place). */
static bool wins(const struct trace_module *v, size_t a, size_t b)
{
	const struct trace_module *ma = &v[a], *mb = &v[b];
	if (ma->snapshot != mb->snapshot) {
		if (code_over_data(ma, mb) || code_over_data(mb, ma))
			return code_over_data(ma, mb);
		return ma->snapshot > mb->snapshot;
	}
	return a > b;
}

static const struct trace_model *sort_model;

static int cmp_by_file(const void *pa, const void *pb)
{
	const struct trace_module *a = &sort_model->modules[*(const size_t *)pa];
	const struct trace_module *b = &sort_model->modules[*(const size_t *)pb];
	if (a->snapshot != b->snapshot)
		return a->snapshot < b->snapshot ? -1 : 1;
	if (a->path.len != b->path.len)
		return a->path.len < b->path.len ? -1 : 1;
	int c = memcmp(a->path.p, b->path.p, a->path.len);
	if (c)
		return c;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return 0;
}

/* The load base of each record: the start of the offset-0 mapping of the
 * same file in the same snapshot at or below it; without one, start minus
 * the file offset. */
static int compute_bases(struct symbolizer *s)
{
	const struct trace_model *m = s->m;
	size_t n = m->n_modules;
	size_t *ix = malloc((n + 1) * sizeof(*ix));
	s->base = malloc((n + 1) * sizeof(*s->base));
	if (!ix || !s->base) {
		free(ix);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		ix[i] = i;
	sort_model = m;
	qsort(ix, n, sizeof(*ix), cmp_by_file);
	bool have = false;
	uint64_t zero_start = 0;
	for (size_t k = 0; k < n; k++) {
		const struct trace_module *t = &m->modules[ix[k]];
		if (k) {
			const struct trace_module *p = &m->modules[ix[k - 1]];
			if (p->snapshot != t->snapshot ||
			    p->path.len != t->path.len ||
			    memcmp(p->path.p, t->path.p, t->path.len))
				have = false;
		}
		if (t->file_offset == 0) {
			have = true;
			zero_start = t->start;
		}
		s->base[ix[k]] = have ? zero_start : t->start - t->file_offset;
	}
	free(ix);
	return 0;
}

struct symbolizer *symbolizer_new(const struct trace_model *m)
{
	/* Offline means offline: no debuginfod downloads from here. */
	unsetenv("DEBUGINFOD_URLS");
	struct symbolizer *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->m = m;
	s->elf_of = calloc(m->n_modules + 1, sizeof(*s->elf_of));
	if (!s->elf_of ||
	    trace_spans_build(m->modules, m->n_modules, wins, &s->spans) < 0 ||
	    compute_bases(s) < 0) {
		symbolizer_free(s);
		return NULL;
	}
	return s;
}

/* Only regular files are opened: a path from the trace may name a FIFO or
 * a device, and reading those could block or never end. Pseudo-files
 * under /proc and /sys look regular but are not ELF files we could want
 * (and /proc/kcore is an "ELF file" the size of the address space). */
static bool plain_file(const char *path)
{
	static const char *const skip[] = { "/proc/", "/sys/", "/dev/" };
	struct stat st;
	if (path[0] != '/')
		return false;
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (!strncmp(path, skip[i], strlen(skip[i])))
			return false;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A file rebuilt since the run still has symbols, but not the ones the
 * program ran with: say so (once per file), rather than print wrong lines
 * silently. */
static void warn_if_changed(const char *path, const struct trace_module *t)
{
	struct stat st;
	if (!t->file_size || stat(path, &st) != 0)
		return;
	uint64_t mtime = (uint64_t)st.st_mtim.tv_sec * 1000000000u +
			 (uint64_t)st.st_mtim.tv_nsec;
	if ((uint64_t)st.st_size == t->file_size && mtime == t->file_mtime_ns)
		return;
	fflush(stdout);
	fprintf(stderr, "analyze: warning: '%s' changed after the run; names "
		"and lines shown for it may be wrong\n", path);
}

static struct elf_module *elf_for(struct symbolizer *s, size_t mod)
{
	if (s->elf_of[mod])
		return &s->elfs[s->elf_of[mod] - 1];
	const struct trace_module *t = &s->m->modules[mod];
	uint64_t base = s->base[mod];
	for (size_t i = 0; i < s->n_elfs; i++) {
		struct elf_module *e = &s->elfs[i];
		if (e->base == base && e->path &&
		    strlen(e->path) == t->path.len &&
		    !memcmp(e->path, t->path.p, t->path.len)) {
			s->elf_of[mod] = i + 1;
			return e;
		}
	}
	if (s->n_elfs == s->cap_elfs) {
		size_t ncap = s->cap_elfs ? 2 * s->cap_elfs : 16;
		void *p = realloc(s->elfs, ncap * sizeof(*s->elfs));
		if (!p)
			return NULL;
		s->elfs = p;
		s->cap_elfs = ncap;
	}
	struct elf_module *e = &s->elfs[s->n_elfs];
	*e = (struct elf_module){ .base = base };
	/* A path with a NUL inside cannot name a file; keep it unusable. */
	if (!memchr(t->path.p, 0, t->path.len))
		e->path = strndup(t->path.p, t->path.len);
	if (e->path && plain_file(e->path)) {
		warn_if_changed(e->path, t);
		e->dwfl = dwfl_begin(&offline_callbacks);
		if (e->dwfl) {
			dwfl_report_begin(e->dwfl);
			e->dmod = dwfl_report_elf(e->dwfl, e->path, e->path, -1,
						  base, false);
			dwfl_report_end(e->dwfl, NULL, NULL);
			if (!e->dmod) {
				dwfl_end(e->dwfl);
				e->dwfl = NULL;
			}
		}
	}
	s->elf_of[mod] = ++s->n_elfs;
	return e;
}

/* Symbol names may carry a version ("fclose@@GLIBC_2.2.5"): people
 * want the name alone. C++ names are demangled. */
static char *demangle(const char *name)
{
	const char *at = strchr(name, '@');
	char *plain = at && at != name ? strndup(name, (size_t)(at - name))
				       : NULL;
	if (plain)
		name = plain;
	if (name[0] == '_' && name[1] == 'Z') {
		int status = -1;
		char *d = __cxa_demangle(name, NULL, NULL, &status);
		if (d && status == 0) {
			free(plain);
			return d;
		}
		free(d);
	}
	return plain ? plain : strdup(name);
}

/* The name of a function DIE (following abstract origins), demangled
 * from its linkage name when it has one. */
static char *die_function(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name = NULL;
	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
		name = dwarf_formstring(&attr);
	if (!name)
		name = dwarf_diename(die);
	return name ? demangle(name) : NULL;
}

static bool die_udata(Dwarf_Die *die, int at, Dwarf_Word *out)
{
	Dwarf_Attribute attr;
	return dwarf_attr(die, at, &attr) && dwarf_formudata(&attr, out) == 0;
}

/* Walks the DWARF scopes at a (inlined subroutines, then the function)
 * and records each inlined call with its place; f->file and f->line end
 * up at the place of the outermost call, inside the real function. */
static void resolve_inlines(struct elf_module *e, uint64_t a,
			    struct sym_frame *f)
{
	Dwarf_Addr bias = 0;
	Dwarf_Die *cu = dwfl_module_addrdie(e->dmod, a, &bias);
	if (!cu)
		return;
	Dwarf_Die *scopes = NULL;
	int n = dwarf_getscopes(cu, a - bias, &scopes);
	if (n <= 0)
		return;
	/* dwarf_getscopes follows an inlined subroutine into its abstract
	 * definition and stops there; the concrete chain from the innermost
	 * scope outwards names every level of inlining. */
	Dwarf_Die inner = scopes[0];
	Dwarf_Die *chain = NULL;
	int nc = dwarf_getscopes_die(&inner, &chain);
	if (nc > 0) {
		free(scopes);
		scopes = chain;
		n = nc;
	}
	Dwarf_Files *files = NULL;
	size_t n_files = 0;
	if (dwarf_getsrcfiles(cu, &files, &n_files) != 0)
		files = NULL;
	struct sym_inline *inl = calloc((size_t)n, sizeof(*inl));
	unsigned k = 0;
	const char *file = f->file;
	unsigned line = f->line;
	for (int i = 0; inl && i < n; i++) {
		int tag = dwarf_tag(&scopes[i]);
		if (tag == DW_TAG_subprogram)
			break;
		if (tag != DW_TAG_inlined_subroutine)
			continue;
		inl[k].function = die_function(&scopes[i]);
		inl[k].file = file;
		inl[k].line = line;
		k++;
		/* The call site is where the next level out stands. */
		Dwarf_Word cf = 0, cl = 0;
		const char *call_file = NULL;
		if (files && die_udata(&scopes[i], DW_AT_call_file, &cf) &&
		    cf < n_files)
			call_file = dwarf_filesrc(files, cf, NULL, NULL);
		die_udata(&scopes[i], DW_AT_call_line, &cl);
		file = call_file ? strdup(call_file) : NULL;
		line = (unsigned)cl;
	}
	free(scopes);
	if (!k) {
		free(inl);
		return;
	}
	f->inl = inl;
	f->n_inl = k;
	f->file = file;
	f->line = file ? line : 0;
}

static void resolve(struct symbolizer *s, struct sym_frame *f)
{
	uint64_t a = f->address ? f->address - 1 : 0;
	const struct trace_module *r = trace_spans_find(&s->spans, s->m->modules, a);
	if (!r)
		return;
	struct elf_module *e = elf_for(s, (size_t)(r - s->m->modules));
	if (!e)
		return;
	/* Anonymous mappings have no path: no module to name. */
	if (!e->path || !e->path[0])
		return;
	f->module = e->path;
	f->offset = f->address - e->base;
	if (!e->dmod)
		return;
	const char *name = dwfl_module_addrname(e->dmod, a);
	if (name)
		f->function = demangle(name);
	Dwfl_Line *line = dwfl_module_getsrc(e->dmod, a);
	if (line) {
		int lineno = 0;
		const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL,
						 NULL, NULL);
		if (file && lineno > 0) {
			f->file = strdup(file);
			f->line = (unsigned)lineno;
		}
	}
	resolve_inlines(e, a, f);
}

#define FRAME_BLOCK 256

static struct sym_frame *frame_at(const struct symbolizer *s, size_t i)
{
	return &s->blocks[i / FRAME_BLOCK][i % FRAME_BLOCK];
}

const struct sym_frame *symbolizer_lookup(struct symbolizer *s,
					  uint64_t address)
{
	static struct sym_frame unknown;
	uint64_t *slot = u64map_get(&s->by_addr, address);
	if (slot)
		return frame_at(s, *slot);
	if (s->n_frames == s->cap_blocks * FRAME_BLOCK) {
		size_t ncap = s->cap_blocks ? 2 * s->cap_blocks : 16;
		void *p = realloc(s->blocks, ncap * sizeof(*s->blocks));
		if (!p)
			goto no_memory;
		s->blocks = p;
		for (size_t b = s->cap_blocks; b < ncap; b++)
			s->blocks[b] = NULL;
		s->cap_blocks = ncap;
	}
	struct sym_frame **block = &s->blocks[s->n_frames / FRAME_BLOCK];
	if (!*block && !(*block = malloc(FRAME_BLOCK * sizeof(**block))))
		goto no_memory;
	struct sym_frame *f = frame_at(s, s->n_frames);
	*f = (struct sym_frame){ .address = address };
	if (u64map_put(&s->by_addr, address, s->n_frames) < 0)
		goto no_memory;
	s->n_frames++;
	resolve(s, f);
	return f;
no_memory:
	unknown = (struct sym_frame){ .address = address };
	return &unknown;
}

void symbolizer_free(struct symbolizer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_frames; i++) {
		struct sym_frame *f = frame_at(s, i);
		/* Each inline entry owns its function; files are owned once:
		 * entry 0's file by entry 0, each next entry's and the frame's
		 * by the call-site string they were made from. */
		for (unsigned k = 0; k < f->n_inl; k++) {
			free((char *)f->inl[k].function);
			free((char *)f->inl[k].file);
		}
		free((void *)f->inl);
		free((char *)f->function);
		free((char *)f->file);
	}
	for (size_t i = 0; i < s->n_elfs; i++) {
		if (s->elfs[i].dwfl)
			dwfl_end(s->elfs[i].dwfl);
		free(s->elfs[i].path);
	}
	free(s->elfs);
	for (size_t b = 0; b < s->cap_blocks; b++)
		free(s->blocks[b]);
	free(s->blocks);
	trace_spans_release(&s->spans);
	free(s->base);
	free(s->elf_of);
	u64map_release(&s->by_addr);
	free(s);
}
