/* hook_malloc.c: the malloc family, intercepted as a whole (a pointer from
 * one allocator must never reach another). Each hook: enter, call the real
 * function, record, restore errno, leave. Before the real allocator is
 * known, requests are served by the bootstrap arena, whose blocks are
 * recognised here and never passed on.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "rec_heap.h"
#include "spy_bootstrap.h"
#include "spy_core.h"
#include "spy_guard.h"
#include "spy_process.h"
#include "spy_real.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_format.h"

/* Calls into the real allocator are marked (spy_in_allocator), so that a
 * signal handler that interrupts one never re-enters the allocator: its
 * allocations come from the bootstrap arena, its frees wait until the
 * interrupted call is over. The quarantine makes the program's own calls
 * take the allocator's slow paths far more often than without libspy, and
 * those are the ones that break when re-entered. */
#define IN_REAL(expr)                                                          \
	__extension__({                                                        \
		spy_in_allocator = 1;                                          \
		__typeof__(expr) r_ = (expr);                                  \
		spy_in_allocator = 0;                                          \
		r_;                                                            \
	})

/* The mark left set by a hook that a signal handler's longjmp cut short
 * inside it (spy_guard_abandoned): else every later call of the thread
 * would be served from the bootstrap arena, unrecorded. */
static __attribute__((noinline)) int in_allocator_abandoned(uintptr_t cfa)
{
	struct spy_thread *t = &spy_self;
	if (!t->guard || !spy_guard_abandoned(t, cfa))
		return 0;
	spy_in_allocator = 0;
	return 1;
}

#define IN_ALLOCATOR()                                                         \
	(SPY_UNLIKELY(spy_in_allocator) &&                                     \
	 !in_allocator_abandoned((uintptr_t)__builtin_dwarf_cfa()))

#define MAX_DEFERRED 16
static __thread void *deferred[MAX_DEFERRED];
static __thread int n_deferred;

/* A free from a handler that interrupted the allocator: kept for later
 * (lost if too many pile up). */
static void defer_free(void *p)
{
	if (n_deferred < MAX_DEFERRED)
		deferred[n_deferred++] = p;
}

/* Frees the blocks a handler put off. A block the trace has as live gets
 * its free recorded now (its stack is gone), or the analysis would count
 * it as leaked. */
static __attribute__((noinline)) void flush_deferred(void)
{
	while (n_deferred > 0) {
		void *p = deferred[--n_deferred];
		if (spy_hook_enter()) {
			unsigned family;
			if (spy_heapmap_release((uintptr_t)p, 0, NULL, &family) ==
			    SPY_HEAP_LIVE)
				rec_heap_free_record(TRACE_FN_FREE, p, 0);
			spy_heapmap_remove((uintptr_t)p);
			spy_hook_leave();
		} else {
			spy_heapmap_remove((uintptr_t)p);
		}
		IN_REAL((spy_real.free(p), 0));
	}
}

/* guard=1: a guarded block, or from the real allocator when none can be
 * had (fn_real is the real call to make then). */
#define GUARDED_OR(size, align, real_call)                                     \
	__extension__({                                                        \
		void *g_ = NULL;                                               \
		if (SPY_UNLIKELY(spy_guard_enabled))                           \
			g_ = spy_guard_alloc((size), (align));                 \
		g_ ? g_ : IN_REAL(real_call);                                  \
	})

/* An allocation that is not recorded (libspy's own, or before start-up). */
static void *plain_alloc(size_t size, size_t align)
{
	if (align <= 16 && spy_real.malloc)
		return spy_real.malloc(size);
	if (align > 16 && spy_real.memalign)
		return spy_real.memalign(align, size);
	return spy_bootstrap_alloc(size, align);
}

SPY_EXPORT void *malloc(size_t size)
{
	if (IN_ALLOCATOR())
		return spy_bootstrap_alloc(size, 0);
	if (!spy_hook_enter())
		return plain_alloc(size, 0);
	void *p = GUARDED_OR(size, 0, spy_real.malloc(size));
	int *err = spy_errno_at(), saved = *err;
	if (p)
		rec_heap_alloc(TRACE_FN_MALLOC, p, size, 0);
	else
		rec_heap_alloc_failed(TRACE_FN_MALLOC, size);
	spy_heapinfo_tick();
	spy_hook_leave();
	*err = saved;
	return p;
}

