/* spy_deepbind.c: RTLD_DEEPBIND libraries bound to libspy's malloc family
 * (spy_deepbind.h). Runs in the dlopen hook, outside the loader, with the
 * guard held: no allocation of its own. x86-64 relocations (RELA).
 */
#include "spy_deepbind.h"

#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spy_core.h"
#include "spy_imports.h"
#include "spy_real.h"

/* The functions whose blocks must never cross allocators. */
static const char *const names[] = {
	"malloc", "calloc", "realloc", "reallocarray", "free",
	"posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
	"malloc_usable_size",
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

struct rebind {
	void *hook[N_NAMES];    /* libspy's, or NULL when another wins globally */
	uintptr_t libc;         /* the C library (its start) */
	uintptr_t self;         /* libspy */
	int lazy_to_libc;       /* the new library's own lookup finds libc's */
};

int spy_deepbind_may_open(const char *path, const void *ret)
{
	if (!path || strchr(path, '$'))
		return 0;
	if (strchr(path, '/'))
		return 1;
	struct dl_find_object fo;
	if (_dl_find_object((void *)ret, &fo) != 0 || !fo.dlfo_link_map)
		return 0;
	for (const ElfW(Dyn) *d = fo.dlfo_link_map->l_ld; d && d->d_tag != DT_NULL; d++)
		if (d->d_tag == DT_RPATH || d->d_tag == DT_RUNPATH)
			return 0;
	return 1;
}

static int name_index(const char *name)
{
	for (unsigned i = 0; i < N_NAMES; i++)
		if (!strcmp(name, names[i]))
			return (int)i;
	return -1;
}

static void rebind_import(const struct spy_import *imp, void *arg)
{
	const struct rebind *rb = arg;
	if (imp->object == rb->libc || imp->object == rb->self)
		return;
	int i = name_index(imp->name);
	if (i < 0 || !rb->hook[i])
		return;
	void *v = __atomic_load_n(imp->slot, __ATOMIC_ACQUIRE);
	if (v == rb->hook[i])
		return;
	uintptr_t at = spy_object_at(v);
	/* bound to the C library; or a lazy slot not yet bound (it leads
	 * into the object's own PLT), which the object's lookup would bind
	 * to the C library too */
	if (at == rb->libc || (imp->lazy && at == imp->object && rb->lazy_to_libc))
		spy_import_bind(imp, rb->hook[i]);
}

static int rebind_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	/* not the program (never loaded with dlopen) */
	if (info->dlpi_name && info->dlpi_name[0])
		spy_imports_each(info, rebind_import, arg);
	return 0;
}

void *spy_deepbind_open(const char *path, int flags)
{
	void *h = spy_real.dlopen(path, flags);
	if (!h)
		return h;
	struct rebind rb;
	spy_self.guard++;
	rb.libc = spy_object_at((const void *)getpid);
	rb.self = spy_object_at((const void *)spy_deepbind_open);
	/* only names whose global definition is libspy's: a program with an
	 * allocator of its own keeps it */
	for (unsigned i = 0; i < N_NAMES; i++) {
		void *g = dlsym(RTLD_DEFAULT, names[i]);
		rb.hook[i] = g && spy_object_at(g) == rb.self ? g : NULL;
	}
	void *own = dlsym(h, "malloc");
	rb.lazy_to_libc = own && spy_object_at(own) == rb.libc;
	if (rb.libc && rb.self)
		dl_iterate_phdr(rebind_object, &rb);
	spy_self.guard--;
	return h;
}
