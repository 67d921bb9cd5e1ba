/* report_html_locks.c: the lock-order graph as SVG, the cycles that the
 * lock-order-cycle findings report drawn in red (the same cycle search,
 * lock_cycles_find, over the same model), and the trylocks that failed
 * while their thread held another lock, dotted (what a livelock circles). */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lock_model.h"
#include "trace_format.h"
#include "text_out.h"
#include "u64map.h"
#include "report_html.h"

#define MAX_NODES 40
#define MAX_CYCLES 20
#define LABEL_CHARS 26

/* A label cut to at most LABEL_CHARS characters, never inside a UTF-8
 * sequence. */
static void label(FILE *f, const char *s)
{
	if (!s)
		s = "?";
	size_t len = strlen(s), i = 0, chars = 0;
	while (i < len && chars < LABEL_CHARS) {
		i++;
		while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		chars++;
	}
	html_esc(f, s, i);
	if (i < len)
		fputs("&#8230;", f);
}

/* 0 not on a cycle, 1 on a cycle that cannot deadlock (gated, one
 * thread, fewer threads than edges), 2 on a cycle a lock-order-cycle error reports. */
static int edge_cycle(const struct lock_cycle *cs, long n, uint32_t e)
{
	int best = 0;
	for (long k = 0; k < n; k++)
		for (size_t i = 0; i < cs[k].n; i++)
			if (cs[k].e[i] == e) {
				int v = lock_cycle_can_deadlock(&cs[k]) ? 2 : 1;
				if (v > best)
					best = v;
			}
	return best;
}

/* A trylock that failed while its thread held another lock: "held A,
 * tried B". Such tries never wait, so they make no order edge; a livelock
 * circles through them. */
#define MAX_TRIES 32
#define HELD_MAX 8

struct try_edge {
	uint32_t from, to;        /* lock indices */
	uint64_t count;
};

struct held {
	uint64_t lock[HELD_MAX];
	int n;
};

static struct held *held_of(struct u64map *slot, struct held **v, size_t *n,
			    uint32_t tid)
{
	uint64_t *i = u64map_get(slot, tid);
	if (i)
		return &(*v)[*i - 1];
	struct held *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return NULL;
	*v = nv;
	memset(&nv[*n], 0, sizeof(nv[*n]));
	if (u64map_put(slot, tid, *n + 1) < 0)
		return NULL;
	return &nv[(*n)++];
}

static void drop(struct held *h, uint64_t lock)
{
	for (int i = h->n - 1; i >= 0; i--)
		if (h->lock[i] == lock) {
			h->lock[i] = h->lock[--h->n];
			return;
		}
}

/* The failed tries of m by (held, tried) pair, into t (at most MAX_TRIES).
 * Returns how many, or -1 when memory ran out. */
static long failed_tries(const struct trace_model *m,
			 const struct lock_model *lm, struct try_edge *t)
{
	struct u64map index = U64MAP_INIT, slot = U64MAP_INIT;
	struct held *v = NULL;
	size_t nv = 0;
	long n = 0;
	for (size_t i = 0; i < lm->n_locks; i++)
		if (u64map_put(&index, lm->locks[i].addr, i + 1) < 0)
			n = -1;
	for (size_t i = 0; i < m->n_events && n >= 0; i++) {
		const struct trace_event *e = &m->events[i];
		if (e->kind != TRACE_LOCK_ACQUIRE && e->kind != TRACE_LOCK_RELEASE &&
		    e->kind != TRACE_LOCK_FAIL && e->kind != TRACE_COND_WAIT)
			continue;
		struct held *h = held_of(&slot, &v, &nv, e->tid);
		if (!h) {
			n = -1;
			break;
		}
		if (e->kind == TRACE_LOCK_ACQUIRE) {
			if (h->n < HELD_MAX)
				h->lock[h->n++] = e->a;
		} else if (e->kind == TRACE_LOCK_RELEASE) {
			drop(h, e->a);
		} else if (e->kind == TRACE_COND_WAIT) {
			drop(h, e->b);
		} else if ((e->b >> 4) == TRACE_LOCK_TRY) {
			uint64_t *to = u64map_get(&index, e->a);
			for (int k = 0; to && k < h->n; k++) {
				uint64_t *from = u64map_get(&index, h->lock[k]);
				if (!from || *from == *to)
					continue;
				long j = 0;
				while (j < n && !(t[j].from == *from - 1 &&
						  t[j].to == *to - 1))
					j++;
				if (j == n && n < MAX_TRIES)
					t[n++] = (struct try_edge){ (uint32_t)(*from - 1),
								    (uint32_t)(*to - 1), 0 };
				if (j < n)
					t[j].count++;
			}
		}
	}
	free(v);
	u64map_release(&slot);
	u64map_release(&index);
	return n;
}

