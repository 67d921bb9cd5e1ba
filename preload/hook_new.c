/* hook_new.c: the C++ allocation operators (operator new, new[], delete,
 * delete[], with their nothrow, sized and aligned forms), so that a block's
 * family is known: each marks the family on the thread and calls the C++
 * runtime's own operator, which allocates or frees through the malloc
 * hooks. A block freed by the wrong family is a MISMATCHED_FREE record.
 * Exceptions (std::bad_alloc) pass through these frames unchanged. Never
 * allocates by itself.
 */
#include <dlfcn.h>
#include <stddef.h>

#include "spy_core.h"
#include "spy_heapmap.h"

/* The runtime's operator, found on first use (dlsym with the guard held,
 * so its own allocations are not recorded). */
static void *next_symbol(void **slot, const char *name)
{
	void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (!f) {
		spy_self.guard++;
		f = dlsym(RTLD_NEXT, name);
		spy_self.guard--;
		__atomic_store_n(slot, f, __ATOMIC_RELEASE);
	}
	return f;
}

/* new[] calls new inside the runtime: only the outermost operator marks. */
#define NEW_OP(sym, family, params, args)                                      \
	SPY_EXPORT void *sym params                                            \
	{                                                                      \
		static void *real_;                                            \
		void *(*f_) params = (void *(*) params)next_symbol(&real_, #sym); \
		int outer_ = !spy_alloc_family;                                \
		if (outer_)                                                    \
			spy_alloc_family = (family);                           \
		void *p_ = f_ args;                                            \
		if (outer_)                                                    \
			spy_alloc_family = 0;                                  \
		return p_;                                                     \
	}

#define DELETE_OP(sym, family, params, args)                                   \
	SPY_EXPORT void sym params                                             \
	{                                                                      \
		static void *real_;                                            \
		void (*f_) params = (void (*) params)next_symbol(&real_, #sym); \
		int outer_ = !spy_free_family;                                 \
		if (outer_)                                                    \
			spy_free_family = (family);                            \
		f_ args;                                                       \
		if (outer_)                                                    \
			spy_free_family = 0;                                   \
	}

typedef struct nothrow_tag nothrow_tag; /* std::nothrow_t, by reference */

NEW_OP(_Znwm, SPY_FAMILY_NEW, (size_t n), (n))
NEW_OP(_Znam, SPY_FAMILY_NEW_ARRAY, (size_t n), (n))
NEW_OP(_ZnwmRKSt9nothrow_t, SPY_FAMILY_NEW, (size_t n, const nothrow_tag *t), (n, t))
NEW_OP(_ZnamRKSt9nothrow_t, SPY_FAMILY_NEW_ARRAY, (size_t n, const nothrow_tag *t), (n, t))
NEW_OP(_ZnwmSt11align_val_t, SPY_FAMILY_NEW, (size_t n, size_t a), (n, a))
NEW_OP(_ZnamSt11align_val_t, SPY_FAMILY_NEW_ARRAY, (size_t n, size_t a), (n, a))
NEW_OP(_ZnwmSt11align_val_tRKSt9nothrow_t, SPY_FAMILY_NEW,
       (size_t n, size_t a, const nothrow_tag *t), (n, a, t))
NEW_OP(_ZnamSt11align_val_tRKSt9nothrow_t, SPY_FAMILY_NEW_ARRAY,
       (size_t n, size_t a, const nothrow_tag *t), (n, a, t))

DELETE_OP(_ZdlPv, SPY_FAMILY_NEW, (void *p), (p))
DELETE_OP(_ZdaPv, SPY_FAMILY_NEW_ARRAY, (void *p), (p))
DELETE_OP(_ZdlPvm, SPY_FAMILY_NEW, (void *p, size_t n), (p, n))
DELETE_OP(_ZdaPvm, SPY_FAMILY_NEW_ARRAY, (void *p, size_t n), (p, n))
DELETE_OP(_ZdlPvRKSt9nothrow_t, SPY_FAMILY_NEW, (void *p, const nothrow_tag *t), (p, t))
DELETE_OP(_ZdaPvRKSt9nothrow_t, SPY_FAMILY_NEW_ARRAY, (void *p, const nothrow_tag *t), (p, t))
DELETE_OP(_ZdlPvSt11align_val_t, SPY_FAMILY_NEW, (void *p, size_t a), (p, a))
DELETE_OP(_ZdaPvSt11align_val_t, SPY_FAMILY_NEW_ARRAY, (void *p, size_t a), (p, a))
DELETE_OP(_ZdlPvmSt11align_val_t, SPY_FAMILY_NEW, (void *p, size_t n, size_t a), (p, n, a))
DELETE_OP(_ZdaPvmSt11align_val_t, SPY_FAMILY_NEW_ARRAY, (void *p, size_t n, size_t a), (p, n, a))
DELETE_OP(_ZdlPvSt11align_val_tRKSt9nothrow_t, SPY_FAMILY_NEW,
	  (void *p, size_t a, const nothrow_tag *t), (p, a, t))
DELETE_OP(_ZdaPvSt11align_val_tRKSt9nothrow_t, SPY_FAMILY_NEW_ARRAY,
	  (void *p, size_t a, const nothrow_tag *t), (p, a, t))
