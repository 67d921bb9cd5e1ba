/* spy_signals.c: end the trace properly when a signal kills the process.
 * The handler runs in signal context: only async-signal-safe calls, no
 * allocation, errno kept. The program keeps its own view of every watched
 * signal through the sigaction and signal hooks, and its handlers are
 * called exactly as the kernel would have called them.
 */
#include "spy_signals.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "rec_threads.h"
#include "spy_core.h"
#include "spy_process.h"
#include "spy_modules.h"
#include "spy_real.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_format.h"

/* Signals whose default action ends the process and that a program may
 * well receive: faults first, then the polite requests to stop, then
 * those a program meets in its ordinary work (a write into a pipe whose
 * reader left, as in `prog | head`; an alarm; a user signal). */
static const int watched[] = {
	SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS,
	SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGXCPU, SIGXFSZ,
	SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2, SIGVTALRM, SIGPROF, SIGIO, SIGPWR,
	SIGSTKFLT,
};
#define NWATCHED (sizeof(watched) / sizeof(watched[0]))

static spy_fault_observer observers[8];
static int n_observers;
static spy_fault_resolver resolvers[4];
static int n_resolvers;

void spy_signals_resolve_faults(spy_fault_resolver fn)
{
	if (n_resolvers < 4)
		resolvers[n_resolvers++] = fn;
}

void spy_signals_observe_faults(spy_fault_observer fn)
{
	if (n_observers < 8)
		observers[n_observers++] = fn;
}

static int managed[NSIG];                 /* libspy's handler is installed */
static struct sigaction program_action[NSIG]; /* what the program asked for */

static void on_signal(int sig, siginfo_t *info, void *context);

int spy_signals_manages(int sig)
{
	return sig > 0 && sig < NSIG && managed[sig];
}

/* Installs libspy's handler with the program's mask and flags, so that the
 * kernel blocks and restarts exactly as the program asked. */
static int install(int sig, const struct sigaction *want)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_mask = want->sa_mask;
	sa.sa_flags = SA_SIGINFO | (want->sa_flags & (SA_RESTART | SA_NODEFER | SA_ONSTACK));
	return spy_real.sigaction(sig, &sa, NULL);
}

static void die_of(int sig, siginfo_t *info, void *context)
{
	spy_self.guard++;
	for (int i = 0; i < n_observers; i++)
		observers[i](sig, info, context);
	spy_modules_end_map();
	spy_writer_finish(TRACE_EXIT_SIGNAL, 128 + sig, sig);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	spy_real.sigaction(sig, &dfl, NULL);
	/* A fault happens again when the handler returns; anything else is
	 * sent again and arrives as soon as the handler's mask is lifted. */
	syscall(SYS_tgkill, spy_sys_getpid(), spy_sys_gettid(), sig);
}

uintptr_t spy_signals_fault_pc(void *context)
{
	ucontext_t *uc = context;
#if defined(__x86_64__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	return (uintptr_t)uc->uc_mcontext.pc;
#else
	(void)uc;
	return 0;
#endif
}

unsigned spy_signals_fault_access(int sig, void *context)
{
#if defined(__x86_64__)
	if (sig == SIGSEGV && context) {
		greg_t err = ((ucontext_t *)context)->uc_mcontext.gregs[REG_ERR];
		if (err & 16)
			return TRACE_ACCESS_EXEC;
		return err & 2 ? TRACE_ACCESS_WRITE : TRACE_ACCESS_READ;
	}
#else
	(void)sig;
	(void)context;
#endif
	return TRACE_ACCESS_UNKNOWN;
}

static __thread sigjmp_buf *probe_at;

/* The kernel's fault whose program handler this thread runs (so that a
 * raise(sig) from that handler can be told from a kill or a raise out of
 * the blue, and is recorded as that fault). */
static __thread struct {
	int sig, code;
	uintptr_t addr, pc;
	unsigned access;
} handled;

int spy_signals_handled_fault(int sig, int *code, uintptr_t *addr,
			      uintptr_t *pc, unsigned *access)
{
	if (handled.sig != sig)
		return 0;
	*code = handled.code;
	*addr = handled.addr;
	*pc = handled.pc;
	*access = handled.access;
	return 1;
}

