/* io_model.h: what a trace says about the program's system calls, from
 * rec_io's records: totals per (call, descriptor, call site), what each
 * descriptor was, the kernel's own counters, how calls were intercepted,
 * and (syscalls=all) counts per system call.
 */
#ifndef SPY_IO_MODEL_H
#define SPY_IO_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_format.h"
#include "trace_reader.h"

/* One call site's calls of one kind on one descriptor, all threads. */
struct io_site {
	unsigned fn;             /* enum trace_io_fn */
	int64_t fd;              /* -1 for the overflow row */
	uint64_t desc;           /* index + 1 into io_model.descs, 0 if none */
	uint32_t stack;          /* index + 1 into model.stacks, 0 if none */
	uint64_t tid;            /* the first thread seen making them */
	size_t threads;          /* records from how many thread ids (>= 1) */
	uint64_t calls, bytes, errors, timed_calls, timed_ns, max_size;
	uint64_t hist[TRACE_IO_BUCKETS];
};

struct io_desc {
	uint64_t id;
	int64_t fd;
	unsigned type;           /* enum trace_fd_type */
	struct trace_str path;
};

/* A /proc/self/io reading (IO_PROC). */
struct io_proc {
	bool seen;
	uint64_t rchar, wchar, syscr, syscw, read_bytes, write_bytes;
	uint64_t seen_writes, seen_reads, own_reads;
	bool incomplete;  /* ended threads could not all be counted */
};

struct io_syscall {
	uint64_t nr, calls, errors;
};

struct io_model {
	struct io_site *sites;
	size_t n_sites;
	struct io_desc *descs;
	size_t n_descs;
	struct io_proc start, end;
	bool has_mode;
	uint64_t mode_flags, patched;
	struct io_syscall *syscalls;  /* sorted by calls, most first */
	size_t n_syscalls;
	size_t bad_records;           /* records whose fields did not decode */
};

/* Builds the model from m (which must outlive it). Sites come sorted by
 * calls, most first. Returns 0, or -1 when memory ran out. */
int io_model_build(const struct trace_model *m, struct io_model *io);
void io_model_release(struct io_model *io);

/* The descriptor a site wrote to, or NULL if it was not described. */
const struct io_desc *io_site_desc(const struct io_model *io,
				   const struct io_site *s);

/* Estimated wall time of all the site's calls (the timed sample scaled
 * up), in ns; 0 when none was timed. */
uint64_t io_site_time_ns(const struct io_site *s);

/* The upper bound of the size bucket holding the median call: the median
 * is below it (0 when the median call asked for 0 bytes). */
uint64_t io_site_median_below(const struct io_site *s);

/* Write-class calls the kernel counted (syscw between the readings) that
 * no hook saw; -1 when the trace has no pair of readings, or when its end
 * reading could not count every thread that ended. */
int64_t io_model_bypassed_writes(const struct io_model *io);

/* The libraries that call the system, and take locks and allocate, on
 * the program's behalf: libc, libstdc++, the loader (and libspy). */
bool io_runtime_module(const char *path);

struct symbolizer;
/* The frame of st where the program itself made the call: the first one
 * outside libc, libstdc++ and the loader (printf's caller, not printf).
 * 0 when every frame is in those libraries or st is NULL. */
size_t io_user_frame(struct symbolizer *sym, const struct trace_stack *st);

/* A system call's name ("write"), or NULL when the number is unknown. */
const char *io_syscall_name(uint64_t nr);

#endif
