/* detect_locks.c: the lock detectors: lock-order-cycle (a cycle in the
 * lock-order graph, even on a run that did not hang), deadlock (one that
 * libspy saw form while the program ran), livelock (threads that keep
 * failing trylocks without getting anywhere, busy all along), and
 * bad-unlock and bad-destroy (a mutex, rwlock or spin lock used against
 * its rules).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect_locks.h"
#include "json_writer.h"
#include "lock_model.h"
#include "symbolize.h"
#include "threads_model.h"
#include "text_out.h"
#include "trace_format.h"

#define MAX_CYCLES 20

/* Livelock thresholds: per thread, at least this many failed attempts, at
 * least 4 failures per success, over at least this long, retrying sooner
 * than this on average (busy, not sleeping). */
#define LIVELOCK_MIN_FAILS 200
#define LIVELOCK_MIN_WINDOW_NS 100000000ull
#define LIVELOCK_MAX_GAP_NS 1000000ull

/* A growing text buffer (open_memstream). */
struct text {
	char *s;
	size_t len;
	FILE *f;
};

static int text_open(struct text *t)
{
	t->s = NULL;
	t->len = 0;
	t->f = open_memstream(&t->s, &t->len);
	return t->f ? 0 : -1;
}

static char *text_close(struct text *t)
{
	if (fclose(t->f) != 0) {
		free(t->s);
		return NULL;
	}
	return t->s;
}

/* A finding's headline and explanation, both open, or neither (-1). */
static int texts_open(struct text *head, struct text *expl)
{
	if (text_open(head) < 0)
		return -1;
	if (text_open(expl) < 0) {
		free(text_close(head));
		return -1;
	}
	return 0;
}

static int add_stack(struct finding *f, const struct trace_model *m,
		     uint32_t ref, uint64_t tid, const char *label)
{
	if (!ref || ref > m->n_stacks)
		return finding_add_stack(f, label, tid, NULL, 0);
	const struct trace_stack *s = &m->stacks[ref - 1];
	return finding_add_stack(f, label, tid, s->frames, s->n);
}

static const char *name(const struct lock_model *lm, uint32_t i)
{
	return lm->locks[i].name ? lm->locks[i].name : "?";
}

static void json_names(FILE *f, const struct lock_model *lm,
		       const uint32_t *locks, size_t n)
{
	fputc('[', f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		const char *s = name(lm, locks[i]);
		json_write_escaped(f, s, strlen(s));
	}
	fputc(']', f);
}

/* ---- lock-order-cycle ------------------------------------------------------ */

/* " for reading" or " for writing" after an rwlock's name: a reader
 * blocks only on a writer, so the reader needs to know which one. */
static const char *mode(const struct lock_model *lm, uint32_t lock, bool read)
{
	if (lm->locks[lock].type != TRACE_LOCK_RWLOCK)
		return "";
	return read ? " for reading" : " for writing";
}

