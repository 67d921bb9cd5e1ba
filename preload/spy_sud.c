/* spy_sud.c: syscalls=all through Syscall User Dispatch (see spy_sud.h).
 * The SIGSYS handler runs in signal context: no allocation but mmap, no
 * stdio, no lock; it keeps errno. It never lets SIGSYS become blocked:
 * a trap while SIGSYS is blocked would kill the process, so masks the
 * program asks for (rt_sigprocmask, rt_sigaction) lose SIGSYS on the way
 * to the kernel, and the program cannot replace the SIGSYS handler.
 */
#include "spy_sud.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "spy_core.h"
#include "spy_ownmem.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"
#include "trace_format.h"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif
#define SELECT_ALLOW 0
#define SELECT_BLOCK 1

#define REGION (1u << 20)    /* restorer, then 16-byte stubs */
#define STUB 16u
#define FIRST_STUB 64u
#define HASH (1u << 16)      /* call sites remembered */
#define NR_MAX 512

int spy_sud_on;

static uint8_t *region;      /* executable, the one range never trapped */
static uint32_t next_stub = FIRST_STUB;
static uintptr_t *site_key;  /* HASH call sites ... */
static uint32_t *site_stub;  /* ... and the offset of their stub */

struct counts {
	pid_t tid;               /* 0: free for a new thread */
	struct counts *next;
	uint64_t n[NR_MAX];
};
static struct counts *all_counts;

static __thread volatile char selector __attribute__((tls_model("initial-exec")));
static __thread int armed __attribute__((tls_model("initial-exec")));
static __thread struct counts *mine __attribute__((tls_model("initial-exec")));
/* Masks rewritten for the kernel; two, in case a signal comes between. */
static __thread uint64_t mask_buf[2][4] __attribute__((tls_model("initial-exec")));
static __thread unsigned mask_turn __attribute__((tls_model("initial-exec")));

