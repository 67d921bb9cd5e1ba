/* spy_preloadvar.c: see spy_preloadvar.h. */
#include "spy_preloadvar.h"

#include <dlfcn.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spy_process.h"
#include "spy_sys.h"

#define VAR "LD_PRELOAD="
#define VAR_LEN 11

extern char **environ;

static char named[PATH_MAX];    /* as the loader was given it; "" if absolute */
static char absolute[PATH_MAX];
static dev_t self_dev;
static ino_t self_ino;

void spy_preloadvar_init(void)
{
	Dl_info info;
	struct stat st;
	if (!dladdr((void *)&spy_preloadvar_init, &info) || !info.dli_fname ||
	    info.dli_fname[0] == '/' || stat(info.dli_fname, &st) != 0)
		return;
	const char *name = info.dli_fname;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return;
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	size_t n = spy_strlcpy(absolute, cwd, sizeof(absolute));
	if (n + 2 + spy_strlen(name) > sizeof(absolute))
		return;
	absolute[n++] = '/';
	spy_strlcpy(absolute + n, name, sizeof(absolute) - n);
	self_dev = st.st_dev;
	self_ino = st.st_ino;
	spy_strlcpy(named, info.dli_fname, sizeof(named));
}

/* 1 if name (len bytes) is libspy's relative name and leads elsewhere from
 * here. */
static int lost(const char *name, size_t len)
{
	if (len != spy_strlen(named) || !spy_strneq(name, named, len))
		return 0;
	struct stat st;
	return stat(named, &st) != 0 || st.st_dev != self_dev ||
	       st.st_ino != self_ino;
}

const char *spy_preloadvar_fixed(const char *entry, char *out, size_t cap)
{
	if (!named[0] || !spy_strneq(entry, VAR, VAR_LEN))
		return entry;
	/* the loader splits the list at colons and spaces */
	size_t o = spy_strlcpy(out, VAR, cap);
	int changed = 0;
	for (const char *p = entry + VAR_LEN; *p;) {
		size_t len = 0;
		while (p[len] && p[len] != ':' && p[len] != ' ')
			len++;
		const char *put = p;
		size_t put_len = len;
		if (lost(p, len)) {
			put = absolute;
			put_len = spy_strlen(absolute);
			changed = 1;
		}
		if (o + put_len + 2 > cap)
			return entry;
		for (size_t i = 0; i < put_len; i++)
			out[o++] = put[i];
		p += len;
		if (*p)
			out[o++] = *p++;
	}
	out[o] = 0;
	return changed ? out : entry;
}

void spy_preloadvar_fix_environ(void)
{
	static char fixed[2 * PATH_MAX];
	/* not in a vfork child: the environment is its parent's memory */
	if (!named[0] || !environ || spy_sys_getpid() != spy_pid)
		return;
	for (char **e = environ; *e; e++) {
		if (*e == fixed || !spy_strneq(*e, VAR, VAR_LEN))
			continue;
		char tmp[sizeof(fixed)];
		const char *f = spy_preloadvar_fixed(*e, tmp, sizeof(tmp));
		if (f == tmp) {
			spy_strlcpy(fixed, tmp, sizeof(fixed));
			*e = fixed;
		}
		return;
	}
}
