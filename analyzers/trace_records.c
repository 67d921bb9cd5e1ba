/* trace_records.c: decodes the records inside one chunk of a trace
 * (trace_format.h) into the model. Every field is read through the
 * bounds-checked cursor of trace_decode.h; nothing recurses on input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace_decode.h"
#include "trace_format.h"
#include "trace_reader_priv.h"

struct trace_thread *reader_thread(struct loader *ld, uint32_t tid,
				   uint64_t ts)
{
	struct trace_model *m = ld->m;
	uint64_t *slot = u64map_get(&m->thread_index, tid);
	if (slot)
		return &m->threads[*slot - 1];
	if (RESERVE(ld, threads, n_threads, CAP_THREADS) < 0 ||
	    u64map_put(&m->thread_index, tid, m->n_threads + 1) < 0)
		return NULL;
	struct trace_thread *t = &m->threads[m->n_threads++];
	*t = (struct trace_thread){ .tid = tid, .first_ts = ts, .last_ts = ts };
	return t;
}

/* Returns index + 1 of the stack with this id, creating an undefined
 * placeholder on first mention; 0 for id 0; (uint32_t)-1 on no memory. */
static uint32_t stack_ref(struct loader *ld, uint64_t id)
{
	struct trace_model *m = ld->m;
	if (!id)
		return 0;
	uint64_t *slot = u64map_get(&m->stack_index, id);
	if (slot)
		return (uint32_t)*slot;
	if (m->n_stacks >= TRACE_STACKS_MAX) {
		ld->too_many_stacks = true;
		return UINT32_MAX;
	}
	if (RESERVE(ld, stacks, n_stacks, CAP_STACKS) < 0 ||
	    u64map_put(&m->stack_index, id, m->n_stacks + 1) < 0)
		return UINT32_MAX;
	m->stacks[m->n_stacks++] = (struct trace_stack){ .id = id };
	return (uint32_t)m->n_stacks;
}

static int add_string(struct loader *ld, const uint8_t *s, size_t len,
		      uint64_t *index)
{
	struct trace_model *m = ld->m;
	if (RESERVE(ld, strings, n_strings, CAP_STRINGS) < 0)
		return -1;
	m->strings[m->n_strings] = (struct trace_str){ (const char *)s, len };
	*index = m->n_strings++;
	return 0;
}

static struct trace_event *new_event(struct loader *ld, struct chunk_state *cs,
				     uint8_t kind)
{
	struct trace_model *m = ld->m;
	if (reader_event_reserve(m) < 0)
		return NULL;
	struct trace_thread *t = reader_thread(ld, cs->tid, cs->time);
	if (!t)
		return NULL;
	t->events++;
	t->last_ts = cs->time;
	struct trace_event *e = &m->events[m->n_events++];
	*e = (struct trace_event){ .ts = cs->time, .tid = cs->tid,
				   .kind = kind };
	return e;
}

/* Decoding a known record: each GET fails the record when the field runs
 * past the body. */
#define GET(fn, c, out)                                                      \
	do {                                                                 \
		if (fn(c, out) < 0)                                          \
			return 1;                                            \
	} while (0)
#define GET2(fn, c, n, out)                                                  \
	do {                                                                 \
		if (fn(c, n, out) < 0)                                       \
			return 1;                                            \
	} while (0)

static int get_delta(struct trace_cursor *c, struct chunk_state *cs,
		     uint64_t *out)
{
	int64_t d;
	if (trace_get_svarint(c, &d) < 0)
		return -1;
	cs->addr += (uint64_t)d;
	*out = cs->addr;
	return 0;
}

static int get_string(struct trace_cursor *c, struct trace_str *out)
{
	const uint8_t *s;
	size_t len;
	if (trace_get_str(c, &s, &len) < 0)
		return -1;
	*out = (struct trace_str){ (const char *)s, len };
	return 0;
}

