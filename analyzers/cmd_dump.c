/* cmd_dump.c: `analyze dump`: every event of a trace, one a line, in time
 * order, with its stack symbolized under it; --json gives an array of
 * event objects instead.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "json_writer.h"
#include "stack_out.h"
#include "summary.h"
#include "symbolize.h"
#include "text_out.h"
#include "trace_format.h"


/* A GUARD_FAULT record's access, in words. */
static const char *fault_what(unsigned what)
{
	switch (what) {
	case TRACE_FAULT_PAST_END:
		return "past the end";
	case TRACE_FAULT_HELD_READ:
		return "read in quarantine";
	case TRACE_FAULT_HELD_WRITE:
		return "write in quarantine";
	case TRACE_FAULT_SYSCALL_READ:
		return "read in quarantine by a system call";
	case TRACE_FAULT_SYSCALL_WRITE:
		return "write in quarantine by a system call";
	default:
		return "after the free";
	}
}
static const char *kind_label(uint8_t kind)
{
	return trace_kind_known(kind) ? trace_kind_name(kind)
					     : "unknown";
}

static void prot_text(uint64_t prot, char out[4])
{
	out[0] = prot & 4 ? 'r' : '-';
	out[1] = prot & 2 ? 'w' : '-';
	out[2] = prot & 1 ? 'x' : '-';
	out[3] = 0;
}

static const char *bad_free_name(uint64_t what)
{
	static const char *const names[] = {
		[TRACE_BAD_DOUBLE] = "double free", [TRACE_BAD_STACK] = "on the stack",
		[TRACE_BAD_GLOBAL] = "a global", [TRACE_BAD_INTERIOR] = "inside block",
		[TRACE_BAD_WILD] = "no block",
	};
	return what < sizeof(names) / sizeof(names[0]) ? names[what] : "?";
}

static const char *leak_class_name(uint64_t cls)
{
	return cls == TRACE_LEAK_DEFINITE ? "definite"
	       : cls == TRACE_LEAK_INDIRECT ? "indirect"
	       : cls == TRACE_LEAK_REACHABLE ? "reachable" : "?";
}

static const char *family_name(uint64_t fam)
{
	return fam == 0 ? "malloc" : fam == 1 ? "new" : fam == 2 ? "new[]" : "?";
}

/* A string of the trace, after a space when sep is set. */
static void put_str(FILE *f, const struct trace_str *s, bool sep)
{
	fputs(sep ? " " : "", f);
	text_put_safe(f, s->p, s->len);
}

/* The fields of one event after time, tid and kind, on one line (the
 * caller wraps it); records that a view of their own decodes show their
 * size only. */
