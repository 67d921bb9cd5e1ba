/* spy_signals.h: fatal signals end the trace properly, then do what they
 * would have done. The program's own handlers keep working: sigaction and
 * signal are intercepted for the signals libspy watches, and the program
 * sees its own settings, never libspy's.
 */
#ifndef SPY_SIGNALS_H
#define SPY_SIGNALS_H

/* Installs libspy's handler on every watched signal whose disposition is
 * still the default. Called once at start and in a fork child nothing is
 * needed (handlers are inherited). */
void spy_signals_init(void);

#include <signal.h>

/* A recorder that explains faults (a guard page touched, a stack overflow)
 * registers an observer at start-up. When a watched signal is about to end
 * the process, every observer runs first, in signal context on the
 * alternate stack (async-signal-safe code only), and may write records;
 * then the trace is ended and the signal does what it would have done.
 * At most 8 observers; registering cannot fail otherwise. */
typedef void (*spy_fault_observer)(int sig, siginfo_t *info, void *context);
void spy_signals_observe_faults(spy_fault_observer fn);

#endif
