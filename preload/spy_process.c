/* spy_process.c: the process record, fork, the exec family, exit, _exit,
 * main's return value and dlopen.
 * Hooks here follow the hook rules (spy_core.h). The exec hooks may run in
 * a vfork child, which shares the parent's memory: there they record
 * nothing and allocate nothing but stack space.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rec_threads.h"
#include "rec_io.h"
#include "spy_core.h"
#include "spy_deepbind.h"
#include "spy_gate.h"
#include "spy_leakscan.h"
#include "spy_modules.h"
#include "spy_options.h"
#include "spy_preloadvar.h"
#include "spy_process.h"
#include "spy_qprotect.h"
#include "spy_real.h"
#include "spy_signals.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"
#include "trace_format.h"

#define PARENT_VAR "SPY_TRACE_PARENT"
#define PARENT_VAR_LEN 16
/* Set by a forked child whose trace holds nothing worth keeping when it
 * execs: the trace its fork came from (the exec'd image drops the child's
 * trace and names this one as its parent). */
#define FORKED_VAR "SPY_TRACE_FORKED_FROM"
#define FORKED_VAR_LEN 21
/* SPY_OPTIONS passed on to an exec'd image whose environment lacks it
 * (spy_process_take_options). */
#define OPTIONS_VAR "SPY_TRACE_OPTIONS"
#define OPTIONS_VAR_LEN 17

extern char **environ;

int spy_pid;
static int exit_status;
static int exit_status_known;
static int finished;
static pid_t finishing; /* the thread finishing the trace */
static int finish_done;
static int confined; /* a seccomp filter may refuse our system calls */
/* In a forked child: the trace of the process it was forked from. */
static char fork_parent[PATH_MAX];
static int forked_here; /* this image is a fork's child (not exec'd since) */
/* Set by exec_prepare when this trace is a forked child's with nothing of
 * its own (see FORKED_VAR). */
static int exec_drops_trace;
/* OPTIONS_VAR=the options this image runs with; "" if none or too long. */
static char options_var[OPTIONS_VAR_LEN + 1 + 2048];

/* ---- the process record -------------------------------------------------- */

/* The command line kept in the trace: enough for any lesson, and with the
 * two paths it fits one record (SPY_WRITER_MAX_BODY). */
static char cmdline[6 * 1024];
static uint64_t start_unix_ns, start_mono_ns;

void spy_process_note_start(void)
{
	start_unix_ns = spy_unix_ns();
	start_mono_ns = spy_now_ns();
}

void spy_process_write_record(int cause, const char *parent_trace)
{
	/* A forked child runs the same program with the same arguments: what
	 * was read at the start serves again (two /proc reads a fork). */
	static char exe[PATH_MAX];
	static ssize_t clen_read = -1;
	if (cause != TRACE_CAUSE_FORK || clen_read < 0) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		clen_read = spy_read_file("/proc/self/cmdline", cmdline,
					  sizeof(cmdline) - 1);
		if (clen_read < 0)
			clen_read = 0;
	}
	ssize_t clen = clen_read;
	/* A command line longer than the buffer ends in a cut argument:
	 * terminate it, and count it. */
	if (clen > 0 && cmdline[clen - 1] != '\0')
		cmdline[clen++] = '\0';
	size_t parent_len = spy_strlen(parent_trace);
	size_t exe_len = spy_strlen(exe);
	/* The exact size: fixed fields, the two paths, then as many whole
	 * arguments as fit in one record. */
	size_t need = 12 * TRACE_VARINT_MAX + exe_len + parent_len + 2 * 2;
	size_t argc = 0, kept = 0;
	for (ssize_t i = 0; i < clen;) {
		size_t len = spy_strlen(cmdline + i);
		size_t one = len + (len < 128 ? 1 : 2);
		if (need + one > SPY_WRITER_MAX_BODY)
			break;
		need += one;
		argc++;
		i += (ssize_t)len + 1;
		kept = (size_t)i;
	}
	clen = (ssize_t)kept;
	uint8_t *p = spy_writer_begin(TRACE_PROCESS, need);
	if (!p)
		return;
	p = trace_put_varint(p, (uint64_t)spy_sys_getpid());
	p = trace_put_varint(p, (uint64_t)getppid());
	p = trace_put_varint(p, (uint64_t)cause);
	p = trace_put_varint(p, start_unix_ns);
	p = trace_put_varint(p, start_mono_ns);
	p = trace_put_str(p, exe, exe_len);
	p = trace_put_varint(p, argc);
	for (ssize_t i = 0; i < clen;) {
		size_t len = spy_strlen(cmdline + i);
		p = trace_put_str(p, cmdline + i, len);
		i += (ssize_t)len + 1;
	}
	p = trace_put_str(p, parent_trace, parent_len);
	p = trace_put_varint(p, spy_opt.stacks ? spy_opt.stack_depth : 0);
	p = trace_put_varint(p, spy_opt.stacks ? TRACE_PF_STACKS : 0);
	spy_writer_end(p);
}