static void text_fields(FILE *f, const struct trace_model *m,
			const struct trace_event *e)
{
	char prot[4];
	switch (e->kind) {
	case TRACE_PROCESS:
		fprintf(f, "pid %" PRIu64 " ppid %" PRIu64 " cause %s",
			    m->process.pid, m->process.ppid,
			    summary_cause_name(m->process.cause));
		put_str(f, &m->process.exe, true);
		break;
	case TRACE_MODULE:
	case TRACE_END_MAP: {
		const struct trace_module *mod = e->kind == TRACE_MODULE ?
			&m->modules[e->a] : &m->end_map[e->a];
		prot_text(mod->prot, prot);
		if (e->kind == TRACE_MODULE)
			fprintf(f, "#%" PRIu64 " ", mod->snapshot);
		fprintf(f, "%" PRIx64 "-%" PRIx64 " %s +%" PRIx64, mod->start,
			mod->end, prot, mod->file_offset);
		/* The file's name fits the line; --json has the path. */
		struct trace_str name = mod->path;
		const char *slash = memrchr(name.p, '/', name.len);
		if (slash && slash + 1 < name.p + name.len) {
			name.len -= (size_t)(slash + 1 - name.p);
			name.p = slash + 1;
		}
		put_str(f, &name, true);
		break;
	}
	case TRACE_THREAD:
		fprintf(f, "tid %" PRIu64 " created by %" PRIu64, e->a, e->b);
		break;
	case TRACE_ALLOC:
		fprintf(f, "%s 0x%" PRIx64 " size %" PRIu64,
			trace_alloc_fn_name(e->fn), e->a, e->c);
		if (e->b)
			fprintf(f, " align %" PRIu64, e->b);
		break;
	case TRACE_FREE:
		fprintf(f, "%s 0x%" PRIx64, trace_alloc_fn_name(e->fn), e->a);
		break;
	case TRACE_REALLOC:
		/* The kind says realloc already: the function only when it
		 * is another (reallocarray). */
		if (e->fn != TRACE_FN_REALLOC)
			fprintf(f, "%s ", trace_alloc_fn_name(e->fn));
		fprintf(f, "0x%" PRIx64 " -> 0x%" PRIx64 " size %" PRIu64 "%s",
			e->a, e->b, e->c, !e->b && e->c ? " (failed)" : "");
		break;
	case TRACE_FORK:
		fprintf(f, "child %" PRIu64, e->a);
		break;
	case TRACE_EXEC:
	case TRACE_DLOPEN:
		put_str(f, &m->strings[e->a], false);
		break;
	case TRACE_EXIT:
		fprintf(f, "%s status %" PRIu64 " signal %" PRIu64,
			e->a == TRACE_EXIT_RETURN ? "exit"
			: e->a == TRACE_EXIT_UNDERSCORE ? "_exit"
			: e->a == TRACE_EXIT_SIGNAL ? "signal" : "unknown",
			e->b, e->c);
		break;
	case TRACE_NOTE:
		fprintf(f, "%s", e->a ? "warning:" : "note:");
		put_str(f, &m->strings[e->b], true);
		break;
	case TRACE_END:
		break;
	case TRACE_LOCK_ACQUIRE:
		fprintf(f, "0x%" PRIx64 " flags %" PRIu64 " waited %" PRIu64
			" ns", e->a, e->b, e->c);
		break;
	case TRACE_LOCK_WAIT:
		fprintf(f, "0x%" PRIx64 " flags %" PRIu64, e->a, e->b);
		break;
	case TRACE_LOCK_FAIL:
		fprintf(f, "0x%" PRIx64 " flags %" PRIu64 " errno %" PRIu64,
			e->a, e->b, e->c);
		break;
	case TRACE_LOCK_INIT:
		fprintf(f, "0x%" PRIx64 " type %" PRIu64, e->a, e->b);
		break;
	case TRACE_LOCK_RELEASE:
	case TRACE_LOCK_DESTROY:
		fprintf(f, "0x%" PRIx64, e->a);
		break;
	case TRACE_LOCK_MISUSE:
		fprintf(f, "0x%" PRIx64 " %s, holder %" PRIu64 ", type %u", e->a,
			e->b == TRACE_MISUSE_DESTROY_HELD ? "destroyed held"
			: e->b == TRACE_MISUSE_UNLOCK_OTHER ? "unlocked by another"
			: e->b == TRACE_MISUSE_UNLOCK_FORKED ? "unlocked in a fork child"
							     : "unlocked free",
			e->c, (unsigned)e->fn);
		break;
	case TRACE_COND_WAIT:
		fprintf(f, "0x%" PRIx64 " mutex 0x%" PRIx64 "%s", e->a,
			e->b, e->c ? " timed" : "");
		break;
	case TRACE_BAD_FREE:
		fprintf(f, "0x%" PRIx64 " (%s", e->a, bad_free_name(e->c));
		if (e->b && e->b != e->a)
			fprintf(f, " 0x%" PRIx64, e->b);
		fputc(')', f);
		break;
	case TRACE_HEAP_UAF:
		fprintf(f, "0x%" PRIx64 " size %" PRIu64, e->a, e->b);
		if (e->c < m->n_strings)
			put_str(f, &m->strings[e->c], true);
		break;
	case TRACE_LEAK:
		fprintf(f, "0x%" PRIx64 " %s size %" PRIu64, e->a,
			leak_class_name(e->b), e->c);
		break;
	case TRACE_LEAK_SCAN:
		fprintf(f, "%" PRIu64 " block%s, %" PRIu64 " byte%s scanned in "
			"%.3f ms", e->a & UINT32_MAX,
			text_plural(e->a & UINT32_MAX, "", "s"), e->b,
			text_plural(e->b, "", "s"), (double)e->c / 1e6);
		if (e->a >> 32)
			fprintf(f, ", %" PRIu64 " inherited", e->a >> 32);
		break;
	case TRACE_GUARD_FAULT:
		fprintf(f, "0x%" PRIx64 " %s of block 0x%" PRIx64 ", pc 0x%"
			PRIx64, e->a, fault_what(e->fn), e->b, e->c);
		break;
	case TRACE_CRASH:
		fprintf(f, "signal %u code %d, %s 0x%" PRIx64 ", pc 0x%" PRIx64,
			e->fn, (int)(int32_t)(uint32_t)(e->b >> 8),
			text_access(e->b & 0xff), e->a, e->c);
		break;
	case TRACE_ALLOC_FAIL:
		fprintf(f, "%s size %" PRIu64, trace_alloc_fn_name(e->fn), e->a);
		if (e->b || e->c)
			fprintf(f, " (%" PRIu64 " x %" PRIu64 ")", e->b, e->c);
		break;
	case TRACE_MISMATCHED_FREE:
		fprintf(f, "0x%" PRIx64 " from %s, freed as %s", e->a,
			family_name(e->b), family_name(e->c & 0xff));
		if (e->c >> 8)
			fprintf(f, " (a pointer %" PRIu64 " byte%s in)",
				e->c >> 8, text_plural(e->c >> 8, "", "s"));
		break;
	case TRACE_HEAP_OVERRUN:
		fprintf(f, "0x%" PRIx64 " usable %" PRIu64 ", ends", e->a, e->b);
		if (e->c < m->n_strings)
			put_str(f, &m->strings[e->c], true);
		break;
	case TRACE_HEAP_DAMAGE:
		fprintf(f, "header of 0x%" PRIx64 " found as 0x%016" PRIx64
			", block before 0x%" PRIx64, e->a, e->c, e->b);
		break;
	default:
		if (trace_kind_known(e->kind))
			fprintf(f, "%" PRIu64 " byte%s (--json, or the kind's "
				"own view)", e->a, text_plural(e->a, "", "s"));
		else
			fprintf(f, "kind %u, %" PRIu64 " byte%s at byte %"
				PRIu64 " skipped", e->kind, e->a,
				text_plural(e->a, "", "s"), e->b);
	}
}

