/* proc_map.c: the start and end maps of a process from its module and
 * end-map records, named, merged, with thread stacks and heap blocks.
 *
 * The kernel splits one mapping into several lines when parts of it
 * change protection or get private copies (libspy's patching of libc's
 * I/O entries leaves a dozen r-xp lines of libc's text): adjacent lines of
 * one file or one kind of anonymous memory, with the same protection, are
 * one region here, and keep their lines as pieces.
 */
#include "proc_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap_replay.h"
#include "trace_format.h"
#include "u64map.h"

/* glibc's default threshold for serving a request with its own mmap. */
#define BIG_BLOCK (128u * 1024)
/* A no-access mapping this small is a guard; a larger one reserves space
 * (the rest of a malloc arena's 64 MiB, say). */
#define GUARD_MAX (64u * 1024)

struct raw {
	struct map_piece piece;
	struct trace_str path;
	const char *kind;
	struct trace_str owner;
	uint32_t tids[MAP_MAX_TIDS];
	size_t n_tids;
	bool main_stack, from_threads;
};

struct raw_list {
	struct raw *v;
	size_t n, cap;
};

static int raw_push(struct raw_list *l, const struct raw *r)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		void *p = realloc(l->v, ncap * sizeof(*l->v));
		if (!p)
			return -1;
		l->v = p;
		l->cap = ncap;
	}
	l->v[l->n++] = *r;
	return 0;
}

static struct raw raw_of(const struct trace_module *mod)
{
	struct raw r = { .piece = { mod->start, mod->end, mod->prot, mod->file_offset },
			 .path = mod->path };
	return r;
}

static int by_start(const void *a, const void *b)
{
	const struct raw *x = a, *y = b;
	return x->piece.start < y->piece.start ? -1 : x->piece.start > y->piece.start;
}

/* A thread's stack from its start record has no path at all (p NULL),
 * and memcmp must not be given NULL even for no bytes. */
static bool str_eq(const struct trace_str *a, const struct trace_str *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->p, b->p, a->len));
}

static bool path_is(const struct trace_str *s, const char *lit)
{
	return s->len == strlen(lit) && !memcmp(s->p, lit, s->len);
}

static bool is_file(const struct trace_str *s)
{
	return s->len && s->p[0] == '/';
}

/* The kind of a line, from its path, protection and the line before. */
static const char *kind_of(struct raw *r, const struct raw *prev)
{
	const struct trace_str *p = &r->path;
	uint64_t prot = r->piece.prot;
	if (is_file(p)) {
		if (prot & 1)
			return "text";
		if (!(prot & 7))
			return "guard";
		return (prot & 2) ? "data" : "read-only data";
	}
	if (path_is(p, "[heap]"))
		return "heap";
	if (path_is(p, "[stack]"))
		return "stack";
	if (p->len && p->p[0] == '[')
		return "kernel"; /* [vdso], [vvar], [vsyscall] and the like */
	if (prot & TRACE_PROT_LIBSPY)
		return "libspy";
	if (!(prot & 7))
		return r->piece.end - r->piece.start <= GUARD_MAX ? "guard" : "reserved";
	/* Anonymous memory right after a file's writable data is its bss. */
	if (!p->len && prev && prev->piece.end == r->piece.start && is_file(&prev->path) &&
	    (prev->piece.prot & 2)) {
		r->owner = prev->path;
		return "bss";
	}
	/* ... and after that bss, the rest of it that a page the module
	 * marked apart split off (libspy's own: it is zeroed in a child
	 * forked behind the C library's back) */
	if (!p->len && prev && prev->piece.end == r->piece.start &&
	    !prev->path.len && prev->owner.len && prev->piece.prot == prot) {
		r->owner = prev->owner;
		return "bss";
	}
	return "mmap";
}

static void add_tid(uint32_t *tids, size_t *n, uint32_t tid)
{
	for (size_t i = 0; i < *n; i++)
		if (tids[i] == tid)
			return;
	if (*n < MAP_MAX_TIDS)
		tids[(*n)++] = tid;
}

/* Marks the line holding each thread's stack (and the guard below it);
 * with add_missing, a stack no line holds becomes a line of its own. */
