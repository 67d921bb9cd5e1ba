/* spy_real.h: the program's real functions, found once with
 * dlsym(RTLD_NEXT). A NULL entry means "not resolved yet": the malloc
 * family then falls back to the bootstrap arena (spy_bootstrap.h).
 */
#ifndef SPY_REAL_H
#define SPY_REAL_H

#include <link.h>

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <threads.h>
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
	int (*dl_iterate_phdr)(int (*)(struct dl_phdr_info *, size_t, void *),
			       void *);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	void (*(*signal)(int, void (*)(int)))(int);
	int (*siginterrupt)(int, int);
	int (*pthread_create)(void *, const void *, void *(*)(void *), void *);
	void (*pthread_exit)(void *) __attribute__((noreturn));
	int (*pthread_join)(unsigned long, void **);
	int (*pthread_detach)(unsigned long);
	int (*pthread_key_create)(unsigned *, void (*)(void *));
	int (*tss_create)(unsigned *, void (*)(void *));
	int (*thrd_create)(thrd_t *, thrd_start_t, void *);
	int (*cxa_thread_atexit_impl)(void (*)(void *), void *, void *);
	int (*clone)(int (*)(void *), void *, int, void *, ...);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	int (*munmap)(void *, size_t);
	int (*pipe2)(int *, int);
	void (*closefrom)(int);
	int (*close_range)(unsigned, unsigned, int);
	int (*prctl)(int, ...);
	struct dirent *(*readdir)(void *);
	int (*libc_start_main)(int (*)(int, char **, char **), int, char **,
			       void (*)(void), void (*)(void), void (*)(void),
			       void *);
};

/* The lock family (hook_locks.c): resolved with the rest, or on first use
 * by spy_real_resolve_locks when a lock call comes before libspy starts. */
struct spy_real_locks {
	int (*mutex_lock)(pthread_mutex_t *);
	int (*mutex_trylock)(pthread_mutex_t *);
	int (*mutex_timedlock)(pthread_mutex_t *, const struct timespec *);
	int (*mutex_clocklock)(pthread_mutex_t *, clockid_t,
			       const struct timespec *);
	int (*mutex_unlock)(pthread_mutex_t *);
	int (*mutex_init)(pthread_mutex_t *, const pthread_mutexattr_t *);
	int (*mutex_destroy)(pthread_mutex_t *);
	int (*rwlock_rdlock)(pthread_rwlock_t *);
	int (*rwlock_tryrdlock)(pthread_rwlock_t *);
	int (*rwlock_timedrdlock)(pthread_rwlock_t *, const struct timespec *);
	int (*rwlock_clockrdlock)(pthread_rwlock_t *, clockid_t,
				  const struct timespec *);
	int (*rwlock_wrlock)(pthread_rwlock_t *);
	int (*rwlock_trywrlock)(pthread_rwlock_t *);
	int (*rwlock_timedwrlock)(pthread_rwlock_t *, const struct timespec *);
	int (*rwlock_clockwrlock)(pthread_rwlock_t *, clockid_t,
				  const struct timespec *);
	int (*rwlock_unlock)(pthread_rwlock_t *);
	int (*rwlock_init)(pthread_rwlock_t *, const pthread_rwlockattr_t *);
	int (*rwlock_destroy)(pthread_rwlock_t *);
	int (*spin_lock)(pthread_spinlock_t *);
	int (*spin_trylock)(pthread_spinlock_t *);
	int (*spin_unlock)(pthread_spinlock_t *);
	int (*spin_init)(pthread_spinlock_t *, int);
	int (*spin_destroy)(pthread_spinlock_t *);
	int (*cond_wait)(pthread_cond_t *, pthread_mutex_t *);
	int (*cond_timedwait)(pthread_cond_t *, pthread_mutex_t *,
			      const struct timespec *);
	int (*cond_clockwait)(pthread_cond_t *, pthread_mutex_t *, clockid_t,
			      const struct timespec *);
	int (*mtx_lock)(mtx_t *);
	int (*mtx_trylock)(mtx_t *);
	int (*mtx_timedlock)(mtx_t *, const struct timespec *);
	int (*mtx_unlock)(mtx_t *);
	int (*mtx_init)(mtx_t *, int);
	void (*mtx_destroy)(mtx_t *);
	int (*cnd_wait)(cnd_t *, mtx_t *);
	int (*cnd_timedwait)(cnd_t *, mtx_t *, const struct timespec *);
	int (*sem_wait)(sem_t *);
	int (*sem_trywait)(sem_t *);
	int (*sem_timedwait)(sem_t *, const struct timespec *);
	int (*sem_clockwait)(sem_t *, clockid_t, const struct timespec *);
	int (*sem_post)(sem_t *);
	int (*sem_init)(sem_t *, int, unsigned);
	int (*sem_destroy)(sem_t *);
};

extern struct spy_real_locks spy_real_locks;

/* Resolves the lock family; idempotent, safe to call from any hook. */
void spy_real_resolve_locks(void);

extern struct spy_real spy_real;

/* Resolves every entry; called once by spy_init with the guard held. */
/* The C++ runtime's allocation operators, when one is loaded at start
 * (hook_new.c); called once at start, after spy_real_resolve and once the
 * real allocator's own mappings are watched (spy_allocmem_init): its
 * lookups may allocate, which may start the allocator. */
void spy_cxx_resolve(void);

void spy_real_resolve(void);

/* 1 when the real malloc is the C library's (after spy_real_resolve). */
int spy_real_malloc_is_glibc(void);

/* Notes in the trace when malloc calls do not reach libspy (the program
 * defines malloc itself); once, at start, after the trace is open
 * (hook_malloc.c). */
void spy_malloc_check_owner(void);

/* *slot, the real function spy_real_resolve found; for a call that comes
 * before it (another library's constructor, libspy's own start), the
 * next definition of name, kept in *slot then. NULL (errno ENOSYS) when
 * there is none. */
void *spy_real_late(void **slot, const char *name);

/* The start of the loaded object that holds addr (an identity for it), or
 * 0. By the loader's sorted table of objects: dladdr searches every
 * symbol of the object for the nearest one, some 80,000 instructions a
 * call in libc, and libspy's start asked it dozens of times. */
uintptr_t spy_object_at(const void *addr);

#endif