/* Takes the variable name=... out of the environment (so the program's
 * environment is what it was given); its value, or NULL. */
static const char *take_var(const char *name, size_t len)
{
	if (!environ)
		return NULL;
	for (char **e = environ; *e; e++) {
		if (!spy_strneq(*e, name, len) || (*e)[len] != '=')
			continue;
		const char *v = *e + len + 1;
		for (char **f = e; *f; f++)
			f[0] = f[1];
		return v;
	}
	return NULL;
}

/* path is a trace of this user's (its magic is libspy's): only such a
 * file is ever removed on a variable's word. */
static int is_own_trace(const char *path)
{
	int fd = spy_sys_open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	char magic[TRACE_MAGIC_LEN];
	struct stat st;
	int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		 st.st_uid == getuid() &&
		 read(fd, magic, sizeof(magic)) == (ssize_t)sizeof(magic) &&
		 spy_strneq(magic, TRACE_MAGIC, TRACE_MAGIC_LEN);
	spy_sys_close(fd);
	return ok;
}

struct open_trace {
	int ppid;
	char *path;
	unsigned long cap;
};

static int is_open_trace(const char *fd, void *arg)
{
	struct open_trace *o = arg;
	char link[64], target[PATH_MAX];
	spy_format(link, sizeof(link), "/proc/%d/fd/%s", o->ppid, fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0 || target[0] != '/')
		return 0;
	target[n] = '\0';
	/* only a regular file of this user's is opened: opening a fifo
	 * would block, a device could act on it */
	struct stat st;
	if (stat(target, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != getuid() || !is_own_trace(target))
		return 0;
	spy_strlcpy(o->path, target, o->cap);
	return 1;
}

/* A traced process that starts a program with posix_spawn, system or
 * popen has the C library exec it from inside, past libspy's exec hooks,
 * so the variable naming its trace is not passed on. Its trace is then
 * the one among the parent's open files: this process is its child, and
 * must not take that trace for an old one of its own and replace it (an
 * out= pattern without %p). 1 with its path in parent. */
static int parent_trace_open(char *parent, unsigned long cap)
{
	char dir[48];
	struct open_trace o = { (int)getppid(), parent, cap };
	if (o.ppid <= 1)
		return 0;
	spy_format(dir, sizeof(dir), "/proc/%d/fd", o.ppid);
	parent[0] = '\0';
	spy_proc_each_number(dir, is_open_trace, &o);
	return parent[0] != '\0';
}

int spy_process_take_parent(char *parent, unsigned long cap)
{
	parent[0] = '\0';
	const char *v = take_var(PARENT_VAR, PARENT_VAR_LEN);
	const char *forked_from = take_var(FORKED_VAR, FORKED_VAR_LEN);
	if (!v)
		return parent_trace_open(parent, cap) ? TRACE_CAUSE_FORK
						      : TRACE_CAUSE_START;
	long pid = 0;
	while (*v >= '0' && *v <= '9')
		pid = pid * 10 + (*v++ - '0');
	if (*v == ':')
		v++;
	spy_strlcpy(parent, v, cap);
	if (pid != spy_sys_getpid())
		return TRACE_CAUSE_FORK;
	/* A forked child's trace that holds nothing of its own but the fork
	 * and this exec: it goes, and this image is the fork's child. */
	if (forked_from && is_own_trace(parent) && unlink(parent) == 0) {
		spy_strlcpy(parent, forked_from, cap);
		return TRACE_CAUSE_FORK;
	}
	return TRACE_CAUSE_EXEC;
}

const char *spy_process_take_options(void)
{
	const char *passed = take_var(OPTIONS_VAR, OPTIONS_VAR_LEN);
	const char *v = getenv("SPY_OPTIONS");
	if (!v)
		v = passed;
	options_var[0] = '\0';
	if (v && *v && OPTIONS_VAR_LEN + 1 + spy_strlen(v) < sizeof(options_var))
		spy_format(options_var, sizeof(options_var), OPTIONS_VAR "=%s", v);
	return v;
}

/* ---- exit ------------------------------------------------------------------ */

void spy_process_note_exit(int status)
{
	exit_status = status;
	exit_status_known = 1;
}

static void finish(unsigned how, int status)
{
	if (__atomic_exchange_n(&finished, 1, __ATOMIC_ACQ_REL)) {
		/* a signal handler ends the process with _exit while its
		 * thread finishes the trace (PostgreSQL's backends on SIGQUIT
		 * while they exit): the trace ends here, as a fatal signal's
		 * does (die_of), not cut short */
		if (how != TRACE_EXIT_UNKNOWN && !finish_done &&
		    __atomic_load_n(&finishing, __ATOMIC_ACQUIRE) == spy_sys_gettid()) {
			spy_self.guard++;
			spy_writer_finish_interrupting(how, status, 0);
			spy_self.guard--;
		}
		return;
	}
	__atomic_store_n(&finishing, spy_sys_gettid(), __ATOMIC_RELEASE);
	if (how == TRACE_EXIT_UNKNOWN && exit_status_known) {
		how = TRACE_EXIT_RETURN;
		status = exit_status;
	}
	int saved = errno;
	spy_self.guard++;
	rec_threads_process_exit();
	if (spy_tracing)
		spy_leakscan_at_exit();
	rec_io_process_exit();
	/* the modules as they end (for stacks in modules loaded behind
	 * dlopen's back) and the end map, from one reading of the maps */
	spy_modules_at_exit();
	spy_writer_finish(how, status, 0);
	finish_done = 1;
	spy_self.guard--;
	errno = saved;
}

void spy_process_finish(unsigned how, int status)
{
	if (confined || spy_state != SPY_STATE_READY)
		return;
	/* another thread may be confining the process meanwhile */
	int saved = errno;
	if (spy_gate_enter() && spy_pid == spy_sys_getpid())
		finish(how, status);
	spy_gate_leave();
	errno = saved;
}

static int (*program_main)(int, char **, char **);
static void *main_wrapper_frame;

/* What glibc does once main returns: exit(status). main_wrapper goes on
 * here at once, using nothing of its own frame: some runtimes' main
 * "returns" to the saved return address with the stack pointer and the
 * callee-saved registers still where the program left them (Free
 * Pascal's halt restores only the frame pointer), which glibc's own
 * caller of main survives by calling exit straight away. */
__attribute__((noreturn, noinline)) static void main_returned(int status)
{
	spy_leakscan_main_returned(main_wrapper_frame);
	spy_process_note_exit(status);
	spy_real.exit(status);
}

static int main_wrapper(int argc, char **argv, char **envp)
{
	main_wrapper_frame = __builtin_frame_address(0);
	main_returned(program_main(argc, argv, envp));
}

/* Wrapping main is the one way to learn the status of a return from main:
 * glibc then calls exit internally, past any hook. */
SPY_EXPORT int __libc_start_main(int (*main)(int, char **, char **), int argc,
				 char **argv, void (*init)(void), void (*fini)(void),
				 void (*rtld_fini)(void), void *stack_end)
{
	spy_init();
	if (!spy_real.libc_start_main)
		abort(); /* cannot happen with a dynamically linked glibc */
	program_main = main;
	return spy_real.libc_start_main(main_wrapper, argc, argv, init, fini,
					rtld_fini, stack_end);
}

SPY_EXPORT void exit(int status)
{
	spy_init();
	spy_process_note_exit(status);
	spy_real.exit(status);
}

SPY_EXPORT void _exit(int status)
{
	spy_init();
	spy_process_finish(TRACE_EXIT_UNDERSCORE, status);
	spy_real._exit(status);
}

SPY_EXPORT void _Exit(int status)
{
	spy_init();
	spy_process_finish(TRACE_EXIT_UNDERSCORE, status);
	spy_real._Exit(status);
}

/* ---- fork ------------------------------------------------------------------ */

void spy_forksafe_lock(int *lock)
{
	unsigned spins = 0;
	for (;;) {
		int me = __atomic_load_n(&spy_pid, __ATOMIC_RELAXED), v = 0;
		if (!me)
			me = -1; /* before libspy knows its pid */
		if (__atomic_compare_exchange_n(lock, &v, me, 0, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return;
		if (v != me && v != -1 && __atomic_compare_exchange_n(lock, &v, me, 0,
							   __ATOMIC_ACQUIRE,
							   __ATOMIC_RELAXED))
			return; /* held by a thread of the parent: stale */
		if (++spins % 64 == 0)
			syscall(SYS_sched_yield);
	}
}

void spy_forksafe_unlock(int *lock)
{
	__atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}

static int fork_guard_taken;
static pid_t forker_tid; /* in the parent, the thread that forked */

pid_t spy_process_forker_tid(void)
{
	return forked_here ? forker_tid : 0;
}

static void before_fork(void)
{
	if (confined || spy_state != SPY_STATE_READY)
		return;
	forker_tid = spy_sys_thread_tid();
	spy_self.guard++;
	fork_guard_taken = 1;
}

static void after_fork_parent(void)
{
	if (!fork_guard_taken)
		return;
	fork_guard_taken = 0;
	spy_self.guard--;
}

static void after_fork_child(void)
{
	if (!fork_guard_taken)
		return;
	fork_guard_taken = 0;
	char parent[PATH_MAX];
	spy_strlcpy(parent, spy_writer_path(), sizeof(parent));
	spy_strlcpy(fork_parent, parent, sizeof(fork_parent));
	spy_pid = spy_sys_getpid();
	spy_gate_after_fork_child();
	finished = 0;
	exit_status_known = 0;
	spy_writer_after_fork_child();
	forked_here = 1;
	spy_modules_fork_child();
	spy_stack_reset();
	spy_modules_reset();
	spy_process_note_start();
	if (spy_writer_open(TRACE_CAUSE_FORK) == 0) {
		spy_process_write_record(TRACE_CAUSE_FORK, parent);
		spy_modules_snapshot();
	}
	spy_self.guard--;
}

void spy_process_init(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	spy_preloadvar_init();
}

SPY_EXPORT pid_t fork(void)
{
	spy_init();
	pid_t pid = spy_real.fork();
	if (pid > 0 && spy_hook_enter()) {
		int saved = errno;
		uint8_t *p = spy_writer_begin(TRACE_FORK, 2 * TRACE_VARINT_MAX);
		if (p) {
			p = trace_put_varint(p, (uint64_t)pid);
			spy_writer_end(p);
		}
		spy_hook_leave();
		errno = saved;
	}
	return pid;
}

/* ---- exec ------------------------------------------------------------------ */

/* What makes a forked child's trace worth keeping when it execs: it forked
 * in turn (its children name it), made threads, or did something a
 * report tells (I/O, a bad free, a deadlock, a fault, a note). Memory
 * and locks it only used in passing go with the image the exec ends. */
/* The set of record kinds spy_writer_holds_any takes, from a list. */
static void kind_set(uint8_t set[32], const uint8_t *kinds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		set[kinds[i] >> 3] |= (uint8_t)(1u << (kinds[i] & 7));
}

static const uint8_t *noteworthy_kinds(void)
{
	static uint8_t set[32];
	static const uint8_t kinds[] = {
		TRACE_FORK, TRACE_NOTE, TRACE_DEADLOCK, TRACE_IO_SITE,
		TRACE_SYSCALLS, TRACE_THREAD_CREATE, TRACE_STACK_OVERFLOW,
		TRACE_CRASH,
		TRACE_CLONE, TRACE_BAD_FREE, TRACE_HEAP_UAF, TRACE_GUARD_FAULT,
		TRACE_ALLOC_FAIL, TRACE_MISMATCHED_FREE,
	};
	kind_set(set, kinds, sizeof(kinds));
	return set;
}

int spy_process_forked_child(void)
{
	return forked_here;
}

/* Records the exec and writes everything out; 1 if it did (so a failed
 * exec can undo the end marker's effect). Nothing in a vfork child. */
static int exec_prepare(const char *path)
{
	if (confined || spy_pid != spy_sys_getpid() || !spy_hook_enter())
		return 0;
	rec_io_flush_all(1);
	size_t len = path ? spy_strlen(path) : 0;
	if (len > 4096)
		len = 4096;
	uint8_t *p = spy_writer_begin(TRACE_EXEC, 2 * TRACE_VARINT_MAX + len);
	if (p) {
		p = trace_put_str(p, path ? path : "", len);
		spy_writer_end(p);
	}
	p = spy_writer_begin(TRACE_END, 0);
	if (p)
		spy_writer_end(p);
	exec_drops_trace = fork_parent[0] && spy_tracing &&
			   !spy_writer_holds_any(noteworthy_kinds());
	spy_hook_leave();
	return 1;
}

/* A failed exec needs nothing undone: the trace simply goes on after its
 * end marker, which readers allow. */
static void exec_failed(int prepared)
{
	(void)prepared;
}

#define MAX_STACK_ENV 4096

/* 1 if env sets LD_PRELOAD to something: only then can the exec'd image
 * load libspy, which takes our variables out of its environment again.
 * Any other image (env -i, a cleaned environment) would see them. */
static int env_preloads(char *const env[], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (spy_strneq(env[i], "LD_PRELOAD=", 11) && env[i][11])
			return 1;
	return 0;
}

/* Calls run(envp') where envp' is envp plus SPY_TRACE_PARENT=<pid>:<trace>,
 * built on the stack (this may be a vfork child). */
#define WITH_PARENT_ENV(envp, call_with)                                       \
	do {                                                                   \
		char var_[PATH_MAX + 64];                                      \
		size_t n_ = 0;                                                 \
		while ((envp) && (envp)[n_])                                   \
			n_++;                                                  \
		if (!spy_tracing || n_ >= MAX_STACK_ENV ||                     \
		    !env_preloads((envp), n_)) {                               \
			char *const *env2 = (envp);                            \
			call_with;                                             \
		}                                                              \
		char *env_[n_ + 4];                                            \
		char forked_[PATH_MAX + 32];                                   \
		char preload_[2 * PATH_MAX];                                   \
		int preload_seen_ = 0, options_seen_ = 0;                      \
		size_t k_ = 0;                                                 \
		for (size_t i_ = 0; i_ < n_; i_++) {                           \
			const char *e_ = (envp)[i_];                           \
			if (spy_strneq(e_, PARENT_VAR "=", PARENT_VAR_LEN + 1) || \
			    spy_strneq(e_, FORKED_VAR "=", FORKED_VAR_LEN + 1) || \
			    spy_strneq(e_, OPTIONS_VAR "=", OPTIONS_VAR_LEN + 1)) \
				continue;                                      \
			if (spy_strneq(e_, "SPY_OPTIONS=", 12))                \
				options_seen_ = 1;                             \
			if (!preload_seen_ && spy_strneq(e_, "LD_PRELOAD=", 11)) { \
				preload_seen_ = 1;                             \
				e_ = spy_preloadvar_fixed(e_, preload_,        \
							  sizeof(preload_));   \
			}                                                      \
			env_[k_++] = (char *)e_;                               \
		}                                                              \
		/* LD_PRELOAD kept without SPY_OPTIONS: the same options */    \
		if (!options_seen_ && options_var[0])                          \
			env_[k_++] = options_var;                              \
		/* ours last: the new image takes them out of its environment, \
		 * and the program's strings, which the kernel lays out in     \
		 * order right after argv's, stay one run (nginx copies that   \
		 * run away to set its process title: a variable of ours in    \
		 * front cut it, and its copy was left unused, lost) */        \
		spy_format(var_, sizeof(var_), PARENT_VAR "=%d:%s", spy_pid,   \
			   spy_writer_path());                                 \
		env_[k_++] = var_;                                             \
		if (exec_drops_trace) {                                        \
			spy_format(forked_, sizeof(forked_), FORKED_VAR "=%s", \
				   fork_parent);                               \
			env_[k_++] = forked_;                                  \
		}                                                              \
		env_[k_] = NULL;                                               \
		char *const *env2 = env_;                                      \
		call_with;                                                     \
	} while (0)

static int do_execve(const char *path, char *const argv[], char *const envp[])
{
	int prepared = exec_prepare(path);
	int rc;
	WITH_PARENT_ENV(envp, { rc = spy_real.execve(path, argv, env2); exec_failed(prepared); return rc; });
	return -1;
}

static int do_execvpe(const char *file, char *const argv[], char *const envp[])
{
	int prepared = exec_prepare(file);
	int rc;
	WITH_PARENT_ENV(envp, { rc = spy_real.execvpe(file, argv, env2); exec_failed(prepared); return rc; });
	return -1;
}

SPY_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	spy_init();
	return do_execve(path, argv, envp);
}

SPY_EXPORT int execv(const char *path, char *const argv[])
{
	spy_init();
	return do_execve(path, argv, environ);
}

SPY_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	spy_init();
	return do_execvpe(file, argv, envp);
}

SPY_EXPORT int execvp(const char *file, char *const argv[])
{
	spy_init();
	return do_execvpe(file, argv, environ);
}

SPY_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	spy_init();
	int prepared = exec_prepare("(fexecve)");
	int rc;
	WITH_PARENT_ENV(envp, { rc = spy_real.fexecve(fd, argv, env2); exec_failed(prepared); return rc; });
	return -1;
}

