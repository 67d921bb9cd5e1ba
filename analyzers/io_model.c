/* io_model.c: decodes rec_io's records (kinds 40-59) into the I/O model.
 * The fields come from an untrusted file: every one is read through the
 * bounds-checked cursor, and a record that does not decode is counted as
 * bad and left out, never trusted in part.
 */
#include "io_model.h"

#include <stdlib.h>
#include <string.h>

#include "symbolize.h"
#include "trace_decode.h"
#include "io_syscall_names.h"
#include "u64map.h"

static struct trace_cursor fields(const struct trace_model *m,
				  const struct trace_event *e)
{
	if (e->b > m->size || e->a > m->size - e->b)
		return trace_cursor_make(m->data, 0);
	return trace_cursor_make(m->data + e->b, (size_t)e->a);
}

static int grow(void **v, size_t n, size_t *cap, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? 2 * *cap : 16;
	void *p = realloc(*v, nc * elem);
	if (!p)
		return -1;
	*v = p;
	*cap = nc;
	return 0;
}

static bool same_key(const struct io_site *a, const struct io_site *b)
{
	return a->fn == b->fn && a->fd == b->fd && a->desc == b->desc &&
	       a->stack == b->stack;
}

static void add_site(struct io_site *o, const struct io_site *s)
{
	o->calls += s->calls;
	o->bytes += s->bytes;
	o->errors += s->errors;
	o->timed_calls += s->timed_calls;
	o->timed_ns += s->timed_ns;
	if (s->max_size > o->max_size)
		o->max_size = s->max_size;
	for (unsigned b = 0; b < TRACE_IO_BUCKETS; b++)
		o->hist[b] += s->hist[b];
	if (o->tid != s->tid)
		o->threads += s->threads;
}

static bool same_desc(const struct io_desc *a, const struct io_desc *b)
{
	return a->fd == b->fd && a->type == b->type &&
	       a->path.len == b->path.len &&
	       !memcmp(a->path.p, b->path.p, a->path.len);
}

/* Sites and descriptors are found through maps from a hash of their key
 * to the index + 1 of the first one with that hash: a trace may hold tens
 * of thousands of sites, and a scan for each was quadratic (100,000 sites
 * took 40 s). A hash shared by different keys, which hardly happens,
 * falls back to the scan. */
static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 29);
}

static uint64_t site_hash(const struct io_site *s)
{
	return mix(mix(mix(mix(0, s->fn), (uint64_t)s->fd), s->desc), s->stack);
}

static uint64_t desc_hash(const struct io_desc *d)
{
	uint64_t h = mix(mix(0, (uint64_t)d->fd), d->type);
	for (size_t i = 0; i < d->path.len; i++)
		h = mix(h, (uint8_t)d->path.p[i]);
	return h;
}

/* The index of the site with s's key among v[0..n), or -1. */
static long find_site(const struct u64map *map, const struct io_site *v,
		      size_t n, const struct io_site *s)
{
	const uint64_t *slot = u64map_get(map, site_hash(s));
	if (!slot)
		return -1;
	if (same_key(&v[*slot - 1], s))
		return (long)*slot - 1;
	for (size_t i = 0; i < n; i++)
		if (same_key(&v[i], s))
			return (long)i;
	return -1;
}

/* Notes v[i] in the map unless an earlier site has its hash. */
static int note_site(struct u64map *map, const struct io_site *v, size_t i)
{
	uint64_t h = site_hash(&v[i]);
	return u64map_get(map, h) ? 0 : u64map_put(map, h, i + 1);
}

#define GETV(c, x)                                                           \
	do {                                                                 \
		if (trace_get_varint(c, x) < 0)                              \
			return 1;                                            \
	} while (0)

