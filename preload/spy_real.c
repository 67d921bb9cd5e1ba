/* spy_real.c: find the functions libspy wraps. dlsym may allocate; those
 * requests reach our calloc/malloc with the guard held and are served by the
 * bootstrap arena because the real allocator is not known yet. Everything
 * is looked up here, at start: a dlsym later on would reset what dlerror()
 * tells the program about its own last failed dlopen.
 */
#include "spy_real.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

struct spy_real spy_real;

#define RESOLVE(field, name) (*(void **)&spy_real.field = dlsym(RTLD_NEXT, name))

struct spy_real_locks spy_real_locks;

#define RESOLVE_LOCK(field, name, version)                                     \
	do {                                                                   \
		const char *v_ = version;                                      \
		void *f_ = v_[0] ? dlvsym(RTLD_NEXT, name, v_) : NULL;         \
		if (!f_)                                                       \
			f_ = dlsym(RTLD_NEXT, name);                           \
		*(void **)&spy_real_locks.field = f_;                          \
	} while (0)

/* pthread_cond_* exist in two versions; the old one (GLIBC_2.2.5) works on
 * a different condition variable layout, so the current one is asked for
 * by name. */
void spy_real_resolve_locks(void)
{
	if (__atomic_load_n(&spy_real_locks.mutex_unlock, __ATOMIC_ACQUIRE))
		return;
	RESOLVE_LOCK(mutex_lock, "pthread_mutex_lock", "");
	RESOLVE_LOCK(mutex_trylock, "pthread_mutex_trylock", "");
	RESOLVE_LOCK(mutex_timedlock, "pthread_mutex_timedlock", "");
	RESOLVE_LOCK(mutex_clocklock, "pthread_mutex_clocklock", "");
	RESOLVE_LOCK(mutex_init, "pthread_mutex_init", "");
	RESOLVE_LOCK(mutex_destroy, "pthread_mutex_destroy", "");
	RESOLVE_LOCK(rwlock_rdlock, "pthread_rwlock_rdlock", "");
	RESOLVE_LOCK(rwlock_tryrdlock, "pthread_rwlock_tryrdlock", "");
	RESOLVE_LOCK(rwlock_timedrdlock, "pthread_rwlock_timedrdlock", "");
	RESOLVE_LOCK(rwlock_clockrdlock, "pthread_rwlock_clockrdlock", "");
	RESOLVE_LOCK(rwlock_wrlock, "pthread_rwlock_wrlock", "");
	RESOLVE_LOCK(rwlock_trywrlock, "pthread_rwlock_trywrlock", "");
	RESOLVE_LOCK(rwlock_timedwrlock, "pthread_rwlock_timedwrlock", "");
	RESOLVE_LOCK(rwlock_clockwrlock, "pthread_rwlock_clockwrlock", "");
	RESOLVE_LOCK(rwlock_unlock, "pthread_rwlock_unlock", "");
	RESOLVE_LOCK(rwlock_init, "pthread_rwlock_init", "");
	RESOLVE_LOCK(rwlock_destroy, "pthread_rwlock_destroy", "");
	RESOLVE_LOCK(spin_lock, "pthread_spin_lock", "");
	RESOLVE_LOCK(spin_trylock, "pthread_spin_trylock", "");
	RESOLVE_LOCK(spin_unlock, "pthread_spin_unlock", "");
	RESOLVE_LOCK(spin_init, "pthread_spin_init", "");
	RESOLVE_LOCK(spin_destroy, "pthread_spin_destroy", "");
	RESOLVE_LOCK(cond_wait, "pthread_cond_wait", "GLIBC_2.3.2");
	RESOLVE_LOCK(cond_timedwait, "pthread_cond_timedwait", "GLIBC_2.3.2");
	RESOLVE_LOCK(cond_clockwait, "pthread_cond_clockwait", "");
	RESOLVE_LOCK(mtx_lock, "mtx_lock", "");
	RESOLVE_LOCK(mtx_trylock, "mtx_trylock", "");
	RESOLVE_LOCK(mtx_timedlock, "mtx_timedlock", "");
	RESOLVE_LOCK(mtx_unlock, "mtx_unlock", "");
	RESOLVE_LOCK(mtx_init, "mtx_init", "");
	RESOLVE_LOCK(mtx_destroy, "mtx_destroy", "");
	RESOLVE_LOCK(cnd_wait, "cnd_wait", "");
	RESOLVE_LOCK(cnd_timedwait, "cnd_timedwait", "");
	RESOLVE_LOCK(sem_wait, "sem_wait", "");
	RESOLVE_LOCK(sem_trywait, "sem_trywait", "");
	RESOLVE_LOCK(sem_timedwait, "sem_timedwait", "");
	RESOLVE_LOCK(sem_clockwait, "sem_clockwait", "");
	RESOLVE_LOCK(sem_post, "sem_post", "");
	RESOLVE_LOCK(sem_init, "sem_init", "");
	RESOLVE_LOCK(sem_destroy, "sem_destroy", "");
	/* Last: its being set says the whole family is there. */
	void *unlock = dlsym(RTLD_NEXT, "pthread_mutex_unlock");
	__atomic_store_n((void **)&spy_real_locks.mutex_unlock, unlock,
			 __ATOMIC_RELEASE);
}

/* ---- aligned allocations the allocator in use lacks ------------------- */