/* An arc from node a to node b, bent to its right, stopping short of the
 * boxes; returns the point for its label in *lx, *ly. */
static void arc(FILE *f, const double *x, const double *y, int a, int b,
		double *lx, double *ly)
{
	double dx = x[b] - x[a], dy = y[b] - y[a];
	double len = sqrt(dx * dx + dy * dy);
	if (len < 1)
		len = 1;
	double ux = dx / len, uy = dy / len, bend = 0.18 * len;
	double sx = x[a] + ux * 60, sy = y[a] + uy * 18;
	double tx = x[b] - ux * 60, ty = y[b] - uy * 18;
	double mx = (sx + tx) / 2 - uy * bend, my = (sy + ty) / 2 + ux * bend;
	fprintf(f, "M%.1f,%.1fQ%.1f,%.1f %.1f,%.1f", sx, sy, mx, my, tx, ty);
	*lx = (sx + 2 * mx + tx) / 4;
	*ly = (sy + 2 * my + ty) / 4 - 3;
}

int report_html_locks(const struct html_page *p)
{
	FILE *f = p->f;
	struct lock_model lm = { 0 };
	if (lock_model_build(p->m, &lm) < 0)
		return -1;
	if (!lm.n_locks) {
		fputs("<p id=\"locks-empty\">The program took no locks.</p>\n", f);
		lock_model_release(&lm);
		return 0;
	}
	lock_names_fill(p->m, &lm, p->sym);
	struct lock_cycle *cs = NULL;
	long nc = lock_cycles_find(&lm, &cs, MAX_CYCLES);
	if (nc < 0) {
		lock_model_release(&lm);
		return -1;
	}
	struct try_edge tries[MAX_TRIES];
	long nt = failed_tries(p->m, &lm, tries);
	if (nt < 0) {
		lock_cycles_free(cs, MAX_CYCLES);
		lock_model_release(&lm);
		return -1;
	}
	/* The nodes: locks on an edge first (cycle locks before others),
	 * then, when there is room, the busiest of the rest. */
	int *node_of = malloc(lm.n_locks * sizeof(int));
	uint32_t nodes[MAX_NODES];
	size_t nn = 0;
	if (!node_of) {
		lock_cycles_free(cs, MAX_CYCLES);
		lock_model_release(&lm);
		return -1;
	}
	for (size_t i = 0; i < lm.n_locks; i++)
		node_of[i] = -1;
	for (int pass = 2; pass >= 0; pass--)
		for (size_t e = 0; e < lm.n_edges; e++) {
			const struct lock_edge *x = &lm.edges[e];
			if (!x->count || edge_cycle(cs, nc, (uint32_t)e) != pass)
				continue;
			uint32_t ends[2] = { x->from, x->to };
			for (int k = 0; k < 2; k++)
				if (node_of[ends[k]] < 0 && nn < MAX_NODES) {
					node_of[ends[k]] = (int)nn;
					nodes[nn++] = ends[k];
				}
		}
	for (long k = 0; k < nt; k++) {
		uint32_t ends[2] = { tries[k].from, tries[k].to };
		for (int j = 0; j < 2; j++)
			if (node_of[ends[j]] < 0 && nn < MAX_NODES) {
				node_of[ends[j]] = (int)nn;
				nodes[nn++] = ends[j];
			}
	}
	size_t on_edges = nn;
	for (size_t i = 0; i < lm.n_locks && nn < 8; i++)
		if (node_of[i] < 0) {
			node_of[i] = (int)nn;
			nodes[nn++] = (uint32_t)i;
		}

	size_t n_cycle_edges = 0;
	for (size_t e = 0; e < lm.n_edges; e++)
		n_cycle_edges += lm.edges[e].count &&
				 edge_cycle(cs, nc, (uint32_t)e) == 2;
	fprintf(f, "<p>%zu lock%s, %zu order edge%s; ", lm.n_locks,
		text_plural(lm.n_locks, "", "s"), lm.n_edges,
		text_plural(lm.n_edges, "", "s"));
	if (n_cycle_edges)
		fprintf(f, "<b>the red cycle can deadlock</b> (%zu edge%s).",
			n_cycle_edges, text_plural(n_cycle_edges, "", "s"));
	else if (nc > 0)
		fputs("the cycles drawn in orange cannot deadlock (one thread, "
		      "fewer threads than locks, or a common outer lock "
		      "serialises them).", f);
	else if (nt > 0)
		fputs("no thread waited for a lock while holding another; the "
		      "dotted arrows are trylocks that failed while their thread "
		      "held the other lock.", f);
	else if (on_edges)
		fputs("no cycle: every thread takes these locks in one order.", f);
	else
		fputs("no lock was taken while another was held.", f);
	if (lm.n_deadlocks)
		fprintf(f, " libspy saw %zu deadlock%s form.", lm.n_deadlocks,
			text_plural(lm.n_deadlocks, "", "s"));
	fputs("</p>\n", f);

	const int W = 760;
	int R = nn <= 2 ? 60 : nn < 8 ? 150 : 230;
	int H = 2 * R + 90;
	double cx = W / 2.0, cy = R + 40;
	double *x = malloc(nn * sizeof(double)), *y = malloc(nn * sizeof(double));
	if (!x || !y) {
		free(x);
		free(y);
		free(node_of);
		lock_cycles_free(cs, MAX_CYCLES);
		lock_model_release(&lm);
		return -1;
	}
	for (size_t i = 0; i < nn; i++) {
		double a = M_PI + 2 * M_PI * (double)i / (double)nn;
		x[i] = nn == 1 ? cx : cx + (W / 2.0 - 125) * cos(a);
		y[i] = nn == 1 ? cy : cy + R * sin(a);
	}
	fprintf(f, "<svg id=\"lock-graph\" xmlns=\"http://www.w3.org/2000/svg\" "
		"width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
		"data-locks=\"%zu\" data-edges=\"%zu\" data-cycle-edges=\"%zu\">\n"
		"<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" "
		"refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">"
		"<path d=\"M0,0L10,5L0,10z\" fill=\"#556\"/></marker>"
		"<marker id=\"arrow-red\" viewBox=\"0 0 10 10\" refX=\"10\" "
		"refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">"
		"<path d=\"M0,0L10,5L0,10z\" fill=\"#c62828\"/></marker></defs>\n",
		W, H, W, H, lm.n_locks, lm.n_edges, n_cycle_edges);
	for (size_t e = 0; e < lm.n_edges; e++) {
		const struct lock_edge *g = &lm.edges[e];
		int a = node_of[g->from], b = node_of[g->to];
		if (!g->count || a < 0 || b < 0 || a == b)
			continue;
		int cyc = edge_cycle(cs, nc, (uint32_t)e);
		/* Bend every edge to its right, so that A->B and B->A are
		 * two arcs; stop short of the node's box. */
		double dx = x[b] - x[a], dy = y[b] - y[a];
		double len = sqrt(dx * dx + dy * dy);
		if (len < 1)
			len = 1;
		double ux = dx / len, uy = dy / len, bend = 0.18 * len;
		double sx = x[a] + ux * 60, sy = y[a] + uy * 18;
		double tx = x[b] - ux * 60, ty = y[b] - uy * 18;
		double mx = (sx + tx) / 2 - uy * bend, my = (sy + ty) / 2 + ux * bend;
		const char *colour = cyc == 2 ? "#c62828" : cyc ? "#e08a00" : "#556";
		fprintf(f, "<g class=\"%s\" data-from=\"", cyc == 2 ? "edge cycle"
			: cyc ? "edge safe-cycle" : "edge");
		html_escz(f, lm.locks[g->from].name);
		fputs("\" data-to=\"", f);
		html_escz(f, lm.locks[g->to].name);
		fprintf(f, "\"><path d=\"M%.1f,%.1fQ%.1f,%.1f %.1f,%.1f\" "
			"fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s "
			"marker-end=\"url(#%s)\"/>", sx, sy, mx, my, tx, ty,
			colour, cyc == 2 ? "3" : "1.5",
			cyc == 1 ? " stroke-dasharray=\"6 3\"" : "",
			cyc == 2 ? "arrow-red" : "arrow");
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
			"fill=\"%s\">", (sx + 2 * mx + tx) / 4,
			(sy + 2 * my + ty) / 4 - 3, colour);
		for (size_t k = 0; k < g->n_tids; k++)
			fprintf(f, "%st%u", k ? "," : "", g->tids[k]);
		fprintf(f, " &#215;%" PRIu64 "</text></g>\n", g->count);
	}
	for (long k = 0; k < nt; k++) {
		int a = node_of[tries[k].from], b = node_of[tries[k].to];
		if (a < 0 || b < 0 || a == b)
			continue;
		double lx, ly;
		fputs("<g class=\"edge try\" data-from=\"", f);
		html_escz(f, lm.locks[tries[k].from].name);
		fputs("\" data-to=\"", f);
		html_escz(f, lm.locks[tries[k].to].name);
		fputs("\"><path d=\"", f);
		arc(f, x, y, a, b, &lx, &ly);
		fprintf(f, "\" fill=\"none\" stroke=\"#b35c00\" stroke-width="
			"\"2\" stroke-dasharray=\"2 4\" marker-end=\"url(#arrow)\"/>"
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
			"fill=\"#b35c00\">tried while holding, failed %" PRIu64
			"&#215;</text></g>\n", lx, ly, tries[k].count);
	}
	for (size_t i = 0; i < nn; i++) {
		const struct lock_info *l = &lm.locks[nodes[i]];
		bool in_cycle = false, in_deadlock = false;
		for (size_t e = 0; e < lm.n_edges; e++)
			if ((lm.edges[e].from == nodes[i] ||
			     lm.edges[e].to == nodes[i]) && lm.edges[e].count &&
			    edge_cycle(cs, nc, (uint32_t)e) == 2)
				in_cycle = true;
		for (size_t d = 0; d < lm.n_deadlocks; d++)
			for (size_t t = 0; t < lm.deadlocks[d].n; t++)
				if (lm.deadlocks[d].t[t].lock == nodes[i])
					in_deadlock = true;
		fprintf(f, "<g class=\"lock%s\"><rect x=\"%.1f\" y=\"%.1f\" "
			"width=\"230\" height=\"34\" rx=\"6\" fill=\"%s\" "
			"stroke=\"%s\" stroke-width=\"%s\"/>", in_cycle ? " cycle" : "",
			x[i] - 115, y[i] - 17, in_cycle ? "#fde7e7" : "#eef2f8",
			in_cycle || in_deadlock ? "#c62828" : "#7a8599",
			in_deadlock ? "3" : "1");
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
			"class=\"mono\">", x[i], y[i] - 2);
		label(f, l->name);
		fprintf(f, "</text><text x=\"%.1f\" y=\"%.1f\" text-anchor="
			"\"middle\" fill=\"%s\">%s, taken %" PRIu64 "&#215;",
			x[i], y[i] + 12, l->try_fail ? "#b35c00" : "#667",
			lock_type_name(l->type), l->acquisitions);
		if (l->try_fail)
			fprintf(f, ", %" PRIu64 " failed %s", l->try_fail,
				text_plural(l->try_fail, "try", "tries"));
		fputs("</text></g>\n", f);
	}
	if (nn < lm.n_locks)
		fprintf(f, "<text x=\"6\" y=\"%d\" fill=\"#667\">%zu more %s "
			"with no order edge %s not drawn.</text>\n", H - 8,
			lm.n_locks - nn,
			text_plural(lm.n_locks - nn, "lock", "locks"),
			text_plural(lm.n_locks - nn, "is", "are"));
	fputs("</svg>\n", f);
	free(x);
	free(y);
	free(node_of);
	lock_cycles_free(cs, MAX_CYCLES);
	lock_model_release(&lm);
	return 0;
}
