/* rec_heap.h: the heap recorder: malloc-family events into the trace.
 * Called by the malloc hooks with the guard held; never allocates.
 */
#ifndef REC_HEAP_H
#define REC_HEAP_H

#include <stddef.h>
#include <stdint.h>

/* A block of size bytes was handed out at p by fn (trace_alloc_fn). */
void rec_heap_alloc(unsigned fn, void *p, size_t size, size_t align);
/* The block at p is about to be released (record before the real free, so
 * that its address cannot be handed out again before the record exists). */
void rec_heap_free(unsigned fn, void *p);
/* realloc-class call: old (may be NULL) became new (NULL when the call
 * failed, or freed old for size 0). when is the time taken before the call. */
void rec_heap_realloc(unsigned fn, void *old, void *new, size_t size,
		      uint32_t stack, uint64_t when);

#endif
