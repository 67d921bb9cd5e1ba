/* spy_shadow.h: a nibble of state for every 16-byte granule of the address
 * space, kept only where blocks have started: the live-block map's fast
 * part (spy_heapmap.c). A lookup is three loads (a directory per GiB, a
 * leaf per MiB, the nibble), and the leaf lies next to the nibbles of the
 * neighbouring blocks: it follows the allocator's own locality instead of
 * scattering the blocks over a table the way a hash does.
 *
 * Memory: one byte per 32 bytes of address range where blocks start (a
 * 4 KiB page of shadow per 128 KiB of heap touched), taken from mmap and
 * never given back. Updates are compare-and-swap on the byte, so two
 * threads changing the two granules of one byte never lose an update.
 * Safe in hooks and in a fork child: no lock but the leaf pool's, which
 * fork takes and releases.
 */
#ifndef SPY_SHADOW_H
#define SPY_SHADOW_H

#include <stddef.h>
#include <stdint.h>

/* Addresses the shadow can hold: 16-byte aligned, below 2^47. */
static inline int spy_shadow_covers(uintptr_t a)
{
	return !(a & 15) && a < ((uintptr_t)1 << 47);
}

/* The nibble of a (0 when none was ever set). */
unsigned spy_shadow_get(uintptr_t a);

/* When the nibble of a holds one of the states in the mask `from` (bit n
 * for state n), sets it to v | (the old state & keep). Returns the state
 * found. A leaf is made when one is needed and v is not 0; if none can be
 * had, 0 is returned and nothing is set. */
unsigned spy_shadow_change(uintptr_t a, unsigned from, unsigned v,
			   unsigned keep);

/* The highest granule address in [low, a] whose nibble is not 0, or 0. */
uintptr_t spy_shadow_prev(uintptr_t a, uintptr_t low);

/* Calls fn for every granule with a nibble not 0. */
void spy_shadow_each(void (*fn)(uintptr_t a, unsigned v, void *arg), void *arg);

/* The shadow's own memory as [start, end) pairs (at most max); returns how
 * many were written. */
size_t spy_shadow_tables(uintptr_t (*out)[2], size_t max);

/* Registers the fork handlers; called once at start. */
void spy_shadow_init(void);

#endif