/* The execl family: gather the variable arguments into an argv on the
 * stack, then do what execv/execvp/execve do. */
#define GATHER_ARGS(arg0, ap, argv)                                            \
	size_t argc_ = 1;                                                      \
	va_start(ap, arg0);                                                    \
	while (va_arg(ap, char *))                                             \
		argc_++;                                                       \
	va_end(ap);                                                            \
	char *argv[argc_ + 1];                                                 \
	argv[0] = (char *)(arg0);                                              \
	va_start(ap, arg0);                                                    \
	for (size_t i_ = 1; i_ <= argc_; i_++)                                 \
		argv[i_] = va_arg(ap, char *);

SPY_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	spy_init();
	GATHER_ARGS(arg, ap, argv);
	va_end(ap);
	return do_execve(path, argv, environ);
}

SPY_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	spy_init();
	GATHER_ARGS(arg, ap, argv);
	va_end(ap);
	return do_execvpe(file, argv, environ);
}

SPY_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	spy_init();
	GATHER_ARGS(arg, ap, argv);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return do_execve(path, argv, envp);
}

/* ---- seccomp --------------------------------------------------------------- */

/* The "Seccomp:" field of /proc/self/status (0 none, 1 strict, 2 a
 * filter); 0 when the kernel has no such field, -1 when the file cannot
 * be read. Matched as it streams in: a long Groups line comes first. */