static int report_cycle(const struct trace_model *m, const struct lock_model *lm,
			const struct lock_cycle *c, struct finding_list *out)
{
	struct text head, expl, json;
	if (texts_open(&head, &expl) < 0)
		return -1;
	if (text_open(&json) < 0) {
		free(text_close(&head));
		free(text_close(&expl));
		return -1;
	}
	const struct lock_edge *e0 = &lm->edges[c->e[0]];
	enum finding_severity sev = SEV_ERROR;
	fprintf(head.f, "lock order cycle: ");
	for (size_t i = 0; i < c->n; i++)
		fprintf(head.f, "'%s' -> ", name(lm, lm->edges[c->e[i]].from));
	fprintf(head.f, "'%s'", name(lm, e0->from));
	if (c->gated) {
		sev = SEV_INFO;
		fprintf(head.f, " (safe: always under '%s')", name(lm, c->gate));
		fprintf(expl.f, "These locks are taken in more than one order, "
			"but every one of those acquisitions happens while "
			"the same thread holds '%s'. That outer lock lets only "
			"one thread at a time into the inverted pair, so the "
			"cycle cannot close: this is not an error. ",
			name(lm, c->gate));
	} else if (c->one_thread) {
		sev = SEV_INFO;
		fprintf(head.f, " (one thread only)");
		fprintf(expl.f, "Thread %u takes these locks in more than one "
			"order. No other thread took them in another order "
			"during this run, so this run could not deadlock on "
			"them; a second thread running the same code could. ",
			e0->tids[0]);
	} else if (c->few_threads) {
		sev = SEV_INFO;
		fprintf(head.f, " (too few threads)");
		for (size_t i = 0; i < c->n; i++) {
			const struct lock_edge *e = &lm->edges[c->e[i]];
			fprintf(expl.f, "'%s'%s is taken while holding '%s'%s "
				"by thread%s ", name(lm, e->to),
				mode(lm, e->to, e->to_read), name(lm, e->from),
				mode(lm, e->from, e->from_read),
				text_plural(e->n_tids, "", "s"));
			for (size_t k = 0; k < e->n_tids; k++)
				fprintf(expl.f, "%s%u", k ? (k + 1 < e->n_tids ?
					", " : " and ") : "", e->tids[k]);
			fprintf(expl.f, ". ");
		}
		fprintf(expl.f, "To close this cycle, each of its %zu edges "
			"needs a thread of its own, holding one lock and "
			"waiting for the next (a thread waits for one lock at "
			"a time, and a thread holding both ends of two edges "
			"would show a shorter cycle). The threads that took "
			"these locks in this run are too few for that, so "
			"this run could not deadlock on them; more threads "
			"running the same code could. ", c->n);
	} else {
		for (size_t i = 0; i < c->n; i++) {
			const struct lock_edge *e = &lm->edges[c->e[i]];
			fprintf(expl.f, "Thread %u takes '%s'%s while holding "
				"'%s'%s (%lu time%s). ", e->tids[0],
				name(lm, e->to), mode(lm, e->to, e->to_read),
				name(lm, e->from), mode(lm, e->from, e->from_read),
				(unsigned long)e->count, text_plural(e->count, "", "s"));
		}
		fprintf(expl.f, "Each thread holds one lock of the cycle while "
			"it waits for the next one. If they run at the same "
			"moment, this happens and none of them can ever go on: ");
		for (size_t i = 0; i < c->n; i++) {
			const struct lock_edge *e = &lm->edges[c->e[i]];
			fprintf(expl.f, "T%zu (thread %u) locks '%s'; ", i + 1,
				c->tid[i], name(lm, e->from));
		}
		for (size_t i = 0; i < c->n; i++) {
			const struct lock_edge *e = &lm->edges[c->e[i]];
			fprintf(expl.f, "T%zu waits for '%s'%s", i + 1,
				name(lm, e->to), i + 1 < c->n ? "; " : ". ");
		}
		fprintf(expl.f, "A run that did not hang was lucky with timing: "
			"the order is wrong on every run.");
	}
	fprintf(json.f, "{\"locks\":");
	uint32_t *locks = malloc(c->n * sizeof(*locks));
	if (locks) {
		for (size_t i = 0; i < c->n; i++)
			locks[i] = lm->edges[c->e[i]].from;
		json_names(json.f, lm, locks, c->n);
		free(locks);
	}
	fprintf(json.f, ",\"edges\":[");
	for (size_t i = 0; i < c->n; i++) {
		const struct lock_edge *e = &lm->edges[c->e[i]];
		fprintf(json.f, "%s{\"from\":", i ? "," : "");
		json_write_escaped(json.f, name(lm, e->from), strlen(name(lm, e->from)));
		fprintf(json.f, ",\"to\":");
		json_write_escaped(json.f, name(lm, e->to), strlen(name(lm, e->to)));
		fprintf(json.f, ",\"threads\":[");
		for (size_t k = 0; k < e->n_tids; k++)
			fprintf(json.f, "%s%u", k ? "," : "", e->tids[k]);
		fprintf(json.f, "],\"count\":%lu,\"held\":",
			(unsigned long)e->count);
		json_names(json.f, lm, e->held, e->n_held);
		fprintf(json.f, "}");
	}
	fprintf(json.f, "],\"gated\":%s,\"one_thread\":%s,"
		"\"few_threads\":%s", c->gated ? "true" : "false",
		c->one_thread ? "true" : "false",
		c->few_threads ? "true" : "false");
	if (c->gated) {
		fprintf(json.f, ",\"gate\":");
		json_write_escaped(json.f, name(lm, c->gate), strlen(name(lm, c->gate)));
	}
	fprintf(json.f, "}");
	char *h = text_close(&head), *x = text_close(&expl),
	     *j = text_close(&json);
	int rc = -1;
	struct finding *f;
	if (h && x && j &&
	    (f = finding_add(out, "lock-order-cycle", sev, h, x,
			     "Take these locks in one global order everywhere "
			     "(for example always the lower account id, or the "
			     "lower address, first); or take them together "
			     "under one outer lock; or merge them into a single "
			     "lock."))) {
		rc = finding_add_json(f, "cycle", j);
		for (size_t i = 0; i < c->n && rc == 0; i++) {
			const struct lock_edge *e = &lm->edges[c->e[i]];
			char label[600];
			snprintf(label, sizeof(label), "took '%s'%s here",
				 name(lm, e->from), mode(lm, e->from, e->from_read));
			rc = add_stack(f, m, e->from_stack, e->tids[0], label);
			snprintf(label, sizeof(label),
				 "takes '%s'%s here while holding '%s'",
				 name(lm, e->to), mode(lm, e->to, e->to_read),
				 name(lm, e->from));
			if (rc == 0)
				rc = add_stack(f, m, e->to_stack, e->tids[0], label);
		}
	}
	free(h);
	free(x);
	free(j);
	return rc;
}

