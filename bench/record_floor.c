/* record_floor.c: the least a recorder of every malloc and free can cost,
 * as an LD_PRELOAD library of its own: no guard, no errno, no options, no
 * framing, no stacks. Each call goes through to glibc and leaves a record
 * of RECORD_FLOOR_BYTES bytes (16: time stamp and kind in one word, address
 * and size in the other; 8 or 4: one store of that width) made of the time
 * stamp counter and the address, written where RECORD_FLOOR_SINK says:
 *   ring  a 64 KiB ring of the thread's, always in the cache (no trace)
 *   file  the thread's window of a shared file mapping, as libspy's writer
 *         keeps it: 1 MiB windows, written with zeros first (pwritev),
 *         mapped where address and offset agree modulo 2 MiB
 *   write the ring, handed to the file by pwrite each time it is full:
 *         what the trace's pages cost without a shared mapping (a
 *         process killed then loses up to a ring of records a thread)
 * RECORD_FLOOR_SHADOW=1 also keeps a byte per 16 bytes of address (a plain
 * store at malloc, a load and a store at free): the least a map of live
 * blocks can cost, against which a free is judged.
 * RECORD_FLOOR_FILE names the file (default record_floor.<pid>).
 *
 * Build: cc -O2 -shared -fPIC -o record_floor.so record_floor.c
 * Run by bench/record_floor.sh, side by side with plain and libspy.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

#define WINDOW ((size_t)1 << 20)
#define SPAN ((uintptr_t)2 << 20)
#define RING ((size_t)1 << 16)
#define SHADOW_BITS 28

enum { TO_RING, TO_MAPPING, BY_WRITE };
static int bytes = 16, sink_kind = TO_RING, shadowed, fd = -1;
static uint64_t next_off;
static uint8_t *shadow;

struct sink {
	uint8_t *p, *end;
	uint8_t *window; /* the mapped window p is in, if any */
	uint8_t ring[RING] __attribute__((aligned(64)));
};
static __thread struct sink sink __attribute__((tls_model("initial-exec")));

/* The next window of the file, mapped as libspy maps its own. */
static uint8_t *file_window(void)
{
	static uint8_t zeros[1 << 16];
	struct iovec iov[WINDOW / sizeof zeros];
	for (size_t i = 0; i < WINDOW / sizeof zeros; i++)
		iov[i] = (struct iovec){ zeros, sizeof zeros };
	uint64_t off = __atomic_fetch_add(&next_off, WINDOW, __ATOMIC_RELAXED);
	if (syscall(SYS_pwritev, fd, iov, WINDOW / sizeof zeros, (long)off, 0L) !=
	    (long)WINDOW)
		return NULL;
	uint8_t *room = mmap(NULL, WINDOW + SPAN, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (room == MAP_FAILED)
		return NULL;
	uint8_t *at = room + ((off - (uintptr_t)room) & (SPAN - 1));
	if (mmap(at, WINDOW, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
		 (off_t)off) == MAP_FAILED)
		return NULL;
	if (at > room)
		munmap(room, (size_t)(at - room));
	munmap(at + WINDOW, (size_t)(room + SPAN - at));
	madvise(at, WINDOW, MADV_POPULATE_WRITE);
	return at;
}

static __attribute__((noinline)) int refill(void)
{
	struct sink *s = &sink;
	if (sink_kind == BY_WRITE && fd >= 0 && s->end && s->p > s->ring) {
		size_t len = (size_t)(s->p - s->ring);
		uint64_t off = __atomic_fetch_add(&next_off, len, __ATOMIC_RELAXED);
		if (pwrite(fd, s->ring, len, (off_t)off) != (ssize_t)len)
			return 0;
	}
	if (sink_kind != TO_MAPPING) {
		s->p = s->ring;
		s->end = s->ring + RING;
		return 1;
	}
	if (s->window)
		munmap(s->window, WINDOW);
	uint8_t *w = fd >= 0 ? file_window() : NULL;
	s->window = s->p = w;
	s->end = w ? w + WINDOW : NULL;
	return w != NULL;
}

static inline __attribute__((always_inline)) void record(unsigned kind,
							 uintptr_t addr,
							 uint64_t size)
{
	struct sink *s = &sink;
	if (__builtin_expect(s->p + 16 > s->end, 0) && !refill())
		return;
	uint8_t *p = s->p;
	uint64_t t = __builtin_ia32_rdtsc();
	if (bytes == 16) {
		__builtin_memcpy(p + 8, &(uint64_t){ addr | size << 48 }, 8);
		__atomic_signal_fence(__ATOMIC_RELEASE);
		__builtin_memcpy(p, &(uint64_t){ t << 8 | kind }, 8);
	} else if (bytes == 8) {
		__builtin_memcpy(p, &(uint64_t){ (t << 8 | kind) ^ addr << 16 }, 8);
	} else {
		__builtin_memcpy(p, &(uint32_t){ (uint32_t)((t << 8 | kind) ^ addr) }, 4);
	}
	s->p = p + bytes;
}

static inline uint8_t *shadow_of(uintptr_t a)
{
	return shadow + ((a >> 4) & (((uintptr_t)1 << SHADOW_BITS) - 1));
}

void *malloc(size_t size)
{
	void *p = __libc_malloc(size);
	if (p) {
		if (shadowed)
			*shadow_of((uintptr_t)p) = 1;
		record(1, (uintptr_t)p, size);
	}
	return p;
}

void free(void *p)
{
	if (!p)
		return;
	if (shadowed) {
		uint8_t *b = shadow_of((uintptr_t)p);
		if (*b) /* a live block: passed on (a floor judges no further) */
			*b = 0;
	}
	record(2, (uintptr_t)p, 0);
	__libc_free(p);
}

__attribute__((constructor)) static void start(void)
{
	const char *b = getenv("RECORD_FLOOR_BYTES");
	const char *k = getenv("RECORD_FLOOR_SINK");
	const char *s = getenv("RECORD_FLOOR_SHADOW");
	if (b && (atoi(b) == 4 || atoi(b) == 8))
		bytes = atoi(b);
	shadowed = s && atoi(s) == 1;
	if (shadowed) {
		shadow = mmap(NULL, (size_t)1 << SHADOW_BITS,
			      PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (shadow == MAP_FAILED)
			shadowed = 0;
	}
	if (k && (!strcmp(k, "file") || !strcmp(k, "write"))) {
		char name[64];
		const char *f = getenv("RECORD_FLOOR_FILE");
		if (!f) {
			snprintf(name, sizeof name, "record_floor.%d", getpid());
			f = name;
		}
		fd = open(f, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		/* records made before this point went to the ring */
		sink_kind = !strcmp(k, "file") ? TO_MAPPING : BY_WRITE;
	}
}
