/* spy_sampler.c: samples where each thread is, for false sharing, without
 * hardware counters: a per-thread CPU-time timer (timer_create on
 * CLOCK_THREAD_CPUTIME_ID, delivered to that thread by SIGEV_THREAD_ID)
 * raises SPY_SAMPLE_SIGNAL; the handler writes the interrupted instruction
 * pointer and the general registers to the trace. The analyzer decodes the
 * instruction offline and computes the address it wrote.
 *
 * Runs in signal context: no allocation, no lock, errno kept. Off unless
 * sample_hz= asks for it. How it could show to the program:
 *   - a CPU-time clock only advances while the thread runs, so the signal
 *     arrives while it computes, almost never while it sleeps in a system
 *     call; it is installed with SA_RESTART, and the calls that are never
 *     restarted (nanosleep, poll, epoll_wait, ...) can only see EINTR if
 *     the tick lands in the instant between running and sleeping
 *     (docs/threads.md has the measurement);
 *   - the signal number (SIGRTMAX-6) is taken: a program that installs its
 *     own handler for it replaces ours (sampling then stops, its handler
 *     would see our timers' signals), and a thread that blocks it is not
 *     sampled;
 *   - a sample that lands while libspy itself records is dropped.
 * Timers are not inherited by fork: the child's thread starts its own.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "rec_threads.h"
#include "spy_core.h"
#include "spy_gate.h"
#include "spy_options.h"
#include "spy_process.h"
#include "spy_real.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"
#include "trace_format.h"

static int sample_signal;
static long period_ns;
static __thread int timer_id __attribute__((tls_model("initial-exec")));
static __thread int has_timer __attribute__((tls_model("initial-exec")));
/* Timers are not inherited by fork: a child must not delete, by number,
 * a timer that is not ours there. */
static __thread int timer_pid __attribute__((tls_model("initial-exec")));

static void on_sample(int sig, siginfo_t *info, void *context)
{
	(void)sig;
	struct spy_thread *t = &spy_self;
	if (!info || info->si_code != SI_TIMER || !context)
		return;
	/* Inside libspy (a record half written) or not tracing: drop it. */
	if (t->guard || !spy_tracing || spy_state != SPY_STATE_READY || t->dead)
		return;
	int saved = errno;
	t->guard = 1;
	if (!spy_gate_enter()) {
		spy_gate_leave();
		t->guard = 0;
		errno = saved;
		return;
	}
#if defined(__x86_64__)
	const greg_t *g = ((ucontext_t *)context)->uc_mcontext.gregs;
	uint8_t *p = spy_writer_begin(TRACE_SAMPLE, 18 * TRACE_VARINT_MAX);
	if (p) {
		p = trace_put_varint(p, (uint64_t)g[REG_RIP]);
		/* r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp: the order
		 * of the kernel's sigcontext. */
		for (int i = REG_R8; i <= REG_RSP; i++)
			p = trace_put_varint(p, (uint64_t)g[i]);
		spy_writer_end(p);
	}
#endif
	spy_gate_leave();
	t->guard = 0;
	errno = saved;
}

void spy_sampler_thread_start(void)
{
	if (!period_ns || has_timer)
		return;
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = sample_signal;
	/* sigev_notify_thread_id; from glibc's descriptor, no system call */
	sev._sigev_un._tid = spy_sys_thread_tid();
	int id = 0;
	/* straight to the kernel (errno untouched), not through the
	 * syscall() libspy exports and its checks: three calls a thread */
	if (spy_sys_kernel(SYS_timer_create, CLOCK_THREAD_CPUTIME_ID, (long)&sev,
			   (long)&id, 0, 0, 0) == 0) {
		struct itimerspec its = {
			.it_interval = { period_ns / 1000000000, period_ns % 1000000000 },
			.it_value = { period_ns / 1000000000, period_ns % 1000000000 },
		};
		if (spy_sys_kernel(SYS_timer_settime, id, 0, (long)&its, 0, 0, 0) == 0) {
			timer_id = id;
			has_timer = 1;
			timer_pid = spy_pid;
		} else {
			spy_sys_kernel(SYS_timer_delete, id, 0, 0, 0, 0, 0);
		}
	}
}

void spy_sampler_thread_exit(void)
{
	if (!has_timer)
		return;
	if (timer_pid == spy_pid)
		spy_sys_kernel(SYS_timer_delete, timer_id, 0, 0, 0, 0, 0);
	has_timer = 0;
}

/* In a fork child (pthread_atfork): the one thread left starts its own
 * timer; the parent's timer id means nothing here. */
static void after_fork_child(void)
{
	has_timer = 0;
	spy_sampler_thread_start();
}

void spy_sampler_init(void)
{
	if (!spy_opt.sample_hz || spy_opt.sample_hz > 100000)
		return;
#if defined(__x86_64__)
	sample_signal = SIGRTMAX - 6;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sample;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (spy_real.sigaction(sample_signal, &sa, NULL) != 0)
		return;
	period_ns = 1000000000l / (long)spy_opt.sample_hz;
	spy_sampler_thread_start();
	pthread_atfork(NULL, NULL, after_fork_child);
#endif
}