SPY_EXPORT void *calloc(size_t n, size_t size)
{
	if (IN_ALLOCATOR()) {
		size_t total;
		if (__builtin_mul_overflow(n, size, &total))
			return NULL;
		return spy_bootstrap_alloc(total, 0);
	}
	if (!spy_hook_enter()) {
		if (spy_real.calloc)
			return spy_real.calloc(n, size);
		size_t total;
		if (__builtin_mul_overflow(n, size, &total)) {
			errno = ENOMEM;
			return NULL;
		}
		return spy_bootstrap_alloc(total, 0);
	}
	size_t total = 0;
	int overflow = __builtin_mul_overflow(n, size, &total);
	void *p = overflow ? IN_REAL(spy_real.calloc(n, size))
			   : GUARDED_OR(total, 0, spy_real.calloc(n, size));
	int saved = errno;
	if (p)
		rec_heap_alloc(TRACE_FN_CALLOC, p, n * size, 0);
	else /* n * size overflowing is the caller's error: recorded too */
		rec_heap_alloc_failed_of(TRACE_FN_CALLOC,
					 overflow ? SIZE_MAX : total, n, size);
	spy_heapinfo_tick();
	spy_hook_leave();
	errno = saved;
	return p;
}

SPY_EXPORT void free(void *p)
{
	if (!p || spy_bootstrap_owns(p))
		return;
	if (IN_ALLOCATOR()) {
		defer_free(p);
		return;
	}
	if (!spy_hook_enter()) {
		/* Not recorded (libspy's own call, or a thread past its last
		 * record): still forget the block, so that the map never
		 * holds an address the allocator has back. Not once the
		 * process is confined (seccomp): no trace follows, and the
		 * map's locks may wait in a system call, as giving a guarded
		 * block back does (it stays as it is). */
		int confined = spy_process_confined();
		if (!spy_self.guard && spy_state == SPY_STATE_READY && !confined)
			spy_heapmap_remove((uintptr_t)p);
		if (spy_guard_owns(p)) {
			if (!confined) {
				spy_heapmap_remove((uintptr_t)p);
				spy_guard_free(p);
			}
			return;
		}
		if (spy_real.free)
			spy_real.free(p);
		return;
	}
	int *err = spy_errno_at(), saved = *err;
	int pass = rec_heap_free(TRACE_FN_FREE, &p, __builtin_return_address(0));
	spy_heapinfo_tick();
	spy_hook_leave();
	*err = saved;
	if (pass)
		IN_REAL((spy_real.free(p), 0));
	if (SPY_UNLIKELY(n_deferred))
		flush_deferred();
}

/* realloc of a bootstrap block: move it into the real heap. */
static void *realloc_from_bootstrap(void *old, size_t size)
{
	void *p = plain_alloc(size, 0);
	if (p) {
		size_t old_size = spy_bootstrap_size(old);
		memcpy(p, old, old_size < size ? old_size : size);
	}
	return p;
}

/* realloc of a guarded block while nothing is recorded (tracing stopped:
 * a full disk, a seccomp filter): the real allocator's block takes its
 * bytes, as the real realloc knows nothing of guarded ones. The guarded
 * block goes back as free() gives it (not once confined). */
static void *realloc_from_guard(void *old, size_t size)
{
	void *p = size ? plain_alloc(size, 0) : NULL;
	if (!p && size)
		return NULL; /* the old block stays, as realloc leaves it */
	size_t keep = spy_guard_size(old);
	if (p)
		memcpy(p, old, keep < size ? keep : size);
	if (!spy_process_confined()) {
		spy_heapmap_remove((uintptr_t)old);
		spy_guard_free(old);
	}
	return p;
}

/* A block growing past its size moves (below this size), its old place
 * held freed as free() holds a block: a pointer kept to it is then
 * caught writing there. glibc often grows a block in place, and the
 * stale pointer works by luck until the day it does not. Bigger blocks
 * grow as glibc grows them: moving each would copy too much. */
#define REALLOC_MOVE_MAX ((size_t)64 << 10)

/* old (live, old_size usable bytes, its map entry released) moved to p:
 * held freed in the quarantine, else given back. */
static void realloc_hold_old(void *old, size_t old_size)
{
	size_t held;
	unsigned family;
	spy_heapmap_insert((uintptr_t)old, old_size, SPY_FAMILY_MALLOC);
	if (spy_heapmap_release((uintptr_t)old, 1, &held, &family) ==
	    SPY_HEAP_LIVE && held && spy_quarantine_hold(old, held))
		return;
	spy_heapmap_remove((uintptr_t)old);
	IN_REAL((spy_real.free(old), 0));
}

/* The bytes of old (live, old_size bytes as the map had it) that a move
 * keeps: every byte its allocator gives it, which the program may use
 * once malloc_usable_size said so. The map has the usable size of a
 * block in its shadow, but the size asked for of one in its hash
 * (another allocator's blocks off the 16-byte grid). */
static size_t realloc_old_usable(void *old, size_t old_size)
{
	size_t usable = spy_heapmap_usable((uintptr_t)old);
	return usable > old_size ? usable : old_size;
}

