/* hook_mmap.c: mmap and munmap, for the stack unwinder's calls and the
 * real allocator's (when it is not glibc's) only. libunwind maps its
 * caches through them; those mappings are libspy's, and the process map
 * must not show them as the program's. jemalloc maps its extents and
 * metadata through them; the leak scan must not take those for roots.
 * Every call goes on to the C library.
 */
#include <sys/mman.h>

#include "spy_core.h"
#include "spy_modules.h"
#include "spy_ownmem.h"
#include "spy_real.h"
#include "spy_stack.h"

/* Another library's constructor may map before libspy's start. */
static void resolve(void)
{
	spy_real_late((void **)&spy_real.munmap, "munmap");
	spy_real_late((void **)&spy_real.mmap, "mmap");
}

SPY_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		      off_t off)
{
	if (SPY_UNLIKELY(!spy_real.mmap))
		resolve();
	void *p = spy_real.mmap(addr, len, prot, flags, fd, off);
	const void *caller = __builtin_return_address(0);
	if (SPY_UNLIKELY(p == MAP_FAILED))
		return p;
	if (SPY_UNLIKELY(spy_stack_unwinder_owns(caller)))
		spy_ownmem_note(p, len);
	else if (SPY_UNLIKELY(spy_allocmem_code(caller)))
		spy_allocmem_note(p, len);
	return p;
}

SPY_EXPORT int munmap(void *addr, size_t len)
{
	if (SPY_UNLIKELY(!spy_real.munmap))
		resolve();
	const void *caller = __builtin_return_address(0);
	if (SPY_UNLIKELY(spy_stack_unwinder_owns(caller)))
		spy_ownmem_forget(addr, len);
	else if (SPY_UNLIKELY(spy_allocmem_code(caller)))
		spy_allocmem_forget(addr, len);
	return spy_real.munmap(addr, len);
}

/* The real allocator's code, when it is not the C library's: its mmap and
 * munmap calls are noted in spy_ownmem's allocator registry. */
static uintptr_t code_lo, code_hi;

void spy_allocmem_init(const void *real_malloc)
{
	if (real_malloc && !spy_real_malloc_is_glibc())
		spy_modules_code_of(real_malloc, &code_lo, &code_hi);
}

int spy_allocmem_code(const void *pc)
{
	return (uintptr_t)pc - code_lo < code_hi - code_lo;
}