static int label_stacks(struct raw_list *l, const struct threads_model *tm,
			bool add_missing)
{
	size_t base = l->n;
	for (size_t i = 0; tm && i < tm->n; i++) {
		const struct thread_info *t = &tm->v[i];
		if (!t->has_start || !t->stack_top || !t->stack_size ||
		    t->stack_size > t->stack_top || !t->tid)
			continue;
		/* The lines are sorted by start: the ones that may hold
		 * stack_top start below it, the nearest last. Lines of one
		 * map do not overlap, so that one is it; a damaged trace's
		 * overlapping lines are looked at 64 deep, as proc_map_find
		 * does (every thread scanning every line was quadratic). */
		size_t lo = 0, hi = base;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (l->v[mid].piece.start < t->stack_top)
				lo = mid + 1;
			else
				hi = mid;
		}
		bool found = false;
		for (size_t j = lo; j-- > 0 && lo - j <= 64;) {
			struct raw *o = &l->v[j];
			if (!(o->piece.start < t->stack_top && t->stack_top <= o->piece.end) ||
			    (strcmp(o->kind, "mmap") && strcmp(o->kind, "stack")) ||
			    o->main_stack)
				continue;
			o->kind = "stack";
			add_tid(o->tids, &o->n_tids, t->tid);
			if (j && l->v[j - 1].piece.end == o->piece.start &&
			    !(l->v[j - 1].piece.prot & 7) && !l->v[j - 1].path.len) {
				l->v[j - 1].kind = "guard";
				add_tid(l->v[j - 1].tids, &l->v[j - 1].n_tids, t->tid);
			}
			found = true;
		}
		if (found || !add_missing)
			continue;
		struct raw r = { .piece = { t->stack_top - t->stack_size, t->stack_top, 2 | 4 | 8, 0 },
				 .kind = "stack", .from_threads = true };
		add_tid(r.tids, &r.n_tids, t->tid);
		if (raw_push(l, &r) < 0)
			return -1;
	}
	return 0;
}

static bool same_thing(const struct raw *a, const struct raw *b)
{
	if (a->piece.end != b->piece.start || a->piece.prot != b->piece.prot ||
	    strcmp(a->kind, b->kind) || !str_eq(&a->path, &b->path) ||
	    a->main_stack != b->main_stack || a->from_threads || b->from_threads ||
	    a->n_tids != b->n_tids)
		return false;
	for (size_t i = 0; i < a->n_tids; i++)
		if (a->tids[i] != b->tids[i])
			return false;
	return true;
}

static int merge_into(struct proc_map *mp, const struct raw_list *l)
{
	mp->pieces = calloc(l->n ? l->n : 1, sizeof(*mp->pieces));
	mp->v = calloc(l->n ? l->n : 1, sizeof(*mp->v));
	if (!mp->pieces || !mp->v)
		return -1;
	mp->cap = mp->cap_pieces = l->n;
	for (size_t i = 0; i < l->n; i++) {
		const struct raw *r = &l->v[i];
		mp->pieces[mp->n_pieces++] = r->piece;
		if (mp->n && same_thing(&l->v[i - 1], r)) {
			struct map_region *last = &mp->v[mp->n - 1];
			last->end = r->piece.end;
			last->n_pieces++;
			continue;
		}
		struct map_region *g = &mp->v[mp->n++];
		memset(g, 0, sizeof(*g));
		g->start = r->piece.start;
		g->end = r->piece.end;
		g->prot = r->piece.prot;
		g->file_offset = r->piece.file_offset;
		g->path = r->path;
		g->owner = r->owner;
		g->kind = r->kind;
		g->piece_from = mp->n_pieces - 1;
		g->n_pieces = 1;
		memcpy(g->tids, r->tids, sizeof(g->tids));
		g->n_tids = r->n_tids;
		g->main_stack = r->main_stack;
		g->from_threads = r->from_threads;
	}
	return 0;
}

/* An empty list has no array yet, and qsort must not be given NULL (a
 * trace whose map records are all gone). */
static void sort_lines(struct raw_list *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), by_start);
}

