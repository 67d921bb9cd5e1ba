/* cmd_map.c: `analyze map`: the process's address space at the start and
 * at the end of the run, region by region (text, read-only data, data,
 * bss, heap, each thread's stack, guards, mmap), and for each region of
 * the end map the recorded heap blocks that fall in it, live and freed.
 * Also the loading and the pieces of output shared with `analyze where`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "map_out.h"
#include "text_out.h"

int map_input_load(const char *trace, const uint64_t *holding,
		   struct map_input *in)
{
	memset(in, 0, sizeof(*in));
	if (cmd_load(trace, &in->m))
		return 2;
	if (threads_model_build(&in->m, &in->tm) < 0 ||
	    (holding && heap_history_build_at(&in->m, *holding, &in->h) < 0) ||
	    proc_maps_build(&in->m, &in->tm, &in->pm) < 0) {
		fprintf(stderr, "analyze: %s: out of memory\n", trace);
		map_input_release(in);
		return 2;
	}
	return 0;
}

void map_input_release(struct map_input *in)
{
	proc_maps_release(&in->pm);
	heap_history_release(&in->h);
	threads_model_release(&in->tm);
	trace_model_release(&in->m);
}

void map_prot_text(uint64_t prot, char out[5])
{
	out[0] = (prot & 4) ? 'r' : '-';
	out[1] = (prot & 2) ? 'w' : '-';
	out[2] = (prot & 1) ? 'x' : '-';
	out[3] = (prot & 8) ? 'p' : 's';
	out[4] = 0;
}

void map_blocks_text(char *buf, size_t len, const struct map_blocks *b)
{
	char live[16], freed[16];
	text_size(live, sizeof(live), b->live_bytes);
	text_size(freed, sizeof(freed), b->freed_bytes);
	int at = snprintf(buf, len, "blocks: %" PRIu64 " live (%s), %" PRIu64 " freed (%s)",
			  b->live, live, b->freed, freed);
	for (size_t i = 0; i < b->n_tids && at > 0 && (size_t)at < len; i++)
		at += snprintf(buf + at, len - (size_t)at, "%s%u", i ? ", " :
			       b->n_tids > 1 ? "; threads " : "; thread ", (unsigned)b->tids[i]);
	if (b->other_tid_blocks && at > 0 && (size_t)at < len)
		snprintf(buf + at, len - (size_t)at, " and others");
}

static void blocks_json(struct json_writer *w, const struct map_blocks *b)
{
	json_object_begin(w);
	json_field_uint(w, "live", b->live);
	json_field_uint(w, "live_bytes", b->live_bytes);
	json_field_uint(w, "freed", b->freed);
	json_field_uint(w, "freed_bytes", b->freed_bytes);
	json_field_uint(w, "big", b->big);
	json_key(w, "by_thread");
	json_array_begin(w);
	for (size_t i = 0; i < b->n_tids; i++) {
		json_object_begin(w);
		json_field_uint(w, "thread", b->tids[i]);
		json_field_uint(w, "blocks", b->tid_blocks[i]);
		json_object_end(w);
	}
	json_array_end(w);
	json_field_uint(w, "other_threads_blocks", b->other_tid_blocks);
	json_object_end(w);
}

static void str_or_null(struct json_writer *w, const char *key, const struct trace_str *s)
{
	json_key(w, key);
	if (s->len)
		json_string_len(w, s->p, s->len);
	else
		json_null(w);
}

void map_region_json(struct json_writer *w, const struct map_region *r,
		     const struct proc_map *mp, uint32_t main_tid, bool with_blocks)
{
	char prot[5], what[512];
	map_prot_text(r->prot, prot);
	json_object_begin(w);
	json_key(w, "start"); json_hex(w, r->start);
	json_key(w, "end"); json_hex(w, r->end);
	json_field_uint(w, "size", r->end - r->start);
	json_field_string(w, "prot", prot);
	json_field_string(w, "kind", r->kind);
	str_or_null(w, "path", &r->path);
	json_key(w, "file_offset"); json_hex(w, r->file_offset);
	str_or_null(w, "owner", &r->owner);
	json_field_string(w, "description", proc_map_describe(r, main_tid, what, sizeof(what)));
	json_key(w, "thread");
	if (r->n_tids)
		json_uint(w, r->tids[0]);
	else
		json_null(w);
	json_key(w, "threads");
	json_array_begin(w);
	for (size_t i = 0; i < r->n_tids; i++)
		json_uint(w, r->tids[i]);
	json_array_end(w);
	json_field_bool(w, "main_stack", r->main_stack);
	json_field_bool(w, "from_thread_record", r->from_threads);
	json_key(w, "pieces");
	json_array_begin(w);
	for (size_t i = 0; i < r->n_pieces; i++) {
		const struct map_piece *p = &mp->pieces[r->piece_from + i];
		map_prot_text(p->prot, prot);
		json_object_begin(w);
		json_key(w, "start"); json_hex(w, p->start);
		json_key(w, "end"); json_hex(w, p->end);
		json_field_string(w, "prot", prot);
		json_key(w, "file_offset"); json_hex(w, p->file_offset);
		json_object_end(w);
	}
	json_array_end(w);
	if (with_blocks) {
		json_key(w, "blocks");
		blocks_json(w, &r->blocks);
	}
	json_object_end(w);
}

/* Short kind names for the text column. */
static const char *kind_short(const char *kind)
{
	if (!strcmp(kind, "read-only data"))
		return "rodata";
	if (!strcmp(kind, "reserved"))
		return "reserve";
	return kind;
}

