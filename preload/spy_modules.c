/* spy_modules.c: /proc/self/maps to TRACE_MODULE records (and, as the
 * process ends, to TRACE_END_MAP records).
 * Runs inside hooks (dlopen, exit) and signal handlers with the guard held:
 * no allocation, no stdio, only async-signal-safe calls.
 */
#include "spy_modules.h"

#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spy_core.h"
#include "spy_real.h"
#include "spy_ownmem.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"

static unsigned snapshot;
int spy_modules_dirty;

/* The identity of a mapped file (size and modification time), so that the
 * analyzer can tell when a file was rebuilt after the run. Consecutive maps
 * lines name the same file: one stat for them all. */
struct file_id {
	char path[256];
	uint64_t size, mtime_ns;
};

static void file_identity(const char *path, size_t len, struct file_id *last,
			  uint64_t *size, uint64_t *mtime_ns)
{
	*size = *mtime_ns = 0;
	if (len == 0 || path[0] != '/' || len >= sizeof(last->path))
		return;
	if (spy_strneq(last->path, path, len) && last->path[len] == '\0') {
		*size = last->size;
		*mtime_ns = last->mtime_ns;
		return;
	}
	char name[sizeof(last->path)];
	for (size_t i = 0; i < len; i++)
		name[i] = path[i];
	name[len] = '\0';
	struct stat st;
	if (syscall(SYS_newfstatat, AT_FDCWD, name, &st, 0) != 0)
		return;
	*size = (uint64_t)st.st_size;
	*mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u +
		    (uint64_t)st.st_mtim.tv_nsec;
	spy_strlcpy(last->path, name, sizeof(last->path));
	last->size = *size;
	last->mtime_ns = *mtime_ns;
}
static uintptr_t loader_start, loader_end;
static size_t trace_path_len;

/* The dynamic loader's code: /lib64/ld-linux-x86-64.so.2 and the like. */
static int is_loader(const char *path, size_t len)
{
	const char *base = path;
	for (size_t i = 0; i < len; i++)
		if (path[i] == '/')
			base = path + i + 1;
	return spy_strneq(base, "ld-linux", 8) || spy_strneq(base, "ld-musl", 7) ||
	       spy_strneq(base, "ld.so", 5);
}

int spy_modules_in_loader(void *const *frames, int n)
{
	for (int i = 0; i < n; i++)
		if ((uintptr_t)frames[i] >= loader_start &&
		    (uintptr_t)frames[i] < loader_end)
			return 1;
	return 0;
}

struct code_search {
	uintptr_t probe, lo, hi;
};

static int find_code(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct code_search *cs = arg;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) &&
		    cs->probe >= lo && cs->probe < lo + ph->p_memsz) {
			cs->lo = lo;
			cs->hi = lo + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

int spy_modules_code_of(const void *probe, uintptr_t *lo, uintptr_t *hi)
{
	struct code_search cs = { (uintptr_t)probe, 0, 0 };
	if (!dl_iterate_phdr(find_code, &cs))
		return 0;
	*lo = cs.lo;
	*hi = cs.hi;
	return 1;
}

void spy_modules_mark_dirty(void)
{
	__atomic_store_n(&spy_modules_dirty, 1, __ATOMIC_RELEASE);
}

void spy_modules_reset(void)
{
	snapshot = 0;
}

static int walk_unlocked;

void spy_modules_fork_child(void)
{
	__atomic_store_n(&walk_unlocked, 1, __ATOMIC_RELAXED);
}

void spy_modules_threads_started(void)
{
	if (__atomic_load_n(&walk_unlocked, __ATOMIC_RELAXED))
		__atomic_store_n(&walk_unlocked, 0, __ATOMIC_RELAXED);
}

/* The loader's list, walked as dl_iterate_phdr does, without its lock.
 * A module's program headers are found through its ELF header, mapped at
 * its load address (the program's through the auxiliary vector); one
 * whose header is not there is left out. */
static int walk_modules_unlocked(int (*cb)(struct dl_phdr_info *, size_t, void *),
				 void *data)
{
	for (struct link_map *l = _r_debug.r_map; l; l = l->l_next) {
		struct dl_phdr_info info = { .dlpi_addr = l->l_addr,
					     .dlpi_name = l->l_name,
					     .dlpi_adds = 1 };
		if (l == _r_debug.r_map) {
			info.dlpi_phdr = (const ElfW(Phdr) *)getauxval(AT_PHDR);
			info.dlpi_phnum = (ElfW(Half))getauxval(AT_PHNUM);
		} else {
			const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)l->l_addr;
			if (!eh || !spy_strneq((const char *)eh->e_ident, ELFMAG, SELFMAG))
				continue;
			info.dlpi_phdr = (const ElfW(Phdr) *)(l->l_addr + eh->e_phoff);
			info.dlpi_phnum = eh->e_phnum;
		}
		if (!info.dlpi_phdr)
			continue;
		int r = cb(&info, sizeof(info), data);
		if (r)
			return r;
	}
	return 0;
}

