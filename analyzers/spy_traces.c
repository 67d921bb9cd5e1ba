/* spy_traces.c: the traces a run of spy leaves: named as libspy names
 * them, found by pattern in the trace's directory, told apart from older
 * files that were there before the run.
 */
#include "spy_traces.h"

#include <dirent.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spy_runner.h"

/* Expands %p, %e and %% as libspy does; other '%' stay as they are. */
void spy_traces_expand(char *dst, size_t cap, const char *pat, long pid,
		       const char *exe)
{
	size_t n = 0;

	for (; *pat && n + 1 < cap; pat++) {
		if (pat[0] == '%' && pat[1] == 'p')
			n += (size_t)snprintf(dst + n, cap - n, "%ld", pid), pat++;
		else if (pat[0] == '%' && pat[1] == 'e')
			n += (size_t)snprintf(dst + n, cap - n, "%s", exe), pat++;
		else if (pat[0] == '%' && pat[1] == '%')
			dst[n++] = '%', pat++;
		else
			dst[n++] = *pat;
		if (n >= cap)
			n = cap - 1;
	}
	dst[n] = '\0';
}

/* A file-name pattern for fnmatch: %e matches anything, %p the given pid
 * (or anything when pid < 0), the rest literally. */
static void to_glob(char *dst, size_t cap, const char *pat, long pid)
{
	size_t n = 0;

	for (; *pat && n + 24 < cap; pat++) {
		if (pat[0] == '%' && pat[1] == 'p') {
			if (pid < 0)
				dst[n++] = '*';
			else
				n += (size_t)snprintf(dst + n, cap - n, "%ld", pid);
			pat++;
		} else if (pat[0] == '%' && pat[1] == 'e') {
			dst[n++] = '*', pat++;
		} else {
			if (pat[0] == '%' && pat[1] == '%')
				pat++;
			if (strchr("*?[\\", *pat))
				dst[n++] = '\\';
			dst[n++] = *pat;
		}
	}
	dst[n] = '\0';
}

int spy_traces_newer(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec != b->tv_sec ? a->tv_sec > b->tv_sec
				      : a->tv_nsec > b->tv_nsec;
}

const struct found *spy_traces_list_find(const struct found_list *l,
				     const char *path)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].path, path))
			return &l->v[i];
	return NULL;
}

static void list_add(struct found_list *l, const char *path,
		     const struct stat *st)
{
	if (spy_traces_list_find(l, path))
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 32;
		l->v = realloc(l->v, (size_t)l->cap * sizeof(*l->v));
		if (!l->v)
			spy_die(EXIT_REFUSED, "out of memory");
	}
	l->v[l->n].path = strdup(path);
	if (!l->v[l->n].path)
		spy_die(EXIT_REFUSED, "out of memory");
	l->v[l->n].mtime = st->st_mtim;
	l->v[l->n++].ino = st->st_ino;
}

/* Adds to l the regular files in the pattern's directory whose names fit
 * it with the given pid (any pid when pid < 0). A pattern with '%' in its
 * directory part finds nothing: that is not worth a walk. */
void spy_traces_find(const char *abs_pat, long pid, struct found_list *l)
{
	char dir[PATH_MAX], glob[PATH_MAX * 2], path[PATH_MAX * 2];
	const char *slash = strrchr(abs_pat, '/');
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - abs_pat), abs_pat);
	if (!dir[0])
		strcpy(dir, "/");
	if (strchr(dir, '%'))
		return;
	to_glob(glob, sizeof(glob), slash + 1, pid);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st;

		if (fnmatch(glob, de->d_name, FNM_PERIOD))
			continue;
		snprintf(path, sizeof(path), "%s/%s",
			 strcmp(dir, "/") ? dir : "", de->d_name);
		if (!lstat(path, &st) && S_ISREG(st.st_mode))
			list_add(l, path, &st);
	}
	closedir(d);
}

/* A pattern without %p gives libspy's traces of forked or exec'd processes
 * a ".<pid>" (or ".<pid>-<n>") before a ".log" ending, or at the end. */
static void with_pid_pattern(char *dst, size_t cap, const char *pat)
{
	size_t len = strlen(pat);

	if (len >= 4 && !strcmp(pat + len - 4, ".log"))
		snprintf(dst, cap, "%.*s.%%p.log", (int)(len - 4), pat);
	else
		snprintf(dst, cap, "%s.%%p", pat);
}

/* Both patterns under which the run's traces may appear. */
void spy_traces_find_all(const char *abs_pat, long pid,
			    struct found_list *l)
{
	char alt[PATH_MAX + 8];

	spy_traces_find(abs_pat, pid, l);
	if (!strstr(abs_pat, "%p")) {
		with_pid_pattern(alt, sizeof(alt), abs_pat);
		spy_traces_find(alt, -1, l);
	}
}

/* Keeps only the files that the run wrote: absent from `before`, another
 * file now (libspy replaces an old trace), or changed since. File times are
 * too coarse to compare with a clock. */
void spy_traces_keep_written(struct found_list *l, const struct found_list *before)
{
	int i, kept = 0;

	for (i = 0; i < l->n; i++) {
		const struct found *old = spy_traces_list_find(before, l->v[i].path);

		if (old && old->ino == l->v[i].ino &&
		    !spy_traces_newer(&l->v[i].mtime, &old->mtime) &&
		    !spy_traces_newer(&old->mtime, &l->v[i].mtime))
			free(l->v[i].path);
		else
			l->v[kept++] = l->v[i];
	}
	l->n = kept;
}

void spy_traces_release(struct found_list *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
