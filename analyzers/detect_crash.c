/* detect_crash.c: the fault a process died of (a CRASH record), told by
 * what the address was: a freed block (use-after-free), just past a live
 * block (heap-overflow), or, as a `crash` finding, the NULL page,
 * read-only memory, nothing mapped, a division by zero, abort().
 * A stack overflow and a guard-mode fault have findings of their own.
 */
#include "detect_crash.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "detect_heap.h"
#include "heap_history.h"
#include "symbolize.h"
#include "text_out.h"
#include "trace_format.h"

/* How far past a block's end an access still counts as overrunning it. */
#define OVERRUN_SLACK 4096

static int add_block_stack(struct finding *f, const struct trace_model *m,
			   const char *label, uint32_t stack, uint32_t tid)
{
	if (!stack || stack > m->n_stacks)
		return 0;
	const struct trace_stack *s = &m->stacks[stack - 1];
	return finding_add_stack(f, label, tid, s->frames, s->n);
}

static const char *signal_name(unsigned sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGFPE: return "SIGFPE";
	case SIGILL: return "SIGILL";
	case SIGABRT: return "SIGABRT";
	default: return "a signal";
	}
}

/* The block the address belongs to when the crash came: the last one
 * allocated there before it; else a live block it lies just past. */
static const struct heap_life *block_of(const struct heap_history *h,
					uint64_t addr, uint64_t ts, bool *past)
{
	const struct heap_life *near = NULL;
	*past = false;
	for (size_t i = h->n; i-- > 0;) {
		const struct heap_life *b = &h->v[i];
		if (b->alloc_ts > ts)
			continue;
		if (heap_life_holds(b, addr))
			return b;
		bool live = !b->freed || b->free_ts > ts;
		if (!near && live && addr >= b->addr + b->size &&
		    addr < b->addr + b->size + OVERRUN_SLACK)
			near = b;
	}
	*past = near != NULL;
	return near;
}

static int heap_crash(const struct trace_model *m, const struct trace_event *e,
		      const struct heap_life *b, bool past,
		      struct finding_list *out)
{
	unsigned access = e->b & 0xff, sig = e->fn;
	char head[200], expl[700];
	struct finding *f;
	if (past) {
		uint64_t beyond = e->a - (b->addr + b->size) + 1;
		snprintf(head, sizeof(head),
			 "%s %" PRIu64 " byte%s past the end of a %" PRIu64
			 "-byte block; the program died of %s",
			 text_access(access), beyond, text_plural(beyond, "", "s"),
			 b->size, signal_name(sig));
		snprintf(expl, sizeof(expl),
			 "The program went beyond the end of a heap block it "
			 "had allocated, far enough to reach memory that was not "
			 "mapped, and the kernel stopped it there with %s. "
			 "Shorter overruns land silently in the next block or the "
			 "allocator's bookkeeping.", signal_name(sig));
		f = finding_add(out, "heap-overflow", SEV_ERROR, head, expl,
			"Check the index against the number of elements "
			"allocated (and allocate n * sizeof(element) bytes, plus "
			"one for a string's terminating '\\0').");
	} else {
		snprintf(head, sizeof(head),
			 "%s a freed %" PRIu64 "-byte block (offset %" PRIu64
			 "); the program died of %s", text_access(access),
			 b->size, e->a - b->addr, signal_name(sig));
		snprintf(expl, sizeof(expl),
			 "A pointer still pointed to this block after free() gave "
			 "it back, and the program used it. The allocator had "
			 "returned the block's pages to the kernel (a big block "
			 "is mapped on its own), so the access found nothing there "
			 "and the kernel stopped the program with %s. A smaller "
			 "block would have been reused instead, and the access "
			 "would have read or damaged someone else's data.",
			 signal_name(sig));
		f = finding_add(out, "use-after-free", SEV_ERROR, head, expl,
			"Set the pointer to NULL when you free the block (and "
			"check for NULL before using it), or free the block only "
			"when nothing uses it any more.");
	}
	if (!f ||
	    detect_add_fault_stack(f, m, e, e->c,
				   "the bad access (the program stopped here)") < 0 ||
	    (!past && add_block_stack(f, m, "freed here", b->free_stack,
				      b->free_tid) < 0) ||
	    add_block_stack(f, m, "allocated here", b->alloc_stack,
			    b->alloc_tid) < 0 ||
	    finding_add_hex(f, "address", e->a) < 0 || finding_add_hex(f, "block", b->addr) < 0 ||
	    finding_add_int(f, "size", (int64_t)b->size) < 0 ||
	    finding_add_int(f, "offset", (int64_t)(e->a - b->addr)) < 0 ||
	    finding_add_str(f, "mode", "crash") < 0 ||
	    finding_add_str(f, "signal", signal_name(sig)) < 0)
		return -1;
	return 0;
}