__thread int spy_in_loader_walk __attribute__((tls_model("initial-exec")));

SPY_EXPORT int dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *),
			       void *data)
{
	if ((__atomic_load_n(&walk_unlocked, __ATOMIC_RELAXED) &&
	     spy_self.guard > 0) || !spy_real.dl_iterate_phdr)
		return walk_modules_unlocked(cb, data);
	spy_in_loader_walk++;
	int r = spy_real.dl_iterate_phdr(cb, data);
	spy_in_loader_walk--;
	return r;
}

static const char *parse_hex(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	for (; p < end; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else
			break;
		v = v * 16 + d;
	}
	*out = v;
	return p;
}

static const char *skip_field(const char *p, const char *end)
{
	while (p < end && *p != ' ')
		p++;
	while (p < end && *p == ' ')
		p++;
	return p;
}

/* libspy's own memory while a map is written (spy_ownmem.h), sorted. */
#define MAX_OWN 4096
static uintptr_t own[MAX_OWN][2];
static size_t n_own;

static void emit_piece(uint64_t start, uint64_t stop, uint64_t offset,
		       unsigned prot, const char *p, size_t path_len,
		       struct file_id *last);

/* One maps line: "start-end perms offset dev inode   path". last is NULL
 * for the end map. */
static void emit_line(const char *line, const char *end, uintptr_t self_fn,
		      struct file_id *last)
{
	uint64_t start, stop, offset;
	const char *p = parse_hex(line, end, &start);
	if (p >= end || *p != '-')
		return;
	p = parse_hex(p + 1, end, &stop);
	while (p < end && *p == ' ')
		p++;
	if (end - p < 4)
		return;
	unsigned prot = (p[0] == 'r' ? 4u : 0) | (p[1] == 'w' ? 2u : 0) |
			(p[2] == 'x' ? 1u : 0) | (p[3] == 'p' ? 8u : 0);
	p = skip_field(p, end);
	p = parse_hex(p, end, &offset);
	p = skip_field(p, end); /* offset */
	p = skip_field(p, end); /* dev */
	p = skip_field(p, end); /* inode */
	size_t path_len = (size_t)(end - p);
	if (path_len > 4096)
		path_len = 4096;
	if ((prot & 1) && self_fn >= start && self_fn < stop)
		spy_stack_set_self((uintptr_t)start, (uintptr_t)stop);
	if ((prot & 1) && is_loader(p, path_len)) {
		loader_start = (uintptr_t)start;
		loader_end = (uintptr_t)stop;
	}
	/* The trace's own mappings are libspy's business, not the program's. */
	if (path_len == trace_path_len && spy_strneq(p, spy_writer_path(), path_len))
		return;
	/* Anonymous memory: libspy's own pieces apart from the program's. */
	if (path_len == 0 && n_own) {
		uint64_t at = start;
		for (size_t i = 0; i < n_own && at < stop; i++) {
			uint64_t os = own[i][0], oe = own[i][1];
			if (oe <= at || os >= stop)
				continue;
			if (os > at)
				emit_piece(at, os, offset, prot, p, 0, last);
			at = os > at ? os : at;
			uint64_t to = oe < stop ? oe : stop;
			emit_piece(at, to, offset, prot | TRACE_PROT_LIBSPY, p, 0, last);
			at = to;
		}
		if (at < stop)
			emit_piece(at, stop, offset, prot, p, 0, last);
		return;
	}
	emit_piece(start, stop, offset, prot, p, path_len, last);
}

