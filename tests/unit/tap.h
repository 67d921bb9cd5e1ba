/* tap.h: a tiny Test Anything Protocol helper for the unit tests.
 * ok(cond, fmt, ...) prints "ok N - ..." or "not ok N - ..."; tap_done()
 * prints the plan "1..N" and returns the exit status (1 if any failed).
 */
#ifndef SPY_TAP_H
#define SPY_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_count, tap_failures;

__attribute__((format(printf, 4, 5)))
static int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	printf("%s %d - ", cond ? "ok" : "not ok", ++tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!cond) {
		tap_failures++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* A comment line in the output. */
#define diag(...) (printf("# "), printf(__VA_ARGS__), putchar('\n'))

static int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failures ? 1 : 0;
}

#endif
