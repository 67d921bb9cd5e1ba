/* rec_crash.h: the fatal fault or abort() a process dies of, recorded
 * with where it happened (rec_crash.c). */
#ifndef REC_CRASH_H
#define REC_CRASH_H

/* Registers the recorder with spy_signals; once at start, after it. */
void rec_crash_init(void);

#endif
