/* detect_heap.c: findings from the heap checks (heap_checks.h). */
#include <stdbool.h>
#include "detect_heap.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "heap_checks.h"
#include "frag_out.h"
#include "heap_frag.h"
#include "symbolize.h"
#include "text_out.h"
#include "trace_decode.h"
#include "trace_format.h"

static int add_stack(struct finding *f, const struct trace_model *m,
		     const char *label, const struct trace_event *e)
{
	if (!e)
		return 0;
	const struct trace_stack *s = trace_event_stack(m, e);
	return finding_add_stack(f, label, e->tid, s ? s->frames : NULL,
				 s ? s->n : 0);
}

static const char *fn_name(unsigned fn)
{
	return fn < TRACE_FN_MAX ? trace_alloc_fn_name(fn) : "free";
}

static int double_free(const struct trace_model *m, const struct heap_issue *is,
		       struct finding_list *out)
{
	const struct trace_event *e = is->e;
	char head[200];
	uint64_t size = is->alloc ? is->alloc->c : 0;
	snprintf(head, sizeof(head),
		 "%s() of a %" PRIu64 "-byte block that was already freed",
		 fn_name(e->fn), size);
	struct finding *f = finding_add(out, "double-free", SEV_ERROR, head,
		"The same block was given back to the allocator twice. After "
		"the first free the allocator may already have handed the "
		"memory to someone else, so the second free can destroy "
		"another object or the allocator's own bookkeeping; glibc "
		"usually stops the program with \"free(): double free "
		"detected\". libspy did not pass the second free on to the "
		"allocator, so the program could run on and finish.",
		"Free each block exactly once: decide which part of the code "
		"owns it, and set the pointer to NULL right after freeing it "
		"(free(NULL) does nothing).");
	if (!f || add_stack(f, m, "second free (not passed on to the allocator)", e) < 0 ||
	    add_stack(f, m, "first free", is->freed) < 0 ||
	    add_stack(f, m, "allocated here", is->alloc) < 0 ||
	    finding_add_hex(f, "address", e->a) < 0 ||
	    finding_add_int(f, "size", (int64_t)size) < 0 ||
	    finding_add_str(f, "passed_on", "no") < 0)
		return -1;
	return 0;
}

/* Eight bytes of the quarantine's fill (spy_quarantine.h): a pointer read
 * out of a freed block. */
#define FREED_FILL_WORD 0xfdfdfdfdfdfdfdfdull

/* 1 when addr lies in memory mapped without write permission. */
static bool read_only(const struct trace_model *m, uint64_t addr)
{
	const struct trace_module *r = trace_region_of(m, addr);
	return r && r->prot && !(r->prot & 2);
}

/* 1 when addr starts memory mapped from no file (the end map's), where
 * no allocator's header fits before it. */
static bool anonymous_mapping(const struct trace_model *m, uint64_t addr)
{
	const struct trace_module *r = trace_region_of(m, addr);
	return r && !r->path.len && addr - r->start < 16;
}

static int invalid_free(const struct trace_model *m, const struct heap_issue *is,
			struct finding_list *out)
{
	const struct trace_event *e = is->e;
	char head[200];
	const char *what, *why;
	switch (e->c) {
	case TRACE_BAD_STACK:
		what = "the address of a local variable (on the stack)";
		why = "Only pointers returned by malloc, calloc, realloc and "
		      "their kin may be freed. A local variable lives in its "
		      "function's stack frame and disappears by itself when "
		      "the function returns.";
		break;
	case TRACE_BAD_GLOBAL:
		if (read_only(m, e->a)) {
			what = "a string literal or other read-only data";
			why = "Only pointers returned by malloc, calloc, realloc "
			      "and their kin may be freed. This address is in "
			      "the program's read-only data, where the compiler "
			      "puts string literals (char *s = \"text\") and "
			      "const tables: it was never allocated.";
			break;
		}
		what = "the address of a global or static variable";
		why = "Only pointers returned by malloc, calloc, realloc and "
		      "their kin may be freed. A global or static variable "
		      "lives as long as the program; it was never allocated.";
		break;
	case TRACE_BAD_INTERIOR:
		what = "a pointer into the middle of a heap block";
		why = "free needs the very pointer malloc returned: the "
		      "allocator keeps its bookkeeping just before it. A "
		      "pointer to a field or an element inside the block is "
		      "not the block.";
		break;
	default:
		what = "an address that was never allocated";
		if (anonymous_mapping(m, e->a)) {
			what = "memory mapped with mmap(), not allocated";
			why = "Only pointers returned by malloc, calloc, realloc "
			      "and their kin may be freed. This address is in "
			      "memory mapped on its own (mmap, or a library "
			      "that maps memory): munmap gives it back.";
			break;
		}
		why = e->a == FREED_FILL_WORD
		      ? "Only pointers returned by malloc, calloc, realloc and "
			"their kin may be freed. This value is the pattern "
			"libspy fills freed blocks with (0xfd bytes): the "
			"pointer was read out of a block after that block was "
			"freed, a use after free (such as a loop that frees a "
			"list's node, then reads node->next)."
		      : "Only pointers returned by malloc, calloc, realloc and "
			"their kin may be freed. This address is not in any "
			"block: an uninitialised or corrupted pointer.";
		break;
	}
	snprintf(head, sizeof(head), "%s() of %s", fn_name(e->fn), what);
	char expl[600];
	snprintf(expl, sizeof(expl),
		 "%s glibc usually stops the program with \"free(): invalid "
		 "pointer\". libspy did not pass this free on to the "
		 "allocator, so the program could run on and finish.", why);
	struct finding *f = finding_add(out, "invalid-free", SEV_ERROR, head,
		expl,
		e->c == TRACE_BAD_INTERIOR
		? "Free the pointer that malloc returned (keep it, or "
		  "compute it back from the field's address), not a pointer "
		  "into the block."
		: e->a == FREED_FILL_WORD
		? "Read what you still need from a block (node->next) before "
		  "you free it."
		: "Free only what malloc and its kin returned; let local "
		  "and global variables be.");
	if (!f || add_stack(f, m, "bad free (not passed on to the allocator)", e) < 0 ||
	    finding_add_hex(f, "address", e->a) < 0 ||
	    finding_add_str(f, "address_kind", heap_bad_free_name((unsigned)e->c)) < 0 ||
	    finding_add_str(f, "passed_on", "no") < 0)
		return -1;
	if (e->c == TRACE_BAD_INTERIOR) {
		if (add_stack(f, m, "the block it points into was allocated here",
			      is->alloc) < 0 ||
		    finding_add_hex(f, "block", e->b) < 0 ||
		    finding_add_int(f, "offset", (int64_t)(e->a - e->b)) < 0)
			return -1;
	}
	return 0;
}