/* An allocator preloaded in glibc's place may lack some of the family
 * (jemalloc has no pvalloc): the name then resolves to glibc's, whose
 * block comes from glibc's heap, which the allocator's free and
 * malloc_usable_size know nothing of (libspy's own malloc_usable_size of
 * it crashed). Such functions are served through the allocator's
 * posix_memalign instead, with glibc's rules for size and alignment. */
static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t round_alignment(size_t align)
{
	size_t a = sizeof(void *);
	while (a < align && a <= ((size_t)-1 >> 1))
		a <<= 1;
	return a;
}

static void *aligned_by_allocator(size_t align, size_t size)
{
	void *p = NULL;
	int rc = spy_real.posix_memalign(&p, round_alignment(align), size);
	if (rc) {
		errno = rc;
		return NULL;
	}
	return p;
}

static void *valloc_by_allocator(size_t size)
{
	return aligned_by_allocator(page_size(), size);
}

static void *pvalloc_by_allocator(size_t size)
{
	size_t page = page_size(), rounded = (size + page - 1) & ~(page - 1);
	if (rounded < size) {
		errno = ENOMEM;
		return NULL;
	}
	return aligned_by_allocator(page, rounded ? rounded : page);
}

void *spy_real_late(void **slot, const char *name)
{
	void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (!f) {
		f = dlsym(RTLD_NEXT, name);
		__atomic_store_n(slot, f, __ATOMIC_RELEASE);
		if (!f)
			errno = ENOSYS;
	}
	return f;
}

uintptr_t spy_object_at(const void *addr)
{
	struct dl_find_object fo;
	if (!addr)
		return 0;
	if (_dl_find_object((void *)addr, &fo) == 0)
		return (uintptr_t)fo.dlfo_map_start;
	Dl_info info;
	return dladdr(addr, &info) ? (uintptr_t)info.dli_fbase : 0;
}

static int same_object(void *a, void *b)
{
	uintptr_t oa = spy_object_at(a);
	return oa && oa == spy_object_at(b);
}

static void aligned_family_from_allocator(void)
{
	void *m = (void *)spy_real.malloc;
	if (!same_object(m, (void *)spy_real.posix_memalign))
		return;
	if (!same_object(m, (void *)spy_real.aligned_alloc))
		spy_real.aligned_alloc = aligned_by_allocator;
	if (!same_object(m, (void *)spy_real.memalign))
		spy_real.memalign = aligned_by_allocator;
	if (!same_object(m, (void *)spy_real.valloc))
		spy_real.valloc = valloc_by_allocator;
	if (!same_object(m, (void *)spy_real.pvalloc))
		spy_real.pvalloc = pvalloc_by_allocator;
}

void spy_real_resolve(void)
{
	RESOLVE(malloc, "malloc");
	RESOLVE(calloc, "calloc");
	RESOLVE(realloc, "realloc");
	RESOLVE(reallocarray, "reallocarray");
	RESOLVE(free, "free");
	RESOLVE(posix_memalign, "posix_memalign");
	RESOLVE(aligned_alloc, "aligned_alloc");
	RESOLVE(memalign, "memalign");
	RESOLVE(valloc, "valloc");
	RESOLVE(pvalloc, "pvalloc");
	RESOLVE(malloc_usable_size, "malloc_usable_size");
	RESOLVE(fork, "fork");
	RESOLVE(execve, "execve");
	RESOLVE(execvpe, "execvpe");
	RESOLVE(fexecve, "fexecve");
	RESOLVE(exit, "exit");
	RESOLVE(_exit, "_exit");
	RESOLVE(_Exit, "_Exit");
	RESOLVE(dlopen, "dlopen");
	RESOLVE(mmap, "mmap");
	RESOLVE(munmap, "munmap");
	RESOLVE(pipe2, "pipe2");
	RESOLVE(closefrom, "closefrom");
	RESOLVE(close_range, "close_range");
	RESOLVE(prctl, "prctl");
	RESOLVE(dlmopen, "dlmopen");
	RESOLVE(dl_iterate_phdr, "dl_iterate_phdr");
	RESOLVE(sigaction, "sigaction");
	RESOLVE(signal, "signal");
	RESOLVE(siginterrupt, "siginterrupt");
	RESOLVE(pthread_create, "pthread_create");
	RESOLVE(pthread_exit, "pthread_exit");
	RESOLVE(pthread_join, "pthread_join");
	RESOLVE(pthread_detach, "pthread_detach");
	RESOLVE(pthread_key_create, "pthread_key_create");
	RESOLVE(tss_create, "tss_create");
	RESOLVE(thrd_create, "thrd_create");
	RESOLVE(cxa_thread_atexit_impl, "__cxa_thread_atexit_impl");
	RESOLVE(clone, "clone");
	RESOLVE(libc_start_main, "__libc_start_main");
	spy_real_resolve_locks();
	aligned_family_from_allocator();
}

int spy_real_malloc_is_glibc(void)
{
	struct dl_find_object fo;
	if (spy_real.malloc && _dl_find_object((void *)spy_real.malloc, &fo) == 0 &&
	    fo.dlfo_link_map && fo.dlfo_link_map->l_name)
		return strstr(fo.dlfo_link_map->l_name, "/libc.so") != NULL;
	Dl_info info;
	return spy_real.malloc && dladdr((void *)spy_real.malloc, &info) &&
	       info.dli_fname && strstr(info.dli_fname, "/libc.so");
}
