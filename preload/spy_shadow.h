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
 * threads changing the two granules of one byte never lose an update
 * (spy_shadow_set_owned and spy_shadow_clear_owned, for a byte no other
 * thread can be changing, go without).
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
	/* one test of the bits that must be clear (else two compares and
	 * their flags combined, on every malloc and free) */
	return !(a & (~(((uintptr_t)1 << 47) - 1) | 15));
}

/* The tables: a directory per GiB, a leaf (a byte per 32 bytes) per MiB.
 * Inline below: every malloc and free changes a nibble. */
#define SPY_SHADOW_LEAF_SHIFT 20
#define SPY_SHADOW_DIR_SHIFT 30
#define SPY_SHADOW_LEAF_BYTES ((size_t)1 << (SPY_SHADOW_LEAF_SHIFT - 5))
#define SPY_SHADOW_DIR_SLOTS \
	((size_t)1 << (SPY_SHADOW_DIR_SHIFT - SPY_SHADOW_LEAF_SHIFT))
extern uint8_t **spy_shadow_top[];

/* The byte holding a's nibble, its leaf (and directory) made first; NULL
 * when no memory can be had. */
uint8_t *spy_shadow_byte_make(uintptr_t a);

/* The byte holding a's nibble, or NULL when its leaf was never made
 * (then made when make is set). */
static inline __attribute__((always_inline)) uint8_t *spy_shadow_byte(uintptr_t a, int make)
{
	uint8_t **dir = __atomic_load_n(&spy_shadow_top[a >> SPY_SHADOW_DIR_SHIFT],
					__ATOMIC_ACQUIRE);
	uint8_t *leaf = NULL;
	if (__builtin_expect(dir != NULL, 1))
		leaf = __atomic_load_n(&dir[(a >> SPY_SHADOW_LEAF_SHIFT) &
					    (SPY_SHADOW_DIR_SLOTS - 1)],
				       __ATOMIC_ACQUIRE);
	if (__builtin_expect(leaf != NULL, 1))
		return &leaf[(a >> 5) & (SPY_SHADOW_LEAF_BYTES - 1)];
	return make ? spy_shadow_byte_make(a) : NULL;
}

/* Where in its byte a's nibble lies. */
static inline unsigned spy_shadow_shift(uintptr_t a)
{
	return (unsigned)((a >> 4) & 1) * 4;
}

/* The nibble of a (0 when none was ever set). */
static inline unsigned spy_shadow_get(uintptr_t a)
{
	const uint8_t *b = spy_shadow_byte(a, 0);
	return b ? (__atomic_load_n(b, __ATOMIC_RELAXED) >> spy_shadow_shift(a)) & 15
		 : 0;
}

/* Sets the nibble of a to v, and the other one of its byte to 0, with a
 * plain store and no read: only for a caller that owns the whole byte
 * and knows that no block starts in its other granule (with glibc, whose
 * chunks are 32 bytes or more apart, only one block ever starts in a
 * byte's 32 bytes: a nibble found there would be one whose free went
 * unseen). A locked instruction would wait for every store before it,
 * the allocator's included, to reach the cache, and a read of a byte
 * long untouched would wait for memory. 0 if no leaf could be had. */
static inline __attribute__((always_inline)) int spy_shadow_set_owned(uintptr_t a,
								       unsigned v)
{
	uint8_t *b = spy_shadow_byte(a, 1);
	if (!b)
		return 0;
	__atomic_store_n(b, (uint8_t)(v << spy_shadow_shift(a)), __ATOMIC_RELAXED);
	return 1;
}

/* Sets the nibble of a to 0 when it holds one of the states in the mask
 * `from` (bit n for state n), without an atomic read-modify-write: for a
 * caller that owns the byte, as for spy_shadow_set_owned. Returns the
 * state found. */
static inline unsigned spy_shadow_clear_owned(uintptr_t a, unsigned from)
{
	uint8_t *b = spy_shadow_byte(a, 0);
	if (!b)
		return 0;
	unsigned sh = spy_shadow_shift(a);
	uint8_t old = __atomic_load_n(b, __ATOMIC_RELAXED);
	unsigned state = (old >> sh) & 15;
	if (from >> state & 1)
		__atomic_store_n(b, (uint8_t)(old & ~(15u << sh)), __ATOMIC_RELAXED);
	return state;
}

/* When the nibble of a holds one of the states in the mask `from` (bit n
 * for state n), sets it to v | (the old state & keep). Returns the state
 * found. A leaf is made when one is needed and v is not 0; if none can be
 * had, 0 is returned and nothing is set. */
static inline __attribute__((always_inline)) unsigned spy_shadow_change(uintptr_t a, unsigned from, unsigned v,
					 unsigned keep)
{
	uint8_t *b = spy_shadow_byte(a, v != 0);
	if (!b)
		return 0;
	unsigned sh = spy_shadow_shift(a), old_state;
	uint8_t old = __atomic_load_n(b, __ATOMIC_RELAXED), next;
	do {
		old_state = (old >> sh) & 15;
		if (!(from >> old_state & 1))
			return old_state;
		next = (uint8_t)((old & ~(15u << sh)) |
				(v | (old_state & keep)) << sh);
		if (next == old)
			return old_state;
	} while (!__atomic_compare_exchange_n(b, &old, next, 1, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return old_state;
}

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