/* The new place of a block that moves, or NULL (errno as it was: the
 * real realloc then answers, and sets it as it does). */
static void *realloc_move_to(size_t size)
{
	int saved = errno;
	void *p = IN_REAL(spy_real.malloc(size));
	if (!p)
		errno = saved;
	return p;
}

static void *realloc_common(unsigned fn, void *old, size_t size)
{
	if (old && spy_bootstrap_owns(old))
		return realloc_from_bootstrap(old, size);
	if (IN_ALLOCATOR())
		return NULL; /* a handler interrupted the allocator */
	if (!spy_hook_enter()) {
		if (old && spy_guard_owns(old))
			return realloc_from_guard(old, size);
		if (spy_real.realloc)
			return spy_real.realloc(old, size);
		return old ? NULL : spy_bootstrap_alloc(size, 0);
	}
	/* The old block is gone the moment realloc runs: its record takes the
	 * time from before the call, so that another thread reusing the
	 * address can never appear to come first. */
	uint32_t stack = spy_stack_capture();
	uint64_t when = spy_writer_now();
	size_t old_size = 0, keep = 0;
	int known = 0, moved = 0;
	if (old && !rec_heap_realloc_check(fn, old, stack, &old_size, &known)) {
		/* A block already freed, or never handed out: the allocator
		 * would crash or corrupt itself; the call fails instead. */
		spy_hook_leave();
		errno = ENOMEM;
		return NULL;
	}
	void *p;
	if (SPY_UNLIKELY(spy_guard_enabled) && size &&
	    (!old || spy_guard_owns(old)) &&
	    (p = spy_guard_alloc(size, 0)) != NULL) {
		/* guard=1: always a new block, so that a pointer kept to the
		 * old one faults. */
		if (old) {
			size_t keep = spy_guard_size(old);
			memcpy(p, old, keep < size ? keep : size);
			spy_guard_free(old);
		}
	} else if (old && spy_guard_owns(old)) {
		p = size ? IN_REAL(spy_real.malloc(size)) : NULL;
		if (p || !size) {
			size_t keep = spy_guard_size(old);
			if (p)
				memcpy(p, old, keep < size ? keep : size);
			spy_guard_free(old);
		}
	} else if (known && spy_opt.quarantine_mb && !size &&
		   spy_heapmap_glibc_chunks) {
		/* realloc(p, 0) frees p (glibc returns NULL; jemalloc may
		 * be built to return a block): held as free() holds it, so
		 * a later free of p is seen as the double free it is */
		p = NULL;
		moved = 1;
	} else if (known && spy_opt.quarantine_mb && old_size &&
		   old_size <= REALLOC_MOVE_MAX &&
		   size > (keep = realloc_old_usable(old, old_size)) &&
		   (p = realloc_move_to(size)) != NULL) {
		memcpy(p, old, keep);
		moved = 1;
	} else {
		p = IN_REAL(spy_real.realloc(old, size));
	}
	int saved = errno;
	size_t usable = 0;
	unsigned family = p ? rec_heap_family(p, SPY_FAMILY_MALLOC, size, &usable)
			    : SPY_FAMILY_MALLOC;
	if (p)
		spy_heapmap_insert((uintptr_t)p, size, family);
	else if (known && size)
		spy_heapmap_insert((uintptr_t)old, old_size, SPY_FAMILY_MALLOC);
	rec_heap_realloc(fn, old, p, size, stack, when);
	if (p)
		rec_heap_arm(p, family, size, usable);
	if (moved)
		realloc_hold_old(old, old_size);
	if (!p && size)
		rec_heap_alloc_failed(fn, size);
	spy_heapinfo_tick();
	spy_hook_leave();
	errno = saved;
	return p;
}

SPY_EXPORT void *realloc(void *old, size_t size)
{
	return realloc_common(TRACE_FN_REALLOC, old, size);
}

SPY_EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		/* refused, as glibc does; the caller's error is recorded */
		if (spy_hook_enter()) {
			rec_heap_alloc_failed_of(TRACE_FN_REALLOCARRAY, SIZE_MAX,
						 n, size);
			spy_hook_leave();
		}
		errno = ENOMEM;
		return NULL;
	}
	return realloc_common(TRACE_FN_REALLOCARRAY, old, total);
}