static int use_after_free(const struct trace_model *m,
			  const struct heap_issue *is, struct finding_list *out)
{
	const struct trace_event *e = is->e;
	uint64_t changed = 0, first = 0, last = 0;
	/* the size asked for; the record has the allocator's */
	uint64_t size = is->alloc ? is->alloc->c : e->b;
	char bytes[3 * 32 + 1] = "";
	if (e->c < m->n_strings) {
		const struct trace_str *s = &m->strings[e->c];
		struct trace_cursor c = trace_cursor_make((const uint8_t *)s->p, s->len);
		if (trace_get_varint(&c, &changed) == 0 &&
		    trace_get_varint(&c, &first) == 0 &&
		    trace_get_varint(&c, &last) == 0) {
			char *p = bytes;
			uint8_t b;
			/* the bytes from the first changed one to the last
			 * (at most 16), as the program left them */
			uint64_t show = last - first + 1 < 16 ? last - first + 1 : 16;
			for (size_t n = 0; n < show && trace_get_u8(&c, &b) == 0; n++)
				p += sprintf(p, n ? " %02x" : "%02x", b);
		}
	}
	char head[200];
	snprintf(head, sizeof(head),
		 "write to a freed %" PRIu64 "-byte block (bytes %" PRIu64
		 "..%" PRIu64 ")", size, first, last);
	/* a block realloc moved away from: the old pointer kept */
	bool moved = is->freed && is->freed->kind == TRACE_REALLOC;
	char expl[700];
	snprintf(expl, sizeof(expl), "%s libspy keeps freed "
		"blocks aside for a while, filled with a pattern, and found "
		"the pattern changed. Without libspy the write would have "
		"landed in memory the allocator hands to someone else: the "
		"damage shows up later, somewhere else. This mode sees the "
		"write only afterwards; `spy --guard` stops the program at "
		"the very instruction.", moved
		? "realloc() moved this block to a new address and gave the "
		  "old one back, and the program wrote through a pointer it "
		  "kept to the old one. realloc may move a block whenever it "
		  "grows: without libspy it may have grown in place, and the "
		  "old pointer worked by luck."
		: "A pointer still pointed to this block after free() gave "
		  "it back, and the program wrote through it.");
	struct finding *f = finding_add(out, "use-after-free", SEV_ERROR, head,
		expl, moved
		? "Use only the pointer realloc returns (p = realloc(p, n), "
		  "after checking it for NULL), and update every other "
		  "pointer into the block."
		: "Set the pointer to NULL when you free the block (and check "
		  "for NULL before using it), or free the block only when "
		  "nothing uses it any more.");
	if (!f || add_stack(f, m, moved ? "moved away by realloc here"
			    : "freed here", is->freed) < 0 ||
	    add_stack(f, m, "allocated here", is->alloc) < 0 ||
	    finding_add_hex(f, "address", e->a) < 0 ||
	    finding_add_int(f, "size", (int64_t)size) < 0 ||
	    finding_add_int(f, "first_offset", (int64_t)first) < 0 ||
	    finding_add_int(f, "last_offset", (int64_t)last) < 0 ||
	    finding_add_int(f, "bytes_changed", (int64_t)changed) < 0 ||
	    finding_add_str(f, "bytes_found", bytes) < 0)
		return -1;
	return 0;
}

static const char *alloc_name(uint64_t family)
{
	return family == 1 ? "new" : family == 2 ? "new[]" : "malloc";
}

static const char *free_name(uint64_t family)
{
	return family == 1 ? "delete" : family == 2 ? "delete[]" : "free";
}

/* Whether fn is `operator OP(...)` or `operator OP[](...)`, a class's
 * own included. */
static bool is_operator(const char *fn, const char *op)
{
	const char *p = fn ? strstr(fn, op) : NULL;
	if (!p || (p != fn && (p - fn < 2 || p[-1] != ':' || p[-2] != ':')))
		return false;
	p += strlen(op);
	if (p[0] == '[' && p[1] == ']')
		p += 2;
	return *p == '(';
}

/* Whether a malloc or a free was called by an operator new or delete
 * that libspy does not see (one linked into a library of its own, as
 * LLVM's and Rust's toolchains do): the function that called it, read
 * from the stack. Whether the operator was the array form cannot be
 * told: new[] commonly calls or jumps to new. */
static bool hidden_operator(const struct trace_model *m,
			    struct symbolizer **sym,
			    const struct trace_event *e, const char *op)
{
	const struct trace_stack *s = e ? trace_event_stack(m, e) : NULL;
	if (!s || !s->n || (!*sym && !(*sym = symbolizer_new(m))))
		return false;
	const struct sym_frame *f = symbolizer_lookup(*sym, s->frames[0]);
	return (f->n_inl && is_operator(f->inl[0].function, op)) ||
	       is_operator(f->function, op);
}

