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

void *spy_spares_take(struct spy_spares *s, int *fresh)
{
	for (unsigned i = 0; i < s->n; i++) {
		if (!__atomic_load_n(&s->slot[i], __ATOMIC_RELAXED))
			continue;
		void *t = __atomic_exchange_n(&s->slot[i], NULL, __ATOMIC_ACQ_REL);
		if (t) {
			*fresh = 0;
			return t;
		}
	}
	*fresh = 1;
	return cut_fresh(s);
}

void spy_spares_give(struct spy_spares *s, void *table)
{
	if (!table)
		return;
	for (unsigned i = 0; i < s->n; i++) {
		void *none = NULL;
		if (!__atomic_load_n(&s->slot[i], __ATOMIC_RELAXED) &&
		    __atomic_compare_exchange_n(&s->slot[i], &none, table, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return;
	}
	/* A table smaller than a page shares its page with others of its
	 * slab, still in use: unmapping it would unmap them (munmap takes
	 * whole pages). It is kept: a fresh table is only cut when no spare is
	 * left, so all the tables ever made, kept ones included, are at most
	 * the most threads that had one at once. */
	if (s->size % 4096 == 0)
		spy_sys_munmap(table, s->size);
}
