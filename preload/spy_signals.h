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

#endif