enum { KIND_COL = 13 };

/* The text of each stack, made once: a dump repeats a stack at every
 * event that names it. The cache stops growing at STACK_CACHE_BYTES;
 * stacks past it are written out each time, as before. */
#define STACK_CACHE_BYTES (256u << 20)

struct stack_cache {
	char **text;      /* per stack index, NULL until made */
	size_t *len;
	size_t bytes;
};

static void put_stack(struct stack_cache *c, const struct text_out *t,
		      struct symbolizer *sym, const struct trace_model *m,
		      const struct trace_stack *st)
{
	size_t k = (size_t)(st - m->stacks);
	if (c->text && !c->text[k] && c->bytes < STACK_CACHE_BYTES) {
		size_t cap = 0;
		FILE *mf = open_memstream(&c->text[k], &cap);
		if (mf) {
			struct text_out tm = { .f = mf, .colour = t->colour };
			stack_print_text(&tm, sym, st->frames, st->n, 6);
			if (fclose(mf) == 0) {
				c->len[k] = strlen(c->text[k]);
				c->bytes += c->len[k] + 1;
			} else {
				free(c->text[k]);
				c->text[k] = NULL;
			}
		}
	}
	if (c->text && c->text[k])
		fwrite(c->text[k], 1, c->len[k], t->f);
	else
		stack_print_text(t, sym, st->frames, st->n, 6);
}

