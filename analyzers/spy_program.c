/* spy_program.c: what spy will run: the program found as execvp finds it,
 * and refused (one line, status 2) when libspy could not trace it.
 */
#include "spy_program.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spy_runner.h"

#define MAX_SHEBANG_DEPTH 4

/* Resolves the program as execvp would: a name with a slash as it is, a bare
 * name through PATH (first executable regular file wins). */
void spy_program_resolve(const char *name, char *prog, size_t cap)
{
	const char *path, *p;
	int saw_noexec = 0;
	struct stat st;

	if (!*name)
		spy_die(EXIT_REFUSED, "cannot trace '': no such file");
	if (strchr(name, '/')) {
		if (stat(name, &st))
			spy_die(EXIT_REFUSED, "cannot trace '%s': %s", name,
			    strerror(errno));
		if (S_ISDIR(st.st_mode))
			spy_die(EXIT_REFUSED, "cannot trace '%s': it is a directory",
			    name);
		if (!S_ISREG(st.st_mode) || access(name, X_OK))
			spy_die(EXIT_REFUSED, "cannot trace '%s': it is not executable",
			    name);
		snprintf(prog, cap, "%s", name);
		return;
	}
	path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/bin:/usr/bin";
	for (p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		snprintf(prog, cap, "%.*s%s%s", (int)len, p,
			 len ? "/" : "", name);
		if (!stat(prog, &st) && S_ISREG(st.st_mode)) {
			if (!access(prog, X_OK))
				return;
			saw_noexec = 1;
		}
		if (!end)
			break;
		p = end;
	}
	if (saw_noexec)
		spy_die(EXIT_REFUSED, "cannot trace '%s': it is not executable", name);
	spy_die(EXIT_REFUSED, "cannot trace '%s': command not found in PATH", name);
}

/* ---- what kind of program is it ------------------------------------------ */

struct elf_info {
	int bad;          /* 1: cut short or of an unknown class or byte order */
	int cls;          /* ELFCLASS32 or ELFCLASS64 */
	unsigned machine; /* e_machine */
	int has_interp;   /* a PT_INTERP program header */
};

/* Reads the ELF header and program headers of an open file. Returns 0, or
 * -1 when the file is not ELF (or not one for this byte order). */
static int elf_read(int fd, struct elf_info *ei)
{
	unsigned char id[EI_NIDENT];
	uint64_t phoff;
	unsigned phnum, phentsize, i;

	memset(ei, 0, sizeof(*ei));
	if (pread(fd, id, sizeof(id), 0) != (ssize_t)sizeof(id) ||
	    memcmp(id, ELFMAG, SELFMAG))
		return -1;
	ei->cls = id[EI_CLASS];
	ei->bad = 1;
	if (id[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ?
			    ELFDATA2LSB : ELFDATA2MSB))
		return 0; /* another machine's byte order */
	if (ei->cls == ELFCLASS64) {
		Elf64_Ehdr eh;

		if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
			return 0;
		ei->machine = eh.e_machine;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
	} else if (ei->cls == ELFCLASS32) {
		Elf32_Ehdr eh;

		if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
			return 0;
		ei->machine = eh.e_machine;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
	} else {
		return 0;
	}
	ei->bad = 0;
	/* PN_XNUM (0xffff) would put the count in section 0; no executable
	 * with a loader has that many headers, so scanning 0xffff is enough. */
	for (i = 0; i < phnum && phentsize >= sizeof(uint32_t); i++) {
		uint32_t type;

		if (pread(fd, &type, sizeof(type),
			  (off_t)(phoff + (uint64_t)i * phentsize)) !=
		    (ssize_t)sizeof(type))
			break;
		if (type == PT_INTERP) {
			ei->has_interp = 1;
			break;
		}
	}
	return 0;
}

/* Refuses (exits 2) unless the loader will honour LD_PRELOAD in the process
 * that `path` becomes. A #! script becomes its interpreter. */
void spy_program_check(const char *shown, const char *path,
		       const char *libspy, int depth)
{
	struct elf_info ei, lib;
	char buf[256];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		spy_die(EXIT_REFUSED, "cannot trace '%s': cannot read '%s': %s",
		    shown, path, strerror(errno));
	if (fstat(fd, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID))) {
		/* Linux ignores set-id bits on scripts, so for one only its
		 * interpreter's bits matter (checked one level down). */
		n = pread(fd, buf, 2, 0);
		if (!(n == 2 && buf[0] == '#' && buf[1] == '!'))
			spy_die(EXIT_REFUSED, "cannot trace '%s': %s is set%cid "
			    "(LD_PRELOAD is ignored for set-id programs)", shown,
			    depth ? "its interpreter" : "it",
			    (st.st_mode & S_ISUID) ? 'u' : 'g');
	}
	if (elf_read(fd, &ei) == 0) {
		close(fd);
		if (ei.bad)
			spy_die(EXIT_REFUSED, "cannot trace '%s': %s is an ELF file "
			    "cut short or not for this machine", shown,
			    depth ? "its interpreter" : "it");
		if (!ei.has_interp)
			spy_die(EXIT_REFUSED, "cannot trace '%s': %s is statically "
			    "linked (no PT_INTERP); libspy needs a dynamically "
			    "linked program", shown, depth ? "its interpreter" : "it");
		fd = open(libspy, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && elf_read(fd, &lib) == 0 &&
		    (lib.cls != ei.cls || lib.machine != ei.machine))
			spy_die(EXIT_REFUSED, "cannot trace '%s': it is a %d-bit "
			    "program for ELF machine %u and libspy.so is a "
			    "%d-bit library for machine %u", shown,
			    ei.cls == ELFCLASS32 ? 32 : 64, ei.machine,
			    lib.cls == ELFCLASS32 ? 32 : 64, lib.machine);
		if (fd >= 0)
			close(fd);
		return;
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
		char *interp = buf + 2, *end;

		buf[n] = '\0';
		interp += strspn(interp, " \t");
		end = interp + strcspn(interp, " \t\n");
		*end = '\0';
		if (!*interp)
			spy_die(EXIT_REFUSED, "cannot trace '%s': its #! line names "
			    "no interpreter", shown);
		if (depth >= MAX_SHEBANG_DEPTH)
			spy_die(EXIT_REFUSED, "cannot trace '%s': too many levels of "
			    "#! interpreters", shown);
		if (access(interp, X_OK))
			spy_die(EXIT_REFUSED, "cannot trace '%s': its interpreter "
			    "'%s': %s", shown, interp, strerror(errno));
		spy_program_check(shown, interp, libspy, depth + 1);
	}
	/* Anything else runs through /bin/sh, as execvp does. */
}