/* ---- deadlock -------------------------------------------------------------- */

static int report_deadlock(const struct trace_model *m,
			   const struct lock_model *lm,
			   const struct lock_deadlock *d,
			   struct finding_list *out)
{
	struct text head, expl;
	if (texts_open(&head, &expl) < 0)
		return -1;
	if (d->n == 1) {
		fprintf(head.f, "deadlock: thread %u waits for '%s', which it "
			"holds itself", d->t[0].tid, name(lm, d->t[0].lock));
		fprintf(expl.f, "Thread %u already holds '%s' and asks for it "
			"again; the lock is not recursive, so it waits for "
			"itself for ever. ", d->t[0].tid, name(lm, d->t[0].lock));
	} else {
		fprintf(head.f, "deadlock: %zu threads wait for each other for "
			"ever (", d->n);
		for (size_t i = 0; i < d->n; i++) {
			if (d->t[i].join)
				fprintf(head.f, "%sthe end of thread %u",
					i ? ", " : "", d->t[(i + 1) % d->n].tid);
			else
				fprintf(head.f, "%s'%s'", i ? ", " : "",
					name(lm, d->t[i].lock));
		}
		fprintf(head.f, ")");
		for (size_t i = 0; i < d->n; i++) {
			const struct lock_deadlock_thread *t = &d->t[i];
			const struct lock_deadlock_thread *o = &d->t[(i + 1) % d->n];
			uint64_t ms = d->ts > t->since ? (d->ts - t->since) / 1000000 : 0;
			if (t->join && !t->n_held) {
				fprintf(expl.f, "Thread %u has waited %lu ms in "
					"pthread_join for thread %u to end. ",
					t->tid, (unsigned long)ms, o->tid);
				continue;
			}
			fprintf(expl.f, "Thread %u holds ", t->tid);
			for (size_t k = 0; k < t->n_held; k++)
				fprintf(expl.f, "%s'%s'", k ? ", " : "",
					name(lm, t->held[k]));
			if (!t->n_held)
				fprintf(expl.f, "nothing listed");
			if (t->join) {
				fprintf(expl.f, " and has waited %lu ms in "
					"pthread_join for thread %u to end. ",
					(unsigned long)ms, o->tid);
				continue;
			}
			fprintf(expl.f, " and has waited %lu ms %s '%s', held "
				"by thread %u. ", (unsigned long)ms,
				t->cond ? "in a condition wait, which cannot "
					  "return before it takes back"
					: "for",
				name(lm, t->lock), o->tid);
		}
		fprintf(expl.f, "None of them can ever go on. ");
	}
	if (d->action == 0)
		fprintf(expl.f, "libspy saw the cycle close and ended the "
			"program with exit status 86 (on_deadlock=abort).");
	else
		fprintf(expl.f, "libspy saw the cycle close and left the "
			"program waiting (on_deadlock=wait).");
	size_t joins = 0;
	for (size_t i = 0; i < d->n; i++)
		joins += d->t[i].join;
	const char *fix =
		joins == d->n
		? "Join in one direction only: a thread is joined by the one "
		  "that created it (or by one other thread that does not "
		  "itself wait for it), and never joins a thread that waits "
		  "for its own end."
		: joins
		? "Unlock before pthread_join: a thread that joins another "
		  "while holding a lock that thread still needs waits for it "
		  "for ever."
		: "Take the locks in one global order everywhere, so that no "
		  "thread ever waits for a lock while holding one that comes "
		  "later in that order; or take them together under one "
		  "outer lock.";
	char *h = text_close(&head), *x = text_close(&expl);
	int rc = -1;
	struct finding *f;
	if (h && x &&
	    (f = finding_add(out, "deadlock", SEV_ERROR, h, x, fix))) {
		rc = finding_add_int(f, "threads", (int64_t)d->n);
		for (size_t i = 0; i < d->n && rc == 0; i++) {
			const struct lock_deadlock_thread *t = &d->t[i];
			char label[600];
			if (t->join)
				snprintf(label, sizeof(label), "waits here in "
					 "pthread_join for thread %u to end",
					 d->t[(i + 1) % d->n].tid);
			else
				snprintf(label, sizeof(label), "waits here for '%s'%s",
					 name(lm, t->lock),
					 t->cond ? " (to return from its condition wait)" : "");
			rc = add_stack(f, m, t->wait_stack, t->tid, label);
			for (size_t k = 0; k < t->n_held && rc == 0; k++) {
				snprintf(label, sizeof(label), "took '%s' here",
					 name(lm, t->held[k]));
				rc = add_stack(f, m, t->held_stack[k], t->tid, label);
			}
		}
	}
	free(h);
	free(x);
	return rc;
}

