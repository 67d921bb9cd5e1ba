/* spy_real.h: the program's real functions, found once with
 * dlsym(RTLD_NEXT). A NULL entry means "not resolved yet": the malloc
 * family then falls back to the bootstrap arena (spy_bootstrap.h).
 */
#ifndef SPY_REAL_H
#define SPY_REAL_H

#include <stddef.h>
#include <signal.h>
#include <sys/types.h>

struct spy_real {
	void *(*malloc)(size_t);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*reallocarray)(void *, size_t, size_t);
	void (*free)(void *);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	size_t (*malloc_usable_size)(void *);
	pid_t (*fork)(void);
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*fexecve)(int, char *const[], char *const[]);
	void (*exit)(int) __attribute__((noreturn));
	void (*_exit)(int) __attribute__((noreturn));
	void (*_Exit)(int) __attribute__((noreturn));
	void *(*dlopen)(const char *, int);
	void *(*dlmopen)(long, const char *, int);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	void (*(*signal)(int, void (*)(int)))(int);
	int (*pthread_create)(void *, const void *, void *(*)(void *), void *);
	int (*libc_start_main)(int (*)(int, char **, char **), int, char **,
			       void (*)(void), void (*)(void), void (*)(void),
			       void *);
};

extern struct spy_real spy_real;

/* Resolves every entry; called once by spy_init with the guard held. */
void spy_real_resolve(void);

#endif
