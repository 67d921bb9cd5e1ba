/* heap_checks.c: joins the heap checks' records to their blocks. */
#include "heap_checks.h"

#include <stdlib.h>
#include <string.h>

#include "trace_format.h"
#include "u64map.h"

const char *heap_leak_class_name(unsigned cls)
{
	switch (cls) {
	case TRACE_LEAK_DEFINITE: return "definitely lost";
	case TRACE_LEAK_INDIRECT: return "indirectly lost";
	case TRACE_LEAK_REACHABLE: return "still reachable";
	default: return "?";
	}
}

const char *heap_bad_free_name(unsigned what)
{
	switch (what) {
	case TRACE_BAD_DOUBLE: return "freed already";
	case TRACE_BAD_STACK: return "stack";
	case TRACE_BAD_GLOBAL: return "global";
	case TRACE_BAD_INTERIOR: return "interior";
	case TRACE_BAD_WILD: return "wild";
	default: return "?";
	}
}

static const char *const runtime_libs[] = {
	"libc.so", "libc-", "ld-linux", "ld64.so", "libstdc++.so",
	"libgcc_s.so", "libm.so", "libpthread.so", "libdl.so", "libspy.so",
	NULL,
};

/* The path of the module holding addr (the latest snapshot that maps it). */
static const struct trace_str *module_of(const struct trace_model *m,
					 uint64_t addr)
{
	const struct trace_module *mod = trace_module_at(m, addr - 1);
	return mod ? &mod->path : NULL;
}

bool heap_stack_is_runtime(const struct trace_model *m,
			   const struct trace_stack *s)
{
	if (!s || !s->n)
		return false;
	for (uint32_t i = 0; i < s->n; i++) {
		const struct trace_str *p = module_of(m, s->frames[i]);
		if (!p)
			return false;
		const char *base = p->p;
		size_t len = p->len;
		for (size_t k = 0; k < p->len; k++)
			if (p->p[k] == '/') {
				base = p->p + k + 1;
				len = p->len - k - 1;
			}
		bool rt = false;
		for (const char *const *r = runtime_libs; *r && !rt; r++) {
			size_t rl = strlen(*r);
			rt = len >= rl && !memcmp(base, *r, rl);
		}
		if (!rt)
			return false;
	}
	return true;
}

static int push_issue(struct heap_checks *hc, size_t *cap,
		      struct heap_issue is)
{
	if (hc->n_issues == *cap) {
		size_t ncap = *cap ? 2 * *cap : 16;
		void *p = realloc(hc->issues, ncap * sizeof(*hc->issues));
		if (!p)
			return -1;
		hc->issues = p;
		*cap = ncap;
	}
	hc->issues[hc->n_issues++] = is;
	return 0;
}