static int mismatched_free(const struct trace_model *m,
			   const struct heap_issue *is, struct finding_list *out,
			   struct symbolizer **sym)
{
	const struct trace_event *e = is->e;
	/* the family it was released as; above it, how far into the block
	 * the pointer released was (new[]'s element count in front) */
	uint64_t freed_as = e->c & 0xff, offset = e->c >> 8;
	/* malloc called by a hidden operator new, released with delete or
	 * delete[] (or new and new[] released by a hidden delete through
	 * free): C++ on both sides, as the program wrote it */
	if ((!e->b && freed_as &&
	     hidden_operator(m, sym, is->alloc, "operator new")) ||
	    (!freed_as && e->b && !offset &&
	     hidden_operator(m, sym, e, "operator delete")))
		return 0;
	char head[200], expl[900], fix[300];
	snprintf(head, sizeof(head), "memory from %s released with %s",
		 alloc_name(e->b), free_name(freed_as));
	if (offset)
		snprintf(expl, sizeof(expl),
			 "Each way of allocating has its own way of releasing: "
			 "malloc with free, new with delete, new[] with "
			 "delete[]. This array came from new[], of a type with "
			 "a destructor: new[] keeps the number of elements in "
			 "the %" PRIu64 " bytes in front of the first element "
			 "and hands out the first element, so %s got a pointer "
			 "%" PRIu64 " bytes into the block and ran at most one "
			 "destructor. glibc usually stops the program there with "
			 "\"free(): invalid pointer\"; libspy gave the whole "
			 "block back, so the program could run on and finish.",
			 offset, free_name(freed_as), offset);
	else
		snprintf(expl, sizeof(expl),
			 "Each way of allocating has its own way of releasing: "
			 "malloc with free, new with delete, new[] with "
			 "delete[]. This block came from %s and went back "
			 "through %s. With glibc and libstdc++ all of them end "
			 "in free(), so the program may seem fine, but it is "
			 "undefined behaviour: delete runs one destructor where "
			 "delete[] runs one per element, another allocator (or "
			 "a class with its own operator new) breaks, and for a "
			 "class with a destructor the pointers even differ. "
			 "libspy passed this one on.", alloc_name(e->b),
			 free_name(freed_as));
	snprintf(fix, sizeof(fix), "Release it with %s, or allocate it the "
		 "way it is released (better still, let a std::vector, "
		 "std::unique_ptr or std::string own it).",
		 free_name(e->b));
	struct finding *f = finding_add(out, "mismatched-free", SEV_ERROR,
					head, expl, fix);
	if (!f || add_stack(f, m, "released here", e) < 0 ||
	    add_stack(f, m, "allocated here", is->alloc) < 0 ||
	    finding_add_hex(f, "address", e->a) < 0 ||
	    finding_add_str(f, "allocated_with", alloc_name(e->b)) < 0 ||
	    finding_add_str(f, "released_with", free_name(freed_as)) < 0 ||
	    (offset && finding_add_int(f, "offset", (int64_t)offset) < 0))
		return -1;
	return 0;
}

/* A block's header found written over: the block before it was written
 * past its end. */
static int heap_damage(const struct trace_model *m, const struct heap_issue *is,
		       struct finding_list *out)
{
	const struct trace_event *e = is->e, *al = is->alloc;
	char head[200];
	if (al && e->a > e->b)
		snprintf(head, sizeof(head), "a %" PRIu64 "-byte block was "
			 "written past its end, over the next block's header",
			 al->c);
	else
		snprintf(head, sizeof(head), "the header before a heap block "
			 "was written over");
	const char *when = e->stack ? "freed"
		: "checked (when it left libspy's quarantine, or at exit)";
	char expl[800];
	snprintf(expl, sizeof(expl),
		 "glibc keeps a header of 16 bytes just before every block: "
		 "the block's size and flags. The header of the block at "
		 "0x%" PRIx64 " was found changed when that block was %s, so "
		 "%s. Without libspy glibc notices this only if the damaged "
		 "block is freed (it then prints 'free(): invalid size' or the "
		 "like and aborts); otherwise the heap stays silently broken.",
		 e->a, when, al
		 ? "something wrote past the end of the block before it "
		   "(allocated here)"
		 : "something wrote just before that block's start (an index "
		   "of -1, say) or through a stray pointer: the block before "
		   "it, if any, was not written past its end (it is not next "
		   "to it, or the bytes past its end are as libspy left them)");
	struct finding *f = finding_add(out, "heap-overflow", SEV_ERROR, head,
		expl,
		"Check the index against the number of elements allocated "
		"(and allocate n * sizeof(element) bytes, plus one for a "
		"string's terminating '\\0'). spy --guard stops the program "
		"at the very write.");
	if (!f || add_stack(f, m, "the block written past its end, allocated here", al) < 0 ||
	    (e->stack && add_stack(f, m, "found at this free", e) < 0) ||
	    finding_add_hex(f, "damaged_block", e->a) < 0 ||
	    finding_add_hex(f, "header", e->c) < 0 ||
	    (al && finding_add_hex(f, "address", e->b) < 0) ||
	    (al && finding_add_int(f, "size", (int64_t)al->c) < 0) ||
	    finding_add_str(f, "found", e->stack ? "at its free" : "at a check") < 0)
		return -1;
	return 0;
}

/* A block's slack found changed: libspy had filled the bytes past the size
 * asked for (trace_canary_byte). The record has the block's last bytes;
 * the allocation has the size asked for. */