/* The words for a crash outside the heap: class, headline, why, fix. */
struct telling {
	const char *cls, *why, *fix;
	char head[200];
};

/* Who called abort(), by the functions on the stack: a failed assert(),
 * glibc's stack protector or fortified string functions, or its malloc
 * finding its data damaged; "raised" when abort() is not on the stack at
 * all (raise(SIGABRT) or a kill of its own process: timeout(1) ending as
 * the program it ran did). NULL for anything else. */
static const char *abort_cause(const struct trace_model *m,
			       const struct trace_event *e)
{
	/* most telling first: the stack protector reports through
	 * __fortify_fail too */
	static const struct { const char *fn, *cls; } callers[] = {
		{ "__stack_chk_fail", "stack-smashing" },
		{ "__assert_fail", "assert" },
		{ "__assert_fail_base", "assert" },
		{ "malloc_printerr", "heap-corruption" },
		{ "__fortify_fail", "buffer-overflow" },
		{ "__chk_fail", "buffer-overflow" },
	};
	const size_t n_callers = sizeof(callers) / sizeof(callers[0]);
	const struct trace_stack *s = trace_event_stack(m, e);
	struct symbolizer *sym = s ? symbolizer_new(m) : NULL;
	size_t best = n_callers;
	int named = 0, aborted = 0;
	for (uint32_t i = 0; sym && i < s->n && i < 16; i++) {
		const char *fn = symbolizer_lookup(sym, s->frames[i])->function;
		named += fn != NULL;
		aborted |= fn && !strcmp(fn, "abort");
		for (size_t k = 0; fn && k < best; k++)
			if (!strcmp(fn, callers[k].fn))
				best = k;
	}
	symbolizer_free(sym);
	if (best < n_callers)
		return callers[best].cls;
	/* only a stack whose frames have names can tell that abort is not
	 * among them */
	return named >= 2 && !aborted ? "raised" : NULL;
}

/* What each cause of an abort() is called and says, the plain abort last
 * (abort_cause's classes). */
static const struct {
	const char *cls, *head, *why, *fix;
} abort_tellings[] = {
	{ "assert", "an assert() failed",
	  "An assert() found its condition false and called "
	  "abort(); the message the program printed above says "
	  "which condition, in which file and line.",
	  "The condition states what the code counts on: find "
	  "which earlier step broke it (the frames below show the "
	  "way there)." },
	{ "stack-smashing",
	  "stack smashing: a local array was written past its end",
	  "The compiler put a guard value next to the function's "
	  "local arrays; on return it was changed, so something "
	  "wrote past the end of one of them (strcpy, gets, a loop "
	  "one step too far). The C library then called abort() "
	  "before the damaged return address could be used.",
	  "In the function that was returning (the first of "
	  "yours below __stack_chk_fail), bound every write to its "
	  "local arrays by their size (snprintf, strncpy, fgets)." },
	{ "buffer-overflow",
	  "buffer overflow caught by a checked string function",
	  "With _FORTIFY_SOURCE the C library's string and memory "
	  "functions know their destination's size; this call was "
	  "asked to write more than that, and it stopped the "
	  "program instead.",
	  "Give the call the destination's real size, or make "
	  "the destination big enough for what is copied." },
	{ "heap-corruption",
	  "the C library found its heap data damaged",
	  "malloc or free found the bookkeeping it keeps next to "
	  "each block broken: something wrote past the end of a "
	  "block (or before its start), or freed a pointer that "
	  "was not a block. It printed what it found and called "
	  "abort().",
	  "Run with `spy --guard`: an overrun then stops the "
	  "program at the very write; check the sizes used to "
	  "allocate and index the blocks near the call shown." },
	{ "raised", "the program sent itself SIGABRT",
	  "SIGABRT came from the program itself, but not from abort(): a "
	  "raise(SIGABRT), or a kill of its own process. A program that "
	  "runs another one (timeout, a shell) does this to end the way "
	  "the program it ran ended; a crash handler does it to pass a "
	  "crash on.",
	  "If this program ran another one, look at that one's trace: it "
	  "is the one that aborted. Otherwise the frames below show who "
	  "sent the signal." },
	{ "abort", "the program called abort()",
	  "abort() ends the program at once with SIGABRT. The C "
	  "library calls it when an assert() fails (the message "
	  "above the crash says which) or when it finds its own "
	  "data damaged; the stack shows who called it.",
	  "Read the message the program printed before it died, "
	  "then the frames below abort(): the first one in your "
	  "code is where the check failed." },
};

