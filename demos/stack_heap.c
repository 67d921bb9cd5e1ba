/* stack_heap.c: where do globals, statics, locals, heap blocks and code live?
 *
 * Lesson: stack vs heap. A program's memory is split into regions: the text
 * (code), the data/bss (globals and statics), the heap (small malloc blocks,
 * grown with brk), anonymous mmap areas (big malloc blocks, above glibc's
 * mmap threshold, 128 KiB by default) and the stack (locals).
 * Bug: none; this demo only shows the map.
 * libspy: no finding expected. `analyze map` draws the process map and
 * `analyze where ADDR` names the region of any address this demo prints.
 * Run:  ./demos/stack_heap
 *       LD_PRELOAD=./libspy.so ./demos/stack_heap
 *       spy ./demos/stack_heap
 * Output: addresses change from run to run (ASLR); the region names do not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int global_counter = 42;           /* initialised global: .data */
static char static_buffer[256];    /* zero-initialised static: .bss */

/* Find the line of /proc/self/maps that contains addr, and name its region. */
static const char *region_of(const void *addr, char *name, size_t len)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512];
	uintptr_t a = (uintptr_t)addr;

	snprintf(name, len, "unknown");
	if (!maps)
		return name;
	while (fgets(line, sizeof line, maps)) {
		unsigned long lo, hi;
		char perms[8], path[256] = "";

		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi, perms, path) < 3)
			continue;
		if (a < lo || a >= hi)
			continue;
		if (strcmp(path, "[stack]") == 0 || strcmp(path, "[heap]") == 0)
			snprintf(name, len, "%s", path);
		else if (path[0] == '\0')
			snprintf(name, len, "anonymous mmap (%s)", perms);
		else if (perms[2] == 'x')
			snprintf(name, len, "text of %s", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
		else if (perms[1] == 'w')
			snprintf(name, len, "data/bss of %s", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
		else
			snprintf(name, len, "read-only data of %s", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
		break;
	}
	fclose(maps);
	return name;
}

static void show(const char *what, const void *addr)
{
	char name[300];

	printf("%-34s %18p  %s\n", what, addr, region_of(addr, name, sizeof name));
}

int main(void)
{
	int local = 7;                          /* on main's stack frame */
	char *small = malloc(64);               /* below the mmap threshold: brk heap */
	char *big = malloc(1 << 20);            /* 1 MiB: above it, its own mmap */

	if (!small || !big) {
		perror("malloc");
		return 1;
	}
	small[0] = big[0] = 1;
	printf("%-34s %18s  %s\n", "what", "address", "region");
	show("function main", (void *)main);
	show("global int global_counter", &global_counter);
	show("static char static_buffer[256]", static_buffer);
	show("local int local", &local);
	show("malloc(64)", small);
	show("malloc(1 MiB)", big);
	show("string literal \"hello\"", "hello");
	free(big);
	free(small);
	return 0;
}