static void dump_text(const struct trace_model *m, struct symbolizer *sym)
{
	struct text_out t;
	text_init(&t, stdout);
	FILE *f = stdout;
	struct stack_cache cache = {
		.text = calloc(m->n_stacks ? m->n_stacks : 1, sizeof(char *)),
		.len = calloc(m->n_stacks ? m->n_stacks : 1, sizeof(size_t)),
	};
	if (!cache.len) {
		free(cache.text);
		cache.text = NULL;
	}
	/* One buffer for every event's fields, rewound each time. */
	char *fields = NULL;
	size_t cap = 0;
	FILE *mf = open_memstream(&fields, &cap);
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		/* Seconds since the process started, to the nanosecond. */
		int64_t rel = trace_rel_ns(m, e->ts);
		/* negated unsigned: -INT64_MIN does not fit an int64_t */
		uint64_t mag = rel < 0 ? -(uint64_t)rel : (uint64_t)rel;
		fprintf(f, "%s%c%3" PRIu64 ".%09" PRIu64 "%s %6" PRIu32 " %s",
			text_style(&t, STYLE_DIM), rel < 0 ? '-' : ' ',
			mag / 1000000000u, mag % 1000000000u,
			text_style(&t, STYLE_PLAIN), e->tid,
			kind_label(e->kind));
		/* Kind names run to 15 characters; most fit 13. The fields
		 * wrap under the event rather than run past the line. */
		int kw = (int)strlen(kind_label(e->kind));
		bool any = false;
		if (mf && e->kind != TRACE_END) {
			rewind(mf);
			text_fields(mf, m, e);
			/* ended here: a rewound stream keeps its old tail */
			fputc('\0', mf);
			any = fflush(mf) == 0 && fields && *fields;
		}
		if (any) {
			fprintf(f, "%*s", kw < KIND_COL ? KIND_COL - kw : 1, "");
			text_hang(f, fields, (size_t)(22 + (kw < KIND_COL ? KIND_COL : kw + 1)), 6);
		} else {
			fputc('\n', f);
		}
		const struct trace_stack *st = trace_event_stack(m, e);
		if (st && st->defined)
			put_stack(&cache, &t, sym, m, st);
		else if (st)
			fprintf(f, "      (stack %" PRIu64 " is not defined "
				"in the trace)\n", st->id);
	}
	if (mf)
		fclose(mf);
	free(fields);
	for (size_t k = 0; cache.text && k < m->n_stacks; k++)
		free(cache.text[k]);
	free(cache.text);
	free(cache.len);
}

static void json_trace_str(struct json_writer *w, const struct trace_str *s)
{
	json_string_len(w, s->p, s->len);
}