static int heap_overrun(const struct trace_model *m, const struct heap_issue *is,
			struct finding_list *out)
{
	const struct trace_event *e = is->e, *al = is->alloc;
	const struct trace_str *tail = e->c < m->n_strings ? &m->strings[e->c] : NULL;
	uint64_t usable = e->b, asked = al ? al->c : 0;
	/* A tail longer than the block is not the block's (a damaged
	 * record): there is nothing to compare. */
	if (tail && tail->len > usable)
		tail = NULL;
	uint64_t tail_from = tail ? usable - tail->len : usable;
	/* the changed bytes past the end that the record shows, against
	 * the canary libspy wrote (trace_format.h); only those bytes are
	 * visited, so a huge usable size costs no more than the tail */
	int64_t first = -1, last = -1;
	uint64_t from = asked > tail_from ? asked : tail_from;
	for (uint64_t off = from; al && tail && off < usable; off++) {
		int want = trace_canary_byte(asked, usable, off);
		if (want < 0)
			continue;
		if ((uint8_t)tail->p[off - tail_from] != want) {
			if (first < 0)
				first = (int64_t)off;
			last = (int64_t)off;
		}
	}
	char head[200], expl[900];
	if (al && first >= 0 && (uint64_t)first == asked)
		snprintf(head, sizeof(head), "a %" PRIu64 "-byte block was "
			 "written past its end (its byte %" PRIu64 ", just "
			 "after the last one, became 0x%02x)", asked, asked,
			 (uint8_t)tail->p[asked - tail_from]);
	else if (al)
		snprintf(head, sizeof(head), "a %" PRIu64 "-byte block was "
			 "written past its end", asked);
	else
		snprintf(head, sizeof(head), "a block was written past its end");
	snprintf(expl, sizeof(expl),
		 "Bytes after the end of this block changed between its "
		 "allocation and when it was %s. The allocator rounds every "
		 "request up (glibc to 8 more than a multiple of 16, guard "
		 "mode to a multiple of 16), so a small overrun "
		 "lands in bytes nobody uses and goes unnoticed: no crash, no "
		 "message, until the size changes or another allocator is "
		 "used. libspy fills those bytes and checks them. A classic "
		 "cause: malloc(strlen(s)) then strcpy, which writes the "
		 "terminating '\\0' one byte past the end.",
		 e->stack ? "freed" : "checked at exit");
	struct finding *f = finding_add(out, "heap-overflow", SEV_ERROR, head,
		expl,
		"Allocate strlen(s) + 1 bytes for a copy of a string, and "
		"check indexes against the number of elements allocated. spy "
		"--guard stops the program at the very write (for blocks whose "
		"size is a multiple of 16).");
	if (!f || add_stack(f, m, "allocated here", al) < 0 ||
	    (e->stack && add_stack(f, m, "found when it was freed here", e) < 0) ||
	    finding_add_hex(f, "address", e->a) < 0 ||
	    (al && finding_add_int(f, "size", (int64_t)asked) < 0) ||
	    (first >= 0 && finding_add_int(f, "first_offset", first) < 0) ||
	    (last >= 0 && finding_add_int(f, "bytes_past_end", last - (int64_t)asked + 1) < 0) ||
	    finding_add_str(f, "found", e->stack ? "at its free" : "at exit") < 0)
		return -1;
	return 0;
}

/* The faulting access's stack: the faulting instruction itself (as pc + 1,
 * since frames are looked up as return addresses), then its callers as
 * the handler's unwinding found them past the signal frame. */
int detect_add_fault_stack(struct finding *f, const struct trace_model *m,
			   const struct trace_event *e, uint64_t pc,
			   const char *label)
{
	const struct trace_stack *s = trace_event_stack(m, e);
	uint64_t frames[TRACE_MAX_FRAMES + 1];
	size_t n = 0, from = 0;
	if (pc)
		frames[n++] = pc + 1;
	if (s) {
		for (uint32_t i = 0; pc && i < s->n; i++)
			if (s->frames[i] == pc || s->frames[i] == pc + 1) {
				from = i + 1;
				break;
			}
		for (uint32_t i = (uint32_t)from; i < s->n && n <= TRACE_MAX_FRAMES; i++)
			frames[n++] = s->frames[i];
	}
	return finding_add_stack(f, label, e->tid, frames, n);
}

