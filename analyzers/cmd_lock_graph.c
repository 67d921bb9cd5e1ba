/* cmd_lock_graph.c: the lock views of a trace: `analyze lock-graph` (the
 * order graph and its cycles as text, JSON, DOT or SVG), `analyze locks`
 * (one row per lock), `analyze deadlock` and `analyze livelock` (those
 * findings only).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "detect_locks.h"
#include "findings_out.h"
#include "json_writer.h"
#include "lock_model.h"
#include "symbolize.h"
#include "text_out.h"
#include "trace_format.h"

#define GRAPH_CYCLES 20

struct lock_view {
	struct trace_model m;
	struct lock_model lm;
	struct symbolizer *sym;
};

static int view_load(const struct cmd_args *a, struct lock_view *v)
{
	memset(v, 0, sizeof(*v));
	if (cmd_load(a->trace, &v->m))
		return 2;
	if (lock_model_build(&v->m, &v->lm) < 0 ||
	    !(v->sym = symbolizer_new(&v->m))) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		lock_model_release(&v->lm);
		trace_model_release(&v->m);
		return 2;
	}
	lock_names_fill(&v->m, &v->lm, v->sym);
	return 0;
}

static void view_release(struct lock_view *v)
{
	symbolizer_free(v->sym);
	lock_model_release(&v->lm);
	trace_model_release(&v->m);
}

static const char *lname(const struct lock_model *lm, uint32_t i)
{
	return lm->locks[i].name ? lm->locks[i].name : "?";
}

/* How an rwlock end of an edge was taken, NULL for other locks: one pair
 * of rwlocks can have an edge per mode, which would read as the same
 * edge twice. */
static const char *edge_mode(const struct lock_model *lm, uint32_t lock,
			     bool read)
{
	if (lm->locks[lock].type != TRACE_LOCK_RWLOCK)
		return NULL;
	return read ? "read" : "write";
}

/* 1 if edge i is on one of the error cycles. */
static bool on_error_cycle(const struct lock_cycle *cs, long n, uint32_t i)
{
	for (long k = 0; k < n; k++)
		for (size_t j = 0; j < cs[k].n; j++)
			if (cs[k].e[j] == i && lock_cycle_can_deadlock(&cs[k]))
				return true;
	return false;
}

static void dot_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fputc('\\', f);
		if (c < 0x20)
			fputc('?', f);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* A picture Graphviz lays out in seconds: past this many edges it takes
 * minutes to hours (200,000 locks did not finish in five). */
#define PICTURE_MAX_EDGES 300

/* Which live edges to draw, at most max of them: those on a cycle first,
 * then the others in the order they first happened. *left receives how
 * many are left out. NULL without memory (then all are drawn). */
static bool *edges_drawn(const struct lock_model *lm,
			 const struct lock_cycle *cs, long n, size_t max,
			 size_t *left)
{
	*left = 0;
	bool *draw = calloc(lm->n_edges ? lm->n_edges : 1, sizeof(*draw));
	if (!draw)
		return NULL;
	size_t taken = 0;
	for (long c = 0; c < n; c++)
		for (size_t j = 0; j < cs[c].n; j++)
			if (!draw[cs[c].e[j]]) {
				draw[cs[c].e[j]] = true;
				taken++;
			}
	for (size_t k = 0; k < lm->n_edges; k++) {
		if (!lm->edges[k].count || draw[k])
			continue;
		if (taken < max) {
			draw[k] = true;
			taken++;
		} else {
			(*left)++;
		}
	}
	return draw;
}

