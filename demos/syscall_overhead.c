/* syscall_overhead.c: the same bytes written with 100000 system calls or one.
 *
 * Lesson: system-call overhead. Every write(2) crosses into the kernel and
 * back, which costs far more than copying a byte. Writing byte by byte makes
 * one call per byte; a buffer makes one call per 64 KiB.
 * Modes (argument; default: all four, in this order):
 *   bytes     one write(2) per byte                       (the bug)
 *   putc      fputc() on a stream made unbuffered with
 *             setvbuf(_IONBF): stdio, but still one call per byte (the bug)
 *   big       the whole text built in memory, one write(2)
 *   buffered  a fixed 64 KiB buffer, written when full
 * libspy should report: unbuffered-io for `bytes` and `putc` (call count,
 * 1 byte per call, time in the kernel, and the line that makes the calls);
 * nothing for `big` and `buffered`.
 * Run:  ./demos/syscall_overhead [bytes|putc|big|buffered|all] [N] [FILE]
 *       (N bytes, default 100000; FILE default /dev/null)
 *       LD_PRELOAD=./libspy.so ./demos/syscall_overhead bytes
 *       spy ./demos/syscall_overhead
 * Output: mode and number of calls are deterministic; the time is the lesson.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)

static long n_bytes = 100000;
static const char *path = "/dev/null";

static char byte_at(long i)
{
	return (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
}

static long write_bytes(int fd)
{
	for (long i = 0; i < n_bytes; i++) {
		char c = byte_at(i);

		if (write(fd, &c, 1) != 1)     /* BUG: one system call per byte */
			return -1;
	}
	return n_bytes;
}

static long write_putc(int fd)
{
	FILE *f = fdopen(dup(fd), "w");

	if (!f)
		return -1;
	setvbuf(f, NULL, _IONBF, 0);           /* BUG: no buffer, so each fputc is a write */
	for (long i = 0; i < n_bytes; i++)
		fputc(byte_at(i), f);
	fclose(f);
	return n_bytes;
}

static long write_big(int fd)
{
	char *all = malloc(n_bytes);

	if (!all)
		return -1;
	for (long i = 0; i < n_bytes; i++)
		all[i] = byte_at(i);
	if (write(fd, all, n_bytes) != n_bytes) {  /* one call (a short write is
						     * possible on pipes; not here) */
		free(all);
		return -1;
	}
	free(all);
	return 1;
}

static long write_buffered(int fd)
{
	static char buf[BUF_SIZE];
	long used = 0, calls = 0;

	for (long i = 0; i < n_bytes; i++) {
		buf[used++] = byte_at(i);
		if (used == BUF_SIZE) {            /* full: one call for 64 KiB */
			if (write(fd, buf, used) != used)
				return -1;
			used = 0;
			calls++;
		}
	}
	if (used > 0) {                            /* the rest */
		if (write(fd, buf, used) != used)
			return -1;
		calls++;
	}
	return calls;
}

static int run(const char *mode, long (*fn)(int))
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct timespec t0, t1;
	long calls;

	if (fd < 0) {
		perror(path);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	calls = fn(fd);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(fd);
	if (calls < 0) {
		perror("write");
		return 1;
	}
	printf("%-9s %ld bytes in %ld write calls", mode, n_bytes, calls);
	fflush(stdout);
	/* The time varies from run to run; it goes on the same line, after a tab. */
	printf("\t%.3f ms\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "all";
	int all = strcmp(mode, "all") == 0, rc = 0, known = 0;

	if (argc > 2)
		n_bytes = atol(argv[2]);
	if (argc > 3)
		path = argv[3];
	if (n_bytes <= 0) {
		fprintf(stderr, "syscall_overhead: N must be a positive number\n");
		return 2;
	}
	if (all || strcmp(mode, "bytes") == 0)
		rc |= run("bytes", write_bytes), known = 1;
	if (all || strcmp(mode, "putc") == 0)
		rc |= run("putc", write_putc), known = 1;
	if (all || strcmp(mode, "big") == 0)
		rc |= run("big", write_big), known = 1;
	if (all || strcmp(mode, "buffered") == 0)
		rc |= run("buffered", write_buffered), known = 1;
	if (!known) {
		fprintf(stderr, "usage: %s [bytes|putc|big|buffered|all] [N] [FILE]\n", argv[0]);
		return 2;
	}
	return rc;
}