static int guard_fault(const struct trace_model *m, const struct heap_issue *is,
		       struct finding_list *out)
{
	const struct trace_event *e = is->e;
	uint64_t size = is->alloc ? is->alloc->c : 0;
	bool past = e->fn == TRACE_FAULT_PAST_END;
	bool held = e->fn >= TRACE_FAULT_HELD_READ;
	bool by_call = e->fn >= TRACE_FAULT_SYSCALL_READ;
	bool write = e->fn == TRACE_FAULT_HELD_WRITE ||
		     e->fn == TRACE_FAULT_SYSCALL_WRITE;
	char head[200];
	struct finding *f;
	if (by_call) {
		snprintf(head, sizeof(head),
			 "freed %" PRIu64 "-byte block given to a system call "
			 "(%s at offset %" PRId64 ")", size,
			 write ? "written" : "read", (int64_t)(e->a - e->b));
		f = finding_add(out, "use-after-free", SEV_ERROR, head,
			write ? "A pointer still pointed to this block after "
			"free() gave it back, and the program passed it to a "
			"call that fills a buffer (read, recv, ...): the kernel "
			"wrote into the freed block. libspy keeps freed blocks "
			"aside for a while with the inner pages of a big one "
			"inaccessible, so the call failed; libspy made the pages "
			"accessible again and made the call once more, so the "
			"program went on as it would have: without libspy the "
			"data would have landed in memory the allocator hands "
			"to someone else."
			: "A pointer still pointed to this block after free() "
			"gave it back, and the program passed it to a call that "
			"sends a buffer (write, send, ...): the kernel read the "
			"freed block. libspy keeps freed blocks aside for a "
			"while with the inner pages of a big one inaccessible, "
			"so the call failed; libspy made the pages accessible "
			"again and made the call once more, so the program went "
			"on as it would have: without libspy it would have sent "
			"whatever the allocator's next user put there.",
			"Set the pointer to NULL when you free the block (and "
			"check for NULL before using it), or free the block "
			"only when nothing uses it any more.");
	} else if (held) {
		snprintf(head, sizeof(head),
			 "%s a freed %" PRIu64 "-byte block (offset %" PRId64 ")",
			 write ? "write to" : "read of", size,
			 (int64_t)(e->a - e->b));
		f = finding_add(out, "use-after-free", SEV_ERROR, head,
			write ? "A pointer still pointed to this block after "
			"free() gave it back, and the program wrote through it. "
			"libspy keeps freed blocks aside for a while; the inner "
			"pages of a big one are made inaccessible, so the write "
			"was caught at this very instruction. libspy then made "
			"the pages accessible again and the program went on, as "
			"it would have: without libspy the write would have "
			"landed in memory the allocator hands to someone else."
			: "A pointer still pointed to this block after free() "
			"gave it back, and the program read through it. libspy "
			"keeps freed blocks aside for a while; the inner pages "
			"of a big one are made inaccessible, so the read was "
			"caught at this very instruction. libspy then made the "
			"pages accessible again and the program went on, as it "
			"would have: without libspy it would have read whatever "
			"the allocator's next user put there.",
			"Set the pointer to NULL when you free the block (and "
			"check for NULL before using it), or free the block "
			"only when nothing uses it any more.");
	} else if (past) {
		snprintf(head, sizeof(head),
			 "access %" PRIu64 " byte%s past the end of a %" PRIu64
			 "-byte block", e->a - (e->b + size) + 1,
			 text_plural(e->a - (e->b + size) + 1, "", "s"), size);
		f = finding_add(out, "heap-overflow", SEV_ERROR, head,
			"The program read or wrote beyond the end of a heap "
			"block. In guard mode every block ends against an "
			"inaccessible page, so the first access past the end "
			"stopped the program at that very instruction (it then "
			"died of the SIGSEGV, as it would have). Without libspy "
			"the access would have touched the next block or the "
			"allocator's bookkeeping, silently.",
			"Check the index against the number of elements "
			"allocated (and allocate n * sizeof(element) bytes, plus "
			"one for a string's terminating '\\0').");
	} else {
		snprintf(head, sizeof(head),
			 "access to a freed %" PRIu64 "-byte block (offset %" PRId64 ")",
			 size, (int64_t)(e->a - e->b));
		f = finding_add(out, "use-after-free", SEV_ERROR, head,
			"The program used a pointer to a block after free() had "
			"given the block back. In guard mode a freed block's "
			"pages are made inaccessible, so the access stopped the "
			"program at that very instruction (it then died of the "
			"SIGSEGV, as it would have). Without libspy the access "
			"would have read or damaged memory the allocator had "
			"already handed to someone else.",
			"Set the pointer to NULL when you free the block (and "
			"check for NULL before using it), or free the block "
			"only when nothing uses it any more.");
	}
	if (!f || detect_add_fault_stack(f, m, e, e->c, e->fn >= TRACE_FAULT_HELD_READ
				   ? "the bad access"
				   : "the bad access (the program stopped here)") < 0 ||
	    (!past && add_stack(f, m, "freed here", is->freed) < 0) ||
	    add_stack(f, m, "allocated here", is->alloc) < 0 ||
	    finding_add_hex(f, "address", e->a) < 0 ||
	    finding_add_hex(f, "block", e->b) < 0 ||
	    finding_add_int(f, "size", (int64_t)size) < 0 ||
	    finding_add_int(f, "offset", (int64_t)(e->a - e->b)) < 0 ||
	    finding_add_str(f, "mode", held ? "quarantine" : "guard") < 0 ||
	    (held && finding_add_str(f, "access", write ? "write" : "read") < 0) ||
	    (by_call && finding_add_str(f, "by", "system call") < 0))
		return -1;
	return 0;
}

/* The note libspy writes when a signal handler's long jump left one of
 * its hooks half way (spy_guard_abandoned). */
#define HOOK_CUT_SHORT "a signal handler left one of libspy's hooks"

static bool hooks_cut_short(const struct trace_model *m)
{
	size_t len = strlen(HOOK_CUT_SHORT);
	for (size_t i = 0; i < m->n_notes; i++) {
		const struct trace_str *t = &m->notes[i].text;
		if (!m->notes[i].from_reader && t->len >= len &&
		    !memcmp(t->p, HOOK_CUT_SHORT, len))
			return true;
	}
	return false;
}

static int leaks(const struct trace_model *m, const struct heap_checks *hc,
		 struct finding_list *out)
{
	bool cut = hooks_cut_short(m);
	for (size_t i = 0; i < hc->n_groups; i++) {
		const struct leak_group *g = &hc->groups[i];
		if (g->cls != TRACE_LEAK_DEFINITE || g->runtime || g->unseen)
			continue;
		/* what this group's blocks took down with them */
		char head[200];
		snprintf(head, sizeof(head),
			 "%" PRIu64 " byte%s in %" PRIu64 " block%s definitely lost",
			 g->bytes, text_plural(g->bytes, "", "s"), g->blocks,
			 text_plural(g->blocks, "", "s"));
		struct finding *f = finding_add(out, "leak", SEV_WARNING, head,
			cut ? "These blocks were still allocated when the "
			"program ended, and libspy's scan of memory at exit "
			"found no pointer to them. In this run, though, a "
			"signal handler left libspy's hooks by a long jump "
			"(longjmp out of the handler): a free that such a "
			"jump cut short never reached the allocator, and its "
			"block shows here as well."
			: "These blocks were still allocated when the program "
			"ended, and libspy's scan of memory at exit (global "
			"variables, thread stacks, and every block reachable "
			"from them) found no pointer to them: the program had "
			"lost them, so it could never have freed them. Blocks "
			"a pointer still reaches are counted as still "
			"reachable instead (analyze leaks), and so are the C "
			"library's own buffers.",
			"Free each block when the program is done with it, "
			"before the last pointer to it is overwritten or goes "
			"out of scope.");
		if (!f)
			return -1;
		const struct trace_stack *s =
			g->stack ? &m->stacks[g->stack - 1] : NULL;
		if (finding_add_stack(f, "allocated here", 0,
				      s ? s->frames : NULL, s ? s->n : 0) < 0 ||
		    finding_add_int(f, "blocks", (int64_t)g->blocks) < 0 ||
		    finding_add_int(f, "bytes", (int64_t)g->bytes) < 0 ||
		    finding_add_str(f, "class", "definitely lost") < 0 ||
		    finding_add_hex(f, "example_address", g->example) < 0)
			return -1;
	}
	return 0;
}