static int read_process(struct loader *ld, struct trace_cursor *c,
			struct chunk_state *cs)
{
	struct trace_process p = { .seen = true, .tid = cs->tid };
	GET(trace_get_varint, c, &p.pid);
	GET(trace_get_varint, c, &p.ppid);
	GET(trace_get_varint, c, &p.cause);
	GET(trace_get_varint, c, &p.start_unix_ns);
	GET(trace_get_varint, c, &p.start_mono_ns);
	GET(get_string, c, &p.exe);
	uint64_t argc;
	GET(trace_get_varint, c, &argc);
	/* Each argument takes at least its length byte. */
	if (argc > trace_cursor_left(c))
		return 1;
	if (ld->m->process.seen) {
		ld->extra_process++;
		return 0;
	}
	p.argc = (size_t)argc;
	p.argv = calloc(p.argc ? p.argc : 1, sizeof(*p.argv));
	if (!p.argv)
		return -1;
	for (size_t i = 0; i < p.argc; i++) {
		if (get_string(c, &p.argv[i]) < 0) {
			free(p.argv);
			return 1;
		}
	}
	if (get_string(c, &p.parent_trace) < 0 ||
	    trace_get_varint(c, &p.stack_depth) < 0 ||
	    trace_get_varint(c, &p.flags) < 0) {
		free(p.argv);
		return 1;
	}
	ld->m->process = p;
	return new_event(ld, cs, TRACE_PROCESS) ? 0 : -1;
}

static int read_module(struct loader *ld, struct trace_cursor *c,
		       struct chunk_state *cs)
{
	struct trace_model *m = ld->m;
	struct trace_module mod = { .ts = cs->time };
	GET(trace_get_varint, c, &mod.snapshot);
	GET(trace_get_varint, c, &mod.start);
	GET(trace_get_varint, c, &mod.end);
	GET(trace_get_varint, c, &mod.file_offset);
	GET(trace_get_varint, c, &mod.prot);
	GET(get_string, c, &mod.path);
	/* The file's identity came later: older traces end here. */
	if (trace_cursor_left(c) > 0) {
		GET(trace_get_varint, c, &mod.file_size);
		GET(trace_get_varint, c, &mod.file_mtime_ns);
	}
	if (RESERVE(ld, modules, n_modules, CAP_MODULES) < 0)
		return -1;
	m->modules[m->n_modules] = mod;
	struct trace_event *e = new_event(ld, cs, TRACE_MODULE);
	if (!e)
		return -1;
	e->a = m->n_modules++;
	return 0;
}

static int read_end_map(struct loader *ld, struct trace_cursor *c,
			 struct chunk_state *cs)
{
	struct trace_model *m = ld->m;
	struct trace_module mod = { .ts = cs->time };
	GET(trace_get_varint, c, &mod.start);
	GET(trace_get_varint, c, &mod.end);
	GET(trace_get_varint, c, &mod.file_offset);
	GET(trace_get_varint, c, &mod.prot);
	GET(get_string, c, &mod.path);
	/* The lines of one map come in rising order: a line that does not
	 * rise starts a later map (a signal after exit). */
	if (m->n_end_map && mod.start <= m->end_map[m->n_end_map - 1].start)
		m->end_map_from = m->n_end_map;
	if (RESERVE(ld, end_map, n_end_map, CAP_END_MAP) < 0)
		return -1;
	m->end_map[m->n_end_map] = mod;
	struct trace_event *e = new_event(ld, cs, TRACE_END_MAP);
	if (!e)
		return -1;
	e->a = m->n_end_map++;
	return 0;
}

static int read_stack(struct loader *ld, struct trace_cursor *c)
{
	struct trace_model *m = ld->m;
	uint64_t id, n, frame;
	GET(trace_get_varint, c, &id);
	GET(trace_get_varint, c, &n);
	if (n > TRACE_MAX_FRAMES || n > trace_cursor_left(c))
		return 1;
	size_t at = m->n_frames;
	for (uint64_t i = 0; i < n; i++) {
		if (i == 0) {
			GET(trace_get_varint, c, &frame);
		} else {
			int64_t d;
			GET(trace_get_svarint, c, &d);
			frame += (uint64_t)d;
		}
		if (RESERVE(ld, frame_pool, n_frames, CAP_FRAMES) < 0)
			return -1;
		m->frame_pool[m->n_frames++] = frame;
	}
	uint32_t ref = stack_ref(ld, id);
	if (ref == UINT32_MAX)
		return -1;
	if (!ref || m->stacks[ref - 1].defined) {
		/* Id 0 or a second definition: keep the first, drop this. */
		ld->dup_stacks++;
		m->n_frames = at;
		return 0;
	}
	struct trace_stack *s = &m->stacks[ref - 1];
	s->defined = true;
	s->n = (uint32_t)n;
	s->pool_at = at;
	return 0;
}

