/* quarantine_floor.c: what a quarantine that catches every write after
 * free costs by itself, with no interposition and no recording.
 *
 * Usage: quarantine_floor MODE [MIB]
 *   plain  malloc_bench's workload (1 thread, 2,000,000 iterations)
 *   hold   the same, each freed block held in a FIFO of MIB MiB (default
 *          4, libspy's quarantine_mb) and really freed when it leaves
 *   check  held as in hold, and every byte of a freed block filled with
 *          0xfd, every byte read back (AVX2 where the CPU has it) when it
 *          leaves: what catching every write after free takes
 * Prints the number of blocks found written to (0: nothing writes them).
 * Time each mode with /usr/bin/time, side by side, several rounds.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 1024
#define RING (1u << 16)
#define FILL 0xfd

struct held {
	unsigned char *p;
	size_t n;
};

static struct held ring[RING];
static size_t head, tail, bytes;

static unsigned long xorshift(unsigned long *s)
{
	unsigned long x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

typedef unsigned long long v4 __attribute__((vector_size(32), aligned(8)));

/* 1 when p[0..n) is all FILL */
__attribute__((target("avx2"))) static int clean_avx2(const unsigned char *p, size_t n)
{
	const unsigned long long f = 0x0101010101010101ull * FILL;
	const v4 fv = { f, f, f, f };
	size_t i = 0;
	for (; i + 128 <= n; i += 128) {
		const v4 *v = (const v4 *)(p + i);
		v4 d = (v[0] ^ fv) | (v[1] ^ fv) | (v[2] ^ fv) | (v[3] ^ fv);
		if (d[0] | d[1] | d[2] | d[3])
			return 0;
	}
	for (; i < n; i++)
		if (p[i] != FILL)
			return 0;
	return 1;
}

static int clean_plain(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != FILL)
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "plain";
	int hold = strcmp(mode, "plain") != 0, check = !strcmp(mode, "check");
	size_t limit = (size_t)(argc > 2 ? atoi(argv[2]) : 4) << 20;
	int (*clean)(const unsigned char *, size_t) =
		__builtin_cpu_supports("avx2") ? clean_avx2 : clean_plain;
	unsigned long seed = 88172645463325252ul, written = 0;
	unsigned char **slot = calloc(SLOTS, sizeof(*slot));
	if (!slot || (hold && strcmp(mode, "hold") && !check) || !limit) {
		fprintf(stderr, "usage: quarantine_floor plain|hold|check [MIB]\n");
		return 2;
	}
	for (unsigned long i = 0; i < 2000000; i++) {
		unsigned long r = xorshift(&seed), k = r % SLOTS;
		size_t size = 16 + (r >> 12) % (4096 - 16 + 1);
		if (slot[k] && !hold) {
			free(slot[k]);
		} else if (slot[k]) {
			size_t n = malloc_usable_size(slot[k]);
			if (check)
				memset(slot[k], FILL, n);
			while (bytes + n > limit || head - tail >= RING) {
				struct held h = ring[tail++ % RING];
				bytes -= h.n;
				if (check && !clean(h.p, h.n))
					written++;
				free(h.p);
			}
			ring[head++ % RING] = (struct held){ slot[k], n };
			bytes += n;
		}
		slot[k] = malloc(size);
		if (!slot[k])
			return 1;
		slot[k][0] = 1;
		slot[k][size - 1] = 1;
		if (i % 100 == 0 && malloc(size) == NULL) /* kept, as malloc_bench */
			return 1;
	}
	printf("%lu\n", written);
	return 0;
}