static void mib(char *buf, size_t n, uint64_t v);
static int frag_details(struct finding *f, const struct heap_frag *h);

/* What to do about holes, whichever allocator left them. */
static const char frag_hint[] =
	"Keep blocks of different lifetimes apart: allocate long-lived "
	"objects from a pool or arena of their own, so that the "
	"short-lived ones, when freed, leave one large free region "
	"instead of many small holes.";

/* jemalloc's version: free regions stranded in partly used slabs. */
static int slab_fragmentation(const struct heap_frag *h,
			      struct finding_list *out)
{
	const struct heap_info *i = &h->info;
	char head[200], a[32], b[32], expl[900];
	mib(a, sizeof(a), i->je_region_bytes);
	mib(b, sizeof(b), i->je_active);
	snprintf(head, sizeof(head), "%s free in %" PRIu64 " regions of "
		 "jemalloc's slabs, between live blocks", a, i->je_regions);
	snprintf(expl, sizeof(expl),
		 "%s %s of the %s jemalloc had in use (its active pages) was "
		 "free: %" PRIu64 " regions of slabs that still hold live "
		 "blocks (%.0f%%). jemalloc cuts each slab into blocks of one "
		 "size class and gives a slab back only when every block in "
		 "it is freed; until then its free regions serve requests of "
		 "that class alone. This is reported when at least 1 MiB is "
		 "free in 16 or more regions, a quarter or more of what "
		 "jemalloc has in use.",
		 h->fail ? "When the allocation failed," : "At the end,", a, b,
		 i->je_regions, 100.0 * (double)i->je_region_bytes /
		 (double)i->je_active);
	struct finding *f = finding_add(out, "fragmentation",
		h->fail ? SEV_WARNING : SEV_INFO, head, expl, frag_hint);
	if (!f ||
	    finding_add_str(f, "allocator", "jemalloc") < 0 ||
	    finding_add_int(f, "live_bytes", (int64_t)h->live_bytes) < 0 ||
	    finding_add_int(f, "active_bytes", (int64_t)i->je_active) < 0 ||
	    finding_add_int(f, "free_regions", (int64_t)i->je_regions) < 0 ||
	    finding_add_int(f, "free_region_bytes",
			    (int64_t)i->je_region_bytes) < 0)
		return -1;
	return 0;
}

static int fragmentation(const struct trace_model *m, const struct heap_frag *h,
			 struct finding_list *out)
{
	(void)m;
	if (h->info.allocator == HEAP_JEMALLOC)
		return slab_fragmentation(h, out);
	char head[200], a[32], b[32];
	mib(a, sizeof(a), h->free_bytes);
	snprintf(head, sizeof(head),
		 "%s free in %" PRIu64 " holes, none over %" PRIu64 " bytes",
		 a, h->holes, h->largest_hole);
	mib(b, sizeof(b), h->heap_end - h->heap_start);
	char expl[900];
	snprintf(expl, sizeof(expl),
		 "%s %s of the brk heap's %s was free, but cut into %" PRIu64
		 " holes by the live blocks between them: external "
		 "fragmentation %.0f%% (1 - largest free region / free bytes). "
		 "A request bigger than the largest hole cannot use any of "
		 "that memory. This is reported when at least 1 MiB is free in "
		 "16 or more holes, that is a quarter or more of the heap, and "
		 "the largest free region is at most half of it.",
		 h->fail ? "When the allocation failed," : "At the end,",
		 a, b, h->holes, h->external * 100);
	/* Holes left at the end hurt no one in that run: worth knowing, not a
	 * warning. Holes that made an allocation fail are. */
	struct finding *f = finding_add(out, "fragmentation",
		h->fail ? SEV_WARNING : SEV_INFO, head, expl, frag_hint);
	if (!f || frag_details(f, h) < 0)
		return -1;
	return 0;
}

static void mib(char *buf, size_t n, uint64_t v)
{
	snprintf(buf, n, "%.1f MiB", (double)v / (1 << 20));
}

static int frag_details(struct finding *f, const struct heap_frag *h)
{
	char strip[HEAP_FRAG_STRIP + 3];
	snprintf(strip, sizeof(strip), "[%s]", h->strip);
	if (finding_add_int(f, "live_bytes", (int64_t)h->live_bytes) < 0 ||
	    finding_add_int(f, "heap_bytes", (int64_t)(h->heap_end - h->heap_start)) < 0 ||
	    finding_add_int(f, "free_bytes", (int64_t)h->free_bytes) < 0 ||
	    finding_add_int(f, "holes", (int64_t)h->holes) < 0 ||
	    finding_add_int(f, "largest_hole", (int64_t)h->largest_hole) < 0 ||
	    finding_add_int(f, "top_bytes", (int64_t)h->top_bytes) < 0 ||
	    finding_add_int(f, "external_fragmentation_pct",
			    (int64_t)(h->external * 100 + 0.5)) < 0 ||
	    finding_add_str(f, "heap", strip) < 0)
		return -1;
	if (h->info.valid &&
	    (finding_add_int(f, "as_limit", (int64_t)h->info.as_limit) < 0 ||
	     finding_add_int(f, "vm_size", (int64_t)h->info.vm_size) < 0))
		return -1;
	return 0;
}

/* No request this big can be met: the whole user address space of a
 * 64-bit Linux process on x86-64 (4-level page tables) is 128 TiB. */
#define ADDRESS_SPACE_BYTES ((uint64_t)1 << 47)
/* glibc's largest mmap threshold on 64 bits: a request this big always
 * gets a mapping of its own, whatever the brk heap's holes */
#define GLIBC_MMAP_ALWAYS ((uint64_t)32 << 20)

