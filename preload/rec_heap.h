/* rec_heap.h: the heap recorder: malloc-family events into the trace.
 * Called by the malloc hooks with the guard held; never allocates. Inlined
 * into the hooks, so that the stack it captures starts at the hook.
 */
#ifndef REC_HEAP_H
#define REC_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "spy_stack.h"
#include "spy_writer.h"
#include "trace_encode.h"

/* A block of size bytes was handed out at p by fn (trace_alloc_fn). */
static inline __attribute__((always_inline)) void
rec_heap_alloc(unsigned fn, void *p, size_t size, size_t align)
{
	uint32_t stack = spy_stack_capture();
	uint8_t *w = spy_writer_begin(TRACE_ALLOC, 6 * TRACE_VARINT_MAX);
	if (!w)
		return;
	*w++ = (uint8_t)fn;
	w = spy_writer_put_addr(w, (uintptr_t)p);
	w = trace_put_varint(w, size);
	w = trace_put_varint(w, stack);
	w = trace_put_varint(w, align);
	spy_writer_end(w);
}

/* The block at p is about to be released (record before the real free, so
 * that its address cannot be handed out again before the record exists). */
static inline __attribute__((always_inline)) void
rec_heap_free(unsigned fn, void *p)
{
	uint32_t stack = spy_stack_capture();
	uint8_t *w = spy_writer_begin(TRACE_FREE, 4 * TRACE_VARINT_MAX);
	if (!w)
		return;
	*w++ = (uint8_t)fn;
	w = spy_writer_put_addr(w, (uintptr_t)p);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

/* realloc-class call: old (may be NULL) became new (NULL when the call
 * failed, or freed old for size 0); stack and when were taken before it. */
static inline __attribute__((always_inline)) void
rec_heap_realloc(unsigned fn, void *old, void *new, size_t size,
		      uint32_t stack, uint64_t when)
{
	uint8_t *w = spy_writer_begin_at(TRACE_REALLOC, 6 * TRACE_VARINT_MAX, when);
	if (!w)
		return;
	*w++ = (uint8_t)fn;
	w = spy_writer_put_addr(w, (uintptr_t)old);
	w = spy_writer_put_addr(w, (uintptr_t)new);
	w = trace_put_varint(w, size);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

#endif
