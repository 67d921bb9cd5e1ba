/* spy_spares.c: tables handed from ended threads to new ones
 * (spy_spares.h). */
#include "spy_spares.h"

#include "spy_process.h"
#include "spy_sys.h"

#define SLAB_TABLES 16

/* A never used (zeroed) table, cut from the current slab or a new one. */
static void *cut_fresh(struct spy_spares *s)
{
	for (;;) {
		spy_forksafe_lock(&s->lock);
		if (s->cut && s->cut + s->size <= s->end) {
			void *t = (void *)s->cut;
			s->cut += s->size;
			spy_forksafe_unlock(&s->lock);
			return t;
		}
		spy_forksafe_unlock(&s->lock);
		size_t len = s->size * SLAB_TABLES;
		uint8_t *slab = spy_sys_mmap(len);
		if (!slab)
			return spy_sys_mmap(s->size);
		spy_forksafe_lock(&s->lock);
		if (s->cut && s->cut + s->size <= s->end) {
			/* another thread put a slab in meanwhile */
			spy_forksafe_unlock(&s->lock);
			spy_sys_munmap(slab, len);
			continue;
		}
		s->cut = (uintptr_t)slab + s->size;
		s->end = (uintptr_t)slab + len;
		spy_forksafe_unlock(&s->lock);
		return slab;
	}
}

/* The slots are used as a stack whose top is s->top: a table is given at
 * the top and taken from just below it, so that threads ending and
 * starting in a storm (a program keeping a hundred alive) each find their
 * slot in one probe, where a search from slot 0 went past every slot
 * emptied before. The top is a hint (threads race for it); a search goes
 * from it outwards, and the slots' atomics decide. A take looks only a
 * few slots above the top: a storm of new threads finds the slots empty,
 * and each went through all of them before cutting a fresh table (a
 * table left above a stale top is found once gives have moved it up). */
#define ABOVE_TOP 4
static void *grab(struct spy_spares *s, unsigned i)
{
	if (!__atomic_load_n(&s->slot[i], __ATOMIC_RELAXED))
		return NULL;
	void *t = __atomic_exchange_n(&s->slot[i], NULL, __ATOMIC_ACQ_REL);
	if (t)
		__atomic_store_n(&s->top, i, __ATOMIC_RELAXED);
	return t;
}

void *spy_spares_take(struct spy_spares *s, int *fresh)
{
	unsigned top = __atomic_load_n(&s->top, __ATOMIC_RELAXED);
	if (top > s->n)
		top = s->n;
	void *t = NULL;
	for (unsigned i = top; i > 0 && !t; i--)
		t = grab(s, i - 1);
	for (unsigned i = top; i < s->n && i < top + ABOVE_TOP && !t; i++)
		t = grab(s, i);
	*fresh = !t;
	return t ? t : cut_fresh(s);
}

/* Claims slot i for table if it is empty. */
static int put(struct spy_spares *s, unsigned i, void *table)
{
	void *none = NULL;
	if (__atomic_load_n(&s->slot[i], __ATOMIC_RELAXED) ||
	    !__atomic_compare_exchange_n(&s->slot[i], &none, table, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return 0;
	__atomic_store_n(&s->top, i + 1, __ATOMIC_RELAXED);
	return 1;
}

void spy_spares_give(struct spy_spares *s, void *table)
{
	if (!table)
		return;
	unsigned top = __atomic_load_n(&s->top, __ATOMIC_RELAXED);
	if (top > s->n)
		top = s->n;
	for (unsigned i = top; i < s->n; i++)
		if (put(s, i, table))
			return;
	for (unsigned i = top; i > 0; i--)
		if (put(s, i - 1, table))
			return;
	/* A table smaller than a page shares its page with others of its
	 * slab, still in use: unmapping it would unmap them (munmap takes
	 * whole pages). It is kept: a fresh table is only cut when no spare is
	 * left, so all the tables ever made, kept ones included, are at most
	 * the most threads that had one at once. */
	if (s->size % 4096 == 0)
		spy_sys_munmap(table, s->size);
}
