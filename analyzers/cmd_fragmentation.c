/* cmd_fragmentation.c: `analyze fragmentation TRACE`: the brk heap when an
 * allocation failed and at the end: live and free bytes, holes, the largest
 * hole, external fragmentation, a strip picture and the hole sizes. */
#include <inttypes.h>
#include <stdio.h>

#include "commands.h"
#include "heap_frag.h"
#include "json_writer.h"
#include "trace_format.h"

static void mib(char *buf, size_t n, uint64_t v)
{
	snprintf(buf, n, "%.1f MiB", (double)v / (1 << 20));
}

static void print_text(const struct heap_frag *f)
{
	char a[32], b[32], c[32];
	if (f->fail)
		printf("when %s(%" PRIu64 ") failed:\n",
		       trace_alloc_fn_name(f->fail->fn), f->fail->a);
	else
		printf("at the end:\n");
	mib(a, sizeof(a), f->live_bytes);
	printf("  live          %s in %" PRIu64 " blocks\n", a, f->live_blocks);
	if (!f->heap_start) {
		printf("  (no [heap] in the trace's memory map)\n");
		return;
	}
	mib(a, sizeof(a), f->heap_end - f->heap_start);
	mib(b, sizeof(b), f->heap_live_bytes);
	printf("  brk heap      %s at 0x%" PRIx64 ", %s of it live\n", a,
	       f->heap_start, b);
	mib(a, sizeof(a), f->free_bytes);
	printf("  holes         %" PRIu64 ", %s free, the largest %" PRIu64
	       " bytes\n", f->holes, a, f->largest_hole);
	mib(a, sizeof(a), f->top_bytes);
	printf("  top           %s free after the last block\n", a);
	printf("  external fragmentation %.2f (1 - largest free region / free bytes)\n",
	       f->external);
	printf("  [%s]\n", f->strip);
	printf("   # live  + mostly live  - partly live  . free\n");
	for (unsigned k = 0; k < HEAP_FRAG_BUCKETS; k++)
		if (f->hist[k])
			printf("  holes of %8" PRIu64 "..%-8" PRIu64 " bytes: %" PRIu64 "\n",
			       (uint64_t)1 << k, ((uint64_t)2 << k) - 1, f->hist[k]);
	if (f->info.valid) {
		mib(a, sizeof(a), f->info.arena);
		mib(b, sizeof(b), f->info.fordblks);
		mib(c, sizeof(c), f->info.hblkhd);
		printf("  glibc says    heap %s, free %s in %" PRIu64
		       " chunks, mapped %s in %" PRIu64 " blocks\n",
		       a, b, f->info.ordblks, c, f->info.hblks);
		mib(a, sizeof(a), f->info.rss);
		mib(b, sizeof(b), f->info.vm_size);
		printf("  memory        RSS %s, address space %s", a, b);
		if (f->info.as_limit) {
			mib(c, sizeof(c), f->info.as_limit);
			printf(", RLIMIT_AS %s", c);
		}
		printf("\n");
	}
	if (heap_frag_is_bad(f))
		printf("  => badly fragmented (see the fragmentation finding)\n");
}

static void print_json(struct json_writer *w, const struct heap_frag *f)
{
	json_object_begin(w);
	json_field_string(w, "when", f->fail ? "allocation-failure" : "end");
	if (f->fail) {
		json_field_string(w, "function", trace_alloc_fn_name(f->fail->fn));
		json_field_uint(w, "size", f->fail->a);
	}
	json_field_uint(w, "live_bytes", f->live_bytes);
	json_field_uint(w, "live_blocks", f->live_blocks);
	json_field_uint(w, "heap_bytes", f->heap_end - f->heap_start);
	json_field_uint(w, "heap_live_bytes", f->heap_live_bytes);
	json_field_uint(w, "free_bytes", f->free_bytes);
	json_field_uint(w, "holes", f->holes);
	json_field_uint(w, "largest_hole", f->largest_hole);
	json_field_uint(w, "top_bytes", f->top_bytes);
	json_key(w, "external_fragmentation");
	json_double(w, f->external);
	json_field_bool(w, "fragmented", heap_frag_is_bad(f));
	json_field_string(w, "strip", f->strip);
	json_key(w, "hole_sizes");
	json_array_begin(w);
	for (unsigned k = 0; k < HEAP_FRAG_BUCKETS; k++)
		if (f->hist[k]) {
			json_object_begin(w);
			json_field_uint(w, "from", (uint64_t)1 << k);
			json_field_uint(w, "count", f->hist[k]);
			json_object_end(w);
		}
	json_array_end(w);
	if (f->info.valid) {
		json_key(w, "glibc");
		json_object_begin(w);
		json_field_uint(w, "arena", f->info.arena);
		json_field_uint(w, "ordblks", f->info.ordblks);
		json_field_uint(w, "fordblks", f->info.fordblks);
		json_field_uint(w, "hblks", f->info.hblks);
		json_field_uint(w, "hblkhd", f->info.hblkhd);
		json_field_uint(w, "uordblks", f->info.uordblks);
		json_field_uint(w, "keepcost", f->info.keepcost);
		json_object_end(w);
		json_field_uint(w, "rss", f->info.rss);
		json_field_uint(w, "vm_size", f->info.vm_size);
		json_field_uint(w, "as_limit", f->info.as_limit);
	}
	json_object_end(w);
}

int cmd_fragmentation(const struct cmd_args *a)
{
	struct trace_model m;
	if (cmd_load(a->trace, &m))
		return 2;
	struct heap_frag snaps[4];
	size_t n = 0;
	for (size_t i = 0; i < m.n_events && n < 3; i++)
		if (m.events[i].kind == TRACE_ALLOC_FAIL &&
		    heap_frag_at(&m, &m.events[i], &snaps[n++]) < 0)
			goto no_memory;
	if (heap_frag_at(&m, NULL, &snaps[n++]) < 0)
		goto no_memory;
	int bad = 0;
	for (size_t i = 0; i < n; i++)
		bad |= heap_frag_is_bad(&snaps[i]) || snaps[i].fail;
	if (a->json) {
		struct json_writer w;
		json_init(&w, stdout, 3);
		json_object_begin(&w);
		json_key(&w, "snapshots");
		json_array_begin(&w);
		for (size_t i = 0; i < n; i++)
			print_json(&w, &snaps[i]);
		json_array_end(&w);
		json_object_end(&w);
		fputc('\n', stdout);
	} else {
		for (size_t i = 0; i < n; i++) {
			if (i)
				printf("\n");
			print_text(&snaps[i]);
		}
	}
	trace_model_release(&m);
	return cmd_finish(bad ? 1 : 0);
no_memory:
	fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
	trace_model_release(&m);
	return 2;
}