/* ---- livelock -------------------------------------------------------------- */

/* A thread that fails while it holds nothing blocks nobody: it waits for
 * a lock by trying it again and again (busy waiting), and the lock's
 * holder goes on. In a livelock each thread holds a lock another one
 * tries, lets it go and takes it again: most failures come holding one. */
static bool spinning(const struct lock_retry *q)
{
	return q->fails >= LIVELOCK_MIN_FAILS && q->fails >= 4 * q->successes &&
	       2 * q->fails_holding >= q->fails &&
	       q->last_fail - q->first_fail >= LIVELOCK_MIN_WINDOW_NS &&
	       q->gaps && q->gap_total / q->gaps < LIVELOCK_MAX_GAP_NS;
}

static int report_livelock(const struct trace_model *m,
			   const struct lock_model *lm, struct finding_list *out)
{
	size_t n = 0;
	uint64_t fails = 0, ok = 0, from = UINT64_MAX, to = 0, gap = 0, gaps = 0;
	for (size_t i = 0; i < lm->n_retries; i++) {
		const struct lock_retry *q = &lm->retries[i];
		if (!spinning(q))
			continue;
		n++;
		fails += q->fails;
		ok += q->successes;
		gap += q->gap_total;
		gaps += q->gaps;
		if (q->first_fail < from)
			from = q->first_fail;
		if (q->last_fail > to)
			to = q->last_fail;
	}
	if (n < 2)
		return 0;
	struct text head, expl;
	if (texts_open(&head, &expl) < 0)
		return -1;
	double secs = (double)(to - from) / 1e9;
	fprintf(head.f, "livelock: %zu threads failed %lu lock attempts in "
		"%.2f s and got through %lu time%s", n, (unsigned long)fails,
		secs, (unsigned long)ok, text_plural(ok, "", "s"));
	fprintf(expl.f, "These threads keep trying to take locks that another "
		"of them holds, give up, and try again at once: ");
	for (size_t i = 0; i < lm->n_retries; i++) {
		const struct lock_retry *q = &lm->retries[i];
		if (!spinning(q))
			continue;
		fprintf(expl.f, "thread %u failed %lu times (%.0f per second) "
			"on ", q->tid, (unsigned long)q->fails,
			(double)q->fails /
				((double)(q->last_fail - q->first_fail) / 1e9));
		for (size_t k = 0; k < q->n_locks; k++)
			fprintf(expl.f, "%s'%s'", k ? ", " : "",
				name(lm, q->locks[k]));
		fprintf(expl.f, " and got through %lu time%s; ",
			(unsigned long)q->successes, text_plural(q->successes, "", "s"));
	}
	fprintf(expl.f, "each retried %.1f microseconds after a failure on "
		"average, so they were busy the whole %.2f s without making "
		"progress. ",
		gaps ? (double)gap / (double)gaps / 1e3 : 0.0, secs);
	/* The CPU they burnt, when the thread records have it. */
	struct threads_model tm = { 0 };
	uint64_t cpu = 0, life = 0;
	if (threads_model_build(m, &tm) == 0) {
		for (size_t i = 0; i < lm->n_retries; i++) {
			if (!spinning(&lm->retries[i]))
				continue;
			for (size_t k = 0; k < tm.n; k++) {
				const struct thread_info *t = &tm.v[k];
				if (t->tid != lm->retries[i].tid || !t->has_end)
					continue;
				cpu += t->user_ns + t->sys_ns;
				life += t->lifetime_ns;
			}
		}
	}
	threads_model_release(&tm);
	if (cpu && life)
		fprintf(expl.f, "Together they used %.0f ms of CPU in %.0f ms of "
			"life, nearly all of it on attempts that failed. ",
			(double)cpu / 1e6, (double)life / 1e6);
	fprintf(expl.f, "Nobody is blocked (this is not a deadlock), yet "
		"almost no work gets done: the threads react to each other "
		"the same way at the same moment, again and again.");
	char *h = text_close(&head), *x = text_close(&expl);
	int rc = -1;
	struct finding *f;
	if (h && x &&
	    (f = finding_add(out, "livelock", SEV_ERROR, h, x,
			     "After a failed attempt, wait a random time before "
			     "retrying and double its range after each "
			     "failure in a row (random exponential backoff), "
			     "so that the threads stop moving in lockstep; or "
			     "take the locks in one global order with blocking "
			     "calls, which needs no retry at all."))) {
		rc = finding_add_int(f, "failed_attempts", (int64_t)fails);
		if (rc == 0)
			rc = finding_add_int(f, "successes", (int64_t)ok);
		if (rc == 0)
			rc = finding_add_int(f, "window_ns", (int64_t)(to - from));
		if (rc == 0 && cpu)
			rc = finding_add_int(f, "cpu_ns", (int64_t)cpu);
		for (size_t i = 0; i < lm->n_retries && rc == 0; i++) {
			const struct lock_retry *q = &lm->retries[i];
			if (!spinning(q))
				continue;
			char label[160];
			snprintf(label, sizeof(label),
				 "fails here, again and again");
			rc = add_stack(f, m, q->stack, q->tid, label);
		}
	}
	free(h);
	free(x);
	return rc;
}

