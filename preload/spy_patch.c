/* spy_patch.c: entry patches of libc functions (see spy_patch.h).
 * Runs once at start-up with the guard held: no allocation but mmap, no
 * stdio. Never leaves an entry half-written: the 5 bytes of the jump go in
 * with one aligned 8-byte store, and only after the stub and trampoline it
 * leads to are complete and executable.
 */
#include "spy_patch.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spy_ownmem.h"
#include "spy_sys.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE 4096u
#define SLOT 64u            /* stub (14 bytes) + trampoline (<= 44) */
#define MAX_PATCHES (PAGE / SLOT)
#define DISPLACED_MAX 16

struct patch {
	uint8_t *entry;
	unsigned len;           /* bytes of whole instructions displaced */
};

static uint8_t *page;       /* stubs and trampolines, near libc */
static unsigned n_slots;
static struct patch pending[MAX_PATCHES];
static unsigned n_pending;

static int fits_rel32(intptr_t d)
{
	return d >= INT32_MIN && d <= INT32_MAX;
}

/* An anonymous page within reach of a rel32 jump from near. */
static uint8_t *page_near(uintptr_t near)
{
	uintptr_t base = near & ~(uintptr_t)0xfffff;
	for (uintptr_t k = 1; k <= 512; k++) {
		for (int side = 0; side < 2; side++) {
			uintptr_t hint = side ? base + k * 0x100000u
					      : base - k * 0x100000u;
			void *p = mmap((void *)hint, PAGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS |
				       MAP_FIXED_NOREPLACE, -1, 0);
			if (p == MAP_FAILED)
				continue;
			intptr_t d = (intptr_t)((uintptr_t)p - near);
			/* 1.5 GiB either way leaves room for libc's own size. */
			if (d > -0x60000000L && d < 0x60000000L) {
				spy_ownmem_note(p, PAGE);
				return p;
			}
			munmap(p, PAGE);
		}
	}
	return NULL;
}

/* Length of one whitelisted instruction at p, or 0 if p holds anything
 * else. *riprel is set to the offset of a rip-relative disp32 in it (the
 * instruction then ends with one immediate byte after the disp), or -1. */
static unsigned insn_len(const uint8_t *p, int *riprel)
{
	*riprel = -1;
	uint8_t rex = 0;
	unsigned n = 0;
	if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa)
		return 4; /* endbr64 */
	if (p[0] == 0x80 && p[1] == 0x3d) {
		*riprel = 2;
		return 7; /* cmpb $imm8, disp32(%rip) */
	}
	if (p[0] >= 0xb8 && p[0] <= 0xbf)
		return 5; /* mov $imm32, %r32 */
	if (p[0] >= 0x50 && p[0] <= 0x57)
		return 1; /* push %r64 */
	if (p[0] == 0x41 && p[1] >= 0x50 && p[1] <= 0x57)
		return 2; /* push %r8..%r15 */
	if (p[0] == 0x48 && p[1] == 0x83 && p[2] == 0xec)
		return 4; /* sub $imm8, %rsp */
	if (p[0] == 0x48 && p[1] == 0x81 && p[2] == 0xec)
		return 7; /* sub $imm32, %rsp */
	if (p[0] == 0x48 && p[1] == 0x3d)
		return 6; /* cmp $imm32, %rax */
	if (p[0] == 0x0f && p[1] == 0x05)
		return 2; /* syscall */
	if ((p[0] & 0xf0) == 0x40) {
		rex = p[0];
		n = 1;
	}
	(void)rex;
	/* mov, xor between registers (ModRM mod == 3: no memory operand). */
	if ((p[n] == 0x89 || p[n] == 0x8b || p[n] == 0x31 || p[n] == 0x33) &&
	    (p[n + 1] & 0xc0) == 0xc0)
		return n + 2;
	return 0;
}

/* Same as the call's hook: at most one at a time, at start-up. */
static uint8_t *put_abs_jump(uint8_t *p, uintptr_t to)
{
	p[0] = 0xff; /* jmp *0(%rip) */
	p[1] = 0x25;
	memset(p + 2, 0, 4);
	memcpy(p + 6, &to, 8);
	return p + 14;
}

