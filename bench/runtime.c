/* runtime.c: run a command, append "WALL_S MAXRSS_KB STATUS CPU_S" to a file.
 *
 * Usage: runtime RESULT_FILE COMMAND [ARG...]
 * WALL_S is clock_gettime(CLOCK_MONOTONIC) around fork..wait4;
 * MAXRSS_KB is the largest resident set of the command or of any
 * descendant it waited for (wait4's rusage); STATUS is the exit status,
 * or 128+N when the command died of signal N; CPU_S is user + system time
 * of the command and its waited-for descendants. The command's own output
 * is left alone. Exits with the command's status.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	struct rusage ru;
	int status, code;
	pid_t pid;
	FILE *out;

	if (argc < 3) {
		fprintf(stderr, "usage: runtime RESULT_FILE COMMAND [ARG...]\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		perror("runtime: fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "runtime: cannot run '%s'\n", argv[2]);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("runtime: wait4");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	out = fopen(argv[1], "a");
	if (!out) {
		perror(argv[1]);
		return 2;
	}
	fprintf(out, "%.4f %ld %d %.4f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
		ru.ru_maxrss, code,
		ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	fclose(out);
	return code;
}
