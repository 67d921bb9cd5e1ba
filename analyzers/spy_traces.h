/* spy_traces.h: naming and finding the traces of one run of spy. The
 * lists cannot fail: spy exits when memory runs out.
 */
#ifndef SPY_TRACES_H
#define SPY_TRACES_H

#include <stddef.h>
#include <sys/stat.h>
#include <time.h>

struct found {
	char *path;
	struct timespec mtime;
	ino_t ino;
};

/* A growing list of files; cannot fail (spy exits when memory runs out). */
struct found_list {
	struct found *v;
	int n, cap;
};

/* Expands %p, %e and %% of a trace pattern as libspy does. */
void spy_traces_expand(char *dst, size_t cap, const char *pat, long pid,
		       const char *exe);

/* 1 if time a is later than time b. */
int spy_traces_newer(const struct timespec *a, const struct timespec *b);

/* The entry for path in l, or NULL. */
const struct found *spy_traces_list_find(const struct found_list *l,
					 const char *path);

/* Adds to l the regular files named by the absolute pattern abs_pat with
 * the given pid (any pid when pid < 0). */
void spy_traces_find(const char *abs_pat, long pid, struct found_list *l);

/* The same under both names a run's traces may take: the pattern, and
 * the pattern with a pid added (children and exec'd images). */
void spy_traces_find_all(const char *abs_pat, long pid, struct found_list *l);

/* Keeps in l only the files the run wrote: absent from before, replaced,
 * or changed since. */
void spy_traces_keep_written(struct found_list *l,
			     const struct found_list *before);

/* Frees the list and leaves it empty. */
void spy_traces_release(struct found_list *l);

#endif
