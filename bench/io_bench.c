/* io_bench.c: the system-call workload: N one-byte writes.
 *
 * Usage: io_bench MODE N [FILE]     (FILE default /dev/null)
 *   write  write(fd, "a", 1), N times
 *   putc   fputc on a stream made unbuffered (stdio's own writes), N times
 * Prints "MODE N calls NS ns/call": the loop timed by the program itself,
 * so that process start and the trace's end stay out of the figure.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: io_bench write|putc N [FILE]\n");
		return 2;
	}
	const char *mode = argv[1];
	long n = atol(argv[2]);
	int fd = open(argc > 3 ? argv[3] : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	double t0, t1;
	if (!strcmp(mode, "write")) {
		t0 = now();
		for (long i = 0; i < n; i++)
			if (write(fd, "a", 1) != 1)
				return 1;
		t1 = now();
	} else if (!strcmp(mode, "putc")) {
		FILE *f = fdopen(fd, "w");
		setvbuf(f, NULL, _IONBF, 0);
		t0 = now();
		for (long i = 0; i < n; i++)
			fputc('a', f);
		t1 = now();
	} else {
		fprintf(stderr, "io_bench: unknown mode '%s'\n", mode);
		return 2;
	}
	printf("%s %ld calls %.1f ns/call\n", mode, n, (t1 - t0) / (double)n);
	return 0;
}
