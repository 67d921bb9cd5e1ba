/* frag_out.c: sizes, moments and JSON of heap snapshots (frag_out.h). */
#include "frag_out.h"

#include <inttypes.h>
#include <stdio.h>

#include "trace_format.h"

void frag_failed_call(char *buf, size_t n, const struct trace_event *e)
{
	if (e->fn == TRACE_FN_CALLOC && (e->b || e->c))
		snprintf(buf, n, "calloc(%" PRIu64 ", %" PRIu64 ")", e->b, e->c);
	else if (e->fn == TRACE_FN_REALLOCARRAY && (e->b || e->c))
		snprintf(buf, n, "reallocarray(..., %" PRIu64 ", %" PRIu64 ")",
			 e->b, e->c);
	else
		snprintf(buf, n, "%s(%" PRIu64 ")", trace_alloc_fn_name(e->fn),
			 e->a);
}

void frag_moment(char *buf, size_t n, const struct trace_model *m,
		 const struct heap_frag *f)
{
	char call[80];
	if (f->when == HEAP_FRAG_FAILURE && f->fail) {
		frag_failed_call(call, sizeof(call), f->fail);
		snprintf(buf, n, "%s failed", call);
	}
	else if (f->when == HEAP_FRAG_INTERVAL)
		snprintf(buf, n, "%.3f s", (double)trace_rel_ns(m, f->ts) / 1e9);
	else
		snprintf(buf, n, "the end");
}

static const char *when_name(const struct heap_frag *f)
{
	return f->when == HEAP_FRAG_FAILURE ? "allocation-failure"
		: f->when == HEAP_FRAG_INTERVAL ? "interval" : "end";
}

void frag_json(struct json_writer *w, const struct trace_model *m,
	       const struct heap_frag *f)
{
	json_object_begin(w);
	json_field_string(w, "when", when_name(f));
	json_field_int(w, "time_ns", trace_rel_ns(m, f->ts));
	if (f->fail) {
		json_field_string(w, "function", trace_alloc_fn_name(f->fail->fn));
		json_field_uint(w, "size", f->fail->a);
	}
	json_field_string(w, "allocator", heap_frag_allocator(f));
	json_field_uint(w, "live_bytes", f->live_bytes);
	json_field_uint(w, "live_blocks", f->live_blocks);
	json_field_uint(w, "footprint", f->footprint);
	json_field_uint(w, "footprint_free", f->footprint_free);
	json_field_bool(w, "holes_modelled", heap_frag_has_holes(f));
	json_field_uint(w, "heap_bytes", f->heap_end - f->heap_start);
	json_field_uint(w, "heap_live_bytes", f->heap_live_bytes);
	json_field_uint(w, "free_bytes", f->free_bytes);
	json_field_uint(w, "holes", f->holes);
	json_field_uint(w, "largest_hole", f->largest_hole);
	json_field_uint(w, "top_bytes", f->top_bytes);
	json_key(w, "thread_arenas");
	json_object_begin(w);
	json_field_uint(w, "spans", f->arena_spans);
	json_field_uint(w, "live_bytes", f->arena_live_bytes);
	json_field_uint(w, "holes", f->arena_holes);
	json_field_uint(w, "free_bytes", f->arena_free_bytes);
	json_field_uint(w, "largest_hole", f->arena_largest_hole);
	json_object_end(w);
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
		const struct heap_info *i = &f->info;
		json_key(w, "glibc");
		json_object_begin(w);
		json_field_uint(w, "arena", i->arena);
		json_field_uint(w, "ordblks", i->ordblks);
		json_field_uint(w, "fordblks", i->fordblks);
		json_field_uint(w, "hblks", i->hblks);
		json_field_uint(w, "hblkhd", i->hblkhd);
		json_field_uint(w, "uordblks", i->uordblks);
		json_field_uint(w, "keepcost", i->keepcost);
		json_object_end(w);
		if (i->allocator == HEAP_JEMALLOC) {
			json_key(w, "jemalloc");
			json_object_begin(w);
			json_field_uint(w, "allocated", i->je_allocated);
			json_field_uint(w, "active", i->je_active);
			json_field_uint(w, "metadata", i->je_metadata);
			json_field_uint(w, "resident", i->je_resident);
			json_field_uint(w, "mapped", i->je_mapped);
			json_field_uint(w, "retained", i->je_retained);
			if (i->je_holes) {
				json_field_uint(w, "free_regions", i->je_regions);
				json_field_uint(w, "free_region_bytes", i->je_region_bytes);
				json_field_uint(w, "largest_free_region", i->je_largest_region);
				json_field_uint(w, "free_extents", i->je_extents);
				json_field_uint(w, "free_extent_bytes", i->je_extent_bytes);
				json_field_uint(w, "largest_free_extent", i->je_largest_extent);
			}
			json_object_end(w);
		}
		json_field_uint(w, "rss", i->rss);
		json_field_uint(w, "vm_size", i->vm_size);
		json_field_uint(w, "as_limit", i->as_limit);
	}
	json_object_end(w);
}