static struct counts *counts_new(void)
{
	pid_t tid = (pid_t)spy_sys_kernel(SYS_gettid, 0, 0, 0, 0, 0, 0);
	for (struct counts *c = __atomic_load_n(&all_counts, __ATOMIC_ACQUIRE); c;
	     c = c->next) {
		pid_t free_ = 0;
		if (__atomic_compare_exchange_n(&c->tid, &free_, tid, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return c;
	}
	struct counts *c = spy_sys_mmap(sizeof(*c));
	if (!c)
		return NULL;
	c->tid = tid;
	struct counts *head = __atomic_load_n(&all_counts, __ATOMIC_RELAXED);
	do
		c->next = head;
	while (!__atomic_compare_exchange_n(&all_counts, &head, c, 1,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	return c;
}

/* The stub that makes the call natively and jumps back to after the
 * program's own syscall instruction; 0 when the stub memory is full. */
static uint32_t stub_for(uintptr_t back)
{
	uint32_t h = (uint32_t)((back ^ (back >> 15)) * 0x9e3779b1u) & (HASH - 1);
	for (uint32_t i = 0; i < 64; i++, h = (h + 1) & (HASH - 1)) {
		uintptr_t k = __atomic_load_n(&site_key[h], __ATOMIC_ACQUIRE);
		if (k == back) {
			uint32_t s = __atomic_load_n(&site_stub[h], __ATOMIC_ACQUIRE);
			if (s)
				return s;
			break; /* another thread is making it: make our own */
		}
		if (k)
			continue;
		uintptr_t zero = 0;
		if (__atomic_compare_exchange_n(&site_key[h], &zero, back, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			break;
		if (zero == back)
			break;
	}
	uint32_t off = __atomic_fetch_add(&next_stub, STUB, __ATOMIC_RELAXED);
	if (off + STUB > REGION)
		return 0;
	uint8_t *p = region + off;
	p[0] = 0x0f; /* syscall */
	p[1] = 0x05;
	p[2] = 0xff; /* jmp *0(%rip) */
	p[3] = 0x25;
	memset(p + 4, 0, 4);
	memcpy(p + 8, &back, 8);
	uint32_t h2 = (uint32_t)((back ^ (back >> 15)) * 0x9e3779b1u) & (HASH - 1);
	for (uint32_t i = 0; i < 64; i++, h2 = (h2 + 1) & (HASH - 1))
		if (__atomic_load_n(&site_key[h2], __ATOMIC_ACQUIRE) == back) {
			uint32_t none = 0;
			__atomic_compare_exchange_n(&site_stub[h2], &none, off, 0,
						    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
			break;
		}
	return off;
}

#define SIGSYS_BIT (1ull << (SIGSYS - 1))

/* Keeps SIGSYS deliverable: the mask or action the program passes to the
 * kernel is copied without SIGSYS, and the call is pointed at the copy. */
static int fix_masks(long nr, greg_t *g)
{
	uint64_t *buf = mask_buf[mask_turn++ & 1];
	if (nr == SYS_rt_sigprocmask && g[REG_RSI] &&
	    (g[REG_RDI] == SIG_BLOCK || g[REG_RDI] == SIG_SETMASK)) {
		uint64_t set;
		memcpy(&set, (const void *)g[REG_RSI], 8);
		if (set & SIGSYS_BIT) {
			buf[0] = set & ~SIGSYS_BIT;
			g[REG_RSI] = (greg_t)buf;
		}
	} else if (nr == SYS_rt_sigaction && g[REG_RSI]) {
		if (g[REG_RDI] == SIGSYS) {
			/* libspy needs SIGSYS for itself: the new action is
			 * not installed; the call succeeds. */
			return 1;
		}
		/* struct kernel_sigaction: handler, flags, restorer, mask. */
		memcpy(buf, (const void *)g[REG_RSI], 32);
		if (buf[3] & SIGSYS_BIT) {
			buf[3] &= ~SIGSYS_BIT;
			g[REG_RSI] = (greg_t)buf;
		}
	}
	return 0;
}

static void on_sigsys(int sig, siginfo_t *si, void *context)
{
	selector = SELECT_ALLOW;
	(void)sig;
	int saved = errno;
	greg_t *g = ((ucontext_t *)context)->uc_mcontext.gregs;
	long nr = si->si_syscall;
	uintptr_t back = (uintptr_t)si->si_call_addr;
	if (!mine)
		mine = counts_new();
	if (mine && nr >= 0 && nr < NR_MAX)
		mine->n[nr]++;
	if (fix_masks(nr, g)) {
		g[REG_RAX] = 0;
		g[REG_RIP] = (greg_t)back;
	} else {
		uint32_t s = stub_for(back);
		if (s) {
			g[REG_RAX] = nr;
			g[REG_RIP] = (greg_t)(region + s);
		} else {
			/* No stub memory left: make the call from here. */
			g[REG_RAX] = spy_sys_kernel(nr, g[REG_RDI], g[REG_RSI],
						    g[REG_RDX], g[REG_R10],
						    g[REG_R8], g[REG_R9]);
			g[REG_RIP] = (greg_t)back;
		}
	}
	errno = saved;
	selector = SELECT_BLOCK;
}

struct kernel_sigaction_ {
	void (*handler)(int, siginfo_t *, void *);
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};


int spy_sud_init(void)
{
	void *r = mmap(NULL, REGION, PROT_READ | PROT_WRITE | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED) {
		spy_writer_note(1, "syscalls=all: no executable memory for the stubs; only read/write calls are counted");
		return -1;
	}
	region = r;
	spy_ownmem_note(r, REGION);
	site_key = spy_sys_mmap(HASH * sizeof(*site_key));
	site_stub = spy_sys_mmap(HASH * sizeof(*site_stub));
	if (!site_key || !site_stub) {
		spy_writer_note(1, "syscalls=all: out of memory; only read/write calls are counted");
		return -1;
	}
	/* glibc's own restorer bytes, so that unwinders still recognise a
	 * signal frame: mov $15, %rax; syscall (rt_sigreturn). */
	static const uint8_t restorer[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00,
					    0x00, 0x0f, 0x05 };
	memcpy(region, restorer, sizeof(restorer));
	struct kernel_sigaction_ ksa = {
		.handler = on_sigsys,
		.flags = SA_SIGINFO | SA_NODEFER | 0x04000000 /* SA_RESTORER */,
		.restorer = region,
		.mask = 0,
	};
	if (spy_sys_kernel(SYS_rt_sigaction, SIGSYS, (long)&ksa, 0, 8, 0, 0) != 0) {
		spy_writer_note(1, "syscalls=all: cannot install the SIGSYS handler; only read/write calls are counted");
		return -1;
	}
	spy_sud_on = 1;
	spy_sud_arm_thread();
	if (!armed) {
		spy_sud_on = 0;
		spy_writer_note(1, "syscalls=all: the kernel refused Syscall User Dispatch (Linux 5.11 or later is needed); only read/write calls are counted");
		return -1;
	}
	return 0;
}

void spy_sud_arm_thread(void)
{
	if (!spy_sud_on || armed)
		return;
	selector = SELECT_ALLOW;
	if (spy_sys_kernel(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH,
			   PR_SYS_DISPATCH_ON, (long)region, REGION,
			   (long)&selector, 0) != 0)
		return;
	armed = 1;
	selector = SELECT_BLOCK;
}

static void write_counts(struct counts *c)
{
	pid_t tid = __atomic_load_n(&c->tid, __ATOMIC_RELAXED);
	unsigned n = 0;
	for (unsigned i = 0; i < NR_MAX; i++)
		n += c->n[i] != 0;
	if (!n)
		return;
	/* At most 3 varints of 10 bytes per number; one record per 256. */
	unsigned i = 0;
	while (n) {
		unsigned k = n < 256 ? n : 256;
		uint8_t *p = spy_writer_begin(TRACE_SYSCALLS,
					      (3 + 3 * (size_t)k) * TRACE_VARINT_MAX);
		if (!p)
			return;
		p = trace_put_varint(p, (uint64_t)tid);
		p = trace_put_varint(p, k);
		for (unsigned done = 0; done < k; i++) {
			uint64_t v = c->n[i];
			if (!v)
				continue;
			c->n[i] = 0;
			p = trace_put_varint(p, i);
			p = trace_put_varint(p, v);
			p = trace_put_varint(p, 0);
			done++;
		}
		spy_writer_end(p);
		n -= k;
	}
}

void spy_sud_thread_exit(void)
{
	if (!spy_sud_on || !mine)
		return;
	/* The thread's last calls (its own exit) are not counted: its
	 * counts are written now and its table goes to the next thread. */
	selector = SELECT_ALLOW;
	write_counts(mine);
	__atomic_store_n(&mine->tid, 0, __ATOMIC_RELEASE);
	mine = NULL;
}

void spy_sud_flush_all(void)
{
	if (!spy_sud_on)
		return;
	/* Calls after this (the rest of exit) are not counted. */
	selector = SELECT_ALLOW;
	for (struct counts *c = __atomic_load_n(&all_counts, __ATOMIC_ACQUIRE); c;
	     c = c->next)
		if (__atomic_load_n(&c->tid, __ATOMIC_RELAXED))
			write_counts(c);
}

void spy_sud_after_fork_child(void)
{
	if (!spy_sud_on)
		return;
	for (struct counts *c = all_counts; c; c = c->next) {
		memset(c->n, 0, sizeof(c->n));
		c->tid = c == mine
			? (pid_t)spy_sys_kernel(SYS_gettid, 0, 0, 0, 0, 0, 0) : 0;
	}
	armed = 0; /* dispatch is not inherited by the child */
	spy_sud_arm_thread();
}
