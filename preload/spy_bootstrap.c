/* spy_bootstrap.c: the bootstrap arena. Lock-free bump allocation, because
 * it may be reached from any thread before initialisation has finished.
 */
#include "spy_bootstrap.h"

#include <stdint.h>

#define ARENA_SIZE (256 * 1024)
#define HEADER 16 /* the block's size, kept just before it */

static _Alignas(4096) unsigned char arena[ARENA_SIZE];
static size_t arena_used;

void *spy_bootstrap_alloc(size_t size, size_t align)
{
	if (align < HEADER)
		align = HEADER;
	if (size > ARENA_SIZE || align > 4096)
		return NULL;
	size_t old = __atomic_load_n(&arena_used, __ATOMIC_RELAXED);
	for (;;) {
		size_t start = (old + HEADER + align - 1) & ~(align - 1);
		size_t end = start + ((size + HEADER - 1) & ~(size_t)(HEADER - 1));
		if (end > ARENA_SIZE)
			return NULL;
		if (__atomic_compare_exchange_n(&arena_used, &old, end, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			*(size_t *)(arena + start - HEADER) = size;
			return arena + start; /* static storage: already zero */
		}
	}
}

int spy_bootstrap_owns(const void *p)
{
	return (const unsigned char *)p >= arena &&
	       (const unsigned char *)p < arena + ARENA_SIZE;
}

size_t spy_bootstrap_size(const void *p)
{
	if (!spy_bootstrap_owns(p))
		return 0;
	return *(const size_t *)((const unsigned char *)p - HEADER);
}
