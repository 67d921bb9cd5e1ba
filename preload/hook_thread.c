/* hook_thread.c: threads: pthread_create (the start routine runs under a
 * small trampoline), pthread_exit, pthread_join and its _np variants,
 * clone, and what each thread cost when it ends. Hook code: no allocation
 * (the trampoline's record lives at the top of the thread's alternate
 * signal stack, an mmap'd block), no stdio, no lock the program could
 * hold, errno kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <threads.h>
#include <unistd.h>

#include "rec_threads.h"
#include "spy_core.h"
#include "spy_deadlock.h"
#include "spy_gate.h"
#include "spy_modules.h"
#include "spy_options.h"
#include "spy_ownmem.h"
#include "spy_process.h"
#include "spy_real.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"
#include "trace_format.h"

__thread struct rec_thread_self rec_thread_self
	__attribute__((tls_model("initial-exec")));

/* Counted for the process totals; atomics, never a lock. The creating
 * thread moves one line, the threads started and ending another, and
 * the line read by both is left alone. */
static uint64_t threads_created __attribute__((aligned(64)));
static int64_t live_threads __attribute__((aligned(64))) = 1; /* the main thread */
static int64_t peak_live = 1;
static int counters_pid __attribute__((aligned(64)));

/* A forked child starts with one thread and counts its own. Only the
 * forking thread exists in the child when this first runs there. */
static void counters_check(void)
{
	if (SPY_UNLIKELY(__atomic_load_n(&counters_pid, __ATOMIC_RELAXED) != spy_pid)) {
		threads_created = 0;
		live_threads = 1;
		peak_live = 1;
		__atomic_store_n(&counters_pid, spy_pid, __ATOMIC_RELAXED);
	}
}

/* Handed from pthread_create to the new thread, inside its block. */
struct trampoline {
	void *(*start)(void *);
	void *arg;
	pid_t creator;
	uint8_t stack_from;
	uint64_t stack_size;
	void *block;
};

extern void *__libc_stack_end;

/* ---- statistics ------------------------------------------------------------ */

static pid_t self_tid(void)
{
	struct spy_thread *t = &spy_self;
	if (!t->tid)
		t->tid = spy_sys_thread_tid();
	return t->tid;
}

