/* trace_reader.c: loads a trace file (trace_format.h) into a trace_model:
 * the file header and the chunks here, the records in trace_records.c.
 * The input is untrusted: lengths are checked before use, nothing recurses
 * on input, and every array is bounded by the bytes that fed it.
 */
#include "trace_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text_out.h"
#include "trace_decode.h"
#include "trace_format.h"
#include "trace_reader_priv.h"

void reader_error(struct trace_error *err, const char *name, const char *what,
		  uint64_t off, const char *fmt, ...)
{
	char why[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	err->has_offset = what != NULL;
	err->offset = off;
	if (what)
		snprintf(err->msg, sizeof(err->msg), "%s: %s at byte %llu: %s",
			 name, what, (unsigned long long)off, why);
	else
		snprintf(err->msg, sizeof(err->msg), "%s: %s", name, why);
}

int reader_reserve(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 64;
	if (ncap > SIZE_MAX / elem)
		return -1;
	void *p = realloc(*arr, ncap * elem);
	if (!p)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

int reader_out_of_memory(struct loader *ld)
{
	if (ld->too_many_stacks)
		reader_error(ld->err, ld->m->path, NULL, 0, "more than %u "
			     "distinct stacks: analyze holds at most that many",
			     TRACE_STACKS_MAX);
	else
		reader_error(ld->err, ld->m->path, NULL, 0, "out of memory");
	return -1;
}

static int add_reader_note(struct loader *ld, uint64_t level, const char *fmt,
			   ...)
{
	struct trace_model *m = ld->m;
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (reader_reserve((void **)&m->notes, &ld->notes_cap, m->n_notes,
		    sizeof(*m->notes)) < 0)
		return -1;
	char *text = strdup(buf);
	if (!text)
		return -1;
	m->notes[m->n_notes++] = (struct trace_note){
		.from_reader = true, .level = level, .ts = 0,
		.text = { text, strlen(text) },
	};
	return 0;
}

static bool later_record(const struct trace_module *v, size_t a, size_t b)
{
	(void)v;
	return a > b;
}

static bool earlier_record(const struct trace_module *v, size_t a, size_t b)
{
	(void)v;
	return a < b;
}

static bool later_snapshot(const struct trace_module *v, size_t a, size_t b)
{
	if (v[a].snapshot != v[b].snapshot)
		return v[a].snapshot > v[b].snapshot;
	return a > b;
}

/* The lines of the last end map (NULL when there are none). */
static const struct trace_module *last_map(const struct trace_model *m)
{
	return m->end_map ? m->end_map + m->end_map_from : NULL;
}

static int build_spans(struct trace_model *m)
{
	return trace_spans_build(m->modules, m->n_modules, later_record,
				 &m->module_spans) < 0 ||
	       trace_spans_build(m->modules, m->n_modules, later_snapshot,
				 &m->snapshot_spans) < 0 ||
	       trace_spans_build(last_map(m), m->n_end_map - m->end_map_from,
				 earlier_record,
				 &m->end_spans) < 0 ? -1 : 0;
}

/* Where a stack of no frames points: the pool is never allocated when
 * every stack is empty, and NULL + 0 is undefined. */
static const uint64_t no_frames[1];

static int finish(struct loader *ld)
{
	struct trace_model *m = ld->m;
	size_t undefined = 0;
	for (size_t i = 0; i < m->n_stacks; i++) {
		struct trace_stack *s = &m->stacks[i];
		if (s->defined)
			s->frames = s->n ? m->frame_pool + s->pool_at : no_frames;
		else
			undefined++;
	}
	if (reader_order_events(m) < 0 || build_spans(m) < 0)
		return -1;
	if (m->truncated && m->cut_at) {
		if (add_reader_note(ld, 1, "trace ends early at byte %llu (the "
				    "program was killed or the trace was cut)",
				    (unsigned long long)m->cut_at) < 0)
			return -1;
	} else if (!m->has_end) {
		m->truncated = true;
		if (add_reader_note(ld, 1, "trace has no end record (the "
				    "program was killed, ended by an exit "
				    "system call of its own as Go programs "
				    "do, or the trace was cut)")
		    < 0)
			return -1;
	}
	if (undefined && add_reader_note(ld, 1, "%zu %s used by events %s "
					 "not defined in the trace", undefined,
					 text_plural(undefined, "stack", "stacks"),
					 text_plural(undefined, "is", "are")) < 0)
		return -1;
	if (ld->dup_stacks && add_reader_note(ld, 0, "%zu duplicate stack "
					      "definition%s ignored",
					      ld->dup_stacks,
					      text_plural(ld->dup_stacks, "", "s")) < 0)
		return -1;
	if (m->unfinished_records &&
	    add_reader_note(ld, 0, "%zu %s left unfinished when the program "
			    "died %s skipped", m->unfinished_records,
			    text_plural(m->unfinished_records, "record", "records"),
			    text_plural(m->unfinished_records, "was", "were")) < 0)
		return -1;
	if (ld->extra_process && add_reader_note(ld, 1, "%zu extra process "
						 "record%s ignored",
						 ld->extra_process,
						 text_plural(ld->extra_process, "", "s")) < 0)
		return -1;
	return 0;
}

/* Collects libspy's own NOTE records into m->notes, ahead of reader notes
 * (these are added afterwards by finish). */
static int collect_notes(struct loader *ld)
{
	struct trace_model *m = ld->m;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		if (e->kind != TRACE_NOTE)
			continue;
		if (reader_reserve((void **)&m->notes, &ld->notes_cap, m->n_notes,
			    sizeof(*m->notes)) < 0)
			return -1;
		m->notes[m->n_notes++] = (struct trace_note){
			.level = e->a, .ts = e->ts, .text = m->strings[e->b],
		};
	}
	return 0;
}

/* Checks the file header; returns its size (header_size) or 0 with the
 * error set. Sets m->version and *region. */
static size_t read_header(struct loader *ld, size_t *region)
{
	struct trace_model *m = ld->m;
	const char *name = m->path;
	size_t size = m->size;
	if (size == 0) {
		reader_error(ld->err, name, "bad trace", 0, "the file is empty");
		return 0;
	}
	size_t cmp = size < TRACE_MAGIC_LEN ? size : TRACE_MAGIC_LEN;
	if (memcmp(m->data, TRACE_MAGIC, cmp) != 0) {
		reader_error(ld->err, name, NULL, 0, "not a libspy trace");
		return 0;
	}
	if (size < TRACE_MAGIC_LEN + 8) {
		reader_error(ld->err, name, "bad trace", size,
			     "file ends inside the file header");
		return 0;
	}
	m->version = trace_load_u32(m->data + 8);
	if (m->version > TRACE_VERSION) {
		reader_error(ld->err, name, NULL, 0,
			     "trace version %u is newer than this analyze (%u); "
			     "update libspy", m->version, TRACE_VERSION);
		return 0;
	}
	if (m->version == 0) {
		reader_error(ld->err, name, "bad trace", 8,
			     "unknown trace version 0");
		return 0;
	}
	if (size < TRACE_FILE_HEADER_SIZE) {
		reader_error(ld->err, name, "bad trace", size,
			     "file ends inside the file header");
		return 0;
	}
	uint32_t hsize = trace_load_u32(m->data + 12);
	uint32_t rsize = trace_load_u32(m->data + 16);
	if (rsize < TRACE_REGION_MIN || rsize > TRACE_REGION_MAX ||
	    (rsize & (rsize - 1))) {
		reader_error(ld->err, name, "bad trace", 16,
			     "region size %u is impossible", rsize);
		return 0;
	}
	if (hsize < TRACE_FILE_HEADER_SIZE || hsize > size ||
	    hsize > rsize - TRACE_CHUNK_HEADER_SIZE) {
		reader_error(ld->err, name, "bad trace", 12,
			     "file header size %u is impossible", hsize);
		return 0;
	}
	*region = rsize;
	return hsize;
}

/* Reads the chunks of the region [off, end). Returns 0, 1 when the file
 * ends inside a chunk (m->cut_at set), -1 on a bad chunk. */
static int read_region(struct loader *ld, size_t off, size_t end,
		       bool file_ends)
{
	struct trace_model *m = ld->m;
	while (off < end) {
		const uint8_t *h = m->data + off;
		size_t left = end - off;
		/* A zero byte where a chunk would start: the rest is padding
		 * (perhaps with a record its writer never finished). */
		if (h[0] == 0)
			return 0;
		if (left < 4) {
			if (file_ends) {
				m->cut_at = off;
				return 1;
			}
			reader_error(ld->err, m->path, "bad chunk", off,
				     "stray bytes at the end of a region");
			return -1;
		}
		if (trace_load_u32(h) != TRACE_CHUNK_MAGIC) {
			reader_error(ld->err, m->path, "bad chunk", off,
				     "no chunk starts here");
			return -1;
		}
		if (left < TRACE_CHUNK_HEADER_SIZE) {
			if (file_ends) {
				m->cut_at = off;
				return 1;
			}
			reader_error(ld->err, m->path, "bad chunk", off,
				     "chunk header runs past its region");
			return -1;
		}
		uint32_t payload = trace_load_u32(h + 4);
		size_t start = off + TRACE_CHUNK_HEADER_SIZE;
		bool cut = payload > end - start;
		if (cut && !file_ends) {
			reader_error(ld->err, m->path, "bad chunk", off,
				     "chunk of %u bytes runs past its region",
				     payload);
			return -1;
		}
		struct chunk_state cs = { .time = trace_load_u64(h + 16),
					  .tid = trace_load_u32(h + 8) };
		if (cs.tid > TRACE_TID_MAX) {
			reader_error(ld->err, m->path, "bad chunk", off,
				     "thread id %u is impossible", cs.tid);
			return -1;
		}
		m->n_chunks++;
		if (!reader_thread(ld, cs.tid, cs.time))
			return reader_out_of_memory(ld);
		int r = reader_read_chunk(ld, m->data + start,
					  cut ? end - start : payload, cut, &cs);
		if (r < 0)
			return -1;
		if (cut) {
			m->cut_at = r > 0 ? cs.rec_off : m->size;
			return 1;
		}
		off = start + payload;
	}
	return 0;
}

static int parse(struct loader *ld)
{
	struct trace_model *m = ld->m;
	size_t region;
	size_t hsize = read_header(ld, &region);
	if (!hsize)
		return -1;
	for (size_t at = 0; at < m->size; at += region) {
		size_t off = at ? at : hsize;
		size_t end = m->size - at > region ? at + region : m->size;
		/* Only the last region may be short; a chunk cut off by the
		 * end of the file is where the trace stops. */
		bool file_ends = end == m->size && end - at < region;
		int r = read_region(ld, off, end, file_ends);
		/* A region read is a region not needed in memory: the few
		 * records that point into it (strings, fields) fault their
		 * pages back in from the page cache when they are used. */
		if (m->mapped)
			madvise(m->data + at, end - at, MADV_DONTNEED);
		if (r < 0)
			return -1;
		if (r > 0) {
			m->truncated = true;
			break;
		}
	}
	if (!m->process.seen) {
		if (m->has_end)
			reader_error(ld->err, m->path, "bad trace", hsize,
				     "the trace has no process record");
		else
			reader_error(ld->err, m->path, "bad trace",
				     m->truncated ? m->cut_at : m->size,
				     "file ends before the process record");
		return -1;
	}
	if (collect_notes(ld) < 0 || finish(ld) < 0)
		return reader_out_of_memory(ld);
	return 0;
}

static int load(const char *name, uint8_t *data, size_t size, bool mapped,
		struct trace_model *m, struct trace_error *err)
{
	memset(m, 0, sizeof(*m));
	memset(err, 0, sizeof(*err));
	m->path = name;
	m->data = data;
	m->size = size;
	m->mapped = mapped;
	struct loader ld = { .m = m, .err = err };
	if (parse(&ld) < 0) {
		trace_model_release(m);
		return -1;
	}
	return 0;
}

int trace_load_buffer(const char *name, uint8_t *data, size_t size,
		      struct trace_model *m, struct trace_error *err)
{
	return load(name, data, size, false, m, err);
}

/* The files mapped now: a file cut shorter while it is mapped raises
 * SIGBUS at the first access past its new end, which must end analyze
 * with one line, not a crash. */
#define MAX_MAPPED 8
static struct {
	const uint8_t *lo, *hi;
} mapped[MAX_MAPPED];

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	const uint8_t *at = si->si_addr;
	for (size_t i = 0; i < MAX_MAPPED; i++)
		if (at >= mapped[i].lo && at < mapped[i].hi) {
			static const char msg[] = "analyze: the trace file "
				"shrank while it was read\n";
			ssize_t r = write(2, msg, sizeof(msg) - 1);
			(void)r;
			_exit(2);
		}
	/* not ours: as if no handler were there */
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Maps fd's size bytes for reading; NULL when it cannot (the caller
 * reads the file instead). */