/* Sorts, names and merges the lines of l into mp. */
static int finish(struct raw_list *l, const struct threads_model *tm, uint32_t main_tid,
		  bool add_missing, struct proc_map *mp)
{
	sort_lines(l);
	for (size_t j = 0; j < l->n; j++) {
		struct raw *r = &l->v[j];
		r->kind = kind_of(r, j ? &l->v[j - 1] : NULL);
		if (!strcmp(r->kind, "stack")) {
			r->main_stack = true;
			add_tid(r->tids, &r->n_tids, main_tid);
		}
	}
	if (label_stacks(l, tm, add_missing) < 0)
		return -1;
	sort_lines(l);
	return merge_into(mp, l);
}

/* The start map: the first snapshot. */
static int build_start(const struct trace_model *m, struct raw_list *l)
{
	for (size_t i = 0; i < m->n_modules; i++) {
		const struct trace_module *mod = &m->modules[i];
		if (mod->snapshot != m->modules[0].snapshot)
			break;
		struct raw r = raw_of(mod);
		if (mod->end > mod->start && raw_push(l, &r) < 0)
			return -1;
	}
	return 0;
}

struct start_key {
	uint64_t start;
	size_t i;
};

static int by_key(const void *a, const void *b)
{
	const struct start_key *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The end map: the end-map records, else every snapshot, a later one
 * replacing what it overlaps. */
static int build_end(const struct trace_model *m, struct raw_list *l)
{
	if (m->n_end_map) {
		for (size_t i = m->end_map_from; i < m->n_end_map; i++) {
			const struct trace_module *mod = &m->end_map[i];
			struct raw r = raw_of(mod);
			if (mod->end > mod->start && raw_push(l, &r) < 0)
				return -1;
		}
		return 0;
	}
	/* A record stays when no later one overlaps it. From the last
	 * record back, with the records sorted by start and a Fenwick tree
	 * of the greatest end of the later ones by sorted position: those
	 * that start before this one ends are a prefix. n log n, where
	 * dropping what each record overlaps from the list was quadratic
	 * (100,000 anonymous lines took 14 s). */
	size_t n = m->n_modules;
	if (!n)
		return 0;
	struct start_key *k = malloc(n * sizeof(*k));
	size_t *pos = malloc(n * sizeof(*pos));
	uint64_t *tree = calloc(n + 1, sizeof(*tree));
	bool *keep = calloc(n, sizeof(*keep));
	int rc = -1;
	if (!k || !pos || !tree || !keep)
		goto out;
	for (size_t i = 0; i < n; i++)
		k[i] = (struct start_key){ m->modules[i].start, i };
	qsort(k, n, sizeof(*k), by_key);
	for (size_t p = 0; p < n; p++)
		pos[k[p].i] = p;
	for (size_t i = n; i-- > 0;) {
		const struct trace_module *mod = &m->modules[i];
		if (mod->end <= mod->start)
			continue;
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (k[mid].start < mod->end)
				lo = mid + 1;
			else
				hi = mid;
		}
		uint64_t later_end = 0;
		for (size_t x = lo; x > 0; x -= x & -x)
			if (tree[x] > later_end)
				later_end = tree[x];
		keep[i] = later_end <= mod->start;
		for (size_t x = pos[i] + 1; x <= n; x += x & -x)
			if (tree[x] < mod->end)
				tree[x] = mod->end;
	}
	for (size_t i = 0; i < n; i++) {
		struct raw r = raw_of(&m->modules[i]);
		if (keep[i] && raw_push(l, &r) < 0)
			goto out;
	}
	rc = 0;
out:
	free(k);
	free(pos);
	free(tree);
	free(keep);
	return rc;
}

