/* virtual_memory.c: one virtual address, two processes, two physical frames.
 *
 * Lesson: virtual memory. After fork() parent and child see the same virtual
 * addresses, but each process has its own page table. The page holding the
 * global `shared_looking` is shared copy-on-write until one of them writes;
 * the write gives the writer a private copy in a different physical frame.
 * So both processes print the SAME address holding DIFFERENT values.
 * Bug: none; this demo only shows the mapping.
 * libspy: no finding expected. The trace holds two processes (the child names
 * its parent), and the report shows the page-fault counts of each.
 * The physical frame number (PFN) comes from /proc/self/pagemap. Linux hides
 * it (reads as 0) from processes without CAP_SYS_ADMIN; the demo then says so
 * instead of printing a zero.
 * Run:  ./demos/virtual_memory
 *       LD_PRELOAD=./libspy.so ./demos/virtual_memory
 *       spy ./demos/virtual_memory
 * Output: the order of lines is fixed (the parent waits for the child);
 * addresses and frame numbers change from run to run.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

long shared_looking = 1;   /* a global: same virtual address in both processes */

/* Physical frame number of the page holding addr, 0 if hidden, -1 on error. */
static long long frame_of(const void *addr)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t entry;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	off_t off = (off_t)((uintptr_t)addr / page) * sizeof entry;

	if (fd < 0)
		return -1;
	if (pread(fd, &entry, sizeof entry, off) != sizeof entry) {
		close(fd);
		return -1;
	}
	close(fd);
	if (!(entry & (1ULL << 63)))            /* bit 63: page present */
		return -1;
	return (long long)(entry & ((1ULL << 55) - 1));  /* bits 0-54: PFN */
}

static void report(const char *who)
{
	long long pfn = frame_of(&shared_looking);

	printf("%-6s pid %-7d &shared_looking = %p  value = %ld  ",
	       who, getpid(), (void *)&shared_looking, shared_looking);
	if (pfn > 0)
		printf("physical frame 0x%llx\n", pfn);
	else if (pfn == 0)
		printf("physical frame hidden (needs CAP_SYS_ADMIN)\n");
	else
		printf("physical frame unknown (no /proc/self/pagemap)\n");
	fflush(stdout);
}

int main(void)
{
	pid_t child;
	int status, go[2];
	char token = 'x';

	shared_looking = 1;
	report("before");
	if (pipe(go) != 0) {
		perror("pipe");
		return 1;
	}
	child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		/* Wait until the parent has written, then write and print. */
		if (read(go[0], &token, 1) != 1)
			_exit(1);
		shared_looking = 2000;
		report("child");
		_exit(0);
	}
	/* The parent writes while the child still shares the page: copy-on-write
	 * gives the two processes different frames (which one keeps the old
	 * frame depends on who touches the page first, and may vary). */
	shared_looking = 1000;
	if (write(go[1], &token, 1) != 1)
		perror("write");
	waitpid(child, &status, 0);      /* the child prints first, always */
	report("parent");
	printf("same virtual address, different values: each process has its own page\n");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