/* calloc(count, each) or reallocarray(p, count, each) whose product does
 * not fit in a size_t: the call refuses it, as it must; the arguments are
 * the bug. */
static int array_overflow(const struct trace_model *m,
			  const struct trace_event *e, struct finding_list *out)
{
	bool re = e->fn == TRACE_FN_REALLOCARRAY;
	char call[80], head[160], expl[700], signed_note[160] = "";
	frag_failed_call(call, sizeof(call), e);
	snprintf(head, sizeof(head), "%s returned NULL: count times size "
		 "does not fit in a size_t", call);
	uint64_t big = e->b > e->c ? e->b : e->c;
	if (big >> 63)
		snprintf(signed_note, sizeof(signed_note), " As a signed number "
			 "the %s is %" PRId64 ": a negative value turned into a "
			 "huge unsigned one.", e->b > e->c ? "count" : "size",
			 (int64_t)big);
	snprintf(expl, sizeof(expl),
		 "%s asks for count x size bytes, and %" PRIu64 " x %" PRIu64
		 " is more than 2^64 - 1, the most a size_t holds: %s refused "
		 "the call, as it must. (%s would not have: the product wraps "
		 "around to a small number, and the program gets a block far too "
		 "small for what it then writes.)%s",
		 re ? "reallocarray(p, count, size)" : "calloc(count, size)",
		 e->b, e->c, re ? "reallocarray" : "calloc",
		 re ? "realloc(p, count * size)" : "malloc(count * size)",
		 signed_note);
	struct finding *f = finding_add(out, "allocation-failure", SEV_ERROR,
		head, expl,
		"Check the count before the call (a negative or absurd value "
		"comes from a miscalculation or from input), and check every "
		"allocation for NULL.");
	char count[24], each[24];
	snprintf(count, sizeof(count), "%" PRIu64, e->b);
	snprintf(each, sizeof(each), "%" PRIu64, e->c);
	if (!f || add_stack(f, m, "the call that failed", e) < 0 ||
	    finding_add_json(f, "count", count) < 0 ||
	    finding_add_json(f, "each", each) < 0 ||
	    finding_add_str(f, "cause", re ? "reallocarray-overflow"
					: "calloc-overflow") < 0)
		return -1;
	return 0;
}

/* A request no allocator could ever meet: the size is the bug, not the
 * heap, and the heap's holes have nothing to say about it. */
static int impossible_request(const struct trace_model *m,
			      const struct trace_event *e,
			      struct finding_list *out)
{
	char call[80], head[200], expl[900], why[200];
	frag_failed_call(call, sizeof(call), e);
	snprintf(head, sizeof(head), "%s returned NULL: no address space is "
		 "that big", call);
	if (e->a >> 63)
		snprintf(why, sizeof(why), "as a signed number this size is %"
			 PRId64 ": a negative size (a subtraction that went "
			 "below zero, an error code of -1) turned into a huge "
			 "unsigned one", (int64_t)e->a);
	else
		snprintf(why, sizeof(why), "a count times a size that "
			 "overflowed, or a size read from memory that was never "
			 "set or from a damaged file");
	char asked[32];
	text_size(asked, sizeof(asked), e->a);
	snprintf(expl, sizeof(expl),
		 "The program asked for %s, more than the whole address "
		 "space of a 64-bit Linux process (128 TiB): no allocator could "
		 "give it, however empty the heap. The size itself is wrong. "
		 "Sizes this large come from a miscalculation: %s.",
		 asked, why);
	char size[24]; /* unsigned: a JSON number has no 63-bit limit */
	snprintf(size, sizeof(size), "%" PRIu64, e->a);
	struct finding *f = finding_add(out, "allocation-failure", SEV_ERROR,
		head, expl,
		"Check how the size is computed before the call (print it), "
		"reject sizes that cannot be right, and check every allocation "
		"for NULL.");
	if (!f || add_stack(f, m, "the call that failed", e) < 0 ||
	    finding_add_json(f, "size", size) < 0 ||
	    finding_add_str(f, "cause", "impossible-size") < 0)
		return -1;
	return 0;
}

/* jemalloc's side of a failed request: it keeps the pages of freed blocks
 * mapped for a while (and reserved after that), so under a limit on
 * address space they stand in the way although nothing lives in them. */
static int jemalloc_failure_text(char *expl, size_t n, const struct heap_frag *h,
				 uint64_t size)
{
	const struct heap_info *i = &h->info;
	char live[32], mapped[32], retained[32], free_b[32];
	mib(live, sizeof(live), h->live_bytes);
	mib(mapped, sizeof(mapped), i->je_mapped);
	mib(retained, sizeof(retained), i->je_retained);
	int k = snprintf(expl, n,
		"jemalloc could not give %" PRIu64 " byte%s. At that moment the "
		"program had %s live, and jemalloc held %s of address space "
		"mapped, %s more retained (given back to the system but kept "
		"reserved)", size, text_plural(size, "", "s"), live, mapped,
		retained);
	if (i->je_holes) {
		uint64_t largest = i->je_largest_extent > i->je_largest_region
			? i->je_largest_extent : i->je_largest_region;
		mib(free_b, sizeof(free_b), i->je_extent_bytes + i->je_region_bytes);
		k += snprintf(expl + k, n - (size_t)k,
			"; %s of what it held was free, in %" PRIu64 " piece%s, "
			"the largest %" PRIu64 " byte%s",
			free_b, i->je_extents + i->je_regions,
			text_plural(i->je_extents + i->je_regions, "", "s"),
			largest, text_plural(largest, "", "s"));
	}
	k += snprintf(expl + k, n - (size_t)k,
		". jemalloc keeps the pages of freed blocks mapped for some "
		"seconds before it gives them back, joins free neighbours only "
		"when it needs to, and keeps the address space it gave back "
		"reserved: that memory is free, but it still takes address "
		"space.");
	return k;
}

