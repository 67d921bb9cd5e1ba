/* spy_real.c: find the functions libspy wraps. dlsym may allocate; those
 * requests reach our calloc/malloc with the guard held and are served by the
 * bootstrap arena because the real allocator is not known yet.
 */
#include "spy_real.h"

#include <dlfcn.h>

struct spy_real spy_real;

#define RESOLVE(field, name) (*(void **)&spy_real.field = dlsym(RTLD_NEXT, name))

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
	RESOLVE(dlmopen, "dlmopen");
	RESOLVE(sigaction, "sigaction");
	RESOLVE(signal, "signal");
	RESOLVE(pthread_create, "pthread_create");
	RESOLVE(libc_start_main, "__libc_start_main");
}
