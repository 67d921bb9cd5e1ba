/* hook_fdlist.c: readdir, so that a listing of the process's own
 * descriptors (/proc/self/fd, /dev/fd, /proc/PID/task/TID/fd) shows the
 * program's descriptors only. libspy keeps three of its own (the trace and
 * the unwinder's pipe, at high numbers); a program printing its open files,
 * `ls /proc/self/fd`, or one closing every descriptor it finds listed
 * there, would otherwise see them. Every other directory reads as it is.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "spy_core.h"
#include "spy_ownfd.h"
#include "spy_real.h"
#include "spy_sys.h"

/* The descriptor a directory entry names, or -1. */
static int entry_fd(const char *name)
{
	long v = 0;
	if (!*name)
		return -1;
	for (const char *p = name; *p; p++) {
		if (*p < '0' || *p > '9' || v > 1 << 20)
			return -1;
		v = v * 10 + (*p - '0');
	}
	return (int)v;
}

/* Reads a decimal number at *p, moving past it; -1 if none. */
static long number(const char **p)
{
	long v = -1;
	for (; **p >= '0' && **p <= '9'; (*p)++)
		v = (v < 0 ? 0 : v * 10) + (**p - '0');
	return v;
}

/* 1 if the directory open on fd is this process's descriptor table:
 * /proc/PID/fd or /proc/PID/task/TID/fd with PID this process's. */
static int lists_own_fds(int fd)
{
	char link[32], path[64];
	spy_format(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t len = readlink(link, path, sizeof(path) - 1);
	if (len <= 0)
		return 0;
	path[len] = '\0';
	const char *p = path;
	if (strncmp(p, "/proc/", 6))
		return 0;
	p += 6;
	if (number(&p) != (long)spy_sys_getpid())
		return 0;
	if (!strncmp(p, "/task/", 6)) {
		p += 6;
		if (number(&p) < 0)
			return 0;
	}
	return !strcmp(p, "/fd");
}

static int hidden(DIR *d, const struct dirent *e)
{
	int fd = entry_fd(e->d_name);
	if (SPY_LIKELY(fd < 0) || !spy_ownfd_is(fd))
		return 0;
	return lists_own_fds(dirfd(d));
}

SPY_EXPORT struct dirent *readdir(DIR *d)
{
	if (!spy_real_late((void **)&spy_real.readdir, "readdir"))
		return NULL;
	struct dirent *(*real)(void *) = spy_real.readdir;
	int saved = errno;
	struct dirent *e;
	while ((e = real(d)) && hidden(d, e))
		errno = saved;
	return e;
}

/* The same function in a 64-bit C library, under the name a program
 * built with 64-bit file offsets calls. */
_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64),
	       "readdir64 is readdir here");
SPY_EXPORT struct dirent64 *readdir64(DIR *d)
{
	return (struct dirent64 *)(void *)readdir(d);
}