/* One region a line; a file's full path follows its first region, and a
 * description too long for the column gets a line of its own. */
static void region_line(FILE *f, const struct map_region *r, uint32_t main_tid,
			bool with_blocks, const struct trace_str *prev_path)
{
	char prot[5], size[16], what[512];
	map_prot_text(r->prot, prot);
	text_size(size, sizeof(size), r->end - r->start);
	int used = printf("  %012" PRIx64 "-%012" PRIx64 " %8s %s %-7s ", r->start, r->end,
			  size, prot, kind_short(r->kind));
	size_t room = used > 0 && used < TEXT_WIDTH - 8 ? (size_t)(TEXT_WIDTH - used) : 8;
	bool file = r->path.len && r->path.p[0] == '/';
	if (file) {
		const char *base = r->path.p;
		for (size_t i = 0; i < r->path.len; i++)
			if (r->path.p[i] == '/')
				base = r->path.p + i + 1;
		size_t n = r->path.len - (size_t)(base - r->path.p);
		text_put_fit(f, base, n, room);
		fputc('\n', f);
		if (!prev_path || prev_path->len != r->path.len ||
		    memcmp(prev_path->p, r->path.p, r->path.len)) {
			fputs("      ", f);
			text_put_fit(f, r->path.p, r->path.len, TEXT_WIDTH - 6);
			fputc('\n', f);
		}
	} else {
		proc_map_describe(r, main_tid, what, sizeof(what));
		if (strlen(what) <= room) {
			text_put_safe(f, what, strlen(what));
		} else {
			fputs("\n      ", f);
			text_put_fit(f, what, strlen(what), TEXT_WIDTH - 6);
		}
		fputc('\n', f);
	}
	const struct map_blocks *b = &r->blocks;
	if (with_blocks && b->live + b->freed) {
		char line[256];
		map_blocks_text(line, sizeof(line), b);
		text_wrap(f, line, 6);
	}
}

static void map_text(const struct proc_map *mp, uint32_t main_tid, bool with_blocks)
{
	printf("  %-25s %8s %-4s %-7s %s\n", "address range", "size", "prot", "kind", "what");
	for (size_t i = 0; i < mp->n; i++)
		region_line(stdout, &mp->v[i], main_tid, with_blocks,
			    i ? &mp->v[i - 1].path : NULL);
}

static void write_json(const struct map_input *in)
{
	const struct proc_maps *pm = &in->pm;
	struct json_writer w;
	json_init(&w, stdout, 3);
	json_object_begin(&w);
	json_key(&w, "process");
	json_object_begin(&w);
	json_field_uint(&w, "pid", in->m.process.pid);
	json_key(&w, "exe");
	json_string_len(&w, in->m.process.exe.p, in->m.process.exe.len);
	json_object_end(&w);
	json_field_bool(&w, "end_recorded", pm->end_recorded);
	/* "regions" is the end map, as it always was. */
	json_key(&w, "regions");
	json_array_begin(&w);
	for (size_t i = 0; i < pm->end.n; i++)
		map_region_json(&w, &pm->end.v[i], &pm->end, pm->main_tid, true);
	json_array_end(&w);
	json_key(&w, "start_regions");
	json_array_begin(&w);
	for (size_t i = 0; i < pm->start.n; i++)
		map_region_json(&w, &pm->start.v[i], &pm->start, pm->main_tid, false);
	json_array_end(&w);
	json_key(&w, "blocks_outside");
	blocks_json(&w, &pm->outside);
	json_object_end(&w);
	fputc('\n', stdout);
}

int cmd_map(const struct cmd_args *a)
{
	struct map_input in;
	if (map_input_load(a->trace, NULL, &in))
		return 2;
	const struct proc_maps *pm = &in.pm;
	if (a->json) {
		write_json(&in);
		map_input_release(&in);
		return cmd_finish(0);
	}
	if (!in.m.n_modules && !in.m.n_end_map) {
		printf("(the trace holds no map of the process: no module records)\n");
		map_input_release(&in);
		return cmd_finish(0);
	}
	printf("The process map of ");
	text_put_fit(stdout, in.m.process.exe.p, in.m.process.exe.len, 40);
	printf(" (pid %" PRIu64 ")\n\nAt the start (when libspy started):\n", in.m.process.pid);
	map_text(&pm->start, pm->main_tid, false);
	fputc('\n', stdout);
	text_wrap(stdout, pm->end_recorded ? "At the end, with the recorded heap blocks "
		  "in each region:" : "At the end, with the recorded heap blocks in each "
		  "region (this trace has no end-of-run map: shown are the last snapshot "
		  "and the thread stacks from their start records):", 0);
	map_text(&pm->end, pm->main_tid, true);
	const struct map_blocks *o = &pm->outside;
	if (o->live + o->freed) {
		char line[512], blocks[256];
		map_blocks_text(blocks, sizeof(blocks), o);
		snprintf(line, sizeof(line), "In no region of the end map: %s (memory "
			 "given back to the system: a big block is unmapped when freed).",
			 blocks + strlen("blocks: "));
		fputc('\n', stdout);
		text_wrap(stdout, line, 0);
	}
	fputc('\n', stdout);
	text_wrap(stdout, "live: allocated and not freed by the end; freed: allocated "
		  "and freed during the run. `analyze where ADDR TRACE` tells which "
		  "block held an address, and where it was allocated and freed.", 0);
	map_input_release(&in);
	return cmd_finish(0);
}