static void tell_abort(const char *cause, struct telling *t)
{
	size_t n = sizeof(abort_tellings) / sizeof(abort_tellings[0]), i = 0;
	while (i + 1 < n && !(cause && !strcmp(cause, abort_tellings[i].cls)))
		i++;
	t->cls = abort_tellings[i].cls;
	snprintf(t->head, sizeof(t->head), "%s", abort_tellings[i].head);
	t->why = abort_tellings[i].why;
	t->fix = abort_tellings[i].fix;
}

static void tell(const struct trace_model *m, const struct trace_event *e,
		 struct telling *t)
{
	unsigned sig = e->fn, access = e->b & 0xff;
	int code = (int)(int32_t)(uint32_t)(e->b >> 8);
	const char *sn = signal_name(sig);
	if (sig == SIGABRT) {
		tell_abort(abort_cause(m, e), t);
		return;
	}
	if (sig == SIGFPE) {
		t->cls = code == FPE_INTDIV ? "division-by-zero" : "arithmetic";
		snprintf(t->head, sizeof(t->head), "%s: %s", sn,
			 code == FPE_INTDIV ? "integer division by zero"
			 : code == FPE_INTOVF ? "integer overflow in a division"
			 : "arithmetic error");
		t->why = "The processor cannot divide an integer by zero (nor "
			 "the most negative int by -1): it traps, and the kernel "
			 "ends the program with SIGFPE.";
		t->fix = "Check the divisor (and the % operand) before dividing.";
		return;
	}
	if (sig == SIGILL) {
		t->cls = "illegal-instruction";
		snprintf(t->head, sizeof(t->head),
			 "%s: an illegal instruction at 0x%" PRIx64, sn, e->c);
		t->why = "The processor met bytes that are no instruction it "
			 "knows. That happens when a function pointer or a "
			 "return address was overwritten (a stack buffer "
			 "overflow), or when a compiler trap (__builtin_trap, "
			 "code after undefined behaviour) is reached.";
		t->fix = "Look for writes past the end of local arrays in the "
			 "frames shown, and for calls through pointers that "
			 "could be stale.";
		return;
	}
	const struct trace_module *r = trace_region_of(m, e->a);
	if (sig == SIGBUS && code == BUS_ADRERR && r && r->path.len &&
	    r->path.p[0] == '/') {
		t->cls = "past-end-of-file";
		snprintf(t->head, sizeof(t->head),
			 "%s: %s a mapped file's page past the file's end "
			 "(%.*s)", sn, text_access(access),
			 (int)(r->path.len < 80 ? r->path.len : 80), r->path.p);
		t->why = "The program mapped a file (mmap) and touched a page of "
			 "the mapping that lies beyond the file's end: the file "
			 "was shorter than the mapping, or was cut while mapped. "
			 "There is no byte there to read or write, so the kernel "
			 "sends SIGBUS.";
		t->fix = "Map no more than the file's size (fstat it first), and "
			 "do not shorten a file that is still mapped.";
		return;
	}
	if (sig == SIGSEGV && code == SI_KERNEL) {
		t->cls = "bad-pointer";
		snprintf(t->head, sizeof(t->head),
			 "%s: memory used through a pointer that is no address "
			 "at all", sn);
		t->why = "On x86-64 a pointer's top 17 bits must all be equal; "
			 "the processor refuses any other value before it looks "
			 "at memory, and the kernel does not tell which one it "
			 "was. Such a value is garbage used as a pointer: an "
			 "uninitialised variable, text or a number read as a "
			 "pointer, or a pointer read out of a freed block (libspy "
			 "fills freed blocks with 0xfd bytes, and "
			 "0xfdfdfdfdfdfdfdfd is such a value).";
		t->fix = "Find where the pointer used on the line shown was last "
			 "set. If it came out of a block already freed (a loop "
			 "that frees a list's node and then reads node->next), "
			 "read what you need before the free.";
	} else if (sig == SIGSEGV && e->a < 4096) {
		t->cls = "null-pointer";
		snprintf(t->head, sizeof(t->head),
			 "%s: %s address 0x%" PRIx64 ", through a NULL pointer",
			 sn, text_access(access), e->a);
		t->why = "The address is in the first page of memory, which is "
			 "never mapped so that NULL pointers fault: the program "
			 "used a pointer that was NULL (the offset is the field "
			 "or element it reached for).";
		t->fix = "Check pointers that can be NULL (what malloc, fopen, "
			 "getenv and searches return) before using them.";
	} else if (sig == SIGSEGV && r && access == TRACE_ACCESS_WRITE &&
		   !(r->prot & 2)) {
		t->cls = "read-only";
		snprintf(t->head, sizeof(t->head),
			 "%s: write to read-only memory at 0x%" PRIx64, sn, e->a);
		t->why = "The address is in memory mapped without write "
			 "permission: most often a string literal (char *s = "
			 "\"text\"; s[0] = 'T';) or a const table, which the "
			 "linker places in read-only pages.";
		t->fix = "Copy the text into an array you own (char s[] = "
			 "\"text\";) or into malloc'd memory before changing it.";
	} else if (sig == SIGSEGV && r) {
		t->cls = "protection";
		snprintf(t->head, sizeof(t->head),
			 "%s: %s 0x%" PRIx64 ", which this access may not touch",
			 sn, text_access(access), e->a);
		t->why = "The address is mapped, but not for this kind of "
			 "access (for instance code that is jumped to in a page "
			 "that may not run, or a guard page).";
		t->fix = "Check where the pointer came from: it points into "
			 "memory the program never meant to use that way.";
	} else {
		t->cls = "unmapped";
		snprintf(t->head, sizeof(t->head),
			 "%s: %s 0x%" PRIx64 ", where nothing is mapped", sn,
			 text_access(access), e->a);
		t->why = "No memory is mapped at the address: the pointer was "
			 "never set (a stack variable's leftover), was computed "
			 "wrongly, or points into memory given back long ago.";
		t->fix = "Initialise pointers when you declare them, and check "
			 "the arithmetic that made this one.";
	}
}