static int read_alloc_family(struct loader *ld, uint8_t kind,
			     struct trace_cursor *c, struct chunk_state *cs)
{
	uint64_t fn, a = 0, b = 0, size = 0, stack, align = 0;
	GET(trace_get_varint, c, &fn);
	if (get_delta(c, cs, &a) < 0)
		return 1;
	if (kind == TRACE_REALLOC && get_delta(c, cs, &b) < 0)
		return 1;
	if (kind != TRACE_FREE)
		GET(trace_get_varint, c, &size);
	GET(trace_get_varint, c, &stack);
	if (kind == TRACE_ALLOC) {
		GET(trace_get_varint, c, &align);
		b = align;
	}
	uint32_t ref = stack_ref(ld, stack);
	struct trace_event *e;
	if (ref == UINT32_MAX || !(e = new_event(ld, cs, kind)))
		return -1;
	e->fn = fn < 255 ? (uint8_t)fn : 255;
	e->a = a;
	e->b = b;
	e->c = size;
	e->stack = ref;
	return 0;
}

/* ALLOC_SHORT and FREE_SHORT: fixed-width fields, read into the event
 * their long form would make. */
static int read_heap_short(struct loader *ld, uint8_t kind,
			   struct trace_cursor *c, struct chunk_state *cs)
{
	uint64_t fn, size = 0, stack = 0;
	int64_t step;
	GET2(trace_get_uint, c, 1, &fn);
	GET(trace_get_addr16, c, &step);
	if (kind == TRACE_ALLOC_SHORT)
		GET2(trace_get_uint, c, 2, &size);
	/* the stack: the rest of the body, none when there is no stack */
	size_t stack_len = trace_cursor_left(c);
	if (stack_len == 1 || stack_len > 3)
		return 2;
	GET2(trace_get_uint, c, (unsigned)stack_len, &stack);
	cs->addr += (uint64_t)step;
	uint32_t ref = stack_ref(ld, stack);
	struct trace_event *e;
	if (ref == UINT32_MAX ||
	    !(e = new_event(ld, cs, (uint8_t)trace_kind_canonical(kind))))
		return -1;
	e->fn = (uint8_t)fn;
	e->a = cs->addr;
	e->c = size;
	e->stack = ref;
	return 0;
}

/* The lock records (rec_locks.h): a = lock (cond for cond-wait), b = flags
 * (type for lock-init, mutex for cond-wait), c = wait_ns, errno value or
 * timed. */