static void json_fields(struct json_writer *w, const struct trace_model *m,
			const struct trace_event *e)
{
	switch (e->kind) {
	case TRACE_MODULE:
	case TRACE_END_MAP: {
		const struct trace_module *mod = e->kind == TRACE_MODULE ?
			&m->modules[e->a] : &m->end_map[e->a];
		if (e->kind == TRACE_MODULE) {
			json_key(w, "snapshot"); json_uint(w, mod->snapshot);
		}
		json_key(w, "start"); json_hex(w, mod->start);
		json_key(w, "end"); json_hex(w, mod->end);
		json_key(w, "file_offset"); json_hex(w, mod->file_offset);
		json_key(w, "prot"); json_uint(w, mod->prot);
		json_key(w, "path"); json_trace_str(w, &mod->path);
		break;
	}
	case TRACE_THREAD:
		json_key(w, "thread"); json_uint(w, e->a);
		json_key(w, "creator"); json_uint(w, e->b);
		break;
	case TRACE_ALLOC:
	case TRACE_FREE:
	case TRACE_REALLOC:
		json_key(w, "fn"); json_string(w, trace_alloc_fn_name(e->fn));
		json_key(w, "address"); json_hex(w, e->a);
		if (e->kind == TRACE_REALLOC) {
			json_key(w, "new_address"); json_hex(w, e->b);
		}
		if (e->kind != TRACE_FREE) {
			json_key(w, "size"); json_uint(w, e->c);
		}
		if (e->kind == TRACE_ALLOC) {
			json_key(w, "align"); json_uint(w, e->b);
		}
		break;
	case TRACE_FORK:
		json_key(w, "child_pid"); json_uint(w, e->a);
		break;
	case TRACE_EXEC:
	case TRACE_DLOPEN:
		json_key(w, "path"); json_trace_str(w, &m->strings[e->a]);
		break;
	case TRACE_EXIT:
		json_key(w, "how"); json_uint(w, e->a);
		json_key(w, "status"); json_uint(w, e->b);
		json_key(w, "signal"); json_uint(w, e->c);
		break;
	case TRACE_NOTE:
		json_key(w, "level"); json_uint(w, e->a);
		json_key(w, "text"); json_trace_str(w, &m->strings[e->b]);
		break;
	case TRACE_PROCESS:
	case TRACE_END:
		break;
	case TRACE_LOCK_ACQUIRE:
	case TRACE_LOCK_WAIT:
	case TRACE_LOCK_RELEASE:
	case TRACE_LOCK_FAIL:
	case TRACE_LOCK_INIT:
	case TRACE_LOCK_DESTROY:
		json_key(w, "lock"); json_hex(w, e->a);
		if (e->kind == TRACE_LOCK_INIT) {
			json_key(w, "type"); json_uint(w, e->b);
		} else if (e->kind != TRACE_LOCK_RELEASE &&
			   e->kind != TRACE_LOCK_DESTROY) {
			json_key(w, "flags"); json_uint(w, e->b);
		}
		if (e->kind == TRACE_LOCK_ACQUIRE) {
			json_key(w, "wait_ns"); json_uint(w, e->c);
		} else if (e->kind == TRACE_LOCK_FAIL) {
			json_key(w, "errno"); json_uint(w, e->c);
		}
		break;
	case TRACE_LOCK_MISUSE:
		json_key(w, "lock"); json_hex(w, e->a);
		json_key(w, "what"); json_uint(w, e->b);
		json_key(w, "holder"); json_uint(w, e->c);
		json_key(w, "type"); json_uint(w, e->fn);
		break;
	case TRACE_COND_WAIT:
		json_key(w, "cond"); json_hex(w, e->a);
		json_key(w, "mutex"); json_hex(w, e->b);
		json_key(w, "timed"); json_bool(w, e->c != 0);
		break;
	case TRACE_BAD_FREE:
		json_key(w, "address"); json_hex(w, e->a);
		json_key(w, "block"); json_hex(w, e->b);
		json_key(w, "what"); json_string(w, bad_free_name(e->c));
		break;
	case TRACE_HEAP_UAF:
		json_key(w, "address"); json_hex(w, e->a);
		json_key(w, "size"); json_uint(w, e->b);
		json_key(w, "detail");
		if (e->c < m->n_strings)
			json_trace_str(w, &m->strings[e->c]);
		else
			json_null(w);
		break;
	case TRACE_LEAK:
		json_key(w, "address"); json_hex(w, e->a);
		json_key(w, "class"); json_string(w, leak_class_name(e->b));
		json_key(w, "size"); json_uint(w, e->c);
		break;
	case TRACE_LEAK_SCAN:
		json_key(w, "blocks"); json_uint(w, e->a & UINT32_MAX);
		json_key(w, "inherited_blocks"); json_uint(w, e->a >> 32);
		json_key(w, "scanned_bytes"); json_uint(w, e->b);
		json_key(w, "scan_ns"); json_uint(w, e->c);
		break;
	case TRACE_CRASH:
		json_key(w, "signal"); json_uint(w, e->fn);
		json_key(w, "code"); json_int(w, (int32_t)(uint32_t)(e->b >> 8));
		json_key(w, "access"); json_string(w, text_access(e->b & 0xff));
		json_key(w, "address"); json_hex(w, e->a);
		json_key(w, "pc"); json_hex(w, e->c);
		break;
	case TRACE_GUARD_FAULT:
		json_key(w, "address"); json_hex(w, e->a);
		json_key(w, "block"); json_hex(w, e->b);
		json_key(w, "pc"); json_hex(w, e->c);
		json_key(w, "past_end"); json_bool(w, e->fn == TRACE_FAULT_PAST_END);
		json_key(w, "what"); json_string(w, fault_what(e->fn));
		break;
	case TRACE_ALLOC_FAIL:
		json_key(w, "fn"); json_string(w, trace_alloc_fn_name(e->fn));
		json_key(w, "size"); json_uint(w, e->a);
		if (e->b || e->c) {
			json_key(w, "count"); json_uint(w, e->b);
			json_key(w, "each"); json_uint(w, e->c);
		}
		break;
	case TRACE_MISMATCHED_FREE:
		json_key(w, "address"); json_hex(w, e->a);
		json_key(w, "allocated_by"); json_string(w, family_name(e->b));
		json_key(w, "freed_as"); json_string(w, family_name(e->c & 0xff));
		if (e->c >> 8) {
			json_key(w, "offset"); json_uint(w, e->c >> 8);
		}
		break;
	case TRACE_HEAP_OVERRUN:
		json_key(w, "address"); json_hex(w, e->a);
		json_key(w, "usable"); json_uint(w, e->b);
		json_key(w, "tail");
		if (e->c < m->n_strings)
			json_trace_str(w, &m->strings[e->c]);
		else
			json_null(w);
		break;
	case TRACE_HEAP_DAMAGE:
		json_key(w, "address"); json_hex(w, e->a);
		json_key(w, "block_before"); json_hex(w, e->b);
		json_key(w, "header"); json_hex(w, e->c);
		break;
	default:
		json_key(w, "record_kind"); json_uint(w, e->kind);
		json_key(w, "body_len"); json_uint(w, e->a);
		json_key(w, "at_byte"); json_uint(w, e->b);
	}
}