/* The free the thread that died of abort() made last, when glibc's free
 * called from that very place is what aborted (a return address of the
 * free's stack is on the abort's), else NULL. libspy records a free
 * before it passes it on. */
static const struct trace_event *aborting_free(const struct trace_model *m,
					       const struct trace_event *e)
{
	const struct trace_event *f = NULL;
	for (const struct trace_event *x = e; x-- > m->events;)
		if (x->tid == e->tid && x->kind == TRACE_FREE) {
			f = x;
			break;
		}
	const struct trace_stack *fs = f ? trace_event_stack(m, f) : NULL;
	const struct trace_stack *cs = trace_event_stack(m, e);
	if (!fs || !cs)
		return NULL;
	for (uint32_t i = 0; i < fs->n && i < 2; i++)
		for (uint32_t k = 0; k < cs->n; k++)
			if (cs->frames[k] == fs->frames[i])
				return f;
	return NULL;
}

/* glibc aborted in a free of a block freed before and not handed out
 * since: a double free, the first free's block having left the
 * quarantine (libspy passed the second on, glibc found it). 1 when that
 * finding was made, 0 when the abort was something else, -1. */
static int late_double_free(const struct trace_model *m,
			    const struct trace_event *e,
			    const struct heap_history *h,
			    struct finding_list *out)
{
	const struct trace_event *fr = aborting_free(m, e);
	const struct heap_life *b = NULL;
	for (size_t i = h->n; fr && i-- > 0;)
		if (h->v[i].addr == fr->a && h->v[i].alloc_ts <= fr->ts) {
			b = &h->v[i];
			break;
		}
	if (!b || !b->freed || b->free_ts >= fr->ts)
		return 0;
	char head[200];
	snprintf(head, sizeof(head),
		 "free() of a %" PRIu64 "-byte block that was already freed; "
		 "the program died of SIGABRT", b->size);
	struct finding *f = finding_add(out, "double-free", SEV_ERROR, head,
		"The same block was given back to the allocator twice. After "
		"the first free libspy had given the block back to the "
		"allocator (it had left libspy's quarantine, or was too big "
		"to be held there), so the second free reached glibc, which "
		"found it, printed \"free(): double free detected\" (or "
		"another complaint about its data) and called abort(). Had the "
		"memory been handed out again in between, this free would "
		"have destroyed another object instead.",
		"Free each block exactly once: decide which part of the code "
		"owns it, and set the pointer to NULL right after freeing it "
		"(free(NULL) does nothing).");
	if (!f ||
	    detect_add_fault_stack(f, m, e, e->c,
				   "second free (glibc aborted here)") < 0 ||
	    add_block_stack(f, m, "first free", b->free_stack, b->free_tid) < 0 ||
	    add_block_stack(f, m, "allocated here", b->alloc_stack,
			    b->alloc_tid) < 0 ||
	    finding_add_hex(f, "address", b->addr) < 0 ||
	    finding_add_int(f, "size", (int64_t)b->size) < 0 ||
	    finding_add_str(f, "passed_on", "yes") < 0 ||
	    finding_add_str(f, "signal", "SIGABRT") < 0)
		return -1;
	return 1;
}

