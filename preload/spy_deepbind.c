/* spy_deepbind.c: RTLD_DEEPBIND libraries bound to libspy's malloc family
 * (spy_deepbind.h). Runs in the dlopen hook, outside the loader, with the
 * guard held: no allocation of its own. x86-64 relocations (RELA).
 */
#include "spy_deepbind.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spy_core.h"
#include "spy_real.h"

#define PAGE 4096ul

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

/* An address in the dynamic section: the loader made most of them
 * absolute in place; one still relative to the object is made so. */
static uintptr_t dyn_addr(uintptr_t v, uintptr_t base)
{
	return v < base ? v + base : v;
}

/* Writes one slot; a slot in the object's RELRO part (read-only once the
 * loader is done) is made writable for the store and read-only again. */
static void store(void **slot, void *to, uintptr_t relro_lo, uintptr_t relro_hi)
{
	uintptr_t a = (uintptr_t)slot, page = a & ~(PAGE - 1);
	int ro = a >= relro_lo && a < relro_hi;
	if (ro && mprotect((void *)page, PAGE, PROT_READ | PROT_WRITE) != 0)
		return;
	__atomic_store_n(slot, to, __ATOMIC_RELEASE);
	if (ro)
		mprotect((void *)page, PAGE, PROT_READ);
}

static void rebind_relocs(const struct rebind *rb, uintptr_t base, uintptr_t object,
			  const ElfW(Rela) *r, size_t bytes, const ElfW(Sym) *symtab,
			  const char *strtab, uintptr_t relro_lo, uintptr_t relro_hi)
{
	for (size_t n = bytes / sizeof(*r); n--; r++) {
		unsigned type = ELF64_R_TYPE(r->r_info);
		if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT &&
		    !(type == R_X86_64_64 && r->r_addend == 0))
			continue;
		const ElfW(Sym) *s = &symtab[ELF64_R_SYM(r->r_info)];
		if (s->st_shndx != SHN_UNDEF || !s->st_name)
			continue; /* its own definition: not ours to change */
		int i = name_index(strtab + s->st_name);
		if (i < 0 || !rb->hook[i])
			continue;
		void **slot = (void **)(base + r->r_offset);
		void *v = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
		if (v == rb->hook[i])
			continue;
		uintptr_t at = spy_object_at(v);
		/* bound to the C library; or a lazy slot not yet bound (it
		 * leads into the object's own PLT), which the object's lookup
		 * would bind to the C library too */
		if (at == rb->libc || (type == R_X86_64_JUMP_SLOT && at == object &&
				       rb->lazy_to_libc))
			store(slot, rb->hook[i], relro_lo, relro_hi);
	}
}

static int rebind_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	const struct rebind *rb = arg;
	uintptr_t base = info->dlpi_addr;
	/* the program (never loaded with dlopen), the C library, the loader,
	 * libspy */
	if (!info->dlpi_name || !info->dlpi_name[0] || strstr(info->dlpi_name, "/ld-linux"))
		return 0;
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t relro_lo = 0, relro_hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(base + ph->p_vaddr);
		else if (ph->p_type == PT_GNU_RELRO) {
			/* as the loader protects it: whole pages */
			relro_lo = (base + ph->p_vaddr) & ~(PAGE - 1);
			relro_hi = (base + ph->p_vaddr + ph->p_memsz) & ~(PAGE - 1);
		}
	}
	if (!dyn)
		return 0;
	uintptr_t object = spy_object_at((const void *)dyn);
	if (!object || object == rb->libc || object == rb->self)
		return 0;
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	const ElfW(Rela) *jmprel = NULL, *rela = NULL;
	size_t jmprel_size = 0, rela_size = 0;
	int pltrel = DT_RELA;
	for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB: symtab = (const void *)dyn_addr(d->d_un.d_ptr, base); break;
		case DT_STRTAB: strtab = (const void *)dyn_addr(d->d_un.d_ptr, base); break;
		case DT_JMPREL: jmprel = (const void *)dyn_addr(d->d_un.d_ptr, base); break;
		case DT_PLTRELSZ: jmprel_size = d->d_un.d_val; break;
		case DT_PLTREL: pltrel = (int)d->d_un.d_val; break;
		case DT_RELA: rela = (const void *)dyn_addr(d->d_un.d_ptr, base); break;
		case DT_RELASZ: rela_size = d->d_un.d_val; break;
		}
	}
	if (!symtab || !strtab)
		return 0;
	if (jmprel && pltrel == DT_RELA)
		rebind_relocs(rb, base, object, jmprel, jmprel_size, symtab, strtab,
			      relro_lo, relro_hi);
	if (rela)
		rebind_relocs(rb, base, object, rela, rela_size, symtab, strtab,
			      relro_lo, relro_hi);
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