static void write_dot(FILE *f, const struct lock_model *lm,
		      const struct lock_cycle *cs, long n, size_t max_edges)
{
	fprintf(f, "digraph locks {\n  rankdir=LR;\n  node [shape=box, "
		"fontname=\"Helvetica\"];\n");
	size_t left;
	bool *draw = edges_drawn(lm, cs, n, max_edges, &left);
	if (left)
		fprintf(f, "  label=\"%zu more order edges are not drawn "
			"(analyze lock-graph lists them all)\";\n  labelloc=t;\n",
			left);
	/* The locks on a drawn edge, marked in one pass over the edges (a
	 * scan of the edges for every lock is quadratic in a big trace).
	 * Without memory for the marks, every lock is drawn. */
	bool *used = calloc(lm->n_locks ? lm->n_locks : 1, sizeof(*used));
	for (size_t k = 0; used && k < lm->n_edges; k++)
		if (lm->edges[k].count && (!draw || draw[k]))
			used[lm->edges[k].from] = used[lm->edges[k].to] = true;
	for (size_t i = 0; i < lm->n_locks; i++) {
		if (used && !used[i])
			continue;
		fprintf(f, "  L%zu [label=", i);
		dot_string(f, lname(lm, (uint32_t)i));
		fprintf(f, "];\n");
	}
	free(used);
	for (size_t k = 0; k < lm->n_edges; k++) {
		const struct lock_edge *e = &lm->edges[k];
		if (!e->count || (draw && !draw[k]))
			continue;
		char label[96];
		const char *fm = edge_mode(lm, e->from, e->from_read);
		const char *tm = edge_mode(lm, e->to, e->to_read);
		snprintf(label, sizeof(label), "%s%s%s%sthread %u%s, %lux",
			 fm ? fm : "", fm || tm ? " -> " : "", tm ? tm : "",
			 fm || tm ? ", " : "", e->tids[0],
			 e->n_tids > 1 ? " and others" : "",
			 (unsigned long)e->count);
		fprintf(f, "  L%u -> L%u [label=", e->from, e->to);
		dot_string(f, label);
		if (on_error_cycle(cs, n, (uint32_t)k))
			fprintf(f, ", color=red, fontcolor=red, penwidth=2.5");
		fprintf(f, "];\n");
	}
	free(draw);
	fprintf(f, "}\n");
}

static int write_svg(const struct lock_model *lm, const struct lock_cycle *cs,
		     long n)
{
	if (system("command -v dot >/dev/null 2>&1") != 0) {
		fprintf(stderr, "analyze: --svg needs Graphviz's 'dot' program "
			"(apt-get install graphviz); --dot writes its input\n");
		return 2;
	}
	fflush(stdout);
	FILE *p = popen("dot -Tsvg", "w");
	if (!p) {
		perror("analyze: cannot run dot");
		return 2;
	}
	write_dot(p, lm, cs, n, PICTURE_MAX_EDGES);
	int st = pclose(p);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "analyze: dot failed\n");
		return 2;
	}
	return 0;
}