static int alloc_failure(const struct trace_model *m, const struct trace_event *e,
			 struct finding_list *out, bool *frag_reported)
{
	uint64_t product;
	if ((e->fn == TRACE_FN_CALLOC || e->fn == TRACE_FN_REALLOCARRAY) &&
	    (e->b || e->c) && __builtin_mul_overflow(e->b, e->c, &product))
		return array_overflow(m, e, out);
	if (e->a >= ADDRESS_SPACE_BYTES)
		return impossible_request(m, e, out);
	struct heap_frag h;
	if (heap_frag_at(m, e, &h) < 0)
		return -1;
	char call[80], head[200], expl[1400], a[32], b[32], c[32], d[32];
	frag_failed_call(call, sizeof(call), e);
	snprintf(head, sizeof(head), "%s returned NULL", call);
	bool je = h.info.valid && h.info.allocator == HEAP_JEMALLOC;
	mib(a, sizeof(a), h.free_bytes);
	mib(b, sizeof(b), h.live_bytes);
	bool own_mapping = !je && !(h.info.valid && h.info.as_limit) &&
			   e->a >= GLIBC_MMAP_ALWAYS;
	int k = je ? jemalloc_failure_text(expl, sizeof(expl), &h, e->a)
		: own_mapping ? snprintf(expl, sizeof(expl),
		"glibc serves a request of %" PRIu64 " bytes with a mapping of "
		"its own (mmap), so the holes of the brk heap play no part: the "
		"kernel refused the mapping, more than it lets this process "
		"have (the machine's memory and swap under its overcommit "
		"rules, or a container's limit). The program had %s live.",
		e->a, b)
		: snprintf(expl, sizeof(expl),
		"The allocator could not find %" PRIu64 " contiguous byte%s. At "
		"that moment the program had %s live; the brk heap held %s free "
		"in %" PRIu64 " hole%s between live blocks, the largest only %"
		PRIu64 " byte%s, so none could take the request.",
		e->a, text_plural(e->a, "", "s"), b, a, h.holes,
		text_plural(h.holes, "", "s"), h.largest_hole,
		text_plural(h.largest_hole, "", "s"));
	if (je && h.info.as_limit) {
		mib(c, sizeof(c), h.info.as_limit);
		mib(d, sizeof(d), h.info.vm_size);
		snprintf(expl + k, sizeof(expl) - (size_t)k,
			 " The address space was limited (RLIMIT_AS %s, %s in "
			 "use), so no fresh mapping could be made: the request "
			 "failed although most of what jemalloc held was free.",
			 c, d);
	} else if (h.info.valid && h.info.as_limit) {
		mib(c, sizeof(c), h.info.as_limit);
		mib(d, sizeof(d), h.info.vm_size);
		snprintf(expl + k, sizeof(expl) - (size_t)k,
			 " The address space was limited (RLIMIT_AS %s, %s in "
			 "use), so no fresh mapping could be made either: on "
			 "64-bit Linux without such a limit, glibc serves a big "
			 "request with mmap and the holes only waste memory.",
			 c, d);
	}
	struct finding *f = finding_add(out, "allocation-failure", SEV_ERROR,
		head, expl, je
		? "Check every allocation for NULL. Under a limit on address "
		  "space, the pages jemalloc keeps count against it: "
		  "MALLOC_CONF=retain:false,dirty_decay_ms:0,muzzy_decay_ms:0 "
		  "makes jemalloc give freed memory and its address space back "
		  "at once (at some cost in speed)."
		: own_mapping
		? "Check every allocation for NULL (in C++, catch "
		  "std::bad_alloc), and check where a size this big comes from."
		: "Check every allocation for NULL. When the heap is full of "
		  "holes, keep long-lived and short-lived blocks apart (a pool or "
		  "arena for the long-lived ones), so that freed memory merges "
		  "back into large free regions.");
	if (!f || add_stack(f, m, "the call that failed", e) < 0 ||
	    finding_add_int(f, "size", (int64_t)e->a) < 0 ||
	    frag_details(f, &h) < 0)
		return -1;
	if (!*frag_reported && heap_frag_is_bad(&h)) {
		*frag_reported = true;
		return fragmentation(m, &h, out);
	}
	return 0;
}

int detect_heap(const struct trace_model *m, struct finding_list *out)
{
	struct heap_checks hc;
	if (heap_checks_build(m, &hc) < 0)
		return -1;
	int rc = 0;
	struct symbolizer *sym = NULL;
	for (size_t i = 0; i < hc.n_issues && !rc; i++) {
		const struct heap_issue *is = &hc.issues[i];
		if (is->e->kind == TRACE_MISMATCHED_FREE)
			rc = mismatched_free(m, is, out, &sym);
		else if (is->e->kind == TRACE_GUARD_FAULT)
			rc = guard_fault(m, is, out);
		else if (is->e->kind == TRACE_HEAP_DAMAGE)
			rc = heap_damage(m, is, out);
		else if (is->e->kind == TRACE_HEAP_OVERRUN)
			rc = heap_overrun(m, is, out);
		else if (is->e->kind == TRACE_HEAP_UAF)
			rc = use_after_free(m, is, out);
		else if (is->e->c == TRACE_BAD_DOUBLE)
			rc = double_free(m, is, out);
		else
			rc = invalid_free(m, is, out);
	}
	symbolizer_free(sym);
	if (!rc)
		rc = leaks(m, &hc, out);
	bool frag_reported = false;
	size_t fails = 0;
	for (size_t i = 0; i < m->n_events && !rc && fails < 5; i++)
		if (m->events[i].kind == TRACE_ALLOC_FAIL) {
			fails++;
			rc = alloc_failure(m, &m->events[i], out, &frag_reported);
		}
	if (!rc && !frag_reported) {
		struct heap_frag h;
		rc = heap_frag_at(m, NULL, &h);
		if (!rc && heap_frag_is_bad(&h))
			rc = fragmentation(m, &h, out);
	}
	heap_checks_release(&hc);
	return rc;
}