void *spy_patch_entry(void *entry_, void *hook, const char **why)
{
	uint8_t *entry = entry_;
	*why = NULL;
	if (!entry) {
		*why = "not found";
		return NULL;
	}
	if (((uintptr_t)entry & 7) > 3) {
		*why = "entry not aligned for an atomic patch";
		return NULL;
	}
	unsigned len = 0;
	int rip_at[4];
	unsigned rip_insn[4], n_rip = 0;
	while (len < 5) {
		int rr;
		unsigned l = insn_len(entry + len, &rr);
		if (!l || len + l > DISPLACED_MAX) {
			*why = "unknown prologue";
			return NULL;
		}
		if (rr >= 0) {
			if (n_rip == 4) {
				*why = "unknown prologue";
				return NULL;
			}
			rip_at[n_rip] = rr;
			rip_insn[n_rip++] = len;
		}
		len += l;
	}
	if (!page && !(page = page_near((uintptr_t)entry))) {
		*why = "no memory near libc";
		return NULL;
	}
	if (n_slots == MAX_PATCHES) {
		*why = "too many patches";
		return NULL;
	}
	uint8_t *stub = page + n_slots * SLOT;
	uint8_t *tramp = stub + 16;
	if (!fits_rel32((intptr_t)(stub - (entry + 5)))) {
		*why = "libc too far from free memory";
		return NULL;
	}
	/* The trampoline: the displaced instructions, rip-relative ones
	 * pointed at the same targets, then back to the rest of the entry. */
	memcpy(tramp, entry, len);
	for (unsigned i = 0; i < n_rip; i++) {
		unsigned at = rip_insn[i] + (unsigned)rip_at[i];
		int32_t d;
		memcpy(&d, entry + at, 4);
		/* The disp counts from the end of its instruction (7 bytes). */
		uint8_t *target = entry + rip_insn[i] + 7 + d;
		intptr_t nd = target - (tramp + rip_insn[i] + 7);
		if (!fits_rel32(nd)) {
			*why = "relocated operand out of reach";
			return NULL;
		}
		int32_t d32 = (int32_t)nd;
		memcpy(tramp + at, &d32, 4);
	}
	/* Back to the rest of the entry: a direct jump (the page is near
	 * libc), which the CPU predicts better than an indirect one. */
	intptr_t back = (entry + len) - (tramp + len + 5);
	if (fits_rel32(back)) {
		int32_t b32 = (int32_t)back;
		tramp[len] = 0xe9;
		memcpy(tramp + len + 1, &b32, 4);
	} else {
		put_abs_jump(tramp + len, (uintptr_t)(entry + len));
	}
	put_abs_jump(stub, (uintptr_t)hook);
	n_slots++;
	pending[n_pending++] = (struct patch){ entry, len };
	return tramp;
}

static long num_threads(void)
{
	char buf[1024];
	ssize_t n = spy_read_file("/proc/self/stat", buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = NULL;
	for (char *q = buf; *q; q++)
		if (*q == ')')
			p = q;
	if (!p)
		return -1;
	/* Field 20 (num_threads) is the 18th after the command's ')'. */
	int field = 2;
	for (p++; *p && field < 20; p++)
		if (*p == ' ')
			field++;
	long v = 0;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return v;
}

int spy_patch_single_threaded(void)
{
	return num_threads() == 1;
}

/* Writes the jump at e->entry, whose page is writable. */
static void write_jump(const struct patch *e, const uint8_t *stub)
{
	uint64_t *word = (uint64_t *)((uintptr_t)e->entry & ~(uintptr_t)7);
	unsigned off = (unsigned)((uintptr_t)e->entry & 7);
	uint64_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
	uint8_t bytes[8];
	memcpy(bytes, &v, 8);
	int32_t rel = (int32_t)(stub - (e->entry + 5));
	bytes[off] = 0xe9;
	memcpy(bytes + off + 1, &rel, 4);
	memcpy(&v, bytes, 8);
	__atomic_store_n(word, v, __ATOMIC_SEQ_CST);
}

int spy_patch_seal(void)
{
	if (!page)
		return 0;
	if (mprotect(page, PAGE, PROT_READ | PROT_EXEC) != 0) {
		n_pending = 0; /* never jump into memory we cannot run */
		return -1;
	}
	return 0;
}

void spy_patch_apply(void)
{
	if (!n_pending)
		return;
	if (!spy_patch_single_threaded()) {
		/* Another thread could be running the bytes we would change:
		 * keep the PLT-level hooks only. */
		n_pending = 0;
		return;
	}
	/* A page made writable once for all its entries (libc's entries
	 * share a few pages: two system calls a page, not two an entry). */
	for (unsigned i = 0; i < n_pending; i++) {
		uintptr_t pg = (uintptr_t)pending[i].entry & ~(uintptr_t)(PAGE - 1);
		int seen = 0;
		for (unsigned k = 0; k < i && !seen; k++)
			seen = pending[k].entry &&
			       ((uintptr_t)pending[k].entry & ~(uintptr_t)(PAGE - 1)) == pg;
		if (seen || !pending[i].entry)
			continue;
		int ok = mprotect((void *)pg, PAGE,
				  PROT_READ | PROT_WRITE | PROT_EXEC) == 0;
		for (unsigned k = i; k < n_pending; k++) {
			if (!pending[k].entry ||
			    ((uintptr_t)pending[k].entry & ~(uintptr_t)(PAGE - 1)) != pg)
				continue;
			if (ok)
				write_jump(&pending[k], page + k * SLOT);
			else
				pending[k].entry = NULL;
		}
		if (ok)
			mprotect((void *)pg, PAGE, PROT_READ | PROT_EXEC);
	}
}

int spy_patch_applied(void *entry)
{
	for (unsigned i = 0; i < n_pending; i++)
		if (pending[i].entry == entry)
			return 1;
	return 0;
}