void spy_probe_arm(sigjmp_buf *env)
{
	__atomic_store_n(&probe_at, env, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

void spy_probe_disarm(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&probe_at, NULL, __ATOMIC_RELAXED);
}

/* A read libspy armed for faults hit memory that is gone: back to the
 * reader, with the signal unblocked again (the jump skips the return that
 * would have unblocked it). */
static void end_probe(int sig)
{
	sigjmp_buf *env = probe_at;
	probe_at = NULL;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	siglongjmp(*env, 1);
}

static void on_signal(int sig, siginfo_t *info, void *context)
{
	int saved = errno;
	struct sigaction *app = &program_action[sig];
	for (int i = 0; i < n_resolvers; i++) {
		if (resolvers[i](sig, info, context)) {
			errno = saved;
			return;
		}
	}
	if ((sig == SIGSEGV || sig == SIGBUS) && probe_at)
		end_probe(sig);
	if (sig == SIGBUS && spy_writer_absorb_fault(info->si_addr)) {
		errno = saved;
		return;
	}
	if (app->sa_handler == SIG_DFL) {
		if (spy_pid == spy_sys_getpid() && spy_state == SPY_STATE_READY) {
			die_of(sig, info, context);
		} else {
			spy_real.sigaction(sig, app, NULL);
			syscall(SYS_tgkill, spy_sys_getpid(), spy_sys_gettid(), sig);
		}
		errno = saved;
		return;
	}
	if (app->sa_handler == SIG_IGN) {
		errno = saved;
		return;
	}
	/* A stack overflow where only libspy gave the thread an alternate
	 * stack: the kernel alone could not have run the program's handler
	 * and would have killed the process, so that is what happens. */
	if (spy_stackguard_undeliverable(sig, info, context)) {
		if (spy_pid == spy_sys_getpid() && spy_state == SPY_STATE_READY) {
			die_of(sig, info, context);
		} else {
			struct sigaction dfl;
			memset(&dfl, 0, sizeof(dfl));
			dfl.sa_handler = SIG_DFL;
			spy_real.sigaction(sig, &dfl, NULL);
		}
		errno = saved;
		return;
	}
	struct sigaction call = *app;
	if (app->sa_flags & SA_RESETHAND) {
		program_action[sig].sa_handler = SIG_DFL;
		program_action[sig].sa_flags &= ~SA_SIGINFO;
	}
	errno = saved;
	int fault = (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE ||
		     sig == SIGILL) && info && info->si_code > 0;
	int outer_sig = handled.sig;
	if (fault) {
		handled.code = info->si_code;
		handled.addr = (uintptr_t)info->si_addr;
		handled.pc = context ? spy_signals_fault_pc(context) : 0;
		handled.access = spy_signals_fault_access(sig, context);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		handled.sig = sig;
	}
	if (call.sa_flags & SA_SIGINFO)
		call.sa_sigaction(sig, info, context);
	else
		call.sa_handler(sig);
	/* a handler that passed its fault on with raise(sig) left it
	 * pending (blocked while the handler ran): it arrives as soon as
	 * this returns, and is that fault */
	sigset_t pending;
	if (fault && (sigpending(&pending) != 0 || !sigismember(&pending, sig)))
		handled.sig = outer_sig;
}

/* A stack overflow's SIGSEGV can only be handled on another stack. The
 * thread that starts libspy (the main thread, nearly always) gets one unless
 * the program already set its own. */
static void give_alternate_stack(void)
{
	stack_t old;
	if (spy_sys_sigaltstack(NULL, &old) != 0 || !(old.ss_flags & SS_DISABLE))
		return;
	size_t size = 64 * 1024;
	void *mem = spy_sys_mmap(size);
	if (!mem)
		return;
	stack_t ss = {.ss_sp = mem, .ss_size = size, .ss_flags = 0};
	if (spy_sys_sigaltstack(&ss, NULL) != 0)
		spy_sys_munmap(mem, size);
}

void spy_signals_init(void)
{
	give_alternate_stack();
	for (size_t i = 0; i < NWATCHED; i++) {
		int sig = watched[i];
		struct sigaction old;
		if (spy_real.sigaction(sig, NULL, &old) != 0 ||
		    old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
			continue;
		program_action[sig] = old;
		struct sigaction want;
		memset(&want, 0, sizeof(want));
		want.sa_flags = SA_RESTART | SA_ONSTACK;
		if (install(sig, &want) == 0)
			managed[sig] = 1;
	}
}

void spy_signals_release(void)
{
	for (size_t i = 0; i < NWATCHED; i++) {
		int sig = watched[i];
		if (!managed[sig])
			continue;
		managed[sig] = 0;
		spy_real.sigaction(sig, &program_action[sig], NULL);
	}
}

/* libunwind blocks every signal around each search of the unwind tables
 * (two system calls for every frame it has no cached rule for: most of
 * the cost of stacks in a program with many distinct call sites, such as
 * cc1). libspy unwinds with its guard held, and none of its handlers
 * unwinds while the guard is held, so for those calls there is nothing
 * to block against: they are skipped. Every other caller, the program
 * included, gets the real call. */
SPY_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	if (spy_self.guard &&
	    spy_stack_unwinder_owns(__builtin_return_address(0))) {
		if (old)
			sigemptyset(old);
		return 0;
	}
	int r = pthread_sigmask(how, set, old);
	if (r) {
		errno = r;
		return -1;
	}
	return 0;
}

SPY_EXPORT int sigaction(int sig, const struct sigaction *act,
			 struct sigaction *old)
{
	spy_init();
	if (sig <= 0 || sig >= NSIG || !managed[sig] || !spy_real.sigaction)
		return spy_real.sigaction(sig, act, old);
	struct sigaction prev = program_action[sig];
	if (act) {
		int rc;
		if (act->sa_handler == SIG_IGN)
			rc = spy_real.sigaction(sig, act, NULL);
		else
			rc = install(sig, act);
		if (rc != 0)
			return rc;
		program_action[sig] = *act;
	}
	if (old)
		*old = prev;
	return 0;
}

/* The signals siginterrupt(sig, 1) was last called for: glibc's signal()
 * leaves SA_RESTART out for them, and so does libspy's, which stands in
 * for it. */
static sigset_t interrupting;

SPY_EXPORT void (*signal(int sig, void (*handler)(int)))(int)
{
	spy_init();
	if (sig <= 0 || sig >= NSIG || !managed[sig])
		return spy_real.signal(sig, handler);
	/* glibc's signal() has BSD semantics: restart, block the signal. */
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, sig);
	sa.sa_flags = sigismember(&interrupting, sig) ? 0 : SA_RESTART;
	if (sigaction(sig, &sa, &old) != 0)
		return SIG_ERR;
	return old.sa_handler;
}