/* 0 done, 1 bad record, -1 no memory. */
static int read_site(const struct trace_model *m, const struct trace_event *e,
		     struct io_model *io, size_t *cap, struct u64map *by_key)
{
	struct trace_cursor c = fields(m, e);
	uint64_t tid, fn, fd, desc, stack, nb;
	struct io_site s = { 0 };
	GETV(&c, &tid);
	GETV(&c, &fn);
	GETV(&c, &fd);
	GETV(&c, &desc);
	GETV(&c, &stack);
	GETV(&c, &s.calls);
	GETV(&c, &s.bytes);
	GETV(&c, &s.errors);
	GETV(&c, &s.timed_calls);
	GETV(&c, &s.timed_ns);
	GETV(&c, &s.max_size);
	GETV(&c, &nb);
	if (nb > TRACE_IO_BUCKETS || fn >= TRACE_IO_FN_MAX)
		return 1;
	for (uint64_t b = 0; b < nb; b++)
		GETV(&c, &s.hist[b]);
	s.fn = (unsigned)fn;
	s.fd = fd == UINT32_MAX ? -1 : (int64_t)fd;
	s.stack = e->stack;
	s.tid = tid;
	s.threads = 1;
	/* desc is resolved to an index once every IO_FD is read. */
	s.desc = desc;
	long i = find_site(by_key, io->sites, io->n_sites, &s);
	if (i >= 0) {
		add_site(&io->sites[i], &s);
		return 0;
	}
	if (grow((void **)&io->sites, io->n_sites, cap, sizeof(s)) < 0)
		return -1;
	io->sites[io->n_sites++] = s;
	return note_site(by_key, io->sites, io->n_sites - 1);
}

static int read_desc(const struct trace_model *m, const struct trace_event *e,
		     struct io_model *io, size_t *cap)
{
	struct trace_cursor c = fields(m, e);
	uint64_t id, fd, type;
	const uint8_t *s;
	size_t len;
	GETV(&c, &id);
	GETV(&c, &fd);
	GETV(&c, &type);
	if (trace_get_str(&c, &s, &len) < 0)
		return 1;
	if (grow((void **)&io->descs, io->n_descs, cap, sizeof(*io->descs)) < 0)
		return -1;
	io->descs[io->n_descs++] = (struct io_desc){
		.id = id, .fd = (int64_t)fd,
		.type = type < TRACE_FD_TYPE_MAX ? (unsigned)type : TRACE_FD_OTHER,
		.path = { (const char *)s, len },
	};
	return 0;
}

static int read_proc(const struct trace_model *m, const struct trace_event *e,
		     struct io_model *io)
{
	struct trace_cursor c = fields(m, e);
	uint64_t phase;
	struct io_proc p = { .seen = true };
	GETV(&c, &phase);
	GETV(&c, &p.rchar);
	GETV(&c, &p.wchar);
	GETV(&c, &p.syscr);
	GETV(&c, &p.syscw);
	GETV(&c, &p.read_bytes);
	GETV(&c, &p.write_bytes);
	GETV(&c, &p.seen_writes);
	GETV(&c, &p.seen_reads);
	GETV(&c, &p.own_reads);
	uint64_t complete = 0;
	if (trace_cursor_left(&c) && trace_get_varint(&c, &complete) == 0)
		p.incomplete = complete == TRACE_IO_PROC_INCOMPLETE;
	if (phase == 0 && !io->start.seen)
		io->start = p;
	else if (phase == 1 && !io->end.seen)
		io->end = p;
	return 0;
}

static int read_mode(const struct trace_model *m, const struct trace_event *e,
		     struct io_model *io)
{
	struct trace_cursor c = fields(m, e);
	uint64_t flags, patched;
	GETV(&c, &flags);
	GETV(&c, &patched);
	io->has_mode = true;
	io->mode_flags |= flags;
	io->patched |= patched;
	return 0;
}

/* by_nr maps a call's number to its index + 1 in io->syscalls: a trace
 * may name any number of distinct calls, and a scan of those seen for
 * each would be quadratic. */
