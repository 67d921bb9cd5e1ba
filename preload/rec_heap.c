/* rec_heap.c: encode malloc-family events. Hook context: no allocation,
 * no locks beyond the calling thread's own buffer.
 */
#include "rec_heap.h"

#include "spy_stack.h"
#include "spy_writer.h"
#include "trace_encode.h"

void rec_heap_alloc(unsigned fn, void *p, size_t size, size_t align)
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

void rec_heap_free(unsigned fn, void *p)
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

void rec_heap_realloc(unsigned fn, void *old, void *new, size_t size,
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
