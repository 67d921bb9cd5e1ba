/* hook_chdir.c: chdir and fchdir, so that a relative LD_PRELOAD naming
 * libspy is made absolute in the environment once it stops leading to
 * libspy (spy_preloadvar.h). Nothing is recorded.
 */
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spy_core.h"
#include "spy_preloadvar.h"

SPY_EXPORT int chdir(const char *path)
{
	long r = syscall(SYS_chdir, path);
	if (r == 0) {
		int saved = errno;
		spy_preloadvar_fix_environ();
		errno = saved;
	}
	return (int)r;
}

SPY_EXPORT int fchdir(int fd)
{
	long r = syscall(SYS_fchdir, fd);
	if (r == 0) {
		int saved = errno;
		spy_preloadvar_fix_environ();
		errno = saved;
	}
	return (int)r;
}