/* A block counts as live when it starts, as freed when it ends. */
static void count_block(struct map_blocks *c, uint64_t size, uint32_t tid)
{
	c->live++;
	c->live_bytes += size;
	if (size >= BIG_BLOCK)
		c->big++;
	size_t i = 0;
	while (i < c->n_tids && c->tids[i] != tid)
		i++;
	if (i == c->n_tids) {
		if (c->n_tids == MAP_MAX_TIDS) {
			c->other_tid_blocks++;
			return;
		}
		c->tids[c->n_tids] = tid;
		c->tid_blocks[c->n_tids++] = 0;
	}
	c->tid_blocks[i]++;
	/* Keep the thread with the most blocks first. */
	while (i > 0 && c->tid_blocks[i] > c->tid_blocks[i - 1]) {
		uint32_t t = c->tids[i];
		uint64_t n = c->tid_blocks[i];
		c->tids[i] = c->tids[i - 1];
		c->tid_blocks[i] = c->tid_blocks[i - 1];
		c->tids[i - 1] = t;
		c->tid_blocks[i - 1] = n;
		i--;
	}
}

static struct map_blocks *blocks_at(struct proc_maps *pm, uint64_t addr)
{
	struct map_region *r = (struct map_region *)proc_map_find(&pm->end, addr);
	return r ? &r->blocks : &pm->outside;
}

/* Ends the live block at addr, if one is known there. */
static void end_block(struct proc_maps *pm, struct u64map *live, uint64_t addr)
{
	uint64_t size;
	if (!addr || !u64map_remove(live, addr, &size))
		return;
	struct map_blocks *c = blocks_at(pm, addr);
	c->live--;
	c->live_bytes -= size;
	c->freed++;
	c->freed_bytes += size;
}

/* Every block's life as heap_history.c tells it (an address handed out
 * again ends the block it held), counted as it goes. */
static int count_blocks(const struct trace_model *m, struct proc_maps *pm)
{
	struct u64map live = U64MAP_INIT;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		struct heap_change c;
		if (!heap_change_of(e, &c))
			continue;
		end_block(pm, &live, c.ended);
		if (!c.started)
			continue;
		end_block(pm, &live, c.started);
		if (u64map_put(&live, c.started, c.size) < 0) {
			u64map_release(&live);
			return -1;
		}
		count_block(blocks_at(pm, c.started), c.size, e->tid);
	}
	u64map_release(&live);
	return 0;
}

/* Anonymous regions of the start map were made before the program's own
 * code ran (libspy starts before main): the loader's TLS and data, early
 * libraries'. The same range at the end is the same memory. */
struct span {
	uint64_t start, end;
};

static int by_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/* The start map's ranges sorted, and each end region looked up: a scan
 * of the one map for each region of the other was quadratic. */
static int mark_before_main(struct proc_maps *pm)
{
	struct span *v = malloc((pm->start.n ? pm->start.n : 1) * sizeof(*v));
	if (!v)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < pm->start.n; i++) {
		struct map_region *s = &pm->start.v[i];
		if (strcmp(s->kind, "mmap"))
			continue;
		s->before_main = true;
		v[n++] = (struct span){ s->start, s->end };
	}
	if (n)
		qsort(v, n, sizeof(*v), by_span);
	for (size_t k = 0; n && k < pm->end.n; k++) {
		struct map_region *e = &pm->end.v[k];
		struct span key = { e->start, e->end };
		if (!strcmp(e->kind, "mmap") &&
		    bsearch(&key, v, n, sizeof(*v), by_span))
			e->before_main = true;
	}
	free(v);
	return 0;
}

int proc_maps_build(const struct trace_model *m, const struct threads_model *tm,
		    struct proc_maps *pm)
{
	memset(pm, 0, sizeof(*pm));
	pm->main_tid = m->process.tid;
	pm->end_recorded = m->n_end_map > 0;
	struct raw_list s = { 0 }, e = { 0 };
	int rc = -1;
	if (build_start(m, &s) < 0 || finish(&s, NULL, pm->main_tid, false, &pm->start) < 0)
		goto out;
	if (build_end(m, &e) < 0 ||
	    finish(&e, tm, pm->main_tid, !pm->end_recorded, &pm->end) < 0)
		goto out;
	if (mark_before_main(pm) < 0 || count_blocks(m, pm) < 0)
		goto out;
	rc = 0;
out:
	free(s.v);
	free(e.v);
	if (rc < 0)
		proc_maps_release(pm);
	return rc;
}

