/* options_table.h: every SPY_OPTIONS option, once. libspy.so parses them,
 * `spy --help` lists them, docs/options.md documents them.
 *
 * SPY_OPTION(name, kind, default, help)
 *   kind: BOOL (0/1), UINT (a decimal number), STR (text up to the next ':')
 */
#ifndef SPY_OPTIONS_TABLE_H
#define SPY_OPTIONS_TABLE_H

#define SPY_OPTIONS_LIST(SPY_OPTION)                                          \
	SPY_OPTION(out, STR, "spy.%e.%p.log",                                 \
		   "trace file; %p is the pid, %e the program's name")          \
	SPY_OPTION(stacks, BOOL, "1",                                         \
		   "capture a call stack for every recorded event")             \
	SPY_OPTION(stack_depth, UINT, "24",                                   \
		   "most frames kept per stack (1-256)")                       \
	SPY_OPTION(stack_cache, BOOL, "1",                                    \
		   "reuse a stack seen before when its frames provably match")  \
	SPY_OPTION(io_patch, BOOL, "1",                                       \
		   "patch libc's read/write entries so stdio's own calls are counted") \
	SPY_OPTION(syscalls, STR, "io",                                       \
		   "io: read/write-class calls; all: every system call (slow)")  \
	SPY_OPTION(io_every, BOOL, "0",                                       \
		   "a record for every read/write call instead of totals (big traces)") \
	SPY_OPTION(quarantine_mb, UINT, "4",                                  \
		   "MiB of freed blocks each thread holds back to catch writes after free (0: none)") \
	SPY_OPTION(quarantine_fill, UINT, "0",                                \
		   "0: every byte of a held block filled and checked; N: of an unprotected block above N bytes, its two ends only") \
	SPY_OPTION(quarantine_protect, UINT, "16",                          \
		   "KiB from which a held block's inner pages are made inaccessible: any access is caught (0: never)") \
	SPY_OPTION(canary, BOOL, "1",                                         \
		   "fill the unused bytes past a malloc'd block's end, check them at its free and at exit: off-by-one overruns") \
	SPY_OPTION(guard, BOOL, "0",                                          \
		   "every block on its own pages: a use after free or an overflow faults at once") \
	SPY_OPTION(leaks, BOOL, "1",                                          \
		   "at exit, scan memory for blocks no pointer reaches (leaks)")  \
	SPY_OPTION(heap_every, UINT, "0",                                     \
		   "a heap snapshot every N ms, for analyze fragmentation (0: off)") \
	SPY_OPTION(thread_sched, BOOL, "1",                                   \
		   "read threads' run-queue delay from /proc as they end (long ones, a sample of short ones)")  \
	SPY_OPTION(sample_hz, UINT, "0",                                      \
		   "sample each thread's position N times a CPU-second, for false sharing (0: off)") \
	SPY_OPTION(quiet, BOOL, "0",                                          \
		   "print nothing on stderr except errors in options")           \
	SPY_OPTION(on_deadlock, STR, "abort",                                 \
		   "when threads deadlock: abort (report, exit 86) or wait")  \
	SPY_OPTION(on_seccomp, STR, "untraced",                               \
		   "a program that starts under a seccomp filter: untraced, or trace (the filter must allow libspy's calls)")

#endif
