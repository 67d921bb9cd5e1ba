/* Unit test: the start and end maps of a built trace: end-map records read
 * apart from the module snapshots (a second end map replacing the first),
 * pieces of one mapping merged, a thread's stack and its guard labelled,
 * heap blocks (with a realloc and a reused address) counted per region; a
 * trace without end-map records falls back to its last snapshot.
 */
#include <string.h>

#include "heap_history.h"
#include "proc_map.h"
#include "tap.h"
#include "threads_model.h"
#include "trace_builder.h"
#include "trace_reader.h"

static void end_map(struct tb *b, uint64_t t, uint64_t start, uint64_t end, uint64_t prot,
		    const char *path)
{
	tb_begin(b, t);
	tb_v(b, start); tb_v(b, end); tb_v(b, 0); tb_v(b, prot); tb_s(b, path);
	tb_end_record(b, TRACE_END_MAP);
}

/* thread_start: tid, creator, handle, stack_top, stack_size, stack_from */
static void thread_start(struct tb *b, uint64_t t, uint64_t tid, uint64_t top, uint64_t size)
{
	tb_begin(b, t);
	tb_v(b, tid); tb_v(b, 100); tb_v(b, 0x9999); tb_v(b, top); tb_v(b, size); tb_v(b, 1);
	tb_end_record(b, TRACE_THREAD_START);
}

static void build(struct tb *b, bool with_end)
{
	static const char *const argv[] = { "prog" };
	tb_init(b);
	tb_chunk(b, 100, 1000);
	tb_process(b, 1000, 100, 1, TRACE_CAUSE_START, "/bin/prog", 1, argv, "");
	tb_thread(b, 1000, 100, 0);
	/* Snapshot 1: the program's text in three pieces, its data. */
	tb_module(b, 1000, 1, 0x400000, 0x401000, 0, 4 | 1 | 8, "/bin/prog");
	tb_module(b, 1000, 1, 0x401000, 0x402000, 0x1000, 4 | 1 | 8, "/bin/prog");
	tb_module(b, 1000, 1, 0x402000, 0x403000, 0x2000, 4 | 1 | 8, "/bin/prog");
	tb_module(b, 1000, 1, 0x403000, 0x404000, 0x3000, 4 | 2 | 8, "/bin/prog");
	tb_module(b, 1000, 1, 0xf00000, 0xf01000, 0, 4 | 2 | 8, "[stack]");
	/* A reused address: two blocks at 0x600010, the first freed. */
	tb_alloc(b, 1100, TRACE_FN_MALLOC, 0x600010, 24, 0, 0);
	tb_free(b, 1110, 0x600010, 0);
	tb_alloc(b, 1120, TRACE_FN_MALLOC, 0x600010, 24, 0, 0);
	/* realloc moves a block into the thread's arena region. */
	tb_alloc(b, 1130, TRACE_FN_MALLOC, 0x600100, 40, 0, 0);
	tb_realloc(b, 1140, 0x600100, 0x900010, 80, 0);
	/* A block in memory no end map covers. */
	tb_alloc(b, 1150, TRACE_FN_MALLOC, 0x50000010, 1 << 20, 0, 0);
	tb_free(b, 1160, 0x50000010, 0);
	thread_start(b, 1170, 101, 0xa00000, 0x10000);
	if (with_end) {
		/* A first end map, then a second one that replaces it. */
		end_map(b, 1200, 0x400000, 0x401000, 4 | 8, "/bin/prog");
		end_map(b, 1200, 0x400000, 0x401000, 4 | 1 | 8, "/bin/prog");
		end_map(b, 1200, 0x401000, 0x402000, 4 | 1 | 8, "/bin/prog");
		end_map(b, 1200, 0x402000, 0x403000, 4 | 1 | 8, "/bin/prog");
		end_map(b, 1200, 0x403000, 0x404000, 4 | 2 | 8, "/bin/prog");
		end_map(b, 1200, 0x600000, 0x621000, 4 | 2 | 8, "[heap]");
		end_map(b, 1200, 0x900000, 0x921000, 4 | 2 | 8, "");
		end_map(b, 1200, 0x9ef000, 0x9f0000, 8, "");
		end_map(b, 1200, 0x9f0000, 0xa00000, 4 | 2 | 8, "");
		end_map(b, 1200, 0xf00000, 0xf01000, 4 | 2 | 8, "[stack]");
	}
	tb_exit(b, 1300, TRACE_EXIT_RETURN, 0, 0);
	tb_endrec(b, 1310);
	tb_chunk_end(b);
}