static uint64_t tv_ns(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

static int read_schedstat(uint64_t *run, uint64_t *wait)
{
	return spy_proc_schedstat("/proc/thread-self/schedstat", run, wait);
}

/* Reading schedstat is dear for a new thread: the kernel builds /proc
 * entries for its id (about 30 us of CPU) and tears them down when it
 * exits, which delays its end by a few hundred microseconds on the
 * reference machine, and by milliseconds on a busy one (whoever joins
 * it sleeps meanwhile, and then waits for a CPU). So it is read for
 * every thread that lived TRACE_SCHED_ALWAYS_NS or more (a fraction of
 * a percent of its life), and of shorter ones for a sample: the first,
 * then one after SCHED_GAP_FIRST_NS, and after each reading the gap
 * doubles up to SCHED_GAP_NS. A short run still gets a few readings; a
 * storm pays one in SCHED_GAP_NS (at one every 10 ms, a storm of short
 * threads ran a third slower under a load of 3: performance.md). The
 * analyzer scales the run-queue delay of the sample to all of them. */
#define SCHED_GAP_FIRST_NS 10000000u
#define SCHED_GAP_NS 100000000u
static uint64_t last_short_read, short_gap = SCHED_GAP_FIRST_NS;

static int sched_wanted(uint64_t life_ns, uint64_t now)
{
	if (!spy_opt.thread_sched)
		return 0;
	if (life_ns >= TRACE_SCHED_ALWAYS_NS)
		return 1;
	uint64_t last = __atomic_load_n(&last_short_read, __ATOMIC_RELAXED);
	uint64_t gap = __atomic_load_n(&short_gap, __ATOMIC_RELAXED);
	if (last && now - last < gap)
		return 0;
	if (!__atomic_compare_exchange_n(&last_short_read, &last, now, 0,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return 0;
	/* only the winner of the reading widens the gap */
	if (last)
		__atomic_store_n(&short_gap, gap < SCHED_GAP_NS / 2 ? 2 * gap : SCHED_GAP_NS,
				 __ATOMIC_RELAXED);
	return 1;
}

/* What a thread used, as its end record has it. */
struct usage {
	uint64_t utime, stime, nvcsw, nivcsw, minflt, majflt, run, wait;
};

static void usage_of(const struct rusage *ru, struct usage *u)
{
	u->utime = tv_ns(ru->ru_utime);
	u->stime = tv_ns(ru->ru_stime);
	u->nvcsw = (uint64_t)ru->ru_nvcsw;
	u->nivcsw = (uint64_t)ru->ru_nivcsw;
	u->minflt = (uint64_t)ru->ru_minflt;
	u->majflt = (uint64_t)ru->ru_majflt;
}

/* What this image inherited: exec keeps a thread's counts and the
 * process's, so a shell's loop before `exec prog` read as prog's CPU
 * (4.7 s of it in a run of 1 ms). Taken at start, taken off at the end;
 * a forked child's counts start from zero, so they apply in the process
 * that took them only. */
static struct {
	pid_t pid;               /* where they were taken: also the main tid */
	struct usage self, main; /* RUSAGE_SELF (run, wait unused), thread */
} inherited;

static void take_inherited(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return;
	usage_of(&ru, &inherited.self);
	if (getrusage(RUSAGE_THREAD, &ru) != 0)
		return;
	usage_of(&ru, &inherited.main);
	/* schedstat costs some 25 us to read at start: only when the image
	 * before this one ran long enough to have waited for a CPU */
	if (inherited.main.utime + inherited.main.stime >= 1000000 ||
	    inherited.main.nivcsw)
		read_schedstat(&inherited.main.run, &inherited.main.wait);
	inherited.pid = spy_pid;
}

static uint64_t less(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* u less what the process, or its main thread (tid), inherited. */
static void less_inherited(struct usage *u, pid_t tid, int process)
{
	if (inherited.pid != spy_pid || (!process && tid != inherited.pid))
		return;
	const struct usage *b = process ? &inherited.self : &inherited.main;
	u->utime = less(u->utime, b->utime);
	u->stime = less(u->stime, b->stime);
	u->nvcsw = less(u->nvcsw, b->nvcsw);
	u->nivcsw = less(u->nivcsw, b->nivcsw);
	u->minflt = less(u->minflt, b->minflt);
	u->majflt = less(u->majflt, b->majflt);
	u->run = less(u->run, b->run);
	u->wait = less(u->wait, b->wait);
}

/* The six counters a thread's end and the process's totals share. */
static uint8_t *put_usage(uint8_t *p, const struct usage *u)
{
	p = trace_put_varint(p, u->utime);
	p = trace_put_varint(p, u->stime);
	p = trace_put_varint(p, u->nvcsw);
	p = trace_put_varint(p, u->nivcsw);
	p = trace_put_varint(p, u->minflt);
	return trace_put_varint(p, u->majflt);
}

/* when: the record's time (0: now) */
static void put_thread_end(pid_t tid, unsigned how, struct usage *u,
			   uint64_t life, uint64_t stack_size, unsigned sched,
			   uint64_t when)
{
	less_inherited(u, tid, 0);
	/* ten counters, the tid (32 bits: 5 bytes) and two small codes: under
	 * 128 bytes, so the record takes the writer's short path */
	uint8_t *p = spy_writer_begin_at(TRACE_THREAD_END, 10 * TRACE_VARINT_MAX + 7,
					 when);
	if (!p)
		return;
	p = trace_put_varint(p, (uint32_t)tid);
	p = trace_put_varint(p, how);
	p = put_usage(p, u);
	p = trace_put_varint(p, u->run);
	p = trace_put_varint(p, u->wait);
	p = trace_put_varint(p, life);
	p = trace_put_varint(p, stack_size);
	p = trace_put_varint(p, sched);
	spy_writer_end(p);
}

/* The calling thread's end record. Signal-safe: getrusage and a /proc
 * read are plain system calls. */
static void write_thread_end(unsigned how)
{
	struct rec_thread_self *me = &rec_thread_self;
	if (me->ended)
		return;
	me->ended = 1;
	struct rusage ru;
	if (!spy_tracing || getrusage(RUSAGE_THREAD, &ru) != 0)
		return;
	uint64_t now = spy_writer_now();
	uint64_t life = me->start_ns && now > me->start_ns ? now - me->start_ns : 0;
	struct usage u = { 0 };
	usage_of(&ru, &u);
	unsigned sched = TRACE_SCHED_SKIPPED;
	if (sched_wanted(life, now) && read_schedstat(&u.run, &u.wait) == 0)
		sched = TRACE_SCHED_READ;
	/* stamped with the time its life is measured to (one reading of
	 * the counter less) */
	put_thread_end(self_tid(), how, &u, life, me->stack_size, sched, now);
}

/* ---- threads still running at the end --------------------------------------- */

/* Bounds the work at exit: three small /proc reads a thread. */
#define LIVE_ENDS_MAX 1024

static uint64_t num_at(const char **pp)
{
	const char *p = *pp;
	uint64_t v = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '-')
		p++; /* tpgid is -1 without a terminal: taken as 0 */
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	*pp = p;
	return v;
}

/* An end record for another thread of the process, still running as it
 * ends: what it cost so far, from /proc (its own getrusage is out of
 * reach). Lifetime 0: the analyzer has its start. */
static void write_live_end(const char *tid_s, uint64_t tid, long tick)
{
	char path[64], buf[1536];
	spy_format(path, sizeof(path), "/proc/self/task/%s/stat", tid_s);
	ssize_t n = spy_read_file(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* after "pid (comm)": state is field 3; minflt 10, majflt 12,
	 * utime 14, stime 15 (clock ticks) */
	const char *p = buf + n;
	while (p > buf && *p != ')')
		p--;
	if (*p != ')')
		return;
	p += 2;
	uint64_t f[16] = { 0 };
	while (*p && *p != ' ')
		p++; /* the state letter */
	for (int i = 4; i <= 15; i++)
		f[i] = num_at(&p);
	uint64_t per_tick = tick > 0 ? 1000000000u / (uint64_t)tick : 10000000u;
	struct usage u = {
		.utime = f[14] * per_tick, .stime = f[15] * per_tick,
		.minflt = f[10], .majflt = f[12],
	};
	unsigned sched = TRACE_SCHED_SKIPPED;
	spy_format(path, sizeof(path), "/proc/self/task/%s/status", tid_s);
	char st[4096];
	n = spy_read_file(path, st, sizeof(st) - 1);
	if (n > 0) {
		st[n] = '\0';
		u.nvcsw = spy_proc_field(st, "voluntary_ctxt_switches");
		u.nivcsw = spy_proc_field(st, "nonvoluntary_ctxt_switches");
	}
	if (spy_opt.thread_sched) {
		spy_format(path, sizeof(path), "/proc/self/task/%s/schedstat", tid_s);
		if (spy_proc_schedstat(path, &u.run, &u.wait) == 0)
			sched = TRACE_SCHED_READ;
	}
	put_thread_end((pid_t)tid, TRACE_THREAD_AT_EXIT, &u, 0, 0, sched, 0);
}

struct live_ends {
	uint64_t self;
	long tick;
	int done;
};

static int write_live_end_of(const char *tid_s, void *arg)
{
	struct live_ends *le = arg;
	const char *q = tid_s;
	uint64_t tid = num_at(&q);
	if (tid != le->self) {
		write_live_end(tid_s, tid, le->tick);
		le->done++;
	}
	return le->done >= LIVE_ENDS_MAX;
}

/* Every other thread still running: without this, a pool that is never
 * joined (xz -T, a JVM's) showed no lifetime and no CPU at all. */
static void write_live_ends(void)
{
	if (!spy_tracing)
		return;
	struct live_ends le = { (uint64_t)self_tid(), sysconf(_SC_CLK_TCK), 0 };
	spy_proc_each_task(write_live_end_of, &le);
}

void rec_threads_write_totals(unsigned how)
{
	write_thread_end(how);
	write_live_ends();
	counters_check();
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return;
	struct usage u;
	usage_of(&ru, &u);
	less_inherited(&u, 0, 1);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint8_t *p = spy_writer_begin(TRACE_PROCESS_STATS, 10 * TRACE_VARINT_MAX);
	if (!p)
		return;
	p = put_usage(p, &u);
	/* the peak keeps the image before's: exec carries it over */
	p = trace_put_varint(p, (uint64_t)ru.ru_maxrss);
	p = trace_put_varint(p, __atomic_load_n(&threads_created, __ATOMIC_RELAXED));
	p = trace_put_varint(p, (uint64_t)__atomic_load_n(&peak_live, __ATOMIC_RELAXED));
	p = trace_put_varint(p, ncpu > 0 ? (uint64_t)ncpu : 0);
	spy_writer_end(p);
}

void rec_threads_process_exit(void)
{
	rec_threads_write_totals(TRACE_THREAD_AT_EXIT);
}

/* The part of a thread's stack its frames used: from its top (the
 * trampoline's frame) down to 64 KiB above the bottom of the size it was
 * given, so that whatever glibc keeps above the top (the thread's
 * descriptor and TLS) and below the bottom (the guard, a neighbour's
 * mapping) is never in it. 0 when the stack is too small to tell. */
static size_t frames_area(const struct rec_thread_self *me, uintptr_t *lo)
{
	const size_t margin = 64 << 10;
	if (!me->stack_top || me->stack_size < 2 * margin ||
	    me->stack_size > me->stack_top)
		return 0;
	*lo = me->stack_top - me->stack_size + margin;
	return me->stack_top - *lo;
}

void rec_threads_thread_exit(void)
{
	struct rec_thread_self *me = &rec_thread_self;
	spy_sampler_thread_exit();
	uintptr_t lo;
	size_t len;
	if (me->managed && (len = frames_area(me, &lo)) != 0)
		spy_deadstack_note((const void *)lo, len);
	if (me->managed) {
		/* Neither a return nor pthread_exit was seen: glibc unwound
		 * the thread for a cancellation. */
		write_thread_end(me->how ? me->how - 1u : TRACE_THREAD_CANCELLED);
		__atomic_fetch_sub(&live_threads, 1, __ATOMIC_RELAXED);
	} else {
		write_thread_end(me->how ? me->how - 1u : TRACE_THREAD_UNSEEN);
	}
	/* (left to the thread where system calls may be refused) */
	if (me->block && !spy_process_confined()) {
		spy_stackguard_release(me->block);
		me->block = NULL;
	}
}

void rec_threads_init(void)
{
	struct rec_thread_self *me = &rec_thread_self;
	struct rlimit rl;
	counters_pid = spy_pid;
	take_inherited();
	me->start_ns = spy_writer_now();
	me->stack_top = (uintptr_t)__libc_stack_end;
	me->stack_from = TRACE_STACK_FROM_RLIMIT;
	if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		me->stack_size = rl.rlim_cur;
	spy_stackguard_init();
	spy_sampler_init();
}

SPY_EXPORT int sigaltstack(const stack_t *ss, stack_t *old)
{
	int saved = errno;
	int r = spy_stackguard_sigaltstack(ss, old);
	if (r == 0)
		errno = saved;
	return r;
}

/* ---- pthread_create -------------------------------------------------------- */

/* pthread's default stack and guard sizes, read once rather than at
 * every pthread_create (an attr made, read under pthread's lock and
 * destroyed): pages of each packed in one word, bit 63 set. They change
 * only through pthread_setattr_default_np (hooked below), which stores a
 * fresh generation number instead (bit 63 clear), so that a reading
 * begun before the change is never stored after it. */
static uint64_t defaults, defaults_gen;
#define DEF_KNOWN (1ull << 63)
#define DEF_STACK_BITS 40
#define DEF_GUARD_BITS 23

static void default_sizes(size_t *stack, size_t *guard)
{
	uint64_t d = __atomic_load_n(&defaults, __ATOMIC_ACQUIRE);
	if (SPY_LIKELY(d & DEF_KNOWN)) {
		*stack = (size_t)(d & ((1ull << DEF_STACK_BITS) - 1)) << 12;
		*guard = (size_t)(d >> DEF_STACK_BITS &
				  ((1ull << DEF_GUARD_BITS) - 1)) << 12;
		return;
	}
	pthread_attr_t def;
	size_t s = 0, g = 0;
	if (pthread_attr_init(&def) != 0) {
		*stack = *guard = 0;
		return;
	}
	pthread_attr_getstacksize(&def, &s);
	pthread_attr_getguardsize(&def, &g);
	pthread_attr_destroy(&def);
	*stack = s;
	*guard = g;
	if (!(s & 4095) && !(g & 4095) && s >> 12 < (1ull << DEF_STACK_BITS) &&
	    g >> 12 < (1ull << DEF_GUARD_BITS))
		__atomic_compare_exchange_n(&defaults, &d,
					    DEF_KNOWN | (uint64_t)(g >> 12) << DEF_STACK_BITS |
						    (uint64_t)(s >> 12),
					    0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

static int (*real_setattr_default)(const pthread_attr_t *);

SPY_EXPORT int pthread_setattr_default_np(const pthread_attr_t *attr)
{
	int (*real)(const pthread_attr_t *) =
		spy_real_late((void **)&real_setattr_default, "pthread_setattr_default_np");
	if (!real)
		return ENOSYS;
	int r = real(attr);
	uint64_t gen = __atomic_add_fetch(&defaults_gen, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&defaults, gen & ~DEF_KNOWN, __ATOMIC_RELEASE);
	return r;
}

/* The size of the stack attr gives a new thread, and where it comes from. */
static void stack_of(const pthread_attr_t *attr, uint64_t *size,
		     uint64_t *guard, uint8_t *from)
{
	size_t s = 0, g = 0, ds = 0;
	*from = TRACE_STACK_FROM_DEFAULT;
	default_sizes(&ds, &g);
	s = ds;
	if (attr) {
		void *addr = NULL;
		size_t as = 0;
		pthread_attr_getstacksize(attr, &s);
		pthread_attr_getguardsize(attr, &g);
		if ((pthread_attr_getstack(attr, &addr, &as) == 0 && addr) || s != ds)
			*from = TRACE_STACK_FROM_ATTR;
	}
	*size = s;
	*guard = g;
}

static void note_live(void)
{
	counters_check();
	int64_t n = __atomic_add_fetch(&live_threads, 1, __ATOMIC_RELAXED);
	int64_t peak = __atomic_load_n(&peak_live, __ATOMIC_RELAXED);
	while (n > peak && !__atomic_compare_exchange_n(&peak_live, &peak, n, 1,
							__ATOMIC_RELAXED,
							__ATOMIC_RELAXED))
		;
}

/* glibc's cleanup handlers of the first kind, still in its ABI: pushing
 * one is a few stores, where pthread_cleanup_push takes a sigsetjmp
 * (about 40 instructions a thread more). A thread that unwinds
 * (pthread_exit, a cancellation) runs them as it leaves their frames, as
 * it runs the other kind. */
extern void _pthread_cleanup_push(struct _pthread_cleanup_buffer *buffer,
				  void (*routine)(void *), void *arg);
extern void _pthread_cleanup_pop(struct _pthread_cleanup_buffer *buffer,
				 int execute);

static void unwinding(void *arg)
{
	(void)arg;
	spy_thread_end_later();
}

/* The new thread's first moments: note its stack, give it an alternate
 * signal stack, say it started; then the program's start routine, a C11
 * one (int (*)(void *)) when c11. */
static inline __attribute__((always_inline)) void *thread_run(void *arg, int c11)
{
	/* a copy: the block that holds it may go back to the pool below */
	struct trampoline tr = *(struct trampoline *)arg, *t = &tr;
	void *(*start)(void *) = t->start;
	void *start_arg = t->arg;
	struct rec_thread_self *me = &rec_thread_self;
	int entry_errno = errno; /* the start routine sees errno as it was */
	uintptr_t top = ((uintptr_t)__builtin_frame_address(0) + 4095) & ~(uintptr_t)4095;
	me->stack_top = top;
	me->stack_size = t->stack_size;
	me->stack_from = t->stack_from;
	me->managed = 1;
	/* a stack glibc kept from an ended thread is live again */
	uintptr_t lo;
	size_t len = frames_area(me, &lo);
	if (len)
		spy_deadstack_forget((const void *)lo, len);
	note_live();
	/* the thread's start takes system calls (its alternate stack, a
	 * timer): none once the process is confined */
	int open = spy_gate_enter();
	if (open)
		me->block = spy_stackguard_install(t->block);
	if (spy_hook_enter()) {
		int saved = errno;
		uint8_t *p = spy_writer_begin(TRACE_THREAD_START, 6 * TRACE_VARINT_MAX);
		if (p) {
			p = trace_put_varint(p, (uint64_t)self_tid());
			p = trace_put_varint(p, (uint64_t)t->creator);
			p = trace_put_varint(p, (uint64_t)pthread_self());
			p = trace_put_varint(p, top);
			p = trace_put_varint(p, me->stack_size);
			p = trace_put_varint(p, me->stack_from);
			spy_writer_end(p);
		}
		spy_hook_leave();
		errno = saved;
	}
	/* after the first record: the time then comes from its chunk */
	me->start_ns = spy_writer_now();
	/* The end is arranged however the thread ends, even if the start
	 * record could not be written: at the return below, or, when the
	 * thread unwinds (pthread_exit, cancellation), by the handler pushed
	 * here, which hands it to the thread-exit destructor. */
	if (open) {
		/* (the thread's first record registered it, if written) */
		if (!spy_self.buf)
			spy_thread_register();
		spy_sampler_thread_start();
	}
	spy_gate_leave();
	void *r;
	struct _pthread_cleanup_buffer unwind_buf;
	_pthread_cleanup_push(&unwind_buf, unwinding, NULL);
	errno = entry_errno;
	if (c11)
		r = (void *)(intptr_t)((int (*)(void *))(void (*)(void))start)(start_arg);
	else
		r = start(start_arg);
	_pthread_cleanup_pop(&unwind_buf, 0);
	if (!me->how)
		me->how = 1 + TRACE_THREAD_RETURNED;
	spy_thread_returned();
	return r;
}

static void *trampoline_run(void *arg)
{
	return thread_run(arg, 0);
}

/* thrd_join gives the int back from the low bits, as glibc's does. */
static int trampoline_c11(void *arg)
{
	return (int)(intptr_t)thread_run(arg, 1);
}

/* The real create: thrd_create for a C11 start routine (glibc marks
 * such a thread, and starts it with its default attributes), with errno
 * values as pthread_create's. */
static int create_real(pthread_t *thread, const pthread_attr_t *attr,
		       void *(*start)(void *), void *arg, int c11,
		       struct trampoline *t)
{
	if (!c11)
		return t ? spy_real.pthread_create(thread, attr, trampoline_run, t)
			 : spy_real.pthread_create(thread, attr, start, arg);
	int r = t ? spy_real.thrd_create(thread, trampoline_c11, t)
		  : spy_real.thrd_create(thread, (thrd_start_t)(void (*)(void))start, arg);
	return r == thrd_success ? 0 : r == thrd_nomem ? ENOMEM : EAGAIN;
}

/* Every create, with the guard held; start is a C11 one when c11 (attr
 * is then NULL). Returns pthread_create's result. */
static int create_body(pthread_t *thread, const pthread_attr_t *attr,
		       void *(*start)(void *), void *arg, int c11)
{
	uint32_t stack = spy_stack_capture();
	uint64_t size, guard;
	uint8_t from;
	stack_of(attr, &size, &guard, &from);
	void *block = spy_stackguard_take();
	struct trampoline *t = NULL;
	if (block) {
		t = (struct trampoline *)((char *)block + SPY_STACKGUARD_BLOCK) - 1;
		*t = (struct trampoline){ .start = start, .arg = arg,
					  .creator = self_tid(),
					  .stack_from = from, .stack_size = size,
					  .block = block };
	}
	uint64_t t0 = spy_writer_now();
	int r = create_real(thread, attr, start, arg, c11, t);
	uint64_t t1 = spy_writer_now();
	int saved = errno;
	if (r != 0 && block)
		spy_stackguard_release(block);
	if (r == 0) {
		counters_check();
		__atomic_fetch_add(&threads_created, 1, __ATOMIC_RELAXED);
	}
	int detach_state = PTHREAD_CREATE_JOINABLE;
	if (attr)
		pthread_attr_getdetachstate(attr, &detach_state);
	uint8_t *p = spy_writer_begin_at(TRACE_THREAD_CREATE, 9 * TRACE_VARINT_MAX, t0);
	if (p) {
		p = trace_put_varint(p, r == 0 ? (uint64_t)*thread : 0);
		p = trace_put_varint(p, (uint64_t)(uintptr_t)start);
		p = trace_put_varint(p, size);
		p = trace_put_varint(p, guard);
		p = trace_put_varint(p, from);
		p = trace_put_varint(p, t1 - t0);
		p = trace_put_varint(p, (uint64_t)r);
		p = trace_put_varint(p, stack);
		p = trace_put_varint(p, detach_state == PTHREAD_CREATE_DETACHED);
		spy_writer_end(p);
	}
	spy_hook_leave();
	errno = saved;
	return r;
}

SPY_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			      void *(*start)(void *), void *arg)
{
	spy_modules_threads_started();
	if (!spy_hook_enter())
		return spy_real.pthread_create(thread, attr, start, arg);
	return create_body(thread, attr, start, arg, 0);
}

/* glibc's C11 thread calls reach its pthread code inside libc, past the
 * hooks above: hooked by name too. */
SPY_EXPORT int thrd_create(thrd_t *thread, thrd_start_t start, void *arg)
{
	spy_modules_threads_started();
	if (!spy_hook_enter())
		return spy_real.thrd_create(thread, start, arg);
	int r = create_body(thread, NULL, (void *(*)(void *))(void (*)(void))start,
			    arg, 1);
	return r == 0 ? thrd_success : r == ENOMEM ? thrd_nomem : thrd_error;
}

static int detach_body(pthread_t thread)
{
	if (!spy_real.pthread_detach)
		spy_init();
	int r = spy_real.pthread_detach(thread);
	int saved = errno;
	if (spy_hook_enter()) {
		uint8_t *p = spy_writer_begin(TRACE_THREAD_DETACH, 2 * TRACE_VARINT_MAX);
		if (p) {
			p = trace_put_varint(p, (uint64_t)thread);
			p = trace_put_varint(p, (uint64_t)r);
			spy_writer_end(p);
		}
		spy_hook_leave();
	}
	errno = saved;
	return r;
}

SPY_EXPORT int pthread_detach(pthread_t thread)
{
	return detach_body(thread);
}

SPY_EXPORT int thrd_detach(thrd_t thread)
{
	return detach_body(thread) == 0 ? thrd_success : thrd_error;
}

SPY_EXPORT void pthread_exit(void *retval)
{
	spy_init();
	if (!rec_thread_self.how)
		rec_thread_self.how = 1 + TRACE_THREAD_EXITED;
	spy_real.pthread_exit(retval);
}

/* glibc's thrd_exit is pthread_exit with the int as the pointer. */
SPY_EXPORT void thrd_exit(int res)
{
	pthread_exit((void *)(uintptr_t)res);
}

/* ---- joins ---------------------------------------------------------------- */

/* The _np joins, found on first use (pthread_join tries first). */
static int (*real_tryjoin)(pthread_t, void **);
static int (*real_timedjoin)(pthread_t, void **, const struct timespec *);
static int (*real_clockjoin)(pthread_t, void **, clockid_t,
			     const struct timespec *);

static int join_real(unsigned call, pthread_t thread, void **retval,
		     clockid_t clock, const struct timespec *at)
{
	int (*tryj)(pthread_t, void **);
	int (*timedj)(pthread_t, void **, const struct timespec *);
	int (*clockj)(pthread_t, void **, clockid_t, const struct timespec *);
	switch (call) {
	case TRACE_JOIN_TRY:
		tryj = spy_real_late((void **)&real_tryjoin, "pthread_tryjoin_np");
		return tryj ? tryj(thread, retval) : ENOSYS;
	case TRACE_JOIN_TIMED:
		timedj = spy_real_late((void **)&real_timedjoin,
				       "pthread_timedjoin_np");
		return timedj ? timedj(thread, retval, at) : ENOSYS;
	case TRACE_JOIN_CLOCK:
		clockj = spy_real_late((void **)&real_clockjoin,
				       "pthread_clockjoin_np");
		return clockj ? clockj(thread, retval, clock, at) : ENOSYS;
	default:
		return spy_real.pthread_join(thread, retval);
	}
}

/* Every join, with the guard held; site and cfa are the hook's. */
__attribute__((noinline)) static int join_body(pthread_t thread, void **retval,
					       unsigned call, clockid_t clock,
					       const struct timespec *at,
					       uintptr_t site, uintptr_t cfa)
{
	int entry = errno, saved = entry;
	uint64_t t0 = spy_writer_now();
	struct spy_lock_thread *lt = NULL;
	int r = EBUSY;
	if (call == TRACE_JOIN_TRY) {
		r = join_real(call, thread, retval, clock, at);
		saved = errno;
	} else if (call == TRACE_JOIN_PLAIN) {
		/* Tried first: a thread that has ended is joined at once,
		 * at no more cost. One that still runs holds, for the live
		 * check, a "lock" until it ends, which this join waits for:
		 * a cycle through it (the thread waits, itself or along a
		 * chain, for a lock the joiner holds or for the joiner's end)
		 * is a deadlock, found the moment it forms. Timed joins end
		 * by themselves; a thread joining itself gets EDEADLK. */
		int (*tryj)(pthread_t, void **) =
			spy_real_late((void **)&real_tryjoin, "pthread_tryjoin_np");
		r = tryj ? tryj(thread, retval) : EBUSY;
		saved = tryj ? errno : entry;
		if (r == EBUSY && !pthread_equal(thread, pthread_self()) &&
		    (lt = spy_lock_self(spy_pid)))
			spy_deadlock_before_join(lt, (uintptr_t)thread,
				spy_opt.stacks ? spy_stack_capture_from(site, cfa) : 0);
	}
	if (r == EBUSY && call != TRACE_JOIN_TRY) {
		/* The guard is let go while blocked: a signal handler that
		 * runs meanwhile may record. */
		spy_hook_leave();
		errno = entry;
		r = join_real(call, thread, retval, clock, at);
		saved = errno;
		if (lt)
			spy_deadlock_after_wait(lt);
		if (!spy_hook_enter()) {
			errno = saved;
			return r;
		}
	}
	uint64_t t1 = spy_writer_now();
	/* a try that found the thread running is no join; a join that
	 * failed (joined before, detached, itself) is a bug the program
	 * rarely checks for: where it was */
	if (call != TRACE_JOIN_TRY || r != EBUSY) {
		uint32_t stack = r && spy_opt.stacks ? spy_stack_capture_from(site, cfa) : 0;
		uint8_t *p = spy_writer_begin_at(TRACE_THREAD_JOIN,
						 5 * TRACE_VARINT_MAX, t0);
		if (p) {
			p = trace_put_varint(p, (uint64_t)thread);
			p = trace_put_varint(p, t1 - t0);
			p = trace_put_varint(p, (uint64_t)r);
			if (stack || call != TRACE_JOIN_PLAIN)
				p = trace_put_varint(p, stack);
			if (call != TRACE_JOIN_PLAIN)
				p = trace_put_varint(p, call);
			spy_writer_end(p);
		}
	}
	spy_hook_leave();
	errno = saved;
	return r;
}

#define JOIN_SITE() ((uintptr_t)__builtin_return_address(0))
#define JOIN_CFA() ((uintptr_t)__builtin_dwarf_cfa())

SPY_EXPORT int pthread_join(pthread_t thread, void **retval)
{
	if (!spy_hook_enter())
		return spy_real.pthread_join(thread, retval);
	return join_body(thread, retval, TRACE_JOIN_PLAIN, 0, NULL, JOIN_SITE(),
			 JOIN_CFA());
}

/* glibc's thrd_join is pthread_join keeping the low bits of the result;
 * res is written only when the join succeeded (glibc writes what it did
 * not get otherwise). */
SPY_EXPORT int thrd_join(thrd_t thread, int *res)
{
	void *rv = NULL;
	int r;
	if (!spy_hook_enter())
		r = spy_real.pthread_join(thread, res ? &rv : NULL);
	else
		r = join_body(thread, res ? &rv : NULL, TRACE_JOIN_PLAIN, 0, NULL,
			      JOIN_SITE(), JOIN_CFA());
	if (r == 0 && res)
		*res = (int)(uintptr_t)rv;
	return r == 0 ? thrd_success : thrd_error;
}

SPY_EXPORT int pthread_tryjoin_np(pthread_t thread, void **retval)
{
	if (!spy_hook_enter())
		return join_real(TRACE_JOIN_TRY, thread, retval, 0, NULL);
	return join_body(thread, retval, TRACE_JOIN_TRY, 0, NULL, JOIN_SITE(),
			 JOIN_CFA());
}

SPY_EXPORT int pthread_timedjoin_np(pthread_t thread, void **retval,
				    const struct timespec *at)
{
	if (!spy_hook_enter())
		return join_real(TRACE_JOIN_TIMED, thread, retval, 0, at);
	return join_body(thread, retval, TRACE_JOIN_TIMED, 0, at, JOIN_SITE(),
			 JOIN_CFA());
}

SPY_EXPORT int pthread_clockjoin_np(pthread_t thread, void **retval,
				    clockid_t clock, const struct timespec *at)
{
	if (!spy_hook_enter())
		return join_real(TRACE_JOIN_CLOCK, thread, retval, clock, at);
	return join_body(thread, retval, TRACE_JOIN_CLOCK, clock, at,
			 JOIN_SITE(), JOIN_CFA());
}

/* ---- destructors at thread exit ------------------------------------------------ */

unsigned spy_thread_destructors;

/* A destructor registered to run at thread exit, not by libspy itself
 * (whose keys are made with the guard held). */
static void note_destructor(int registered, void (*destructor)(void *))
{
	if (registered == 0 && destructor && !spy_self.guard)
		__atomic_fetch_add(&spy_thread_destructors, 1, __ATOMIC_RELAXED);
}

SPY_EXPORT int pthread_key_create(pthread_key_t *key, void (*destructor)(void *))
{
	if (!spy_real.pthread_key_create)
		spy_init();
	int r = spy_real.pthread_key_create(key, destructor);
	note_destructor(r, destructor);
	return r;
}

SPY_EXPORT int tss_create(tss_t *key, tss_dtor_t destructor)
{
	if (!spy_real.tss_create)
		spy_init();
	int r = spy_real.tss_create(key, destructor);
	note_destructor(r == thrd_success ? 0 : -1, destructor);
	return r;
}

/* What a C++ thread_local object's destructor is registered with. */
SPY_EXPORT int __cxa_thread_atexit_impl(void (*destructor)(void *), void *obj,
					void *dso)
{
	if (!spy_real.cxa_thread_atexit_impl)
		spy_init();
	int r = spy_real.cxa_thread_atexit_impl(destructor, obj, dso);
	note_destructor(r, destructor);
	return r;
}

/* ---- clone ----------------------------------------------------------------- */

/* glibc's clone takes ptid, tls and ctid only for some flags; like glibc
 * itself, the wrapper passes all three on. The child never returns here:
 * it runs fn on its own stack, so only the parent records. */
SPY_EXPORT int clone(int (*fn)(void *), void *child_stack, int flags,
		     void *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	pid_t *ptid = va_arg(ap, pid_t *);
	void *tls = va_arg(ap, void *);
	pid_t *ctid = va_arg(ap, pid_t *);
	va_end(ap);
	if (flags & CLONE_VM)
		spy_modules_threads_started();
	if (!spy_hook_enter())
		return spy_real.clone(fn, child_stack, flags, arg, ptid, tls, ctid);
	uint32_t stack = spy_stack_capture();
	uint64_t t0 = spy_writer_now();
	int r = spy_real.clone(fn, child_stack, flags, arg, ptid, tls, ctid);
	int saved = errno;
	if (r > 0) {
		counters_check();
		__atomic_fetch_add(&threads_created, 1, __ATOMIC_RELAXED);
	}
	uint8_t *p = spy_writer_begin_at(TRACE_CLONE, 4 * TRACE_VARINT_MAX, t0);
	if (p) {
		p = trace_put_varint(p, (uint64_t)(unsigned)flags);
		p = trace_put_varint(p, r > 0 ? (uint64_t)r : 0);
		p = trace_put_varint(p, r > 0 ? 0 : (uint64_t)saved);
		p = trace_put_varint(p, stack);
		spy_writer_end(p);
	}
	spy_hook_leave();
	errno = saved;
	return r;
}
