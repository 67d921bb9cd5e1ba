/* spy_blockhash.h: the live-block map's slow part: a hash of the blocks
 * whose addresses the shadow cannot hold (not 16-byte aligned, as an
 * allocator with 8-byte size classes hands out, or above 2^47) and of the
 * big ones (spy_heapmap.c). Sharded
 * open-addressing tables, one small spin lock per shard (never a lock the
 * program can hold); 16 bytes per entry. Never allocates with the
 * program's allocator (tables come from mmap). spy_heapmap.h states the
 * meaning of each call.
 */
#ifndef SPY_BLOCKHASH_H
#define SPY_BLOCKHASH_H

#include <stddef.h>
#include <stdint.h>

#include "spy_heapmap.h"

void spy_blockhash_init(void);
void spy_blockhash_insert(uintptr_t addr, size_t size, unsigned family);
enum spy_heap_found spy_blockhash_release(uintptr_t addr, int hold,
					  size_t *size, unsigned *family);
void spy_blockhash_remove(uintptr_t addr);
int spy_blockhash_live(uintptr_t addr, unsigned *family, size_t *size);
int spy_blockhash_find_containing(uintptr_t addr, uintptr_t *base,
				  size_t *size);
/* Every entry; each shard is locked while it is walked. */
void spy_blockhash_each(void (*fn)(uintptr_t addr, size_t size, int freed,
				   void *arg),
			void *arg);
size_t spy_blockhash_tables(uintptr_t (*out)[2], size_t max);

#endif
