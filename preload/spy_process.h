/* spy_process.h: the process's life: start, fork, exec, exit. */
#ifndef SPY_PROCESS_H
#define SPY_PROCESS_H

#include <sys/types.h>

/* Notes the moment the trace starts (before its first record). */
void spy_process_note_start(void);

/* Writes the TRACE_PROCESS record for a trace opened for cause
 * (trace_cause), naming parent_trace ("" if none). */
void spy_process_write_record(int cause, const char *parent_trace);

/* Notes the exit status the program is leaving with (main returned, or
 * exit() was called); the final flush uses it. */
void spy_process_note_exit(int status);

/* The final flush at normal exit (library destructor or _exit). */
void spy_process_finish(unsigned how, int status);

/* The pid libspy believes it runs in (changes after fork). */
extern int spy_pid;

/* A spin lock for libspy's slow paths that a fork child never inherits
 * held: it holds the pid of the process whose thread took it, and a
 * thread that finds another pid there (its parent's, copied by the fork
 * while one of the parent's threads held it) takes it over. *lock starts
 * at 0. */
void spy_forksafe_lock(int *lock);
void spy_forksafe_unlock(int *lock);

/* Takes SPY_TRACE_PARENT out of the environment (so the program never sees
 * it) and returns the cause it implies and the parent's trace path. */
int spy_process_take_parent(char *parent, unsigned long cap);

/* The options this image runs with: SPY_OPTIONS, or else those a traced
 * parent passed on in SPY_TRACE_OPTIONS (taken out of the environment, so
 * the program never sees it) because the environment it gave this image
 * kept LD_PRELOAD but not SPY_OPTIONS (a server starting a CGI program
 * with an environment of its own). NULL: none. */
const char *spy_process_take_options(void);

/* In a forked child, the id its one thread had in the parent (the locks
 * that thread held there name it as their holder); 0 otherwise. */
pid_t spy_process_forker_tid(void);

/* 1 in a forked child (before any exec): blocks it holds may be its
 * parent's, handed out before its trace began. */
int spy_process_forked_child(void);

/* The program is about to confine its system calls (seccomp, strict
 * mode or a filter): libspy's own calls from then on (a new window of the
 * trace, the exit scan, a forked child's trace) could be refused, and a
 * refusal may kill the process. So the trace ends here with a note, and
 * libspy stays out of the way for the rest of the process's life. */
void spy_process_before_seccomp(void);
/* The same when system call nr with those arguments (syscall() or prctl)
 * would install such a confinement; nothing otherwise. */
void spy_process_check_seccomp(long nr, long a1, long a2, long a3);
/* 1 once spy_process_before_seccomp ran: libspy makes no system call of
 * its own from then on. */
int spy_process_confined(void);

/* 1 when the process starts under a seccomp filter (a sandbox exec'd
 * it so), which may refuse any system call of libspy's own or kill the
 * process for it. Called first at start: it reads /proc/self/status with
 * the calls the loader itself made, and only without /proc asks prctl. */
int spy_process_started_confined(void);
/* Start-up under such a filter: libspy's variables leave the environment,
 * and libspy makes no system call of its own from then on. */
void spy_process_start_confined(void);

/* Registers fork handlers; called once at start. */
void spy_process_init(void);

#endif