SPY_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	if (IN_ALLOCATOR())
		return ENOMEM;
	if (!spy_hook_enter()) {
		if (spy_real.posix_memalign)
			return spy_real.posix_memalign(out, align, size);
		if (align < sizeof(void *) || (align & (align - 1)))
			return EINVAL;
		*out = spy_bootstrap_alloc(size, align);
		return *out ? 0 : ENOMEM;
	}
	int rc;
	void *g = NULL;
	if (SPY_UNLIKELY(spy_guard_enabled) && align >= sizeof(void *) &&
	    !(align & (align - 1)) && (g = spy_guard_alloc(size, align)))
		*out = g, rc = 0;
	else
		rc = IN_REAL(spy_real.posix_memalign(out, align, size));
	int saved = errno;
	if (rc == 0)
		rec_heap_alloc(TRACE_FN_POSIX_MEMALIGN, *out, size, align);
	else if (rc == ENOMEM)
		rec_heap_alloc_failed(TRACE_FN_POSIX_MEMALIGN, size);
	spy_hook_leave();
	errno = saved;
	return rc;
}

/* aligned_alloc, memalign, valloc and pvalloc share one shape. */
#define ALIGNED_HOOK(name, fn_code, params, args, align_expr, size_expr)       \
	SPY_EXPORT void *name params                                           \
	{                                                                      \
		if (IN_ALLOCATOR())                            \
			return NULL;                                           \
		if (!spy_hook_enter()) {                                       \
			if (spy_real.name)                                     \
				return spy_real.name args;                     \
			return spy_bootstrap_alloc(size_expr, align_expr);     \
		}                                                              \
		void *p = GUARDED_OR(size_expr, align_expr, spy_real.name args); \
		int saved = errno;                                             \
		if (p)                                                         \
			rec_heap_alloc(fn_code, p, size_expr, align_expr);     \
		else                                                           \
			rec_heap_alloc_failed(fn_code, size_expr);             \
		spy_hook_leave();                                              \
		errno = saved;                                                 \
		return p;                                                      \
	}

ALIGNED_HOOK(aligned_alloc, TRACE_FN_ALIGNED_ALLOC, (size_t align, size_t size),
	     (align, size), align, size)
ALIGNED_HOOK(memalign, TRACE_FN_MEMALIGN, (size_t align, size_t size),
	     (align, size), align, size)
ALIGNED_HOOK(valloc, TRACE_FN_VALLOC, (size_t size), (size),
	     (size_t)sysconf(_SC_PAGESIZE), size)
ALIGNED_HOOK(pvalloc, TRACE_FN_PVALLOC, (size_t size), (size),
	     (size_t)sysconf(_SC_PAGESIZE), size)

SPY_EXPORT size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	if (spy_bootstrap_owns(p))
		return spy_bootstrap_size(p);
	if (spy_guard_owns(p))
		return spy_guard_size(p);
	/* the program may now use every byte of it */
	if (spy_state == SPY_STATE_READY && !spy_process_confined())
		spy_heapmap_disarm((uintptr_t)p);
	return spy_real.malloc_usable_size ? spy_real.malloc_usable_size(p) : 0;
}

/* The hooks above under names of libspy's own, for libspy code that must
 * allocate the way the program does (hook_new.c, with no C++ runtime to
 * hand to): the same functions, recorded and checked, and never taken for
 * the C library's by the import check of the Makefile. */
extern __typeof__(malloc) spy_hooked_malloc
	__attribute__((copy(malloc), alias("malloc"), visibility("hidden")));
extern __typeof__(posix_memalign) spy_hooked_posix_memalign
	__attribute__((copy(posix_memalign), alias("posix_memalign"), visibility("hidden")));
extern __typeof__(free) spy_hooked_free
	__attribute__((copy(free), alias("free"), visibility("hidden")));
extern __typeof__(realloc) spy_hooked_realloc
	__attribute__((copy(realloc), alias("realloc"), visibility("hidden")));
extern __typeof__(malloc_usable_size) spy_hooked_malloc_usable_size
	__attribute__((copy(malloc_usable_size), alias("malloc_usable_size"),
		       visibility("hidden")));

/* When the program (or a library ahead of libspy) defines malloc itself,
 * its calls never reach the hooks above: says so in the trace, where the
 * report shows it, instead of leaving an empty heap unexplained. */
void spy_malloc_check_owner(void)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	void *first = dlsym(RTLD_DEFAULT, "malloc");
	if (!first || first == (void *)spy_hooked_malloc)
		return;
	/* A program built without position independence that takes malloc's
	 * address (python3) has a symbol for it with a value and no
	 * definition: its call stub, which stands for malloc everywhere so
	 * that pointers compare equal. Its calls go on to the first real
	 * definition, libspy's. */
	if (dladdr1(first, &info, (void **)&sym, RTLD_DL_SYMENT) && sym &&
	    sym->st_shndx == SHN_UNDEF)
		return;
	char text[400];
	spy_format(text, sizeof(text),
		   "malloc is defined by %s, ahead of libspy: the program's "
		   "allocations do not reach libspy, and the heap views and "
		   "checks see none of them",
		   dladdr(first, &info) && info.dli_fname && info.dli_fname[0]
			   ? info.dli_fname : "the program");
	spy_writer_note(1, text);
}