static int status_seccomp_mode(void)
{
	static const char key[] = "\nSeccomp:";
	char buf[512];
	int fd = spy_sys_open("/proc/self/status", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	size_t matched = 0;
	int mode = -1, value = 0, got = 0;
	while (mode < 0) {
		ssize_t n = spy_sys_read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got = 1;
		for (ssize_t i = 0; i < n && mode < 0; i++) {
			char c = buf[i];
			if (value) {
				if (c != ' ' && c != '\t')
					mode = c >= '0' && c <= '9' ? c - '0' : 2;
			} else if (c == key[matched]) {
				value = ++matched == sizeof(key) - 1;
			} else {
				matched = c == key[0];
			}
		}
	}
	spy_sys_close(fd);
	if (mode < 0)
		mode = got ? 0 : -1;
	return mode;
}

int spy_process_started_confined(void)
{
	/* openat, read and close, with the arguments the loader used to
	 * load libspy itself: calls the filter is known to have allowed,
	 * where any other first call could be the one that kills */
	int mode = status_seccomp_mode();
	if (mode >= 0)
		return mode != 0;
	/* no /proc: the kernel is asked, which a filter may refuse (taken
	 * as a filter) or, unseen until now, kill for */
	long r = syscall(SYS_prctl, PR_GET_SECCOMP, 0L, 0L, 0L, 0L);
	if (r < 0)
		return errno != EINVAL;
	return r != 0;
}

void spy_process_start_confined(void)
{
	confined = 1;
	/* what a traced parent added to the environment goes, unread (its
	 * forked child's trace stays: removing it takes system calls) */
	take_var(PARENT_VAR, PARENT_VAR_LEN);
	take_var(FORKED_VAR, FORKED_VAR_LEN);
}

void spy_process_before_seccomp(void)
{
	if (confined || spy_pid != spy_sys_getpid())
		return;
	if (spy_hook_enter()) {
		rec_io_flush_all(1);
		spy_writer_note(1, "the program confined its system calls (seccomp): "
				   "the trace ends here, as libspy's own calls "
				   "could be refused");
		uint8_t *p = spy_writer_begin(TRACE_END, 0);
		if (p)
			spy_writer_end(p);
		spy_hook_leave();
	}
	confined = 1;
	spy_tracing = 0;
	/* the other threads out of libspy before the filter goes in, and
	 * no page left inaccessible that only libspy's handler could open */
	spy_gate_close();
	spy_qprotect_end();
	spy_signals_release();
}

int spy_process_confined(void)
{
	return __atomic_load_n(&confined, __ATOMIC_RELAXED);
}

/* seccomp(2) and prctl(PR_SET_SECCOMP) with a mode that installs
 * something (a probe with a null filter installs nothing). */
void spy_process_check_seccomp(long nr, long a1, long a2, long a3)
{
	if ((nr == SYS_seccomp && ((a1 == SECCOMP_SET_MODE_STRICT && !a2 && !a3) ||
				   (a1 == SECCOMP_SET_MODE_FILTER && a3))) ||
	    (nr == SYS_prctl && a1 == PR_SET_SECCOMP &&
	     (a2 == SECCOMP_MODE_STRICT || (a2 == SECCOMP_MODE_FILTER && a3))))
		spy_process_before_seccomp();
}

SPY_EXPORT int prctl(int option, ...)
{
	va_list ap;
	va_start(ap, option);
	unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
	unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
	va_end(ap);
	spy_init();
	if (!spy_real_late((void **)&spy_real.prctl, "prctl"))
		return -1;
	spy_process_check_seccomp(SYS_prctl, option, (long)a2, (long)a3);
	return spy_real.prctl(option, a2, a3, a4, a5);
}

/* ---- dlopen ---------------------------------------------------------------- */

/* dlopen looks at its caller's RUNPATH to find a library by name, so the
 * real dlopen must see the program as its caller: the hook ends in a tail
 * call and the module snapshot is taken at the next stack capture. */
static void note_dlopen(const char *path)
{
	spy_modules_mark_dirty();
	if (!spy_hook_enter())
		return;
	int saved = errno;
	size_t len = path ? spy_strlen(path) : 0;
	if (len > 4096)
		len = 4096;
	uint8_t *p = spy_writer_begin(TRACE_DLOPEN, 2 * TRACE_VARINT_MAX + len);
	if (p) {
		p = trace_put_str(p, path ? path : "", len);
		spy_writer_end(p);
	}
	spy_hook_leave();
	errno = saved;
}

SPY_EXPORT void *dlopen(const char *path, int flags)
{
	spy_init();
	note_dlopen(path);
	/* a deep-bound library's calls are bound to the hooks after it is
	 * loaded, when the real call may come from libspy (spy_deepbind.h) */
	if (SPY_UNLIKELY(flags & RTLD_DEEPBIND) &&
	    spy_deepbind_may_open(path, __builtin_return_address(0)))
		return spy_deepbind_open(path, flags);
	return spy_real.dlopen(path, flags);
}

SPY_EXPORT void *dlmopen(long lmid, const char *path, int flags)
{
	spy_init();
	note_dlopen(path);
	return spy_real.dlmopen(lmid, path, flags);
}
