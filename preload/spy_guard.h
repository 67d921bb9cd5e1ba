/* spy_guard.h: guard mode (guard=1): every block on pages of its own, its
 * end against an inaccessible page; a freed block's pages are made
 * inaccessible and their addresses are never handed out again. A read or
 * write past the end or after the free faults at once; the fault observer
 * records where, and the program then dies of the SIGSEGV as it would
 * have. Blocks come from one big reservation of address space, carved
 * front to back; freed regions merge into their inaccessible neighbours,
 * so only live blocks take kernel mappings (two each). Cost: at least two
 * pages (8 KiB of address space, 4 KiB of memory) per block, two system
 * calls per malloc and one or two per free. Never allocates.
 */
#ifndef SPY_GUARD_H
#define SPY_GUARD_H

#include <stddef.h>
#include <stdint.h>

/* Reserves the address space when guard=1; registers the fault observer.
 * On failure guard mode stays off (with one warning). */
void spy_guard_init(void);

/* 1 when guard mode is on. */
extern int spy_guard_enabled;

/* A guarded block of size bytes aligned to align (0: 16), or NULL when the
 * reservation or the kernel's mapping limit ran out (the caller then uses
 * the real allocator). calloc's zeroes come for free. */
void *spy_guard_alloc(size_t size, size_t align);

/* The guarded reservation: its start (0 when guard mode is off) and size.
 * Asked of every free, so inline. */
#define SPY_GUARD_RESERVE (64ul << 30)
extern uintptr_t spy_guard_base;

/* 1 if p lies in the guarded reservation. */
static inline int spy_guard_owns(const void *p)
{
	/* the base first: 0 (guard mode off) decides at once */
	uintptr_t base = spy_guard_base;
	return __builtin_expect(base != 0, 0) && (uintptr_t)p - base < SPY_GUARD_RESERVE;
}

/* Makes the block's pages inaccessible and keeps them so; the oldest freed
 * regions give their memory back (their addresses stay unused). */
void spy_guard_free(void *p);

/* The size asked for when the guarded block at p was made (0 if none). */
size_t spy_guard_size(const void *p);

/* The GUARD_FAULT record of an access to inaccessible pages of a block
 * (trace_fault_what), for guard mode and the quarantine's protected
 * middles alike; stack as captured in the handler. */
void spy_guard_write_fault(uintptr_t fault, uintptr_t pc, unsigned what,
			   uintptr_t block, uint64_t size, uint32_t stack);

#endif
