/* trace_reader.h: loads a whole trace file into one in-memory model that
 * every analyzer reads. The file is untrusted: every length is checked,
 * memory stays proportional to the file's size, and a bad file yields an
 * error naming the byte offset instead of a crash.
 */
#ifndef SPY_TRACE_READER_H
#define SPY_TRACE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "u64map.h"

/* A string from the trace: points into the model's copy of the file, is not
 * NUL-terminated and may hold any byte (it comes from the traced program). */
struct trace_str {
	const char *p;
	size_t len;
};

struct trace_process {
	bool seen;              /* a PROCESS record was read */
	uint64_t pid, ppid;
	uint64_t cause;         /* enum trace_cause (other values kept as is) */
	uint64_t start_unix_ns, start_mono_ns;
	struct trace_str exe;
	size_t argc;
	struct trace_str *argv; /* argc entries */
	struct trace_str parent_trace;
	uint64_t stack_depth, flags;
	uint32_t tid;           /* the thread whose chunk held the record */
};

struct trace_module {
	uint64_t ts;            /* absolute CLOCK_MONOTONIC ns */
	uint64_t snapshot, start, end, file_offset, prot;
	struct trace_str path;
	uint64_t file_size, file_mtime_ns; /* 0 when the trace does not say */
};

struct trace_stack {
	uint64_t id;            /* the id the trace gave it */
	uint32_t n;             /* frames, innermost first */
	bool defined;           /* false: used by an event, never defined */
	const uint64_t *frames; /* n return addresses (into the model's pool) */
	size_t pool_at;         /* reader-private: where frames start in it */
};

struct trace_thread {
	uint32_t tid;
	uint64_t creator;       /* 0 if unknown */
	bool announced;         /* a THREAD record was seen for it */
	uint64_t first_ts, last_ts;
	size_t events;
};

/* Records (modules or end-map lines) flattened into disjoint address
 * ranges, each naming the record that wins there (trace_spans.c). */
struct trace_span {
	uint64_t start, end;
	size_t rec;             /* index of the winning record */
};

struct trace_spans {
	struct trace_span *v;   /* sorted, disjoint */
	size_t n;
};

/* 1 when record a of v wins over record b where both map an address. */
typedef bool (*trace_wins_fn)(const struct trace_module *v, size_t a,
			      size_t b);

/* Flattens the n records of v (those with end > start); O(n log n).
 * Returns 0, or -1 when memory ran out (*out empty). */
int trace_spans_build(const struct trace_module *v, size_t n, trace_wins_fn wins,
		      struct trace_spans *out);
/* The record of v that wins at addr, or NULL. */
const struct trace_module *trace_spans_find(const struct trace_spans *s,
					    const struct trace_module *v,
					    uint64_t addr);
void trace_spans_release(struct trace_spans *s);

/* One record, decoded. kind is the record's kind byte (unknown kinds keep
 * theirs); a, b, c hold the kind's fields as listed below. */
struct trace_event {
	uint64_t ts;      /* absolute CLOCK_MONOTONIC ns */
	uint64_t a, b, c;
	/* Packed so that an event takes 40 bytes: a trace of 100 million
	 * holds them all. A tid fits 22 bits on Linux; the reader refuses
	 * larger ones, and more stacks than TRACE_STACKS_MAX. */
	uint32_t tid : 24;   /* the chunk's thread */
	uint32_t fn : 8;     /* enum trace_alloc_fn for alloc/free/realloc */
	uint32_t stack : 24; /* index + 1 into model.stacks, 0 = no stack */
	uint32_t kind : 8;
};
#define TRACE_TID_MAX ((1u << 24) - 1)
#ifndef TRACE_STACKS_MAX /* a test builds the reader with a small one */
#define TRACE_STACKS_MAX ((1u << 24) - 2)
#endif
/*  kind      a              b               c
 *  process   -              -               -
 *  module    module index   -               -
 *  end-map   end_map index  -               -
 *  thread    tid            creator tid     -
 *  alloc     address        align           size
 *  free      address        -               -
 *  realloc   old address    new address     size
 *  fork      child pid      -               -
 *  exec      string index   -               -
 *  exit      how            status          signal
 *  note      level          string index    -
 *  dlopen    string index   -               -
 *  end       -              -               -
 *  lock-acquire lock        flags           wait ns
 *  lock-wait    lock        flags           -
 *  lock-release lock        -               -
 *  lock-fail    lock        flags           errno value
 *  lock-init    lock        type            -
 *  lock-destroy lock        -               -
 *  cond-wait    cond        mutex           timed (0/1)
 *  deadlock     body length file offset     -  (lock_model.c decodes it)
 *  lock-misuse  lock        what (trace_lock_misuse)  owner tid
 *                                (fn: the record's trace_lock_type, 0 if absent)
 *  unknown   body length    file offset     -
 *  io-site, io-fd, io-proc, io-mode, syscalls (kinds 40-59):
 *            fields length  fields offset   -   (io_model.h decodes;
 *            an io-site has its stack and fn, the trace_io_fn, set)
 *  bad-free  address        block start     what (trace_bad_free)
 *  heap-uaf  address        size            string index of the detail
 *  leak      address        class           size
 *  leak-scan blocks | inherited << 32 (a forked child's parent's blocks)
 *                           scanned bytes   ns
 *  guard-fault fault address block start   pc (fn: 0 after free, 1 past end)
 *  crash     fault address  si_code << 8 | access  pc (fn: the signal)
 *  alloc-fail size          calloc count    calloc each (fn: the function)
 *  heap-info fields length  fields offset   -   (heap_frag.c decodes)
 *  mismatched-free address  alloc family    free family (0 malloc, 1 new, 2 new[])
 *                                            | offset << 8 (pointer given - address)
 *  heap-damage address      block before    header word as found
 *  heap-overrun address     usable size     string index of its last bytes
 *  thread_create, thread_start, thread_end, thread_join, process_stats,
 *  stack_overflow, clone (kinds 60-79):
 *            fields length  fields offset   -   (threads_model.h decodes)
 * (fn holds an alloc function for alloc/free/realloc; "string index" is an
 * index into model.strings.) */

