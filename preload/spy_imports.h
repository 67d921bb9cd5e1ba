/* spy_imports.h: the slots through which a loaded object calls functions
 * it does not define (its GOT and PLT entries), read from its dynamic
 * relocations, so that libspy can bind some of them to its own functions
 * after the loader is done (spy_deepbind.c, spy_allocapi.c). x86-64
 * relocations (RELA). No allocation.
 */
#ifndef SPY_IMPORTS_H
#define SPY_IMPORTS_H

#include <link.h>
#include <stdint.h>

/* One slot of an object: it holds where name is (or, for a lazy PLT slot
 * not yet bound, a way back into the object's own PLT). */
struct spy_import {
	void **slot;
	const char *name;
	int lazy;               /* a PLT slot (R_X86_64_JUMP_SLOT) */
	uintptr_t object;       /* the object's start (spy_object_at) */
	uintptr_t relro_lo, relro_hi; /* its read-only-after-load part */
};

/* Calls fn for every slot of the object info describes that names a
 * function it does not define itself. Nothing for the loader. */
void spy_imports_each(const struct dl_phdr_info *info,
		      void (*fn)(const struct spy_import *imp, void *arg),
		      void *arg);

/* Points the slot at to; a slot in the RELRO part is made writable for
 * the store and read-only again. */
void spy_import_bind(const struct spy_import *imp, void *to);

#endif
