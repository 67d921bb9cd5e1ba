/* lock_dwarf.c: the C expression that names a lock inside a global
 * variable ("accounts[1].m"), from the program's DWARF: the variable's
 * type is walked down through arrays and struct members to the offset of
 * the lock. Reads only files named by the trace's module records; any
 * surprise (no debug information, a stripped file) gives no answer.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <gelf.h>

#include "lock_dwarf.h"

/* Appends to buf the path from a value of type die to byte off inside it. */
static void describe(Dwarf_Die *type, Dwarf_Word off, char *buf, size_t cap,
		     int depth)
{
	Dwarf_Die t = *type, next;
	size_t len = strlen(buf);
	if (depth > 16 || len + 32 >= cap)
		return;
	/* Strip typedefs and qualifiers, but stop at the lock types: their
	 * insides are glibc's business. */
	for (;;) {
		int tag = dwarf_tag(&t);
		const char *name = dwarf_diename(&t);
		if (tag == DW_TAG_typedef && name &&
		    (!strncmp(name, "pthread_", 8) || !strcmp(name, "mtx_t") ||
		     !strncmp(name, "omp_", 4)))
			goto rest;
		if (tag != DW_TAG_typedef && tag != DW_TAG_const_type &&
		    tag != DW_TAG_volatile_type)
			break;
		Dwarf_Attribute a;
		if (!dwarf_attr(&t, DW_AT_type, &a) || !dwarf_formref_die(&a, &next))
			goto rest;
		t = next;
	}
	int tag = dwarf_tag(&t);
	if (tag == DW_TAG_array_type) {
		Dwarf_Attribute a;
		Dwarf_Word esize;
		if (!dwarf_attr(&t, DW_AT_type, &a) ||
		    !dwarf_formref_die(&a, &next) ||
		    dwarf_aggregate_size(&next, &esize) != 0 || !esize)
			goto rest;
		snprintf(buf + len, cap - len, "[%lu]", (unsigned long)(off / esize));
		describe(&next, off % esize, buf, cap, depth + 1);
		return;
	}
	if (tag == DW_TAG_structure_type || tag == DW_TAG_class_type) {
		Dwarf_Die m;
		if (dwarf_child(&t, &m) != 0)
			goto rest;
		do {
			Dwarf_Attribute a, ta;
			Dwarf_Word loc, size;
			Dwarf_Die mt;
			if (dwarf_tag(&m) != DW_TAG_member || !dwarf_diename(&m) ||
			    !dwarf_attr(&m, DW_AT_data_member_location, &a) ||
			    dwarf_formudata(&a, &loc) != 0 ||
			    !dwarf_attr(&m, DW_AT_type, &ta) ||
			    !dwarf_formref_die(&ta, &mt) ||
			    dwarf_aggregate_size(&mt, &size) != 0)
				continue;
			if (off >= loc && off < loc + size) {
				snprintf(buf + len, cap - len, ".%s", dwarf_diename(&m));
				describe(&mt, off - loc, buf, cap, depth + 1);
				return;
			}
		} while (dwarf_siblingof(&m, &m) == 0);
	}
rest:
	if (off)
		snprintf(buf + len, cap - len, "+%lu", (unsigned long)off);
}

/* The DW_OP_addr of a variable DIE, if that is its whole location. */
static int var_addr(Dwarf_Die *d, Dwarf_Addr *out)
{
	Dwarf_Attribute a;
	Dwarf_Op *ops;
	size_t n;
	if (!dwarf_attr(d, DW_AT_location, &a) ||
	    dwarf_getlocation(&a, &ops, &n) != 0 || n != 1 ||
	    ops[0].atom != DW_OP_addr)
		return -1;
	*out = ops[0].number;
	return 0;
}

struct search {
	const char *var;     /* NULL: find by address */
	Dwarf_Addr want;     /* link-time address */
	Dwarf_Word off;
	char *buf;
	size_t cap;
};

/* Looks at d and its siblings, and inside functions and blocks (a static
 * variable of a function lives there). 0 when found (buf written). */
static int search(Dwarf_Die *d, struct search *q, int depth)
{
	do {
		Dwarf_Addr at;
		Dwarf_Attribute ta;
		Dwarf_Die type, child;
		int tag = dwarf_tag(d);
		if ((tag == DW_TAG_subprogram || tag == DW_TAG_lexical_block) &&
		    depth < 6 && dwarf_child(d, &child) == 0 &&
		    search(&child, q, depth + 1) == 0)
			return 0;
		const char *name = dwarf_diename(d);
		if (tag != DW_TAG_variable || !name ||
		    (q->var && strcmp(name, q->var)) || var_addr(d, &at) < 0)
			continue;
		if (q->var && at != q->want)
			continue;
		/* A definition may name its type through its declaration. */
		Dwarf_Die decl, *src = d;
		Dwarf_Attribute sa;
		if (!dwarf_attr(d, DW_AT_type, &ta) &&
		    dwarf_attr(d, DW_AT_specification, &sa) &&
		    dwarf_formref_die(&sa, &decl))
			src = &decl;
		if (!dwarf_attr(src, DW_AT_type, &ta) ||
		    !dwarf_formref_die(&ta, &type))
			continue;
		Dwarf_Word inside = q->off;
		if (!q->var) { /* by address: does it hold want? */
			Dwarf_Word size;
			if (dwarf_aggregate_size(&type, &size) != 0 ||
			    q->want < at || q->want >= at + size)
				continue;
			inside = q->want - at;
		}
		snprintf(q->buf, q->cap, "%s", name);
		describe(&type, inside, q->buf, q->cap, 0);
		return 0;
	} while (dwarf_siblingof(d, d) == 0);
	return -1;
}

int lock_dwarf_name(const char *path, uint64_t bias, uint64_t var_start,
		    uint64_t off, const char *var, char *buf, size_t cap)
{
	static const char *const skip[] = { "/proc/", "/sys/", "/dev/" };
	struct stat st;
	if (path[0] != '/')
		return -1;
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (!strncmp(path, skip[i], strlen(skip[i])))
			return -1;
	/* Regular files only: a FIFO named by a trace could block. */
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	elf_version(EV_CURRENT);
	int rc = -1;
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	Dwarf *dw = elf ? dwarf_begin_elf(elf, DWARF_C_READ, NULL) : NULL;
	GElf_Ehdr eh;
	if (!dw || !gelf_getehdr(elf, &eh))
		goto out;
	Dwarf_Addr want = var_start - (eh.e_type == ET_DYN ? bias : 0);
	Dwarf_Off o = 0, next;
	size_t hsize;
	struct search q = { .var = var, .want = want, .off = off, .buf = buf,
			    .cap = cap };
	while (rc < 0 && dwarf_nextcu(dw, o, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu, d;
		if (dwarf_offdie(dw, o + hsize, &cu) && dwarf_child(&cu, &d) == 0)
			rc = search(&d, &q, 0);
		o = next;
	}
out:
	if (dw)
		dwarf_end(dw);
	if (elf)
		elf_end(elf);
	close(fd);
	return rc;
}
