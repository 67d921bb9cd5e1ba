/* spy_init.c: start-up and shut-down of libspy.so.
 * Initialisation happens at load (constructor) or at the first intercepted
 * call, whichever comes first; the guard is held throughout so that
 * allocations made by dlsym and friends are not recorded.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "rec_crash.h"
#include "rec_threads.h"
#include "rec_io.h"
#include "rec_locks.h"
#include "spy_allocapi.h"
#include "spy_core.h"
#include "spy_gate.h"
#include "spy_heapinfo.h"
#include "spy_heapmap.h"
#include "spy_modules.h"
#include "spy_options.h"
#include "spy_ownmem.h"
#include "spy_process.h"
#include "spy_qprotect.h"
#include "spy_quarantine.h"
#include "spy_real.h"
#include "spy_signals.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_format.h"

__thread struct spy_thread spy_self __attribute__((tls_model("initial-exec")));
volatile int spy_state;
/* spy_tracing has a page to itself, which a child forked behind the C
 * library's back (a raw clone or clone3 syscall, as bubblewrap and
 * systemd make) gets zeroed (MADV_WIPEONFORK): libspy's fork handlers
 * did not run there, the child lacks the parent's trace mappings
 * (MADV_DONTFORK), and so it runs untraced instead of faulting on its
 * first record. A fork through the C library sets it again in the child
 * when the child's trace opens. */
static struct {
	volatile int on;
	char rest[4096 - sizeof(int)];
} tracing_page __attribute__((aligned(4096)));
extern volatile int spy_tracing __attribute__((alias("tracing_page")));

static pthread_key_t thread_key;

/* The calling thread's last records; it records nothing after. Once the
 * process is confined (seccomp) it makes no system call for them: what it
 * held stays as it is. */
static void thread_end(void)
{
	struct spy_thread *t = &spy_self;
	t->guard++;
	if (spy_gate_enter()) {
		rec_threads_thread_exit();
		rec_lock_thread_exit();
		spy_quarantine_thread_exit();
		rec_io_thread_exit();
		spy_writer_thread_exit();
		spy_stack_thread_exit();
	}
	spy_gate_leave();
	t->dead = 1;
	spy_gate_release(t);
	t->guard--;
}

/* Thread exit: glibc calls key destructors in rounds while values are set,
 * in key order. When the program registered destructors of its own,
 * re-arming keeps ours for the last round, so that frees done by them
 * are still recorded; otherwise the first round is the last (each round
 * walks every key slot). */
static void on_thread_exit(void *arg)
{
	struct spy_thread *t = &spy_self;
	(void)arg;
	if (__atomic_load_n(&spy_thread_destructors, __ATOMIC_RELAXED) &&
	    ++t->dtor_rounds < PTHREAD_DESTRUCTOR_ITERATIONS) {
		pthread_setspecific(thread_key, (void *)1);
		return;
	}
	thread_end();
}

void spy_thread_end_later(void)
{
	pthread_setspecific(thread_key, (void *)1);
}

/* Ending at the return spares glibc's walk over the key slots at exit
 * (a key with a value costs every thread that walk). */
void spy_thread_returned(void)
{
	if (__atomic_load_n(&spy_thread_destructors, __ATOMIC_RELAXED))
		spy_thread_end_later();
	else if (!spy_self.dead)
		thread_end();
}

void spy_thread_register(void)
{
	rec_io_thread_start();
	if (!rec_thread_self.managed)
		spy_thread_end_later();
}

/* Start-up under a seccomp filter: the hooks find the real functions
 * (looking them up takes no system call) and pass every call on to them.
 * The one line said takes getrlimit (prlimit64, which the C library's
 * own start made) and a write. */
static void start_untraced(void)
{
	spy_process_start_confined();
	rec_io_patch_libc(0);
	if (!spy_streq(spy_opt.on_seccomp, "untraced"))
		spy_error("bad value '%s' for on_seccomp (untraced or trace): "
			  "using untraced", spy_opt.on_seccomp);
	spy_say("the program starts under a seccomp filter, which may refuse "
		"libspy's own system calls or kill the process for them: it "
		"runs untraced (on_seccomp=trace traces it all the same)");
	__atomic_store_n(&spy_state, SPY_STATE_OFF, __ATOMIC_RELEASE);
	spy_self.guard--;
}

void spy_init(void)
{
	int expected = SPY_STATE_NONE;
	if (!__atomic_compare_exchange_n(&spy_state, &expected, SPY_STATE_INIT, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	struct spy_thread *t = &spy_self;
	t->guard++;
	/* before any other system call: under a filter that kills, the
	 * first one libspy makes may be the last */
	int sandboxed = spy_process_started_confined();
	spy_real_resolve();
	spy_allocmem_init((const void *)spy_real.malloc);
	spy_allocapi_init();
	spy_cxx_resolve();
	spy_options_parse(spy_process_take_options());
	if (sandboxed && !spy_streq(spy_opt.on_seccomp, "trace")) {
		start_untraced();
		return;
	}
	char parent[PATH_MAX];
	int cause = spy_process_take_parent(parent, sizeof(parent));
	spy_pid = spy_sys_getpid();
	t->tid = spy_sys_gettid();
	spy_sys_thread_tid_init();
	spy_stack_init();
	pthread_key_create(&thread_key, on_thread_exit);
	spy_process_note_start();
	if (spy_writer_open(cause) == 0) {
		spy_process_write_record(cause, parent);
		spy_modules_snapshot();
		spy_malloc_check_owner();
	}
	madvise(&tracing_page, sizeof(tracing_page), MADV_WIPEONFORK);
	spy_process_init();
	spy_gate_init();
	spy_heapmap_init();
	spy_heapinfo_init();
	spy_signals_init();
	rec_crash_init();
	spy_qprotect_init();
	rec_io_init();
	rec_threads_init();
	__atomic_store_n(&spy_state, SPY_STATE_READY, __ATOMIC_RELEASE);
	t->guard--;
}

__attribute__((constructor(101))) static void spy_constructor(void)
{
	spy_init();
}

/* Runs late in exit(), after the program's atexit handlers. Events after
 * it (stdio's flush at exit, late destructors) still reach the trace. */
__attribute__((destructor(101))) static void spy_destructor(void)
{
	spy_process_finish(TRACE_EXIT_UNKNOWN, 0);
}