static int crash(const struct trace_model *m, const struct trace_event *e,
		 const struct heap_history *h, struct finding_list *out)
{
	bool past = false;
	const struct heap_life *b = NULL;
	if ((e->fn == SIGSEGV || e->fn == SIGBUS) && e->a >= 4096)
		b = block_of(h, e->a, e->ts, &past);
	if (b && (past || (b->freed && b->free_ts <= e->ts)))
		return heap_crash(m, e, b, past, out);
	if (e->fn == SIGABRT) {
		const char *cause = abort_cause(m, e);
		int rc = cause && !strcmp(cause, "heap-corruption")
			? late_double_free(m, e, h, out) : 0;
		if (rc)
			return rc < 0 ? -1 : 0;
	}
	struct telling t;
	tell(m, e, &t);
	struct finding *f = finding_add(out, "crash", SEV_ERROR, t.head, t.why,
					t.fix);
	if (!f ||
	    detect_add_fault_stack(f, m, e, e->c,
				   e->fn == SIGABRT ? "where abort() was called"
				   : "the fault (the program stopped here)") < 0 ||
	    finding_add_str(f, "class", t.cls) < 0 ||
	    finding_add_str(f, "signal", signal_name(e->fn)) < 0)
		return -1;
	/* the kernel gives no address for a pointer that is none */
	if (strcmp(t.cls, "bad-pointer") && finding_add_hex(f, "address", e->a) < 0)
		return -1;
	return 0;
}

int detect_crash(const struct trace_model *m, struct finding_list *out)
{
	const struct trace_event *last = NULL;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		/* those faults have findings of their own (a fault on a
		 * quarantined block's pages is not: the program went on) */
		if (e->kind == TRACE_STACK_OVERFLOW ||
		    (e->kind == TRACE_GUARD_FAULT && e->fn < TRACE_FAULT_HELD_READ))
			return 0;
		if (e->kind == TRACE_CRASH)
			last = e;
	}
	if (!last)
		return 0;
	struct heap_history h = { 0 };
	if (heap_history_build(m, &h) < 0)
		return -1;
	int rc = crash(m, last, &h, out);
	heap_history_release(&h);
	return rc;
}