static int read_syscalls(const struct trace_model *m,
			 const struct trace_event *e, struct io_model *io,
			 size_t *cap, struct u64map *by_nr)
{
	struct trace_cursor c = fields(m, e);
	uint64_t tid, n;
	GETV(&c, &tid);
	GETV(&c, &n);
	if (n > trace_cursor_left(&c))
		return 1;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t nr, calls, errors;
		GETV(&c, &nr);
		GETV(&c, &calls);
		GETV(&c, &errors);
		uint64_t *slot = u64map_get(by_nr, nr);
		size_t j = slot ? (size_t)*slot - 1 : io->n_syscalls;
		if (j == io->n_syscalls) {
			if (grow((void **)&io->syscalls, io->n_syscalls, cap,
				 sizeof(*io->syscalls)) < 0 ||
			    u64map_put(by_nr, nr, j + 1) < 0)
				return -1;
			io->syscalls[io->n_syscalls++] =
				(struct io_syscall){ .nr = nr };
		}
		io->syscalls[j].calls += calls;
		io->syscalls[j].errors += errors;
	}
	return 0;
}

static int by_calls(const void *a, const void *b)
{
	const struct io_site *x = a, *y = b;
	if (x->calls != y->calls)
		return x->calls > y->calls ? -1 : 1;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

static int sys_by_calls(const void *a, const void *b)
{
	const struct io_syscall *x = a, *y = b;
	if (x->calls != y->calls)
		return x->calls > y->calls ? -1 : 1;
	return (x->nr > y->nr) - (x->nr < y->nr);
}

/* Description ids become indexes (ids are unique within a trace: the
 * first description with an id is the one; a site naming an id never
 * written keeps none). Threads describe a descriptor each on their own:
 * the same description is one descriptor, the first of them. */
static int resolve_descs(struct io_model *io)
{
	struct u64map by_id = U64MAP_INIT, by_desc = U64MAP_INIT;
	uint64_t *first = calloc(io->n_descs ? io->n_descs : 1, sizeof(*first));
	int rc = -1;
	if (!first)
		goto out;
	for (size_t j = 0; j < io->n_descs; j++) {
		const struct io_desc *d = &io->descs[j];
		uint64_t h = desc_hash(d), *slot = u64map_get(&by_desc, h);
		first[j] = j;
		if (slot && same_desc(&io->descs[*slot - 1], d)) {
			first[j] = *slot - 1;
		} else if (slot) {
			for (size_t k = 0; k < j; k++)
				if (same_desc(&io->descs[k], d)) {
					first[j] = k;
					break;
				}
		} else if (u64map_put(&by_desc, h, j + 1) < 0) {
			goto out;
		}
		if (d->id && !u64map_get(&by_id, d->id) &&
		    u64map_put(&by_id, d->id, j + 1) < 0)
			goto out;
	}
	for (size_t i = 0; i < io->n_sites; i++) {
		uint64_t id = io->sites[i].desc;
		const uint64_t *slot = id ? u64map_get(&by_id, id) : NULL;
		io->sites[i].desc = slot ? first[*slot - 1] + 1 : 0;
	}
	rc = 0;
out:
	free(first);
	u64map_release(&by_id);
	u64map_release(&by_desc);
	return rc;
}

/* Sites that now name the same descriptor are one site. */
static int merge_sites(struct io_model *io)
{
	struct u64map by_key = U64MAP_INIT;
	size_t kept = 0;
	for (size_t i = 0; i < io->n_sites; i++) {
		struct io_site s = io->sites[i];
		long k = find_site(&by_key, io->sites, kept, &s);
		if (k >= 0) {
			add_site(&io->sites[k], &s);
			continue;
		}
		io->sites[kept++] = s;
		if (note_site(&by_key, io->sites, kept - 1) < 0) {
			u64map_release(&by_key);
			return -1;
		}
	}
	io->n_sites = kept;
	u64map_release(&by_key);
	return 0;
}

int io_model_build(const struct trace_model *m, struct io_model *io)
{
	*io = (struct io_model){ 0 };
	size_t cap_sites = 0, cap_descs = 0, cap_sys = 0;
	struct u64map by_nr = U64MAP_INIT, by_key = U64MAP_INIT;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		int r;
		switch (e->kind) {
		case TRACE_IO_SITE:
			r = read_site(m, e, io, &cap_sites, &by_key);
			break;
		case TRACE_IO_FD: r = read_desc(m, e, io, &cap_descs); break;
		case TRACE_IO_PROC: r = read_proc(m, e, io); break;
		case TRACE_IO_MODE: r = read_mode(m, e, io); break;
		case TRACE_SYSCALLS:
			r = read_syscalls(m, e, io, &cap_sys, &by_nr);
			break;
		default: continue;
		}
		if (r < 0)
			goto no_memory;
		io->bad_records += r > 0;
	}
	u64map_release(&by_nr);
	u64map_release(&by_key);
	if (resolve_descs(io) < 0 || merge_sites(io) < 0)
		goto no_memory;
	if (io->n_sites)
		qsort(io->sites, io->n_sites, sizeof(*io->sites), by_calls);
	if (io->n_syscalls)
		qsort(io->syscalls, io->n_syscalls, sizeof(*io->syscalls),
		      sys_by_calls);
	return 0;
no_memory:
	u64map_release(&by_nr);
	u64map_release(&by_key);
	io_model_release(io);
	return -1;
}