static int read_lock(struct loader *ld, uint8_t kind, struct trace_cursor *c,
		     struct chunk_state *cs)
{
	uint64_t a = 0, b = 0, x = 0, stack = 0, late = 0;
	GET(trace_get_varint, c, &a);
	switch (kind) {
	case TRACE_LOCK_ACQUIRE:
	case TRACE_LOCK_PAIR:
		GET(trace_get_varint, c, &b);
		GET(trace_get_varint, c, &stack);
		GET(trace_get_varint, c, &x);
		/* late_ns (ACQUIRE, optional) or hold_ns (PAIR): when the lock
		 * was really taken. */
		if (trace_cursor_left(c) > 0)
			GET(trace_get_varint, c, &late);
		break;
	case TRACE_LOCK_WAIT:
		GET(trace_get_varint, c, &b);
		GET(trace_get_varint, c, &stack);
		break;
	case TRACE_LOCK_FAIL:
		GET(trace_get_varint, c, &b);
		GET(trace_get_varint, c, &x);
		GET(trace_get_varint, c, &stack);
		break;
	case TRACE_LOCK_INIT:
		GET(trace_get_varint, c, &b);
		break;
	case TRACE_COND_WAIT:
		GET(trace_get_varint, c, &b);
		GET(trace_get_varint, c, &x);
		GET(trace_get_varint, c, &stack);
		break;
	default:
		break;
	}
	uint32_t ref = stack_ref(ld, stack);
	struct trace_event *e;
	uint8_t k = kind == TRACE_LOCK_PAIR ? TRACE_LOCK_ACQUIRE : kind;
	if (ref == UINT32_MAX || !(e = new_event(ld, cs, k)))
		return -1;
	e->a = a;
	e->b = b;
	e->c = x;
	e->stack = ref;
	/* The model sees when the lock was taken; a PAIR becomes the
	 * acquisition and the release. Events are sorted after loading. */
	e->ts = late < e->ts ? e->ts - late : 0;
	if (kind == TRACE_LOCK_PAIR) {
		if (!(e = new_event(ld, cs, TRACE_LOCK_RELEASE)))
			return -1;
		e->a = a;
	}
	return 0;
}

/* A heap check's event with its fields, fn clamped to a byte and the
 * stack id made an index. 0, or -1 when memory ran out. */
static int heap_event(struct loader *ld, struct chunk_state *cs, uint8_t kind,
		      uint64_t fn, uint64_t a, uint64_t b, uint64_t c,
		      uint64_t stack)
{
	struct trace_event *e;
	uint32_t ref = stack_ref(ld, stack);
	if (ref == UINT32_MAX || !(e = new_event(ld, cs, kind)))
		return -1;
	e->a = a;
	e->b = b;
	e->c = c;
	e->fn = fn < 255 ? (uint8_t)fn : 255;
	e->stack = ref;
	return 0;
}

/* The heap checks' records (kinds 80-99); fields as trace_reader.h says. */
static int read_heap_check(struct loader *ld, uint8_t kind,
			   struct trace_cursor *c, struct chunk_state *cs)
{
	uint64_t v[6] = { 0 };
	struct trace_str s;
	struct trace_event *e;
	switch (kind) {
	case TRACE_BAD_FREE: /* fn, addr, stack, what, base */
		for (int i = 0; i < 5; i++)
			GET(trace_get_varint, c, &v[i]);
		return heap_event(ld, cs, kind, v[0], v[1], v[4], v[3], v[2]);
	case TRACE_HEAP_UAF: /* addr, size, detail */
		GET(trace_get_varint, c, &v[0]);
		GET(trace_get_varint, c, &v[1]);
		GET(get_string, c, &s);
		if (add_string(ld, (const uint8_t *)s.p, s.len, &v[2]) < 0 ||
		    !(e = new_event(ld, cs, kind)))
			return -1;
		break;
	case TRACE_LEAK: /* addr, size, class */
		for (int i = 0; i < 3; i++)
			GET(trace_get_varint, c, &v[i]);
		return heap_event(ld, cs, kind, 0, v[0], v[2], v[1], 0);
	case TRACE_GUARD_FAULT: /* fault, pc, what, block, size, stack */
		for (int i = 0; i < 6; i++)
			GET(trace_get_varint, c, &v[i]);
		return heap_event(ld, cs, kind,
				  v[2] <= TRACE_FAULT_SYSCALL_WRITE ? v[2]
				  : TRACE_FAULT_FREED, v[0], v[3], v[1], v[5]);
	case TRACE_ALLOC_FAIL: /* fn, size, stack[, count, each] */
		for (int i = 0; i < 3; i++)
			GET(trace_get_varint, c, &v[i]);
		if (trace_cursor_left(c) > 0) {
			GET(trace_get_varint, c, &v[3]);
			GET(trace_get_varint, c, &v[4]);
		}
		return heap_event(ld, cs, kind, v[0], v[1], v[3], v[4], v[2]);
	case TRACE_HEAP_INFO:
		/* many fields: heap_frag.c decodes them where they are */
		if (!(e = new_event(ld, cs, kind)))
			return -1;
		e->a = trace_cursor_left(c);
		e->b = (uint64_t)(c->p - ld->m->data);
		return 0;
	case TRACE_MISMATCHED_FREE: /* fn, addr, alloc_family, free_family, stack[, offset] */
		for (int i = 0; i < 5; i++)
			GET(trace_get_varint, c, &v[i]);
		v[5] = 0;
		if (trace_cursor_left(c) > 0)
			GET(trace_get_varint, c, &v[5]);
		if (v[3] > 0xff || v[5] > 0xffff)
			return 2;
		return heap_event(ld, cs, kind, v[0], v[1], v[2], v[3] | v[5] << 8, v[4]);
	case TRACE_HEAP_DAMAGE: /* addr, before, header, stack */
		for (int i = 0; i < 4; i++)
			GET(trace_get_varint, c, &v[i]);
		return heap_event(ld, cs, kind, 0, v[0], v[1], v[2], v[3]);
	case TRACE_HEAP_OVERRUN: /* addr, usable, tail, stack */
		GET(trace_get_varint, c, &v[0]);
		GET(trace_get_varint, c, &v[1]);
		GET(get_string, c, &s);
		GET(trace_get_varint, c, &v[3]);
		if (add_string(ld, (const uint8_t *)s.p, s.len, &v[2]) < 0)
			return -1;
		return heap_event(ld, cs, kind, 0, v[0], v[1], v[2], v[3]);
	default: /* LEAK_SCAN: blocks, root_bytes, scanned_bytes, ns[, inherited] */
		for (int i = 0; i < 4; i++)
			GET(trace_get_varint, c, &v[i]);
		if (trace_cursor_left(c) > 0)
			GET(trace_get_varint, c, &v[4]);
		v[0] = v[0] < UINT32_MAX ? v[0] : UINT32_MAX;
		v[4] = v[4] < UINT32_MAX ? v[4] : UINT32_MAX;
		return heap_event(ld, cs, kind, 0, v[0] | v[4] << 32, v[2], v[3], 0);
	}
	e->a = v[0];
	e->b = v[1];
	e->c = v[2];
	return 0;
}