/* The C library's other ways to set a disposition reach the kernel
 * without passing through sigaction's symbol: each would put the
 * program's handler in place of libspy's behind its back, and the
 * program would then read back what libspy last recorded instead. */
SPY_EXPORT void (*bsd_signal(int sig, void (*handler)(int)))(int)
{
	return signal(sig, handler);
}

SPY_EXPORT void (*ssignal(int sig, void (*handler)(int)))(int)
{
	return signal(sig, handler);
}

SPY_EXPORT int __sigaction(int sig, const struct sigaction *act,
			   struct sigaction *old)
{
	return sigaction(sig, act, old);
}

/* System V semantics: the handler runs once, without the signal blocked. */
SPY_EXPORT void (*sysv_signal(int sig, void (*handler)(int)))(int)
{
	if (handler == SIG_ERR || sig <= 0 || sig >= NSIG) {
		errno = EINVAL;
		return SIG_ERR;
	}
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	if (sigaction(sig, &sa, &old) != 0)
		return SIG_ERR;
	return old.sa_handler;
}
SPY_EXPORT void (*__sysv_signal(int sig, void (*handler)(int)))(int)
{
	return sysv_signal(sig, handler);
}

SPY_EXPORT int sigignore(int sig)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

/* As the C library does it: SIG_HOLD blocks the signal, any other
 * disposition is set and unblocks it; SIG_HOLD comes back when the
 * signal was blocked before. */
SPY_EXPORT void (*sigset(int sig, void (*disp)(int)))(int)
{
	if (disp == SIG_ERR || sig <= 0 || sig >= NSIG) {
		errno = EINVAL;
		return SIG_ERR;
	}
	sigset_t set, was;
	sigemptyset(&set);
	sigaddset(&set, sig);
	struct sigaction sa, old;
	if (disp == SIG_HOLD) {
		if (sigprocmask(SIG_BLOCK, &set, &was) != 0)
			return SIG_ERR;
		if (sigismember(&was, sig))
			return SIG_HOLD;
		if (sigaction(sig, NULL, &old) != 0)
			return SIG_ERR;
		return old.sa_handler;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = disp;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old) != 0 ||
	    sigprocmask(SIG_UNBLOCK, &set, &was) != 0)
		return SIG_ERR;
	return sigismember(&was, sig) ? SIG_HOLD : old.sa_handler;
}

/* The C library keeps which signals interrupt for its signal(); it
 * rewrites the kernel's flags of libspy's handler, and the program's
 * own record follows. */
SPY_EXPORT int siginterrupt(int sig, int interrupt)
{
	spy_init();
	if (!spy_real.siginterrupt) {
		errno = ENOSYS;
		return -1;
	}
	int rc = spy_real.siginterrupt(sig, interrupt);
	if (rc == 0 && sig > 0 && sig < NSIG) {
		if (interrupt)
			sigaddset(&interrupting, sig);
		else
			sigdelset(&interrupting, sig);
	}
	if (rc == 0 && sig > 0 && sig < NSIG && managed[sig]) {
		if (interrupt)
			program_action[sig].sa_flags &= ~SA_RESTART;
		else
			program_action[sig].sa_flags |= SA_RESTART;
	}
	return rc;
}