static int by_bytes(const void *a, const void *b)
{
	const struct leak_group *x = a, *y = b;
	if (x->cls != y->cls)
		return x->cls < y->cls ? -1 : 1;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

static const struct trace_event *at(const struct trace_model *m,
				    const struct u64map *map, uint64_t addr)
{
	uint64_t *v = u64map_get(map, addr);
	return v ? &m->events[*v - 1] : NULL;
}

/* The issue already made of a damaged header at block, or NULL. */
static struct heap_issue *damage_known(struct heap_checks *hc, uint64_t block)
{
	for (size_t i = 0; i < hc->n_issues; i++)
		if (hc->issues[i].e->kind == TRACE_HEAP_DAMAGE &&
		    hc->issues[i].e->a == block)
			return &hc->issues[i];
	return NULL;
}

/* The block address an issue event looks up (in the maps of the last
 * allocation and free at each address), or false when it looks up none. */
static bool looks_up(const struct trace_event *e, uint64_t *addr)
{
	switch (e->kind) {
	case TRACE_MISMATCHED_FREE:
	case TRACE_HEAP_OVERRUN:
	case TRACE_LEAK:
		*addr = e->a;
		return true;
	case TRACE_HEAP_DAMAGE:
	case TRACE_GUARD_FAULT:
		*addr = e->b;
		return e->b != 0;
	case TRACE_BAD_FREE:
	case TRACE_HEAP_UAF:
		*addr = e->kind == TRACE_BAD_FREE && e->c == TRACE_BAD_INTERIOR
			? e->b : e->a;
		return true;
	default:
		return false;
	}
}

/* The addresses the issues look up: the maps keep those only, not every
 * address the program ever allocated at (tens of millions in a long
 * run). Returns 0 or -1 (no memory). */
static int wanted_addresses(const struct trace_model *m, struct u64map *want)
{
	uint64_t addr;
	for (size_t i = 0; i < m->n_events; i++)
		if (looks_up(&m->events[i], &addr) &&
		    u64map_put(want, addr, 1) < 0)
			return -1;
	return 0;
}

/* Records event i as the last at addr in map when addr is wanted. */
static int note_at(struct u64map *map, const struct u64map *want,
		   uint64_t addr, size_t i)
{
	return u64map_get(want, addr) ? u64map_put(map, addr, i + 1) : 0;
}

/* The last free (or realloc that moved the block) at each wanted address,
 * over the whole trace, as index + 1. Returns 0 or -1 (no memory). */
static int last_frees(const struct trace_model *m, const struct u64map *want,
		      struct u64map *freed)
{
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		int r = 0;
		if (e->kind == TRACE_FREE)
			r = note_at(freed, want, e->a, i);
		else if (e->kind == TRACE_REALLOC && !(e->b == 0 && e->c > 0) &&
			 e->a && e->a != e->b)
			r = note_at(freed, want, e->a, i);
		if (r < 0)
			return -1;
	}
	return 0;
}