/* ---- a lock used against its rules ---------------------------------------- */

/* The words for a misuse of a mutex (misuse_rwlock, misuse_spin: of the
 * others): each writes the headline, but for its count, and the
 * explanation, and returns the fix. */
static const char *misuse_mutex(const struct lock_misuse *u, const char *lk,
				FILE *head, FILE *expl)
{
	if (u->what == TRACE_MISUSE_DESTROY_HELD) {
		fprintf(head, "'%s' destroyed while thread %u holds it", lk,
			u->owner);
		fprintf(expl, "Thread %u destroys the mutex '%s' while thread "
			"%u still holds it. glibc refuses (pthread_mutex_destroy "
			"returns EBUSY, which programs rarely check) and the "
			"mutex lives on; POSIX leaves it undefined, and memory "
			"freed or reused after it breaks the holder's next "
			"unlock. ", u->tid, lk, u->owner);
		return "Destroy a mutex only once no thread holds or waits for "
		       "it: after joining the threads that use it.";
	}
	if (u->what == TRACE_MISUSE_UNLOCK_OTHER) {
		fprintf(head, "thread %u unlocked '%s', which thread %u holds",
			u->tid, lk, u->owner);
		fprintf(expl, "Only the thread that locked a mutex may unlock "
			"it. glibc's normal mutex lets this unlock pass: '%s' is "
			"free for the next taker while thread %u still runs as "
			"if it held it, so two threads can be inside the section "
			"it guards at once. An error-checking mutex refuses "
			"(EPERM). ", lk, u->owner);
		return "Unlock in the thread that locked. To let one thread "
		       "signal another, use a semaphore (sem_post, sem_wait) or "
		       "a condition variable.";
	}
	fprintf(head, "thread %u unlocked '%s', which no thread held", u->tid, lk);
	fprintf(expl, "An unlock too many: '%s' was not locked. glibc's normal "
		"mutex lets it pass, but the same unlock a moment later, after "
		"another thread locked it, would have released that thread's "
		"hold. POSIX leaves it undefined; an error-checking mutex "
		"refuses (EPERM). ", lk);
	return "Pair every unlock with one lock in the same thread, on every "
	       "path (an early return that unlocks, then the unlock at the "
	       "end, is the usual double unlock).";
}

