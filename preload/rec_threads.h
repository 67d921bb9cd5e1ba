/* rec_threads.h: the threads recorder: thread creation, start, end and
 * join, per-thread and process statistics, and stack overflows. Runs inside
 * hooks, thread-exit destructors and signal handlers: it never allocates,
 * uses no stdio and takes no lock the program could hold.
 */
#ifndef REC_THREADS_H
#define REC_THREADS_H

#include <stddef.h>
#include <stdint.h>

/* What the recorder knows about the calling thread. */
struct rec_thread_self {
	uint64_t start_ns;    /* when it started (0: not seen starting) */
	uintptr_t stack_top;  /* an address near the top of its stack */
	uint64_t stack_size;  /* bytes its stack may use */
	uint8_t stack_from;   /* trace_stack_source */
	uint8_t how;          /* 1 + trace_thread_end once known, else 0 */
	uint8_t managed;      /* started through our pthread_create */
	uint8_t ended;        /* its end record is written */
	void *block;          /* its alternate signal stack (spy_stackguard) */
	void *alt_sp;         /* libspy's alternate stack for it, if any */
};

extern __thread struct rec_thread_self rec_thread_self
	__attribute__((tls_model("initial-exec")));

/* Called once by spy_init, with the guard held, after the signal handlers
 * are in place: notes the main thread's stack and starts watching for
 * stack overflows. */
void rec_threads_init(void);

/* The calling thread is about to end (its last thread-exit destructor
 * round, guard held): writes its end record and gives back its alternate
 * signal stack. Cannot fail. */
void rec_threads_thread_exit(void);

/* The process is ending normally (guard held): writes the calling thread's
 * end record and the process totals, before the EXIT record. */
void rec_threads_process_exit(void);

/* Writes the calling thread's end record, if not written yet, and the
 * process totals. Async-signal-safe (used on the way to a fatal signal). */
void rec_threads_write_totals(unsigned how);

/* spy_stackguard.c: an alternate signal stack for the calling thread, from
 * a small pool of mmap'd blocks; NULL when none can be had. take runs in
 * the creating thread; install in the new one, which may get the block of
 * an ended thread on the same descriptor instead (and gives the one taken
 * back): it returns the block it installed, NULL if none. release gives
 * the block back at the thread's end (turning its alternate stack off
 * unless the block is kept for the descriptor's next thread). All cheap
 * and lock-free. */
#define SPY_STACKGUARD_BLOCK (64 * 1024)
void *spy_stackguard_take(void);
void *spy_stackguard_install(void *block);
void spy_stackguard_release(void *block);

/* 1 when sig is a stack overflow that the kernel could only deliver
 * because libspy gave the thread its alternate stack: without libspy the
 * program's handler could not have run and the process would have died of
 * the signal. Async-signal-safe. */
#include <signal.h>
int spy_stackguard_undeliverable(int sig, siginfo_t *info, void *context);

/* The program's sigaltstack (hook_thread.c): it sees its own alternate
 * stack, not libspy's. A thread that never set one reads that it has none,
 * as without libspy; one it sets takes the place of libspy's. */
int spy_stackguard_sigaltstack(const stack_t *ss, stack_t *old);

/* spy_sampler.c (sample_hz=): installs the sampling signal and starts the
 * calling thread's CPU-time timer; each thread starts its own at start and
 * stops it at exit. Nothing happens when sampling is off. */
void spy_sampler_init(void);
void spy_sampler_thread_start(void);
void spy_sampler_thread_exit(void);

/* Registers the stack-overflow observer with spy_signals. */
void spy_stackguard_init(void);

#endif
