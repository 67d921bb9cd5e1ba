/* cmd_heap.c: `analyze heap TRACE`: the malloc family in totals (calls,
 * bytes, the peak, what is live at the end) and the allocation sites that
 * handed out the most bytes and the most blocks. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "heap_replay.h"
#include "json_writer.h"
#include "stack_out.h"
#include "symbolize.h"
#include "text_out.h"
#include "trace_format.h"
#include "u64map.h"

#define TOP 10
#define TOP_FRAMES 4

struct site {
	uint32_t stack;
	uint64_t blocks, bytes;
};

static int by_bytes(const void *a, const void *b)
{
	const struct site *x = a, *y = b;
	return x->bytes != y->bytes ? (x->bytes > y->bytes ? -1 : 1)
				    : (x->stack > y->stack) - (x->stack < y->stack);
}

static int by_blocks(const void *a, const void *b)
{
	const struct site *x = a, *y = b;
	return x->blocks != y->blocks ? (x->blocks > y->blocks ? -1 : 1)
				      : (x->stack > y->stack) - (x->stack < y->stack);
}

/* Every allocation site (stack) with its blocks and bytes; NULL on no memory. */
static struct site *sites_of(const struct trace_model *m, size_t *n)
{
	struct u64map index = U64MAP_INIT;
	struct site *v = NULL;
	size_t cap = 0;
	*n = 0;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		uint64_t size;
		if (e->kind == TRACE_ALLOC)
			size = e->c;
		else if (e->kind == TRACE_REALLOC && e->b)
			size = e->c;
		else
			continue;
		uint64_t *slot = u64map_get(&index, e->stack);
		if (!slot) {
			if (*n == cap) {
				size_t ncap = cap ? 2 * cap : 64;
				void *p = realloc(v, ncap * sizeof(*v));
				if (!p)
					goto no_memory;
				v = p;
				cap = ncap;
			}
			v[*n] = (struct site){ .stack = e->stack };
			if (u64map_put(&index, e->stack, ++*n) < 0)
				goto no_memory;
			slot = u64map_get(&index, e->stack);
		}
		v[*slot - 1].blocks++;
		v[*slot - 1].bytes += size;
	}
	u64map_release(&index);
	return v ? v : calloc(1, sizeof(*v));
no_memory:
	u64map_release(&index);
	free(v);
	return NULL;
}

static const struct trace_stack *stack_of(const struct trace_model *m,
					  const struct site *s)
{
	static const struct trace_stack none;
	return s->stack ? &m->stacks[s->stack - 1] : &none;
}

struct text_order {
	const struct trace_model *m;
	struct symbolizer *sym;
};

static int by_text(const void *a, const void *b, void *arg)
{
	const struct text_order *o = arg;
	const struct trace_stack *x = stack_of(o->m, a), *y = stack_of(o->m, b);
	return stack_text_cmp(o->sym, x->frames, x->n, y->frames, y->n, true);
}

/* Sites whose stacks read alike to their ends (two calls on one line)
 * become one: nothing the view prints could tell them apart. Returns the
 * sites left. */
static size_t merge_alike(const struct trace_model *m, struct symbolizer *sym,
			  struct site *v, size_t n)
{
	struct text_order o = { m, sym };
	qsort_r(v, n, sizeof(*v), by_text, &o);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k && by_text(&v[k - 1], &v[i], &o) == 0) {
			v[k - 1].blocks += v[i].blocks;
			v[k - 1].bytes += v[i].bytes;
		} else {
			v[k++] = v[i];
		}
	}
	return k;
}

static void text_sites(const struct text_out *t, const struct trace_model *m,
		       struct symbolizer *sym, const struct site *v, size_t n,
		       const char *title)
{
	/* Each row shows TOP_FRAMES frames, or as many more as it takes to
	 * read apart from the other rows (their stacks part further out). */
	struct stack_row rows[TOP];
	size_t shown = n < TOP ? n : TOP;
	for (size_t i = 0; i < shown; i++) {
		const struct trace_stack *s = stack_of(m, &v[i]);
		rows[i] = (struct stack_row){ .frames = s->frames, .n = s->n };
	}
	stack_rows_apart(sym, rows, shown, TOP_FRAMES, true);
	printf("\n%s\n", title);
	for (size_t i = 0; i < shown; i++) {
		printf("%2zu. %" PRIu64 " byte%s in %" PRIu64 " block%s\n", i + 1,
		       v[i].bytes, text_plural(v[i].bytes, "", "s"), v[i].blocks,
		       text_plural(v[i].blocks, "", "s"));
		if (rows[i].n)
			stack_print_text(t, sym, rows[i].frames, rows[i].depth, 4);
		else
			printf("    (no stack recorded)\n");
	}
}