/* glibc knows an rwlock's writer by its thread id and counts its readers
 * without knowing who they are: any unlock by a thread that is not the
 * writer counts one reader less. */
static const char *misuse_rwlock(const struct lock_misuse *u, const char *lk,
				 FILE *head, FILE *expl)
{
	const char *mode = u->type == TRACE_LOCK_READ ? "reading" : "writing";
	const char *unlock_fix = "Pair every unlock with one rdlock or wrlock "
		"of the same thread, on every path. To let one thread signal "
		"another, use a semaphore (sem_post, sem_wait) or a condition "
		"variable.";
	if (u->what == TRACE_MISUSE_DESTROY_HELD) {
		if (u->owner)
			fprintf(head, "'%s' destroyed while thread %u holds it "
				"for %s", lk, u->owner, mode);
		else
			fprintf(head, "'%s' destroyed while it is held for %s",
				lk, mode);
		fprintf(expl, "Thread %u destroys the rwlock '%s' while ",
			u->tid, lk);
		if (u->owner == u->tid)
			fprintf(expl, "it still holds it for %s itself. ", mode);
		else if (u->owner)
			fprintf(expl, "thread %u still holds it for %s. ",
				u->owner, mode);
		else
			fprintf(expl, "a thread still holds it for %s. ", mode);
		fprintf(expl, "glibc's pthread_rwlock_destroy checks nothing "
			"and returns 0; POSIX leaves it undefined. The holder's "
			"unlock then works on a destroyed lock, on memory that "
			"may hold something else once it is freed or reused. ");
		return "Destroy an rwlock only once no thread holds or waits for "
		       "it: after its last unlock, after joining the threads "
		       "that use it.";
	}
	if (u->what == TRACE_MISUSE_UNLOCK_FORKED) {
		fprintf(head, "thread %u unlocked '%s' in a fork child, where "
			"glibc no longer knows it as the writer", u->tid, lk);
		fprintf(expl, "Thread %u of the fork child is the parent's "
			"thread %u, which took '%s' for writing before the fork; "
			"but a thread gets a new id in the child, and glibc knows "
			"the writer of an rwlock by its id. It takes this unlock "
			"for a reader's: the write lock stays taken and the count "
			"of readers drops below zero, so the child's next lock of "
			"'%s' waits for ever. Locking in a pthread_atfork prepare "
			"handler and unlocking in the child works for a mutex, "
			"not for an rwlock. ", u->tid, u->owner, lk, lk);
		return "In the fork child, initialise the rwlock anew "
		       "(pthread_rwlock_init: the child has a single thread, "
		       "nobody else holds it) instead of unlocking it; or "
		       "guard the fork with a mutex.";
	}
	if (u->what == TRACE_MISUSE_UNLOCK_OTHER && u->type == TRACE_LOCK_READ) {
		fprintf(head, "thread %u unlocked '%s', which it did not hold "
			"(thread %u holds it for reading)", u->tid, lk, u->owner);
		fprintf(expl, "Thread %u holds neither the write lock nor a "
			"read lock of the rwlock '%s'. Only a thread that took a "
			"read lock may release it, but glibc counts readers "
			"without knowing which threads they are, so this unlock "
			"ends another reader's hold: thread %u still reads as if "
			"it held '%s' while a writer may now get in, and its own "
			"unlock later drops the count below zero, which breaks "
			"the lock. POSIX leaves it undefined. ", u->tid, lk,
			u->owner, lk);
		return unlock_fix;
	}
	if (u->what == TRACE_MISUSE_UNLOCK_OTHER) {
		fprintf(head, "thread %u unlocked '%s', which thread %u holds "
			"for writing", u->tid, lk, u->owner);
		fprintf(expl, "Only the thread that took a lock may release "
			"it. glibc knows the writer of the rwlock '%s' by its "
			"thread id, and takes an unlock by any other thread for "
			"a reader's: there was none, so the count of readers "
			"drops below zero, the write lock stays taken, and the "
			"lock is broken from then on (the next writer waits for "
			"ever). ", lk);
		return unlock_fix;
	}
	fprintf(head, "thread %u unlocked '%s', which no thread held", u->tid, lk);
	fprintf(expl, "An unlock too many: nobody held the rwlock '%s', for "
		"reading or for writing. glibc takes it for a reader's unlock: "
		"its count of readers drops below zero, and the lock is broken "
		"from then on (a writer waits for ever, or a reader and a "
		"writer get in at once). POSIX leaves it undefined. ", lk);
	return "Pair every unlock with one rdlock or wrlock of the same "
	       "thread, on every path (an early return that unlocks, then the "
	       "unlock at the end, is the usual double unlock).";
}

