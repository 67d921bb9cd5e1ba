/* hook_new.c: the C++ allocation operators (operator new, new[], delete,
 * delete[], with their nothrow, sized and aligned forms), so that a block's
 * family is known: each marks the family on the thread and calls the C++
 * runtime's own operator, which allocates or frees through the malloc
 * hooks. A block freed by the wrong family is a MISMATCHED_FREE record.
 * Exceptions (std::bad_alloc) pass through these frames unchanged. Never
 * allocates by itself.
 */
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h> /* abort */
#include <string.h>

#include "spy_core.h"
#include "spy_heapmap.h"
#include "spy_real.h"


/* 1 when f may serve as the runtime's operator: not libspy's own, and not
 * one the real allocator exports (jemalloc has operators of its own,
 * which allocate without calling malloc: under --allocator jemalloc every
 * C++ block went unrecorded). The C++ runtime's operators call malloc
 * and free, and so come through the hooks. */
static int usable_operator(const void *f)
{
	uintptr_t where = spy_object_at(f);
	return where && where != spy_object_at((const void *)usable_operator) &&
	       where != spy_object_at((const void *)spy_real.malloc);
}

/* The runtime's operator in a library loaded outside the global scope: a
 * C program that dlopens a C++ library (RTLD_LOCAL, the default) gets
 * libstdc++ in that library's own scope, where RTLD_NEXT does not look,
 * while the library's calls still reach these hooks. Each loaded C++
 * runtime is asked in turn; the first usable definition wins. */
struct runtime_search {
	const char *name;
	void *found;
};

/* 1 for a C++ runtime library (dl_iterate_phdr's callback). */
static int is_cxx_runtime(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	return info->dlpi_name && (strstr(info->dlpi_name, "/libstdc++.so") ||
				   strstr(info->dlpi_name, "/libc++.so"));
}

static int ask_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct runtime_search *rs = arg;
	/* only a C++ runtime: a lookup that fails costs a walk of the
	 * object's symbols and an error message */
	if (!is_cxx_runtime(info, size, NULL))
		return 0;
	void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
	if (!h)
		return 0;
	void *f = dlsym(h, rs->name);
	dlclose(h);
	if (f && usable_operator(f)) {
		rs->found = f;
		return 1;
	}
	return 0;
}

/* The operators hooked here. */
#define CXX_OPERATORS(X)                                                       \
	X(_Znwm) X(_Znam) X(_ZnwmRKSt9nothrow_t) X(_ZnamRKSt9nothrow_t)       \
	X(_ZnwmSt11align_val_t) X(_ZnamSt11align_val_t)                        \
	X(_ZnwmSt11align_val_tRKSt9nothrow_t)                                  \
	X(_ZnamSt11align_val_tRKSt9nothrow_t)                                  \
	X(_ZdlPv) X(_ZdaPv) X(_ZdlPvm) X(_ZdaPvm) X(_ZdlPvRKSt9nothrow_t)      \
	X(_ZdaPvRKSt9nothrow_t) X(_ZdlPvSt11align_val_t)                       \
	X(_ZdaPvSt11align_val_t) X(_ZdlPvmSt11align_val_t)                     \
	X(_ZdaPvmSt11align_val_t) X(_ZdlPvSt11align_val_tRKSt9nothrow_t)       \
	X(_ZdaPvSt11align_val_tRKSt9nothrow_t)

#define AS_INDEX(sym) OP_##sym,
#define AS_NAME(sym) #sym,
enum { CXX_OPERATORS(AS_INDEX) N_OPERATORS };
static const char *const operator_name[N_OPERATORS] = { CXX_OPERATORS(AS_NAME) };
static void *operator_real[N_OPERATORS];

/* The runtime's operator named name (with the guard held, so the
 * loader's own allocations are not recorded), or NULL. */
static void *find_operator(const char *name)
{
	spy_self.guard++;
	void *f = dlsym(RTLD_NEXT, name);
	if (!usable_operator(f)) {
		struct runtime_search rs = { name, NULL };
		dl_iterate_phdr(ask_object, &rs);
		f = rs.found;
	}
	spy_self.guard--;
	return f;
}

/* At start, for a runtime loaded with the program: a lookup later resets
 * what dlerror() tells the program about its own last failed dlopen. */
