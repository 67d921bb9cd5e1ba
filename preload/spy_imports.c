/* spy_imports.c: an object's import slots, from its dynamic section
 * (spy_imports.h).
 */
#include "spy_imports.h"

#include <elf.h>
#include <string.h>
#include <sys/mman.h>

#include "spy_real.h"

#define PAGE 4096ul

/* An address in the dynamic section: the loader made most of them
 * absolute in place; one still relative to the object is made so. */
static uintptr_t dyn_addr(uintptr_t v, uintptr_t base)
{
	return v < base ? v + base : v;
}

void spy_import_bind(const struct spy_import *imp, void *to)
{
	uintptr_t a = (uintptr_t)imp->slot, page = a & ~(PAGE - 1);
	int ro = a >= imp->relro_lo && a < imp->relro_hi;
	if (ro && mprotect((void *)page, PAGE, PROT_READ | PROT_WRITE) != 0)
		return;
	__atomic_store_n(imp->slot, to, __ATOMIC_RELEASE);
	if (ro)
		mprotect((void *)page, PAGE, PROT_READ);
}

static void each_reloc(struct spy_import *imp, uintptr_t base,
		       const ElfW(Rela) *r, size_t bytes,
		       const ElfW(Sym) *symtab, const char *strtab,
		       void (*fn)(const struct spy_import *, void *), void *arg)
{
	for (size_t n = bytes / sizeof(*r); n--; r++) {
		unsigned type = ELF64_R_TYPE(r->r_info);
		if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT &&
		    !(type == R_X86_64_64 && r->r_addend == 0))
			continue;
		const ElfW(Sym) *s = &symtab[ELF64_R_SYM(r->r_info)];
		if (s->st_shndx != SHN_UNDEF || !s->st_name)
			continue; /* its own definition: not ours to change */
		imp->slot = (void **)(base + r->r_offset);
		imp->name = strtab + s->st_name;
		imp->lazy = type == R_X86_64_JUMP_SLOT;
		fn(imp, arg);
	}
}

void spy_imports_each(const struct dl_phdr_info *info,
		      void (*fn)(const struct spy_import *imp, void *arg),
		      void *arg)
{
	uintptr_t base = info->dlpi_addr;
	if (info->dlpi_name && strstr(info->dlpi_name, "/ld-linux"))
		return;
	const ElfW(Dyn) *dyn = NULL;
	struct spy_import imp = { 0 };
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(base + ph->p_vaddr);
		else if (ph->p_type == PT_GNU_RELRO) {
			/* as the loader protects it: whole pages */
			imp.relro_lo = (base + ph->p_vaddr) & ~(PAGE - 1);
			imp.relro_hi = (base + ph->p_vaddr + ph->p_memsz) & ~(PAGE - 1);
		}
	}
	if (!dyn || !(imp.object = spy_object_at((const void *)dyn)))
		return;
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
		return;
	if (jmprel && pltrel == DT_RELA)
		each_reloc(&imp, base, jmprel, jmprel_size, symtab, strtab, fn, arg);
	if (rela)
		each_reloc(&imp, base, rela, rela_size, symtab, strtab, fn, arg);
}