static const char *misuse_spin(const struct lock_misuse *u, const char *lk,
			       FILE *head, FILE *expl)
{
	if (u->what == TRACE_MISUSE_DESTROY_HELD) {
		if (u->owner)
			fprintf(head, "'%s' destroyed while thread %u holds it",
				lk, u->owner);
		else
			fprintf(head, "'%s' destroyed while it is locked", lk);
		fprintf(expl, "Thread %u destroys the spin lock '%s' while ",
			u->tid, lk);
		if (u->owner == u->tid)
			fprintf(expl, "it still holds it itself. ");
		else if (u->owner)
			fprintf(expl, "thread %u still holds it. ", u->owner);
		else
			fprintf(expl, "it is locked. ");
		fprintf(expl, "glibc's pthread_spin_destroy checks nothing; "
			"POSIX leaves it undefined, and memory freed or reused "
			"after it breaks the holder's unlock. ");
		return "Destroy a spin lock only once no thread holds or spins "
		       "on it: after joining the threads that use it.";
	}
	if (u->what == TRACE_MISUSE_UNLOCK_OTHER) {
		fprintf(head, "thread %u unlocked '%s', which thread %u holds",
			u->tid, lk, u->owner);
		fprintf(expl, "Only the thread that took a spin lock may "
			"release it. glibc's spin lock does not know its holder "
			"and lets this pass: '%s' is free for the next taker "
			"while thread %u still runs as if it held it, so two "
			"threads can be inside the section it guards at once. ",
			lk, u->owner);
		return "Unlock in the thread that locked. To let one thread "
		       "signal another, use a semaphore (sem_post, sem_wait) or "
		       "a condition variable.";
	}
	fprintf(head, "thread %u unlocked '%s', which no thread held", u->tid, lk);
	fprintf(expl, "An unlock too many: the spin lock '%s' was not locked. "
		"glibc only marks it free again, so this passes unnoticed; the "
		"same unlock a moment later, after another thread took the "
		"lock, would release that thread's hold and let two threads in "
		"at once. POSIX leaves it undefined. ", lk);
	return "Pair every unlock with one lock in the same thread, on every "
	       "path (an early return that unlocks, then the unlock at the "
	       "end, is the usual double unlock).";
}