void io_model_release(struct io_model *io)
{
	free(io->sites);
	free(io->descs);
	free(io->syscalls);
	*io = (struct io_model){ 0 };
}

const struct io_desc *io_site_desc(const struct io_model *io,
				   const struct io_site *s)
{
	return s->desc && s->desc <= io->n_descs ? &io->descs[s->desc - 1] : NULL;
}

uint64_t io_site_time_ns(const struct io_site *s)
{
	if (!s->timed_calls)
		return 0;
	long double t = (long double)s->timed_ns * (long double)s->calls /
			(long double)s->timed_calls;
	/* Scaled up, hostile values can pass 2^64, where converting is
	 * undefined: the time saturates instead. */
	return t < 0x1p64L ? (uint64_t)t : UINT64_MAX;
}

uint64_t io_site_median_below(const struct io_site *s)
{
	uint64_t total = 0, seen = 0;
	for (unsigned b = 0; b < TRACE_IO_BUCKETS; b++)
		total += s->hist[b];
	for (unsigned b = 0; b < TRACE_IO_BUCKETS; b++) {
		seen += s->hist[b];
		if (total && seen * 2 >= total)
			return b == 0 ? 0 : (uint64_t)1 << b;
	}
	return 0;
}

int64_t io_model_bypassed_writes(const struct io_model *io)
{
	if (!io->start.seen || !io->end.seen || io->end.incomplete ||
	    io->end.syscw < io->start.syscw)
		return -1;
	uint64_t kernel = io->end.syscw - io->start.syscw;
	uint64_t seen = io->end.seen_writes - io->start.seen_writes;
	return kernel > seen ? (int64_t)(kernel - seen) : 0;
}

const char *io_syscall_name(uint64_t nr)
{
	return nr < IO_SYSCALL_MAX ? io_syscall_names[nr] : NULL;
}

bool io_runtime_module(const char *path)
{
	if (!path)
		return false;
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	return !strncmp(b, "libc.so", 7) || !strncmp(b, "libstdc++.so", 12) ||
	       !strncmp(b, "ld-linux", 8) || !strncmp(b, "libpthread.so", 13) ||
	       !strncmp(b, "libspy.so", 9);
}

size_t io_user_frame(struct symbolizer *sym, const struct trace_stack *st)
{
	if (!st)
		return 0;
	for (uint32_t i = 0; i < st->n; i++) {
		const struct sym_frame *f = symbolizer_lookup(sym, st->frames[i]);
		if (!io_runtime_module(f->module))
			return i;
	}
	return 0;
}