static void json_sites(struct json_writer *w, const struct trace_model *m,
		       struct symbolizer *sym, const struct site *v, size_t n,
		       const char *key)
{
	json_key(w, key);
	json_array_begin(w);
	for (size_t i = 0; i < n && i < TOP; i++) {
		const struct trace_stack *s = stack_of(m, &v[i]);
		json_object_begin(w);
		json_field_uint(w, "bytes", v[i].bytes);
		json_field_uint(w, "blocks", v[i].blocks);
		json_key(w, "frames");
		stack_print_json(w, sym, s->frames, s->n);
		json_object_end(w);
	}
	json_array_end(w);
}

int cmd_heap(const struct cmd_args *a)
{
	struct trace_model m;
	if (cmd_load(a->trace, &m))
		return 2;
	struct heap_stats h;
	size_t n = 0;
	struct site *v = NULL, *w2 = NULL;
	struct symbolizer *sym = NULL;
	if (heap_replay(&m, &h, NULL) < 0 || !(v = sites_of(&m, &n)) ||
	    !(w2 = malloc((n ? n : 1) * sizeof(*v))) || !(sym = symbolizer_new(&m))) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		free(v);
		free(w2);
		trace_model_release(&m);
		return 2;
	}
	n = merge_alike(&m, sym, v, n);
	for (size_t i = 0; i < n; i++)
		w2[i] = v[i];
	qsort(v, n, sizeof(*v), by_bytes);
	qsort(w2, n, sizeof(*w2), by_blocks);
	uint64_t calls = 0;
	for (unsigned f = 0; f <= TRACE_FN_MAX; f++)
		calls += h.calls[f];
	if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 3);
		json_object_begin(&w);
		json_field_uint(&w, "calls", calls);
		json_key(&w, "calls_by_function");
		json_object_begin(&w);
		for (unsigned f = 0; f < TRACE_FN_MAX; f++)
			if (h.calls[f])
				json_field_uint(&w, trace_alloc_fn_name(f), h.calls[f]);
		json_object_end(&w);
		json_field_uint(&w, "allocated_bytes", h.allocated_bytes);
		json_field_uint(&w, "peak_bytes", h.peak_bytes);
		json_field_uint(&w, "peak_blocks", h.peak_blocks);
		json_field_uint(&w, "live_bytes", h.live_bytes);
		json_field_uint(&w, "live_blocks", h.live_blocks);
		json_field_uint(&w, "sites", n);
		json_sites(&w, &m, sym, v, n, "top_by_bytes");
		json_sites(&w, &m, sym, w2, n, "top_by_blocks");
		json_object_end(&w);
		fputc('\n', stdout);
	} else {
		struct text_out t;
		text_init(&t, stdout);
		printf("calls      %" PRIu64, calls);
		for (unsigned f = 0; f < TRACE_FN_MAX; f++)
			if (h.calls[f])
				printf(", %s %" PRIu64, trace_alloc_fn_name(f), h.calls[f]);
		printf("\nallocated  %" PRIu64 " byte%s in all, from %zu call "
		       "site%s\n", h.allocated_bytes,
		       text_plural(h.allocated_bytes, "", "s"), n,
		       text_plural(n, "", "s"));
		printf("peak       %" PRIu64 " byte%s live in %" PRIu64 " block%s\n",
		       h.peak_bytes, text_plural(h.peak_bytes, "", "s"),
		       h.peak_blocks, text_plural(h.peak_blocks, "", "s"));
		printf("at the end %" PRIu64 " byte%s live in %" PRIu64
		       " block%s (analyze leaks says which are lost)\n",
		       h.live_bytes, text_plural(h.live_bytes, "", "s"),
		       h.live_blocks, text_plural(h.live_blocks, "", "s"));
		text_sites(&t, &m, sym, v, n, "top allocation sites by bytes:");
		text_sites(&t, &m, sym, w2, n, "top allocation sites by blocks:");
	}
	symbolizer_free(sym);
	free(v);
	free(w2);
	trace_model_release(&m);
	return cmd_finish(0);
}