int heap_checks_build(const struct trace_model *m, struct heap_checks *hc)
{
	struct u64map alloc_of = U64MAP_INIT, free_of = U64MAP_INIT;
	struct u64map group_of = U64MAP_INIT; /* stack << 2 | cls -> index+1 */
	struct u64map want = U64MAP_INIT, freed_last = U64MAP_INIT;
	size_t cap = 0, gcap = 0;
	memset(hc, 0, sizeof(*hc));
	if (wanted_addresses(m, &want) < 0 ||
	    last_frees(m, &want, &freed_last) < 0)
		goto no_memory;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		const struct trace_event *al;
		switch (e->kind) {
		case TRACE_ALLOC:
			if (note_at(&alloc_of, &want, e->a, i) < 0)
				goto no_memory;
			u64map_remove(&free_of, e->a, NULL);
			break;
		case TRACE_FREE:
			if (note_at(&free_of, &want, e->a, i) < 0)
				goto no_memory;
			break;
		case TRACE_REALLOC:
			if (e->b == 0 && e->c > 0)
				break;
			if (e->a && e->a != e->b &&
			    note_at(&free_of, &want, e->a, i) < 0)
				goto no_memory;
			if (e->b) {
				if (note_at(&alloc_of, &want, e->b, i) < 0)
					goto no_memory;
				u64map_remove(&free_of, e->b, NULL);
			}
			break;
		case TRACE_MISMATCHED_FREE: {
			struct heap_issue is = { .e = e, .alloc = at(m, &alloc_of, e->a) };
			if (push_issue(hc, &cap, is) < 0)
				goto no_memory;
			break;
		}
		case TRACE_HEAP_OVERRUN: {
			struct heap_issue is = { .e = e,
						 .alloc = at(m, &alloc_of, e->a) };
			if (push_issue(hc, &cap, is) < 0)
				goto no_memory;
			break;
		}
		case TRACE_HEAP_DAMAGE: {
			/* one damaged header, found from both sides (the
			 * block before it and its own), is one issue: the
			 * finding at a free, if any (it has the free's stack) */
			struct heap_issue *known = damage_known(hc, e->a);
			if (known) {
				if (!known->e->stack && e->stack)
					known->e = e;
				break;
			}
			/* the block written past its end: the one before */
			struct heap_issue is = { .e = e };
			if (e->b)
				is.alloc = at(m, &alloc_of, e->b);
			if (push_issue(hc, &cap, is) < 0)
				goto no_memory;
			break;
		}
		case TRACE_GUARD_FAULT: {
			struct heap_issue is = { .e = e };
			if (e->b) {
				is.alloc = at(m, &alloc_of, e->b);
				if (e->fn != TRACE_FAULT_PAST_END)
					is.freed = at(m, &free_of, e->b);
			}
			if (push_issue(hc, &cap, is) < 0)
				goto no_memory;
			break;
		}
		case TRACE_BAD_FREE:
		case TRACE_HEAP_UAF: {
			uint64_t block = e->kind == TRACE_BAD_FREE &&
					 e->c == TRACE_BAD_INTERIOR ? e->b : e->a;
			struct heap_issue is = { .e = e };
			if (e->kind == TRACE_HEAP_UAF ||
			    e->c == TRACE_BAD_DOUBLE ||
			    e->c == TRACE_BAD_INTERIOR) {
				is.alloc = at(m, &alloc_of, block);
				if (e->kind == TRACE_HEAP_UAF ||
				    e->c == TRACE_BAD_DOUBLE)
					is.freed = at(m, &free_of, block);
			}
			if (push_issue(hc, &cap, is) < 0)
				goto no_memory;
			break;
		}
		case TRACE_LEAK: {
			unsigned cls = e->b <= TRACE_LEAK_REACHABLE
				? (unsigned)e->b : TRACE_LEAK_DEFINITE;
			/* Other threads run on while the scan at exit reads:
			 * a block one of them freed meanwhile (a thread's own
			 * data, freed by its destructor as it ends) was live
			 * when the scan listed it, but its last pointer was
			 * already gone. Freed after its last allocation, it
			 * was no leak. */
			uint64_t *fl = u64map_get(&freed_last, e->a);
			uint64_t *ai = u64map_get(&alloc_of, e->a);
			if (fl && *fl > (ai ? *ai : 0))
				break;
			al = at(m, &alloc_of, e->a);
			uint32_t stack = al ? al->stack : 0;
			const struct trace_stack *st =
				stack ? &m->stacks[stack - 1] : NULL;
			uint64_t key = (uint64_t)stack << 2 | cls;
			uint64_t *gi = u64map_get(&group_of, key);
			if (!gi) {
				if (hc->n_groups == gcap) {
					size_t ncap = gcap ? 2 * gcap : 16;
					void *p = realloc(hc->groups,
							  ncap * sizeof(*hc->groups));
					if (!p)
						goto no_memory;
					hc->groups = p;
					gcap = ncap;
				}
				hc->groups[hc->n_groups] = (struct leak_group){
					.stack = stack, .cls = cls,
					.runtime = heap_stack_is_runtime(m, st),
					.unseen = !al,
					.example = e->a };
				if (u64map_put(&group_of, key, ++hc->n_groups) < 0)
					goto no_memory;
				gi = u64map_get(&group_of, key);
			}
			struct leak_group *g = &hc->groups[*gi - 1];
			/* the record has the allocator's size of the block;
			 * the bytes asked for are the allocation's */
			uint64_t bytes = al ? al->c : e->c;
			g->blocks++;
			g->bytes += bytes;
			if ((g->runtime || g->unseen) &&
			    cls != TRACE_LEAK_REACHABLE) {
				hc->runtime_totals[0]++;
				hc->runtime_totals[1] += bytes;
			} else {
				hc->totals[cls][0]++;
				hc->totals[cls][1] += bytes;
			}
			break;
		}
		case TRACE_LEAK_SCAN:
			hc->scanned = true;
			hc->scan_blocks = e->a & UINT32_MAX;
			hc->scan_inherited = e->a >> 32;
			hc->scan_bytes = e->b;
			hc->scan_ns = e->c;
			break;
		default:
			break;
		}
	}
	if (hc->n_groups)
		qsort(hc->groups, hc->n_groups, sizeof(*hc->groups), by_bytes);
	u64map_release(&alloc_of);
	u64map_release(&free_of);
	u64map_release(&group_of);
	u64map_release(&want);
	u64map_release(&freed_last);
	return 0;
no_memory:
	u64map_release(&alloc_of);
	u64map_release(&free_of);
	u64map_release(&group_of);
	u64map_release(&want);
	u64map_release(&freed_last);
	heap_checks_release(hc);
	return -1;
}

void heap_checks_release(struct heap_checks *hc)
{
	free(hc->issues);
	free(hc->groups);
	memset(hc, 0, sizeof(*hc));
}