void spy_cxx_resolve(void)
{
	if (!dl_iterate_phdr(is_cxx_runtime, NULL))
		return;
	for (int i = 0; i < N_OPERATORS; i++)
		__atomic_store_n(&operator_real[i], find_operator(operator_name[i]),
				 __ATOMIC_RELEASE);
	/* an operator this runtime lacks left an error message: not the
	 * program's */
	dlerror();
}

/* The runtime's operator; looked up now when it was not at start (a C
 * program that dlopens a C++ library); NULL while no runtime is loaded. */
static void *next_symbol(int op)
{
	void *f = __atomic_load_n(&operator_real[op], __ATOMIC_ACQUIRE);
	if (!f && (f = find_operator(operator_name[op])) != NULL)
		__atomic_store_n(&operator_real[op], f, __ATOMIC_RELEASE);
	return f;
}

/* libspy's malloc hooks (hook_malloc.c). */
void *spy_hooked_malloc(size_t size);
int spy_hooked_posix_memalign(void **out, size_t align, size_t size);
void spy_hooked_free(void *p);

/* No runtime to be found (a caller that carries its own, unexported): the
 * block comes from the malloc hooks, with the family marked; a throwing
 * operator that gets none ends the program, as an uncaught bad_alloc
 * would. */
static void *new_without_runtime(size_t n, size_t align, int nothrow)
{
	void *p = NULL;
	if (align > 16) {
		if (spy_hooked_posix_memalign(&p, align, n ? n : 1) != 0)
			p = NULL;
	} else {
		p = spy_hooked_malloc(n ? n : 1);
	}
	if (!p && !nothrow)
		abort();
	return p;
}

/* new[] calls new inside the runtime: only the outermost operator marks. */
#define NEW_OP(sym, family, params, args, align, nothrow)                      \
	SPY_EXPORT void *sym params                                            \
	{                                                                      \
		void *(*f_) params = (void *(*) params)next_symbol(OP_##sym);  \
		int outer_ = !spy_alloc_family;                                \
		if (outer_)                                                    \
			spy_alloc_family = (family);                           \
		void *p_ = f_ ? f_ args : new_without_runtime(n, (align), (nothrow)); \
		if (outer_)                                                    \
			spy_alloc_family = 0;                                  \
		return p_;                                                     \
	}

#define DELETE_OP(sym, family, params, args)                                   \
	SPY_EXPORT void sym params                                             \
	{                                                                      \
		void (*f_) params = (void (*) params)next_symbol(OP_##sym);    \
		int outer_ = !spy_free_family;                                 \
		if (outer_)                                                    \
			spy_free_family = (family);                            \
		if (f_)                                                        \
			f_ args;                                               \
		else                                                           \
			spy_hooked_free(p);                                    \
		if (outer_)                                                    \
			spy_free_family = 0;                                   \
	}

typedef struct nothrow_tag nothrow_tag; /* std::nothrow_t, by reference */

NEW_OP(_Znwm, SPY_FAMILY_NEW, (size_t n), (n), 0, 0)
NEW_OP(_Znam, SPY_FAMILY_NEW_ARRAY, (size_t n), (n), 0, 0)
NEW_OP(_ZnwmRKSt9nothrow_t, SPY_FAMILY_NEW, (size_t n, const nothrow_tag *t),
       (n, t), 0, 1)
NEW_OP(_ZnamRKSt9nothrow_t, SPY_FAMILY_NEW_ARRAY,
       (size_t n, const nothrow_tag *t), (n, t), 0, 1)
NEW_OP(_ZnwmSt11align_val_t, SPY_FAMILY_NEW, (size_t n, size_t a), (n, a), a, 0)
NEW_OP(_ZnamSt11align_val_t, SPY_FAMILY_NEW_ARRAY, (size_t n, size_t a),
       (n, a), a, 0)
NEW_OP(_ZnwmSt11align_val_tRKSt9nothrow_t, SPY_FAMILY_NEW,
       (size_t n, size_t a, const nothrow_tag *t), (n, a, t), a, 1)
NEW_OP(_ZnamSt11align_val_tRKSt9nothrow_t, SPY_FAMILY_NEW_ARRAY,
       (size_t n, size_t a, const nothrow_tag *t), (n, a, t), a, 1)

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