/* One record of a piece of a maps line. */
static void emit_piece(uint64_t start, uint64_t stop, uint64_t offset,
		       unsigned prot, const char *p, size_t path_len,
		       struct file_id *last)
{
	if (!last) {
		uint8_t *x = spy_writer_begin(TRACE_END_MAP, 4 * TRACE_VARINT_MAX +
							       TRACE_VARINT_MAX + path_len);
		if (!x)
			return;
		x = trace_put_varint(x, start);
		x = trace_put_varint(x, stop);
		x = trace_put_varint(x, offset);
		x = trace_put_varint(x, prot);
		x = trace_put_str(x, p, path_len);
		spy_writer_end(x);
		return;
	}
	uint64_t size, mtime_ns;
	file_identity(p, path_len, last, &size, &mtime_ns);
	uint8_t *w = spy_writer_begin(TRACE_MODULE, 7 * TRACE_VARINT_MAX +
						     TRACE_VARINT_MAX + path_len);
	if (!w)
		return;
	w = trace_put_varint(w, snapshot);
	w = trace_put_varint(w, start);
	w = trace_put_varint(w, stop);
	w = trace_put_varint(w, offset);
	w = trace_put_varint(w, prot);
	w = trace_put_str(w, p, path_len);
	w = trace_put_varint(w, size);
	w = trace_put_varint(w, mtime_ns);
	spy_writer_end(w);
}

/* Writes every line of /proc/self/maps, read once: as a module
 * snapshot (TRACE_MODULE), as the end map (TRACE_END_MAP), or both. */
static void write_maps(int modules, int end_map)
{
	size_t cap = 256 * 1024;
	char *buf = NULL;
	ssize_t n = -1;
	/* Grow until the whole file fits (large programs map thousands). */
	for (int tries = 0; tries < 6; tries++, cap *= 4) {
		buf = spy_sys_mmap(cap);
		if (!buf)
			return;
		n = spy_read_file("/proc/self/maps", buf, cap);
		if (n >= 0 && (size_t)n < cap)
			break;
		spy_sys_munmap(buf, cap);
		buf = NULL;
	}
	if (!buf)
		return;
	if (modules) {
		snapshot++;
		__atomic_store_n(&spy_modules_dirty, 0, __ATOMIC_RELEASE);
	}
	trace_path_len = spy_strlen(spy_writer_path());
	n_own = spy_ownmem_ranges(own, MAX_OWN);
	uintptr_t self_fn = (uintptr_t)&spy_modules_snapshot;
	struct file_id last = {.path = ""};
	const char *line = buf, *end = buf + n;
	while (line < end) {
		const char *nl = line;
		while (nl < end && *nl != '\n')
			nl++;
		if (modules)
			emit_line(line, nl, self_fn, &last);
		if (end_map)
			emit_line(line, nl, self_fn, NULL);
		line = nl + 1;
	}
	spy_sys_munmap(buf, cap);
}

void spy_modules_snapshot(void)
{
	write_maps(1, 0);
}

void spy_modules_end_map(void)
{
	write_maps(0, 1);
}

void spy_modules_at_exit(void)
{
	write_maps(1, 1);
}
