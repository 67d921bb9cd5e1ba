/* spy_spares.c: tables handed from ended threads to new ones
 * (spy_spares.h). */
#include "spy_spares.h"

#include "spy_sys.h"

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
	return spy_sys_mmap(s->size);
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
	spy_sys_munmap(table, s->size);
}