static void dump_json(const struct trace_model *m, struct symbolizer *sym)
{
	struct json_writer w;
	json_init(&w, stdout, 1);
	json_array_begin(&w);
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		json_object_begin(&w);
		json_key(&w, "t_ns");
		json_int(&w, trace_rel_ns(m, e->ts));
		json_key(&w, "tid");
		json_uint(&w, e->tid);
		json_key(&w, "kind");
		json_string(&w, kind_label(e->kind));
		json_fields(&w, m, e);
		const struct trace_stack *st = trace_event_stack(m, e);
		if (st) {
			json_key(&w, "stack_id");
			json_uint(&w, st->id);
			json_key(&w, "stack");
			if (st->defined)
				stack_print_json(&w, sym, st->frames, st->n);
			else
				json_null(&w);
		}
		json_object_end(&w);
	}
	json_array_end(&w);
}

int cmd_dump(const struct cmd_args *a)
{
	struct trace_model m;
	if (cmd_load(a->trace, &m))
		return 2;
	struct symbolizer *sym = symbolizer_new(&m);
	if (!sym) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		trace_model_release(&m);
		return 2;
	}
	if (a->json)
		dump_json(&m, sym);
	else
		dump_text(&m, sym);
	symbolizer_free(sym);
	trace_model_release(&m);
	return cmd_finish(0);
}
