/* spy_signals.h: fatal signals end the trace properly, then do what they
 * would have done. The program's own handlers keep working: sigaction,
 * signal and the C library's other setters (sigset, sysv_signal,
 * bsd_signal, ssignal, sigignore, siginterrupt, __sigaction) are
 * intercepted for the signals libspy watches, and the program sees its
 * own settings, never libspy's.
 */
#ifndef SPY_SIGNALS_H
#define SPY_SIGNALS_H

/* Installs libspy's handler on every watched signal whose disposition is
 * still the default. Called once at start and in a fork child nothing is
 * needed (handlers are inherited). */
void spy_signals_init(void);

#include <signal.h>
#include <stdint.h>

/* A recorder that explains faults (a guard page touched, a stack overflow)
 * registers an observer at start-up. When a watched signal is about to end
 * the process, every observer runs first, in signal context on the
 * alternate stack (async-signal-safe code only), and may write records;
 * then the trace is ended and the signal does what it would have done.
 * At most 8 observers; registering cannot fail otherwise. */
typedef void (*spy_fault_observer)(int sig, siginfo_t *info, void *context);
void spy_signals_observe_faults(spy_fault_observer fn);

/* A recorder that can undo what caused a fault (pages it made
 * inaccessible) registers a resolver at start-up. Every watched signal
 * goes to the resolvers first, in signal context; one that returns 1 has
 * dealt with it and the faulting instruction runs again. At most 4. */
typedef int (*spy_fault_resolver)(int sig, siginfo_t *info, void *context);
void spy_signals_resolve_faults(spy_fault_resolver fn);

/* Gives every watched signal back the program's own disposition, so that
 * the kernel alone handles it from now on and libspy's handler makes no
 * more system calls (a seccomp filter may forbid them). For good: later
 * sigaction calls go straight to the C library. */
void spy_signals_release(void);

/* 1 if libspy's handler is installed for sig (the program had none at
 * start): only then do its faults reach observers and resolvers. */
int spy_signals_manages(int sig);

/* The faulting instruction's address from a handler's context (0 where
 * the architecture is not known). */
uintptr_t spy_signals_fault_pc(void *context);

/* What a SIGSEGV's access was (enum trace_crash_access), from the page
 * fault's error code; TRACE_ACCESS_UNKNOWN for other signals or where
 * the machine does not say. */
unsigned spy_signals_fault_access(int sig, void *context);

/* The fault (one the kernel raised) whose handler of the program's this
 * thread is running, for sig: 1 and its code, address, instruction and
 * access, else 0. A handler that passes its fault on with raise(sig)
 * sends a signal with no address; this is the fault it passes on. */
int spy_signals_handled_fault(int sig, int *code, uintptr_t *addr,
			      uintptr_t *pc, unsigned *access);

/* Reads of memory another thread may unmap meanwhile (the leak scan and
 * the quarantine check at exit):
 *
 *     sigjmp_buf env;
 *     if (sigsetjmp(env, 0) == 0) {
 *             spy_probe_arm(&env);
 *             ... reads ...
 *     }
 *     spy_probe_disarm();
 *
 * A SIGSEGV or SIGBUS on this thread while armed returns to sigsetjmp
 * (with 1) instead of reaching the program. Works where libspy's handler
 * is installed for both signals (the program had none at start). */
#include <setjmp.h>
void spy_probe_arm(sigjmp_buf *env);
void spy_probe_disarm(void);

#endif
