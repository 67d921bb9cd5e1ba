/* spy_allocapi.h: the real allocator's own API, past the malloc family:
 * jemalloc's mallocx, rallocx, xallocx, dallocx and sdallocx, which a
 * program linked with jemalloc may call itself (bind9's libisc gets all
 * its memory so). libspy records no block of them, and the leak scan
 * reads none of the allocator's memory as a root (spy_ownmem.h): a block
 * of the program's own kept only in one of them (libuv's, in dig) read
 * as lost. So the calls of every object loaded at start are bound to
 * wrappers here, which keep the live blocks' addresses and sizes in a
 * table of libspy's own, and the leak scan reads those blocks as roots.
 * Nothing is done, and nothing is paid, where no object calls them.
 */
#ifndef SPY_ALLOCAPI_H
#define SPY_ALLOCAPI_H

#include <stddef.h>
#include <stdint.h>

/* At start, once the real allocator is known (spy_allocmem_init). */
void spy_allocapi_init(void);

/* For the leak scan: 1 when every live block made through the API is in
 * the table (or there is no such API), 0 when they cannot all be told (the
 * table filled up, or an object loaded later calls the API past the
 * wrappers): the allocator's memory must then be read as roots, all of
 * it. */
int spy_allocapi_complete(void);

/* Calls fn for every live block of the table. */
void spy_allocapi_each(void (*fn)(uintptr_t addr, size_t size, void *arg),
		       void *arg);

#endif
