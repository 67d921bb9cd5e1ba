/* spy_program.h: finding the program spy is asked to run, and refusing
 * what libspy cannot trace. Both exit with status 2 and one line on
 * failure; they return only on success.
 */
#ifndef SPY_PROGRAM_H
#define SPY_PROGRAM_H

#include <stddef.h>

/* The program's path as execvp would find it: a name with a slash as it
 * is, a bare name through PATH (the first executable regular file). */
void spy_program_resolve(const char *name, char *prog, size_t cap);

/* Refuses unless the loader will honour LD_PRELOAD in the process that
 * path becomes: dynamically linked, not set-id, built for libspy's machine.
 * A #! script is judged by its interpreter. shown names the program in
 * messages; depth is 0 for the program itself. */
void spy_program_check(const char *shown, const char *path,
		       const char *libspy, int depth);

#endif