static void write_text(const struct lock_view *v, const struct lock_cycle *cs,
		       long n)
{
	const struct lock_model *lm = &v->lm;
	printf("%zu lock%s, %zu order edge%s, %ld cycle%s\n", lm->n_locks,
	       text_plural(lm->n_locks, "", "s"), lm->n_edges,
	       text_plural(lm->n_edges, "", "s"), n,
	       text_plural((uint64_t)n, "", "s"));
	if (lm->held_dropped || lm->edges_dropped)
		printf("(the graph is bounded: %" PRIu64 " %s past %d "
		       "locks held by one thread %s not held, %" PRIu64
		       " %s past %d %s not added)\n", lm->held_dropped,
		       text_plural(lm->held_dropped, "acquisition",
				   "acquisitions"), LOCK_MAX_HELD,
		       text_plural(lm->held_dropped, "was", "were"),
		       lm->edges_dropped,
		       text_plural(lm->edges_dropped, "edge", "edges"),
		       LOCK_MAX_EDGES,
		       text_plural(lm->edges_dropped, "was", "were"));
	printf("\nlocks:\n");
	/* The type column as wide as this trace's longest; a long name
	 * wraps under itself: nothing of it is cut. */
	int tw = 5;
	for (size_t i = 0; i < lm->n_locks; i++) {
		int w = (int)strlen(lock_type_name(lm->locks[i].type));
		tw = w > tw ? w : tw;
	}
	for (size_t i = 0; i < lm->n_locks; i++) {
		int col = printf("  L%-3zu %-*s  0x%-12lx  ", i, tw,
				 lock_type_name(lm->locks[i].type),
				 (unsigned long)lm->locks[i].addr);
		text_hang(stdout, lname(lm, (uint32_t)i),
			  col > 0 ? (size_t)col : 0, 6);
	}
	printf("\norder (the second lock taken while holding the first):\n");
	bool any = false;
	for (size_t k = 0; k < lm->n_edges; k++) {
		const struct lock_edge *e = &lm->edges[k];
		if (!e->count)
			continue;
		any = true;
		char *line = NULL;
		size_t cap = 0;
		FILE *mf = open_memstream(&line, &cap);
		if (!mf)
			continue;
		fprintf(mf, "%lu time%s, thread%s", (unsigned long)e->count,
			text_plural(e->count, "", "s"), e->n_tids > 1 ? "s" : "");
		for (size_t t = 0; t < e->n_tids; t++)
			fprintf(mf, " %u", e->tids[t]);
		if (e->n_gates) {
			fprintf(mf, ", always under");
			for (size_t g = 0; g < e->n_gates; g++)
				fprintf(mf, " L%u", e->gates[g]);
		}
		const char *fm = edge_mode(lm, e->from, e->from_read);
		const char *tm = edge_mode(lm, e->to, e->to_read);
		if (fclose(mf) == 0) {
			int col = printf("  L%u%s%s%s -> L%u%s%s%s  ", e->from,
					 fm ? " (" : "", fm ? fm : "", fm ? ")" : "",
					 e->to, tm ? " (" : "", tm ? tm : "",
					 tm ? ")" : "");
			text_hang(stdout, line, col > 0 ? (size_t)col : 0, 6);
		}
		free(line);
	}
	if (!any)
		printf("  (none)\n");
	if (n)
		printf("\ncycles:\n");
	for (long k = 0; k < n; k++) {
		char *line = NULL;
		size_t cap = 0;
		FILE *mf = open_memstream(&line, &cap);
		if (!mf)
			continue;
		for (size_t j = 0; j < cs[k].n; j++)
			fprintf(mf, "L%u -> ", v->lm.edges[cs[k].e[j]].from);
		fprintf(mf, "L%u: ", v->lm.edges[cs[k].e[0]].from);
		if (cs[k].gated)
			fprintf(mf, "safe, every edge is taken under L%u", cs[k].gate);
		else if (cs[k].one_thread)
			fprintf(mf, "one thread only, cannot deadlock in this run");
		else if (cs[k].few_threads)
			fprintf(mf, "fewer threads than edges, cannot deadlock "
				"in this run");
		else
			fprintf(mf, "threads can deadlock (see `analyze report`)");
		if (fclose(mf) == 0) {
			fputs("  ", stdout);
			text_hang(stdout, line, 2, 4);
		}
		free(line);
	}
}

