/* spy_runner.h: what the parts of the spy runner share. */
#ifndef SPY_RUNNER_H
#define SPY_RUNNER_H

#include <stddef.h>

/* spy's status when it refuses to run a program or cannot go on. */
#define EXIT_REFUSED 2

/* "spy: <message>" on stderr, then exit(status). */
void spy_die(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* snprintf for paths: a path that does not fit is an error (spy_die),
 * never cut. */
void spy_pathf(char *dst, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