static uint8_t *map_file(int fd, size_t size)
{
	size_t slot = 0;
	while (slot < MAX_MAPPED && mapped[slot].lo)
		slot++;
	if (!size || slot == MAX_MAPPED)
		return NULL;
	uint8_t *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	static bool handler;
	if (!handler) {
		struct sigaction sa = { .sa_sigaction = on_sigbus,
					.sa_flags = SA_SIGINFO };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, NULL);
		handler = true;
	}
	mapped[slot].lo = p;
	mapped[slot].hi = p + size;
	return p;
}

static void unmap_file(uint8_t *p, size_t size)
{
	for (size_t i = 0; i < MAX_MAPPED; i++)
		if (mapped[i].lo == p)
			mapped[i].lo = mapped[i].hi = NULL;
	munmap(p, size);
}

/* "cannot open trace 'x': reason", the project's message for files. */
static void file_error(struct trace_error *err, const char *path,
		       const char *why)
{
	err->has_offset = false;
	snprintf(err->msg, sizeof(err->msg), "cannot open trace '%s': %s",
		 path, why);
}

int trace_load_file(const char *path, struct trace_model *m,
		    struct trace_error *err)
{
	memset(m, 0, sizeof(*m));
	memset(err, 0, sizeof(*err));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		file_error(err, path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		file_error(err, path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		file_error(err, path, S_ISDIR(st.st_mode) ? strerror(EISDIR)
					      : "not a regular file");
		close(fd);
		return -1;
	}
	/* Mapped, so that the pages of regions already read go back to the
	 * page cache (parse() lets them go); read whole where that fails.
	 * If it shrinks while read, keep what came. */
	size_t size = (size_t)st.st_size;
	uint8_t *data = map_file(fd, size);
	if (data) {
		close(fd);
		return load(path, data, size, true, m, err);
	}
	data = malloc(size ? size : 1);
	if (!data) {
		file_error(err, path, strerror(ENOMEM));
		close(fd);
		return -1;
	}
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, data + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			file_error(err, path, strerror(errno));
			free(data);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	return load(path, data, got, false, m, err);
}

void trace_model_release(struct trace_model *m)
{
	free(m->process.argv);
	free(m->modules);
	free(m->end_map);
	free(m->stacks);
	free(m->frame_pool);
	free(m->threads);
	reader_events_release(m);
	free(m->strings);
	for (size_t i = 0; i < m->n_notes; i++)
		if (m->notes[i].from_reader)
			free((char *)m->notes[i].text.p);
	free(m->notes);
	trace_spans_release(&m->module_spans);
	trace_spans_release(&m->snapshot_spans);
	trace_spans_release(&m->end_spans);
	u64map_release(&m->stack_index);
	u64map_release(&m->thread_index);
	if (m->mapped)
		unmap_file(m->data, m->size);
	else
		free(m->data);
	memset(m, 0, sizeof(*m));
}

int64_t trace_rel_ns(const struct trace_model *m, uint64_t ts)
{
	uint64_t base = m->process.start_mono_ns ? m->process.start_mono_ns
						 : m->first_ts;
	return (int64_t)(ts - base);
}

const struct trace_stack *trace_event_stack(const struct trace_model *m,
					    const struct trace_event *e)
{
	if (!e->stack || e->stack > m->n_stacks)
		return NULL;
	return &m->stacks[e->stack - 1];
}

const struct trace_module *trace_region_of(const struct trace_model *m,
					   uint64_t addr)
{
	const struct trace_module *r =
		trace_spans_find(&m->end_spans, last_map(m), addr);
	return r ? r : trace_module_at(m, addr);
}

const struct trace_module *trace_module_at(const struct trace_model *m,
					   uint64_t addr)
{
	return trace_spans_find(&m->module_spans, m->modules, addr);
}

const struct trace_module *trace_snapshot_module_at(const struct trace_model *m,
						    uint64_t addr)
{
	return trace_spans_find(&m->snapshot_spans, m->modules, addr);
}