static void write_json(const struct lock_view *v, const struct lock_cycle *cs,
		       long n)
{
	const struct lock_model *lm = &v->lm;
	struct json_writer w;
	json_init(&w, stdout, 2);
	json_object_begin(&w);
	json_key(&w, "locks");
	json_array_begin(&w);
	for (size_t i = 0; i < lm->n_locks; i++) {
		const struct lock_info *l = &lm->locks[i];
		json_object_begin(&w);
		json_key(&w, "id");
		json_uint(&w, i);
		json_key(&w, "name");
		json_string(&w, lname(lm, (uint32_t)i));
		json_key(&w, "type");
		json_string(&w, lock_type_name(l->type));
		json_key(&w, "address");
		json_hex(&w, l->addr);
		json_key(&w, "generation");
		json_uint(&w, l->gen);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_key(&w, "edges");
	json_array_begin(&w);
	for (size_t k = 0; k < lm->n_edges; k++) {
		const struct lock_edge *e = &lm->edges[k];
		if (!e->count)
			continue;
		json_object_begin(&w);
		json_key(&w, "from");
		json_uint(&w, e->from);
		json_key(&w, "to");
		json_uint(&w, e->to);
		/* "read" or "write" for an rwlock, null otherwise */
		json_key(&w, "from_mode");
		json_string(&w, edge_mode(lm, e->from, e->from_read));
		json_key(&w, "to_mode");
		json_string(&w, edge_mode(lm, e->to, e->to_read));
		json_key(&w, "count");
		json_uint(&w, e->count);
		json_key(&w, "threads");
		json_array_begin(&w);
		for (size_t t = 0; t < e->n_tids; t++)
			json_uint(&w, e->tids[t]);
		json_array_end(&w);
		json_key(&w, "gates");
		json_array_begin(&w);
		for (size_t g = 0; g < e->n_gates; g++)
			json_uint(&w, e->gates[g]);
		json_array_end(&w);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_key(&w, "cycles");
	json_array_begin(&w);
	for (long k = 0; k < n; k++) {
		json_object_begin(&w);
		json_key(&w, "locks");
		json_array_begin(&w);
		for (size_t j = 0; j < cs[k].n; j++)
			json_uint(&w, lm->edges[cs[k].e[j]].from);
		json_array_end(&w);
		json_key(&w, "verdict");
		json_string(&w, cs[k].gated ? "gated"
				: cs[k].one_thread ? "one-thread"
				: cs[k].few_threads ? "few-threads" : "can-deadlock");
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
	fputc('\n', stdout);
}

int cmd_lock_graph(const struct cmd_args *a)
{
	struct lock_view v;
	if (view_load(a, &v))
		return 2;
	struct lock_cycle *cs;
	long n = lock_cycles_find(&v.lm, &cs, GRAPH_CYCLES);
	if (n < 0) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		view_release(&v);
		return 2;
	}
	int status = 0;
	for (long k = 0; k < n; k++)
		if (lock_cycle_can_deadlock(&cs[k]))
			status = 1;
	if (a->svg) {
		int r = write_svg(&v.lm, cs, n);
		if (r)
			status = r;
	} else if (a->dot) {
		write_dot(stdout, &v.lm, cs, n, SIZE_MAX);
	} else if (a->json) {
		write_json(&v, cs, n);
	} else {
		write_text(&v, cs, n);
	}
	lock_cycles_free(cs, GRAPH_CYCLES);
	view_release(&v);
	return cmd_finish(status);
}

static void ms(char *buf, size_t cap, uint64_t ns)
{
	snprintf(buf, cap, "%.3f", (double)ns / 1e6);
}

/* One row of numbers per lock and its name: in the last column when
 * every name fits there, else on a line of its own under the row. */
/* The table; returns how many locks have estimated hold times. */
static size_t locks_text(const struct lock_model *lm)
{
	size_t estimated = 0;
	enum { NAME_COL = 66 };
	bool inline_names = true;
	for (size_t i = 0; i < lm->n_locks; i++) {
		const char *nm = lname(lm, (uint32_t)i);
		if (text_columns(nm, strlen(nm)) > TEXT_WIDTH - NAME_COL)
			inline_names = false;
	}
	printf("%9s %9s %9s %8s %9s %8s %6s%s\n", "acquired", "contended",
	       "wait ms", "max wait", "hold ms", "max hold", "failed",
	       inline_names ? "  lock" : "");
	for (size_t i = 0; i < lm->n_locks; i++) {
		const struct lock_info *l = &lm->locks[i];
		char w1[32], w2[32], t1[32], t2[32], h1[40], h2[40];
		ms(w1, sizeof(w1), l->wait_total);
		ms(w2, sizeof(w2), l->wait_max);
		/* "~": estimated from a sample of the holds. */
		const char *est = l->hold_untimed ? "~" : "";
		ms(t1, sizeof(t1), l->hold_total);
		ms(t2, sizeof(t2), l->hold_max);
		snprintf(h1, sizeof(h1), "%s%s", est, t1);
		snprintf(h2, sizeof(h2), "%s%s", est, t2);
		estimated += l->hold_untimed > 0;
		printf("%9lu %9lu %9s %8s %9s %8s %6lu",
		       (unsigned long)l->acquisitions,
		       (unsigned long)l->contended, w1, w2, h1, h2,
		       (unsigned long)(l->try_fail + l->timeouts));
		const char *nm = lname(lm, (uint32_t)i);
		if (inline_names) {
			fputs("  ", stdout);
			text_put_safe(stdout, nm, strlen(nm));
			putchar('\n');
		} else {
			fputs("\n    ", stdout);
			text_hang(stdout, nm, 4, 6);
		}
	}
	return estimated;
}

int cmd_locks(const struct cmd_args *a)
{
	struct lock_view v;
	if (view_load(a, &v))
		return 2;
	const struct lock_model *lm = &v.lm;
	if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 2);
		json_object_begin(&w);
		json_key(&w, "locks");
		json_array_begin(&w);
		for (size_t i = 0; i < lm->n_locks; i++) {
			const struct lock_info *l = &lm->locks[i];
			json_object_begin(&w);
			json_key(&w, "name");
			json_string(&w, lname(lm, (uint32_t)i));
			json_key(&w, "type");
			json_string(&w, lock_type_name(l->type));
			json_key(&w, "address");
			json_hex(&w, l->addr);
			json_key(&w, "acquisitions");
			json_uint(&w, l->acquisitions);
			json_key(&w, "contended");
			json_uint(&w, l->contended);
			json_key(&w, "wait_total_ns");
			json_uint(&w, l->wait_total);
			json_key(&w, "wait_max_ns");
			json_uint(&w, l->wait_max);
			json_key(&w, "hold_total_ns");
			json_uint(&w, l->hold_total);
			json_key(&w, "hold_max_ns");
			json_uint(&w, l->hold_max);
			json_key(&w, "hold_estimated");
			json_bool(&w, l->hold_untimed > 0);
			json_key(&w, "trylock_failures");
			json_uint(&w, l->try_fail);
			json_key(&w, "timeouts");
			json_uint(&w, l->timeouts);
			json_object_end(&w);
		}
		json_array_end(&w);
		json_object_end(&w);
		fputc('\n', stdout);
	} else {
		size_t estimated = locks_text(lm);
		if (!lm->n_locks)
			printf("no locks were taken\n");
		if (estimated)
			printf("~ hold times estimated: only a sample of the "
			       "lock's fast repeated holds\n  was timed\n");
	}
	view_release(&v);
	return cmd_finish(0);
}