struct loaded {
	struct trace_model m;
	struct threads_model tm;
	struct heap_history h;
	struct proc_maps pm;
};

static int load(struct loaded *l, bool with_end)
{
	struct tb b;
	struct trace_error err;
	build(&b, with_end);
	if (trace_load_buffer("mem", tb_copy(&b), b.len, &l->m, &err) != 0)
		return -1;
	free(b.buf);
	if (threads_model_build(&l->m, &l->tm) < 0 || heap_history_build(&l->m, &l->h) < 0 ||
	    proc_maps_build(&l->m, &l->tm, &l->pm) < 0)
		return -1;
	return 0;
}

static void unload(struct loaded *l)
{
	proc_maps_release(&l->pm);
	heap_history_release(&l->h);
	threads_model_release(&l->tm);
	trace_model_release(&l->m);
}

int main(void)
{
	struct loaded l;
	if (!ok(load(&l, true) == 0, "a trace with an end map loads"))
		return tap_done();
	ok(l.m.n_modules == 5 && l.m.n_end_map == 10 && l.m.end_map_from == 1,
	   "end-map records kept apart from the modules; the last map starts at 1");
	const struct proc_maps *pm = &l.pm;
	ok(pm->end_recorded, "the end map comes from end-map records");

	const struct map_region *t = proc_map_find(&pm->start, 0x401800);
	ok(t && t->start == 0x400000 && t->end == 0x403000 && t->n_pieces == 3 &&
	   !strcmp(t->kind, "text"), "three r-xp pieces of one file are one text region");
	ok(proc_map_find(&pm->start, 0x600010) == NULL, "no heap in the start map");
	ok(pm->start.n == 3, "start map: text, data, stack (%zu regions)", pm->start.n);

	const struct map_region *h = proc_map_find(&pm->end, 0x600010);
	ok(h && !strcmp(h->kind, "heap") && h->blocks.live == 1 && h->blocks.freed == 2 &&
	   h->blocks.live_bytes == 24 && h->blocks.freed_bytes == 24 + 40,
	   "heap: 1 live block, 2 freed (one ended by realloc)");
	const struct map_region *a = proc_map_find(&pm->end, 0x900010);
	ok(a && !strcmp(a->kind, "mmap") && a->blocks.live == 1 && a->blocks.live_bytes == 80,
	   "the realloc'd block is counted in the anonymous region");
	ok(pm->outside.freed == 1 && pm->outside.freed_bytes == 1 << 20 && pm->outside.live == 0,
	   "a block no end region holds is counted outside");

	const struct map_region *s = proc_map_find(&pm->end, 0x9f8000);
	ok(s && !strcmp(s->kind, "stack") && s->n_tids == 1 && s->tids[0] == 101 && !s->main_stack,
	   "the thread's stack is labelled with its thread");
	const struct map_region *g = proc_map_find(&pm->end, 0x9ef800);
	ok(g && !strcmp(g->kind, "guard") && g->n_tids == 1 && g->tids[0] == 101,
	   "the no-access page below it is its guard");
	const struct map_region *ms = proc_map_find(&pm->end, 0xf00800);
	ok(ms && ms->main_stack && ms->tids[0] == 100, "[stack] is the main thread's");
	ok(proc_map_find(&pm->end, 0x500000) == NULL, "an unmapped address has no region");

	size_t at = 0;
	for (size_t i = 0; i < l.h.n; i++)
		at += heap_life_holds(&l.h.v[i], 0x600020);
	ok(l.h.n == 5 && at == 2, "two blocks held 0x600020 over time (%zu)", at);
	unload(&l);

	if (!ok(load(&l, false) == 0, "a trace without an end map loads"))
		return tap_done();
	ok(!l.pm.end_recorded && l.m.n_end_map == 0, "no end map recorded");
	s = proc_map_find(&l.pm.end, 0x9f8000);
	ok(s && s->from_threads && s->tids[0] == 101,
	   "the thread's stack comes from its start record");
	ok(proc_map_find(&l.pm.end, 0x401000) != NULL, "the snapshot stands for the end map");
	unload(&l);
	return tap_done();
}