/* Decodes one known record's fields after dt. Returns 0 when done, 1 when
 * the body is too short for its fields, 2 when a field is out of range, -1
 * when memory ran out. */
static int read_body(struct loader *ld, uint8_t kind, struct trace_cursor *c,
		     struct chunk_state *cs)
{
	struct trace_model *m = ld->m;
	struct trace_event *e;
	struct trace_str s;
	uint64_t v[3];

	switch (kind) {
	case TRACE_PROCESS:
		return read_process(ld, c, cs);
	case TRACE_MODULE:
		return read_module(ld, c, cs);
	case TRACE_END_MAP:
		return read_end_map(ld, c, cs);
	case TRACE_STACK:
		return read_stack(ld, c);
	case TRACE_THREAD: {
		GET(trace_get_varint, c, &v[0]);
		GET(trace_get_varint, c, &v[1]);
		if (v[0] > UINT32_MAX)
			return 2;
		struct trace_thread *t =
			reader_thread(ld, (uint32_t)v[0], cs->time);
		if (!t)
			return -1;
		t->announced = true;
		t->creator = v[1];
		if (!(e = new_event(ld, cs, kind)))
			return -1;
		e->a = v[0];
		e->b = v[1];
		return 0;
	}
	case TRACE_ALLOC:
	case TRACE_FREE:
	case TRACE_REALLOC:
		return read_alloc_family(ld, kind, c, cs);
	case TRACE_ALLOC_SHORT:
	case TRACE_FREE_SHORT:
		return read_heap_short(ld, kind, c, cs);
	case TRACE_FORK:
		GET(trace_get_varint, c, &v[0]);
		if (!(e = new_event(ld, cs, kind)))
			return -1;
		e->a = v[0];
		return 0;
	case TRACE_EXEC:
	case TRACE_DLOPEN:
		GET(get_string, c, &s);
		if (add_string(ld, (const uint8_t *)s.p, s.len, &v[0]) < 0 ||
		    !(e = new_event(ld, cs, kind)))
			return -1;
		e->a = v[0];
		return 0;
	case TRACE_EXIT:
		GET(trace_get_varint, c, &v[0]);
		GET(trace_get_varint, c, &v[1]);
		GET(trace_get_varint, c, &v[2]);
		if (!(e = new_event(ld, cs, kind)))
			return -1;
		e->a = v[0];
		e->b = v[1];
		e->c = v[2];
		/* A second exit record (say, exit called from an atexit
		 * handler) does not replace the first. */
		if (!m->has_exit) {
			m->has_exit = true;
			m->exit_how = v[0];
			m->exit_status = v[1];
			m->exit_signal = v[2];
			m->exit_ts = cs->time;
		}
		return 0;
	case TRACE_NOTE:
		GET(trace_get_varint, c, &v[0]);
		GET(get_string, c, &s);
		if (add_string(ld, (const uint8_t *)s.p, s.len, &v[1]) < 0 ||
		    !(e = new_event(ld, cs, kind)))
			return -1;
		e->a = v[0];
		e->b = v[1];
		return 0;
	case TRACE_END:
		if (!(e = new_event(ld, cs, kind)))
			return -1;
		if (!m->has_end) {
			m->has_end = true;
			m->end_ts = cs->time;
		}
		return 0;
	case TRACE_LOCK_ACQUIRE:
	case TRACE_LOCK_WAIT:
	case TRACE_LOCK_RELEASE:
	case TRACE_LOCK_FAIL:
	case TRACE_LOCK_INIT:
	case TRACE_LOCK_DESTROY:
	case TRACE_COND_WAIT:
	case TRACE_LOCK_PAIR:
		return read_lock(ld, kind, c, cs);
	case TRACE_LOCK_MISUSE: { /* lock, what, owner, stack[, type] */
		uint64_t v[5] = { 0 };
		for (int i = 0; i < 4; i++)
			GET(trace_get_varint, c, &v[i]);
		if (trace_cursor_left(c) > 0) /* the type: kept in fn */
			GET(trace_get_varint, c, &v[4]);
		return heap_event(ld, cs, kind, v[4], v[0], v[1], v[2], v[3]);
	}
	case TRACE_DEADLOCK:
	case TRACE_LOCK_PAIRS:
		/* Variable length: lock_model.c decodes it from the file. */
		if (!(e = new_event(ld, cs, kind)))
			return -1;
		e->a = trace_cursor_left(c);
		e->b = (uint64_t)(c->p - m->data);
		return 0;
	case TRACE_THREAD_CREATE:
	case TRACE_THREAD_START:
	case TRACE_THREAD_END:
	case TRACE_THREAD_JOIN:
	case TRACE_THREAD_DETACH:
	case TRACE_PROCESS_STATS:
	case TRACE_STACK_OVERFLOW:
	case TRACE_CLONE:
	case TRACE_SAMPLE:
		/* rec_threads' records have many fields: the event keeps where
		 * they are (a = their length, b = their file offset) and
		 * threads_model.c decodes them. */
		if (!(e = new_event(ld, cs, kind)))
			return -1;
		e->a = trace_cursor_left(c);
		e->b = (uint64_t)(c->p - m->data);
		return 0;
	case TRACE_CRASH: { /* signal, code, addr, pc, access, stack */
		uint64_t x[6];
		for (int i = 0; i < 6; i++)
			GET(trace_get_varint, c, &x[i]);
		uint32_t ref = stack_ref(ld, x[5]);
		if (ref == UINT32_MAX)
			return -1;
		if (!(e = new_event(ld, cs, kind)))
			return -1;
		e->a = x[2];
		e->b = (uint64_t)(uint32_t)x[1] << 8 |
		       (x[4] <= TRACE_ACCESS_EXEC ? x[4] : 0);
		e->c = x[3];
		e->fn = x[0] < 256 ? (uint8_t)x[0] : 0;
		e->stack = ref;
		return 0;
	}
	case TRACE_BAD_FREE:
	case TRACE_HEAP_UAF:
	case TRACE_LEAK:
	case TRACE_LEAK_SCAN:
	case TRACE_GUARD_FAULT:
	case TRACE_ALLOC_FAIL:
	case TRACE_HEAP_INFO:
	case TRACE_MISMATCHED_FREE:
	case TRACE_HEAP_DAMAGE:
	case TRACE_HEAP_OVERRUN:
		return read_heap_check(ld, kind, c, cs);
	case TRACE_IO_SITE:
	case TRACE_IO_FD:
	case TRACE_IO_PROC:
	case TRACE_IO_MODE:
	case TRACE_SYSCALLS: {
		/* rec_io's records: the event keeps where the fields are (a =
		 * their length, b = their file offset) and io_model.c decodes
		 * them; an IO_SITE also gets its call (fn) and stack here. */
		uint64_t at = (uint64_t)(c->p - m->data), len = trace_cursor_left(c);
		uint32_t ref = 0;
		uint64_t fn = 0;
		if (kind == TRACE_IO_SITE) {
			GET(trace_get_varint, c, &v[0]); /* tid */
			GET(trace_get_varint, c, &fn);
			GET(trace_get_varint, c, &v[1]); /* fd */
			GET(trace_get_varint, c, &v[2]); /* desc */
			GET(trace_get_varint, c, &v[2]); /* stack */
			if ((ref = stack_ref(ld, v[2])) == UINT32_MAX)
				return -1;
		}
		if (!(e = new_event(ld, cs, kind)))
			return -1;
		e->a = len;
		e->b = at;
		e->fn = fn < 255 ? (uint8_t)fn : 255;
		e->stack = ref;
		return 0;
	}
	default: /* unknown kinds are handled by the caller */
		return 0;
	}
}