/* Prints the lock findings of one kind. */
static int findings_of_kind(const struct cmd_args *a, const char *kind)
{
	struct lock_view v;
	if (view_load(a, &v))
		return 2;
	struct finding_list all = { 0 }, sub = { 0 };
	if (detect_locks_all(&v.m, &v.lm, &all) < 0 ||
	    !(sub.v = malloc((all.n ? all.n : 1) * sizeof(*sub.v)))) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		finding_list_release(&all);
		view_release(&v);
		return 2;
	}
	for (size_t i = 0; i < all.n; i++)
		if (!strcmp(all.v[i].kind, kind))
			sub.v[sub.n++] = all.v[i];
	sub.cap = sub.n;
	if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 2);
		json_object_begin(&w);
		json_key(&w, "findings");
		findings_print_json(&w, v.sym, &sub);
		json_object_end(&w);
		fputc('\n', stdout);
	} else {
		struct text_out t;
		text_init(&t, stdout);
		findings_print_text(&t, v.sym, &sub);
	}
	int status = sub.n ? 1 : 0;
	free(sub.v);
	finding_list_release(&all);
	view_release(&v);
	return cmd_finish(status);
}

int cmd_deadlock(const struct cmd_args *a)
{
	return findings_of_kind(a, "deadlock");
}

int cmd_livelock(const struct cmd_args *a)
{
	return findings_of_kind(a, "livelock");
}