static void map_release(struct proc_map *mp)
{
	free(mp->v);
	free(mp->pieces);
	memset(mp, 0, sizeof(*mp));
}

void proc_maps_release(struct proc_maps *pm)
{
	map_release(&pm->start);
	map_release(&pm->end);
}

const struct map_region *proc_map_find(const struct proc_map *mp, uint64_t addr)
{
	/* A thread's stack taken from its start record may overlap a region
	 * of the map: the most specific (the later, smaller) one wins. */
	const struct map_region *best = NULL;
	size_t lo = 0, hi = mp->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mp->v[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i-- > 0;) {
		const struct map_region *r = &mp->v[i];
		if (addr < r->end && (!best || r->end - r->start < best->end - best->start))
			best = r;
		if (!r->from_threads && addr < r->end)
			break;
		if (lo - i > 64)
			break;
	}
	return best;
}

static const char *base_name(const struct trace_str *s, size_t *len)
{
	const char *b = s->p;
	for (size_t i = 0; i < s->len; i++)
		if (s->p[i] == '/')
			b = s->p + i + 1;
	*len = s->len - (size_t)(b - s->p);
	return b;
}

static void tid_list(char *buf, size_t len, const uint32_t *tids, size_t n)
{
	size_t at = 0;
	buf[0] = 0;
	for (size_t i = 0; i < n && at < len; i++) {
		int k = snprintf(buf + at, len - at, "%s%u", i ? ", " : "", (unsigned)tids[i]);
		if (k < 0)
			return;
		at += (size_t)k;
	}
}

const char *proc_map_describe(const struct map_region *r, uint32_t main_tid,
			      char *buf, size_t len)
{
	char tids[64];
	tid_list(tids, sizeof(tids), r->tids, r->n_tids);
	const struct map_blocks *b = &r->blocks;
	if (!strcmp(r->kind, "stack")) {
		if (r->main_stack)
			snprintf(buf, len, "stack of thread %u (main)", (unsigned)main_tid);
		else
			snprintf(buf, len, "stack%s of thread%s %s%s", r->n_tids > 1 ? "s" : "",
				 r->n_tids > 1 ? "s" : "", tids,
				 r->from_threads ? " (from its start record)"
				 : r->n_tids > 1 ? " (reused)" : "");
	} else if (!strcmp(r->kind, "guard") && r->n_tids) {
		snprintf(buf, len, "guard: stack of thread%s %s", r->n_tids > 1 ? "s" : "", tids);
	} else if (!strcmp(r->kind, "bss")) {
		size_t n;
		const char *base = base_name(&r->owner, &n);
		snprintf(buf, len, "bss of %.*s", (int)n, base);
	} else if (!strcmp(r->kind, "heap")) {
		snprintf(buf, len, "brk heap: malloc's main arena");
	} else if (!strcmp(r->kind, "mmap") && b->live + b->freed > b->big) {
		char who[64];
		tid_list(who, sizeof(who), b->tids, b->n_tids);
		if (b->n_tids > 1)
			snprintf(buf, len, "malloc arena: threads %s%s", who,
				 b->other_tid_blocks ? ", ..." : "");
		else if (b->n_tids == 1 && b->tids[0] != main_tid)
			snprintf(buf, len, "malloc arena of thread %s", who);
		else
			snprintf(buf, len, "malloc arena");
	} else if (!strcmp(r->kind, "mmap") && b->big) {
		snprintf(buf, len, "malloc's big blocks (mmap)");
	} else if (!strcmp(r->kind, "mmap") && r->before_main) {
		snprintf(buf, len, "anonymous, made before main");
	} else if (!strcmp(r->kind, "mmap")) {
		snprintf(buf, len, "anonymous memory (mmap)");
	} else if (!strcmp(r->kind, "libspy")) {
		snprintf(buf, len, "libspy's, not the program's");
	} else if (!strcmp(r->kind, "reserved")) {
		snprintf(buf, len, "reserved, no access yet");
	} else if (r->path.len) {
		snprintf(buf, len, "%.*s", (int)r->path.len, r->path.p);
	} else {
		snprintf(buf, len, "%s", r->kind);
	}
	return buf;
}