int reader_read_chunk(struct loader *ld, const uint8_t *p, size_t len,
		      bool cut, struct chunk_state *cs)
{
	struct trace_model *m = ld->m;
	struct trace_cursor c = trace_cursor_make(p, len);
	while (trace_cursor_left(&c) > 0) {
		cs->rec_off = (uint64_t)(c.p - m->data);
		uint8_t kind = 0;
		uint64_t body_len = 0;
		trace_get_u8(&c, &kind);
		bool len_ok = trace_get_varint(&c, &body_len) == 0;
		if (!len_ok || body_len > trace_cursor_left(&c)) {
			if (cut)
				return 1;
			reader_error(ld->err, m->path, "bad record", cs->rec_off,
				     len_ok ? "length runs past the chunk"
					    : "malformed length");
			return -1;
		}
		struct trace_cursor body = trace_cursor_make(c.p, body_len);
		c.p += body_len;
		/* Kind 0: a record its writer never finished (it died while
		 * writing it). Nothing in it can be trusted, not even dt. */
		if (kind == 0) {
			m->unfinished_records++;
			continue;
		}
		m->kind_count[trace_kind_canonical(kind)]++;
		uint64_t dt = 0;
		bool known = trace_kind_known(kind);
		if (trace_get_varint(&body, &dt) < 0 && known) {
			reader_error(ld->err, m->path, "bad record", cs->rec_off,
				     "%s record has no time field",
				     trace_kind_name(kind));
			return -1;
		}
		/* Unknown kinds start with dt too (trace_format.h), so time
		 * stays right across them. */
		cs->time += dt;
		if (!m->first_ts || cs->time < m->first_ts)
			m->first_ts = cs->time;
		if (cs->time > m->last_ts)
			m->last_ts = cs->time;
		if (!known) {
			struct trace_event *e = new_event(ld, cs, kind);
			if (!e)
				return reader_out_of_memory(ld);
			e->a = body_len;
			e->b = cs->rec_off;
			continue;
		}
		int r = read_body(ld, kind, &body, cs);
		if (r < 0)
			return reader_out_of_memory(ld);
		if (r > 0) {
			reader_error(ld->err, m->path, "bad record", cs->rec_off,
				     r == 2 ? "%s record has a field out of range"
					    : "%s record too short for its fields",
				     trace_kind_name(kind));
			return -1;
		}
	}
	return 0;
}