static bool misuse_is_rwlock(const struct lock_misuse *u)
{
	return u->type == TRACE_LOCK_READ || u->type == TRACE_LOCK_WRITE ||
	       u->type == TRACE_LOCK_RWLOCK;
}

/* One finding per kind of misuse, lock and place, counted. */
static int report_misuse(const struct trace_model *m,
			 const struct lock_model *lm, size_t first,
			 struct finding_list *out)
{
	const struct lock_misuse *u = &lm->misuses[first];
	size_t times = 0;
	for (size_t i = 0; i < lm->n_misuses; i++) {
		const struct lock_misuse *v = &lm->misuses[i];
		if (v->what != u->what || v->lock != u->lock || v->stack != u->stack)
			continue;
		if (i < first)
			return 0; /* reported with the first of its kind */
		times++;
	}
	struct text head, expl;
	if (texts_open(&head, &expl) < 0)
		return -1;
	const char *lk = name(lm, u->lock), *fix, *type = "mutex";
	if (misuse_is_rwlock(u)) {
		type = "rwlock";
		fix = misuse_rwlock(u, lk, head.f, expl.f);
	} else if (u->type == TRACE_LOCK_SPIN) {
		type = "spin";
		fix = misuse_spin(u, lk, head.f, expl.f);
	} else {
		fix = misuse_mutex(u, lk, head.f, expl.f);
	}
	if (times > 1)
		fprintf(head.f, " (%zu times here)", times);
	bool destroy = u->what == TRACE_MISUSE_DESTROY_HELD;
	char *h = text_close(&head), *x = text_close(&expl);
	int rc = -1;
	struct finding *f;
	if (h && x && (f = finding_add(out, destroy ? "bad-destroy" : "bad-unlock",
				       SEV_ERROR, h, x, fix))) {
		rc = finding_add_int(f, "times", (int64_t)times);
		if (rc == 0)
			rc = finding_add_str(f, "lock_type", type);
		if (rc == 0 && u->owner)
			rc = finding_add_int(f, "holder", (int64_t)u->owner);
		if (rc == 0 && u->owner && (u->type == TRACE_LOCK_READ ||
					    u->type == TRACE_LOCK_WRITE))
			rc = finding_add_str(f, "held_for",
					     u->type == TRACE_LOCK_READ
						     ? "reading" : "writing");
		if (rc == 0)
			rc = add_stack(f, m, u->stack, u->tid,
				       destroy ? "destroyed here" : "unlocked here");
	}
	free(h);
	free(x);
	return rc;
}

int detect_locks_all(const struct trace_model *m, struct lock_model *lm,
		     struct finding_list *out)
{
	struct lock_cycle *cs;
	long n = lock_cycles_find(lm, &cs, MAX_CYCLES);
	if (n < 0)
		return -1;
	int rc = 0;
	/* Errors first, then the cycles that are safe. */
	for (int pass = 0; pass < 2 && rc == 0; pass++)
		for (long i = 0; i < n && rc == 0; i++)
			if (lock_cycle_can_deadlock(&cs[i]) == (pass == 0))
				rc = report_cycle(m, lm, &cs[i], out);
	lock_cycles_free(cs, MAX_CYCLES);
	for (size_t i = 0; i < lm->n_deadlocks && rc == 0; i++)
		rc = report_deadlock(m, lm, &lm->deadlocks[i], out);
	for (size_t i = 0; i < lm->n_misuses && rc == 0; i++)
		rc = report_misuse(m, lm, i, out);
	if (rc == 0)
		rc = report_livelock(m, lm, out);
	return rc;
}

int detect_locks(const struct trace_model *m, struct finding_list *out)
{
	struct lock_model lm = { 0 };
	struct symbolizer *sym = NULL;
	int rc = -1;
	if (lock_model_build(m, &lm) == 0) {
		/* (threads that join each other deadlock with no lock) */
		if (!lm.n_locks && !lm.n_deadlocks) {
			rc = 0;
		} else if ((sym = symbolizer_new(m))) {
			lock_names_fill(m, &lm, sym);
			rc = detect_locks_all(m, &lm, out);
		}
	}
	symbolizer_free(sym);
	lock_model_release(&lm);
	return rc;
}
