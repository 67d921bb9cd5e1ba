/* spy_preloadvar.h: LD_PRELOAD keeps naming libspy after the program
 * changes directory. `LD_PRELOAD=./libspy.so prog` names libspy relative
 * to the directory prog starts in; once prog changes directory and runs
 * another program (make -C, a shell's cd), the dynamic loader could no
 * longer open it: that program ran untraced, with a loader error on its
 * standard error. So such a name is replaced by libspy's absolute path,
 * only where it no longer leads to libspy: in the environment an exec
 * passes on, and in the process's own environment after a change of
 * directory (system, popen and posix_spawn pass that one on).
 */
#ifndef SPY_PRELOADVAR_H
#define SPY_PRELOADVAR_H

#include <stddef.h>

/* Notes how the loader named libspy and where that is (at start, before
 * the program can change directory). */
void spy_preloadvar_init(void);

/* entry, an environment string, or, when it is an LD_PRELOAD whose
 * relative name for libspy no longer leads to it from the current
 * directory, the same with libspy's absolute path, written into out.
 * No allocation (may run in a vfork child). */
const char *spy_preloadvar_fixed(const char *entry, char *out, size_t cap);

/* The same fix in the process's own environment; after a chdir. */
void spy_preloadvar_fix_environ(void);

#endif