struct trace_note {
	bool from_reader;  /* written by analyze, not by libspy */
	uint64_t level;    /* 0 info, 1 warning */
	uint64_t ts;       /* 0 for reader notes */
	struct trace_str text;  /* reader notes own their text */
};

struct trace_model {
	const char *path;           /* the file name, as given */
	uint8_t *data;              /* the whole file (read only) */
	size_t size;
	bool mapped;                /* data is the file mapped, not a copy */
	uint32_t version;

	struct trace_process process;

	struct trace_module *modules;
	size_t n_modules;

	/* The map as the process ended (end-map records; snapshot, file_size
	 * and file_mtime_ns are 0); empty in older traces. Should a process
	 * have written more than one, the last starts at end_map_from; each
	 * is sorted by start. */
	struct trace_module *end_map;
	size_t n_end_map, end_map_from;

	struct trace_stack *stacks; /* in order of first mention */
	size_t n_stacks;
	uint64_t *frame_pool;
	size_t n_frames;

	struct trace_thread *threads; /* in order of first appearance */
	size_t n_threads;

	struct trace_event *events;   /* sorted by ts, stable in file order */
	size_t n_events;

	struct trace_str *strings;    /* referenced by events */
	size_t n_strings;

	struct trace_note *notes;     /* libspy's notes, then the reader's */
	size_t n_notes;

	bool has_exit;
	uint64_t exit_how, exit_status, exit_signal, exit_ts;
	bool has_end;
	uint64_t end_ts;
	bool truncated;               /* no END record, or the file was cut */
	uint64_t cut_at;              /* byte where a cut-short file ends */
	uint64_t first_ts, last_ts;   /* over all records; 0 if none */
	size_t n_chunks;
	size_t unfinished_records;    /* kind 0: cut off by the writer's death */
	size_t kind_count[256];       /* records read, by kind (a short form
					 counted as its long one) */

	/* Lookups by address (built when the trace is loaded): */
	struct trace_spans module_spans;   /* modules: the latest record */
	struct trace_spans snapshot_spans; /* modules: the latest snapshot,
					    * then the latest record */
	struct trace_spans end_spans;      /* end_map from end_map_from: the
					    * first line */

	/* Reader-private bookkeeping (owned, released with the model). */
	struct u64map stack_index;    /* stack id -> index + 1 */
	struct u64map thread_index;   /* tid -> index + 1 */
	size_t caps[7];               /* allocated sizes of the arrays */
};

/* Why a load failed: a message for people and, for a bad record, where. */
struct trace_error {
	char msg[256];    /* e.g. "bad record at byte 4242: length runs past
			   * the chunk" or "cannot open trace 'x': reason" */
	bool has_offset;
	uint64_t offset;
};

/* Reads the file at path into *m. Returns 0 (the caller owns the model and
 * frees it with trace_model_release) or -1 with *err filled and *m empty.
 * A file cut short after its first PROCESS record loads with
 * m->truncated set and a reader note saying where it ends. */
int trace_load_file(const char *path, struct trace_model *m,
		    struct trace_error *err);

/* The same over a buffer the model takes ownership of (freed with free()
 * on release, also on failure). name is used in notes only. */
int trace_load_buffer(const char *name, uint8_t *data, size_t size,
		      struct trace_model *m, struct trace_error *err);

/* Frees everything the model owns. */
void trace_model_release(struct trace_model *m);

/* Time of an absolute timestamp relative to the start of the process (the
 * PROCESS record's start_mono_ns, else the first record), in ns. */
int64_t trace_rel_ns(const struct trace_model *m, uint64_t ts);

/* The stack an event refers to, or NULL for none. */
const struct trace_stack *trace_event_stack(const struct trace_model *m,
					    const struct trace_event *e);

/* The region of the end map (else the last module snapshot) that holds
 * addr, or NULL. */
const struct trace_module *trace_region_of(const struct trace_model *m,
					   uint64_t addr);

/* The latest module record that maps addr, or NULL. */
const struct trace_module *trace_module_at(const struct trace_model *m,
					   uint64_t addr);

/* The module record of the latest snapshot that maps addr (of those, the
 * latest record), or NULL. */
const struct trace_module *trace_snapshot_module_at(const struct trace_model *m,
						    uint64_t addr);

#endif
