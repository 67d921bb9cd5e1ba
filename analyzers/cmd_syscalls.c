/* cmd_syscalls.c: `analyze syscalls TRACE`: the program's read- and
 * write-class calls per call site and per descriptor, the kernel's own
 * count as a cross-check, every system call by name under syscalls=all,
 * and the unbuffered-io findings. Text or --json.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "detect_io.h"
#include "findings_out.h"
#include "io_model.h"
#include "json_writer.h"
#include "stack_out.h"
#include "symbolize.h"
#include "text_out.h"
#include "summary.h"
#include "u64map.h"

/* Rows shown in text; --json has every one. */
#define TEXT_ROWS 60

static const char *duration(char *buf, size_t len, uint64_t ns, bool timed)
{
	if (!timed)
		snprintf(buf, len, "-");
	else if (ns >= 1000000000u)
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
	else if (ns >= 1000000u)
		snprintf(buf, len, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	return buf;
}

/* One descriptor's totals (by description, else by number). */
struct fd_row {
	int64_t fd;
	const struct io_desc *d;
	uint64_t wcalls, wbytes, rcalls, rbytes;
};

static bool same_row(const struct fd_row *r, int64_t fd,
		     const struct io_desc *d)
{
	return r->fd == fd &&
	       (r->d == d ||
		(r->d && d && r->d->type == d->type &&
		 r->d->path.len == d->path.len &&
		 !memcmp(r->d->path.p, d->path.p, d->path.len)));
}

static uint64_t row_hash(int64_t fd, const struct io_desc *d)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)fd;
	if (d) {
		h = (h ^ d->type) * 1099511628211ull;
		for (size_t i = 0; i < d->path.len; i++)
			h = (h ^ (uint8_t)d->path.p[i]) * 1099511628211ull;
	}
	return h;
}

/* The sites' totals per descriptor, in the order first seen. A server
 * that reuses a number for connection after connection has a row per
 * connection: found by hash, not by a scan of the rows. */
static size_t fd_rows(const struct io_model *io, struct fd_row *rows)
{
	size_t n = 0;
	struct u64map by_hash = U64MAP_INIT;
	for (size_t i = 0; i < io->n_sites; i++) {
		const struct io_site *s = &io->sites[i];
		const struct io_desc *d = io_site_desc(io, s);
		uint64_t h = row_hash(s->fd, d), *slot = u64map_get(&by_hash, h);
		size_t j = n;
		if (slot && same_row(&rows[*slot - 1], s->fd, d))
			j = *slot - 1;
		else if (slot) /* another row has the hash: look at them all */
			for (j = 0; j < n && !same_row(&rows[j], s->fd, d); j++)
				;
		if (j == n) {
			rows[n++] = (struct fd_row){ .fd = s->fd, .d = d };
			if (!slot)
				u64map_put(&by_hash, h, n); /* else found by the scan */
		}
		if (trace_io_fn_is_write(s->fn)) {
			rows[j].wcalls += s->calls;
			rows[j].wbytes += s->bytes;
		} else {
			rows[j].rcalls += s->calls;
			rows[j].rbytes += s->bytes;
		}
	}
	u64map_release(&by_hash);
	return n;
}

static void patched_names(char *buf, size_t len, uint64_t mask)
{
	size_t o = 0;
	buf[0] = 0;
	for (unsigned f = 0; f < TRACE_IO_FN_MAX && o + 16 < len; f++)
		if (mask & (1ull << f))
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "",
					      trace_io_fn_name(f));
}

/* The descriptor's path, its middle cut to fit width (--json has it
 * whole); padded to width when pad is set. */
static void put_desc(FILE *out, const struct io_desc *d, size_t width,
		     bool pad)
{
	size_t w = !d ? (size_t)fprintf(out, "?")
		   : d->path.len ? text_put_fit(out, d->path.p, d->path.len, width)
		   : (size_t)fprintf(out, "(%s)", trace_fd_type_name(d->type));
	for (; pad && w < width; w++)
		fputc(' ', out);
}

/* One frame on a line of its own under its row, after lead: "function
 * at file.c:12", or "in module+0x1f0" without line information, both cut
 * in the middle when long (--json has the whole stack). */
static void print_frame_line(FILE *out, const char *lead,
			     const struct sym_frame *f)
{
	int used = fprintf(out, "           %s", lead);
	size_t room = TEXT_WIDTH - (size_t)used;
	const char *fn = f->function ? f->function : "??";
	const char *place = f->file ? f->file : f->module;
	if (!f->function && !place) {
		fprintf(out, "?? 0x%" PRIx64, f->address);
		return;
	}
	char at[24] = "";
	if (f->file)
		snprintf(at, sizeof(at), ":%u", f->line);
	else if (place)
		snprintf(at, sizeof(at), "+0x%" PRIx64, f->offset);
	/* The function gets up to 36 columns; the place what is left,
	 * never less than 12. */
	size_t fixed = place ? 4 + strlen(at) : 0;
	size_t fn_room = room > fixed + 12 + 36 ? 36
			 : room > fixed + 20 ? room - fixed - 12 : 8;
	size_t w = text_put_fit(out, fn, strlen(fn), place ? fn_room : room);
	if (!place)
		return;
	const char *b = strrchr(place, '/');
	b = b && b[1] ? b + 1 : place;
	fputs(f->file ? " at " : " in ", out);
	text_put_fit(out, b, strlen(b), room > w + fixed + 8 ? room - w - fixed : 8);
	fputs(at, out);
}

/* The site's first frame outside the C library and libspy; NULL when it
 * has no stack. */
static const struct sym_frame *site_frame(const struct trace_model *m,
					  struct symbolizer *sym,
					  const struct io_site *s)
{
	if (!s->stack)
		return NULL;
	const struct trace_stack *st = &m->stacks[s->stack - 1];
	if (!st->n)
		return NULL;
	return symbolizer_lookup(sym, st->frames[io_user_frame(sym, st)]);
}

/* The frames a site's row shows, from the first outside the C library
 * and libspy. */
static void site_frames(const struct trace_model *m, struct symbolizer *sym,
			const struct io_site *s, struct stack_row *r)
{
	*r = (struct stack_row){ 0 };
	if (!s->stack || !m->stacks[s->stack - 1].n)
		return;
	const struct trace_stack *st = &m->stacks[s->stack - 1];
	size_t u = io_user_frame(sym, st);
	r->frames = st->frames + u;
	r->n = st->n - u;
}

/* The columns of a row other than its numbers: the call, the descriptor's
 * number and what it names, as printed. */
static int visible_cmp(const void *x, const void *y, void *arg)
{
	const struct io_model *io = arg;
	const struct io_site *a = &io->sites[*(const size_t *)x];
	const struct io_site *b = &io->sites[*(const size_t *)y];
	if (a->fn != b->fn)
		return a->fn < b->fn ? -1 : 1;
	if (a->fd != b->fd)
		return a->fd < b->fd ? -1 : 1;
	const struct io_desc *da = io_site_desc(io, a), *db = io_site_desc(io, b);
	if (!da || !db)
		return (da != NULL) - (db != NULL);
	if (da->path.len || db->path.len) {
		size_t n = da->path.len < db->path.len ? da->path.len : db->path.len;
		int c = memcmp(da->path.p, db->path.p, n);
		return c ? c : (da->path.len > db->path.len) - (da->path.len < db->path.len);
	}
	return (da->type > db->type) - (da->type < db->type);
}

/* The first n rows of the call-site table (those shown) with their frames
 * to print: rows that show another call or descriptor read apart already;
 * the others show as many callers as it takes to tell them from the other
 * rows shown (run at demo.c:120, called from main at 140 or at 142). NULL
 * when memory runs out. */
static struct stack_row *site_rows(const struct trace_model *m,
				   const struct io_model *io,
				   struct symbolizer *sym, size_t n)
{
	struct stack_row *rows = calloc(n ? n : 1, sizeof(*rows));
	size_t *idx = malloc((n ? n : 1) * sizeof(*idx));
	if (!rows || !idx) {
		free(rows);
		free(idx);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		site_frames(m, sym, &io->sites[i], &rows[i]);
		idx[i] = i;
	}
	qsort_r(idx, n, sizeof(*idx), visible_cmp, (void *)io);
	for (size_t i = 0; i < n; i++)
		rows[idx[i]].group = i && visible_cmp(&idx[i - 1], &idx[i],
						      (void *)io) == 0
			? rows[idx[i - 1]].group : i;
	free(idx);
	stack_rows_apart(sym, rows, n, 1, false);
	return rows;
}

static void print_text(const struct trace_model *m, const struct io_model *io,
		       struct symbolizer *sym, const struct finding_list *fl)
{
	struct text_out t;
	text_init(&t, stdout);
	char a[32], b[32], c[32], names[256];
	printf("%sSystem calls%s of pid %" PRIu64 " (", text_style(&t, STYLE_BOLD),
	       text_style(&t, STYLE_PLAIN), m->process.pid);
	text_put_fit(stdout, m->process.exe.p, m->process.exe.len, 50);
	printf(")\n");
	if (!io->has_mode) {
		printf("no system-call records: the trace was made without the "
		       "I/O recorder\n");
	} else {
		char seen[512];
		patched_names(names, sizeof(names), io->patched);
		snprintf(seen, sizeof(seen), "the PLT (calls the program makes by name)%s%s%s%s",
			 io->patched ? "; libc's entries of " : "", names,
			 io->patched ? " (stdio's own calls too)" : "; stdio's own calls are not seen",
			 io->mode_flags & TRACE_IO_MODE_SUD
				 ? "; and every system call (syscalls=all)" : "");
		fputs("seen through: ", stdout);
		text_hang(stdout, seen, 14, 14);
	}
	/* libspy's own notes about interception (an entry left unpatched,
	 * syscalls=all refused). */
	for (size_t i = 0; i < m->n_notes; i++) {
		const struct trace_note *n = &m->notes[i];
		if (n->from_reader ||
		    !((n->text.len >= 4 && !memcmp(n->text.p, "io: ", 4)) ||
		      (n->text.len >= 13 && !memcmp(n->text.p, "syscalls=all:", 13))))
			continue;
		char *text = strndup(n->text.p, n->text.len);
		if (!text)
			continue;
		fputs("note: ", stdout);
		text_hang(stdout, text, 6, 6);
		free(text);
	}
	if (io->n_sites) {
		printf("\n%sBy call site%s, most calls first (time: estimated from "
		       "1 call in 16)\n", text_style(&t, STYLE_BOLD),
		       text_style(&t, STYLE_PLAIN));
		/* A row of numbers, then the site below it: the site is
		 * what the lesson points at and gets a line of its own. */
		printf("%10s %12s %8s %9s  %-8s %3s  %s\n", "calls", "bytes",
		       "per call", "time", "call", "fd", "descriptor");
		size_t shown = io->n_sites < TEXT_ROWS ? io->n_sites : TEXT_ROWS;
		struct stack_row *frames = site_rows(m, io, sym, shown);
		for (size_t i = 0; i < shown; i++) {
			const struct io_site *s = &io->sites[i];
			double per = s->calls ? (double)s->bytes / (double)s->calls : 0;
			int used = printf("%10s %12s %8.1f %9s  %-8s %3" PRId64 "  ",
					  summary_format_count(a, sizeof(a), s->calls),
					  summary_format_count(b, sizeof(b), s->bytes), per,
					  duration(c, sizeof(c), io_site_time_ns(s),
						   s->timed_calls > 0),
					  trace_io_fn_name(s->fn), s->fd);
			put_desc(stdout, io_site_desc(io, s),
				 used > 0 && used < TEXT_WIDTH - 8
					 ? TEXT_WIDTH - (size_t)used : 8, false);
			fputc('\n', stdout);
			struct stack_row r;
			if (frames)
				r = frames[i];
			else
				site_frames(m, sym, s, &r), r.depth = r.n ? 1 : 0;
			if (!r.depth)
				printf("           (no stack)\n");
			for (size_t k = 0; k < r.depth; k++) {
				print_frame_line(stdout, k ? "called from " : "",
						 symbolizer_lookup(sym, r.frames[k]));
				fputc('\n', stdout);
			}
		}
		free(frames);
		if (io->n_sites > shown)
			printf("... %zu more rows (analyze syscalls --json lists every one)\n",
			       io->n_sites - shown);
		struct fd_row *rows = calloc(io->n_sites, sizeof(*rows));
		if (rows) {
			size_t n = fd_rows(io, rows);
			printf("\n%sBy descriptor%s\n", text_style(&t, STYLE_BOLD),
			       text_style(&t, STYLE_PLAIN));
			printf("%3s  %-23s %-7s %9s %11s %9s %11s\n", "fd", "descriptor",
			       "type", "writes", "bytes out", "reads", "bytes in");
			for (size_t i = 0; i < n && i < TEXT_ROWS; i++) {
				char d1[32], d2[32];
				printf("%3" PRId64 "  ", rows[i].fd);
				put_desc(stdout, rows[i].d, 23, true);
				printf(" %-7s %9s %11s %9s %11s\n",
				       rows[i].d ? trace_fd_type_name(rows[i].d->type) : "?",
				       summary_format_count(a, sizeof(a), rows[i].wcalls),
				       summary_format_count(b, sizeof(b), rows[i].wbytes),
				       summary_format_count(d1, sizeof(d1), rows[i].rcalls),
				       summary_format_count(d2, sizeof(d2), rows[i].rbytes));
			}
			if (n > TEXT_ROWS)
				printf("... %zu more descriptors\n", n - TEXT_ROWS);
			free(rows);
		}
	}
	int64_t by = io_model_bypassed_writes(io);
	if (by >= 0) {
		printf("\n%sKernel cross-check%s (/proc/self/io, from start to exit)\n",
		       text_style(&t, STYLE_BOLD), text_style(&t, STYLE_PLAIN));
		char line[256];
		uint64_t counted = io->end.syscw - io->start.syscw;
		snprintf(line, sizeof(line), "the kernel counted %s write "
			 "call%s, libspy saw %s:\n%s write call%s bypassed libc (raw "
			 "syscall(), inline system calls, static code; send* are "
			 "not in the kernel's count)",
			 summary_format_count(a, sizeof(a), counted),
			 text_plural(counted, "", "s"),
			 summary_format_count(b, sizeof(b), io->end.seen_writes - io->start.seen_writes),
			 summary_format_count(c, sizeof(c), (uint64_t)by),
			 text_plural((uint64_t)by, "", "s"));
		text_wrap(stdout, line, 2);
	}
	if (io->n_syscalls) {
		printf("\n%sEvery system call%s (syscalls=all)\n",
		       text_style(&t, STYLE_BOLD), text_style(&t, STYLE_PLAIN));
		printf("%12s  %s\n", "calls", "system call");
		for (size_t i = 0; i < io->n_syscalls; i++) {
			const struct io_syscall *y = &io->syscalls[i];
			const char *nm = io_syscall_name(y->nr);
			printf("%12s  ", summary_format_count(a, sizeof(a), y->calls));
			if (nm)
				printf("%s\n", nm);
			else
				printf("#%" PRIu64 "\n", y->nr);
		}
	}
	if (io->bad_records)
		printf("\n%zu system-call record%s could not be read and %s left out\n",
		       io->bad_records, text_plural(io->bad_records, "", "s"),
		       io->bad_records == 1 ? "was" : "were");
	fputc('\n', stdout);
	findings_print_text(&t, sym, fl);
}

static void print_json(const struct trace_model *m, const struct io_model *io,
		       struct symbolizer *sym, const struct finding_list *fl)
{
	struct json_writer w;
	json_init(&w, stdout, 3);
	json_object_begin(&w);
	json_key(&w, "process");
	json_object_begin(&w);
	json_key(&w, "pid");
	json_uint(&w, m->process.pid);
	json_key(&w, "exe");
	json_string_len(&w, m->process.exe.p, m->process.exe.len);
	json_object_end(&w);

	json_key(&w, "interception");
	json_object_begin(&w);
	json_key(&w, "recorded");
	json_bool(&w, io->has_mode);
	json_key(&w, "plt");
	json_bool(&w, (io->mode_flags & TRACE_IO_MODE_PLT) != 0);
	json_key(&w, "libc_entries_patched");
	json_array_begin(&w);
	for (unsigned f = 0; f < TRACE_IO_FN_MAX; f++)
		if (io->patched & (1ull << f))
			json_string(&w, trace_io_fn_name(f));
	json_array_end(&w);
	json_key(&w, "all_syscalls");
	json_bool(&w, (io->mode_flags & TRACE_IO_MODE_SUD) != 0);
	json_object_end(&w);

	json_key(&w, "sites");
	json_array_begin(&w);
	for (size_t i = 0; i < io->n_sites; i++) {
		const struct io_site *s = &io->sites[i];
		const struct io_desc *d = io_site_desc(io, s);
		json_object_begin(&w);
		json_key(&w, "call");
		json_string(&w, trace_io_fn_name(s->fn));
		json_key(&w, "direction");
		json_string(&w, trace_io_fn_is_write(s->fn) ? "write" : "read");
		json_key(&w, "fd");
		json_int(&w, s->fd);
		json_key(&w, "fd_type");
		if (d)
			json_string(&w, trace_fd_type_name(d->type));
		else
			json_null(&w);
		json_key(&w, "fd_path");
		if (d)
			json_string_len(&w, d->path.p, d->path.len);
		else
			json_null(&w);
		json_key(&w, "calls");
		json_uint(&w, s->calls);
		json_key(&w, "bytes");
		json_uint(&w, s->bytes);
		json_key(&w, "errors");
		json_uint(&w, s->errors);
		json_key(&w, "median_size_below");
		json_uint(&w, io_site_median_below(s));
		json_key(&w, "max_size");
		json_uint(&w, s->max_size);
		json_key(&w, "time_ns");
		json_uint(&w, io_site_time_ns(s));
		json_key(&w, "timed_calls");
		json_uint(&w, s->timed_calls);
		json_key(&w, "thread");
		json_uint(&w, s->tid);
		json_key(&w, "threads");
		json_uint(&w, s->threads);
		json_key(&w, "size_histogram");
		json_array_begin(&w);
		for (unsigned b = 0; b < TRACE_IO_BUCKETS; b++) {
			if (!s->hist[b])
				continue;
			json_object_begin(&w);
			json_key(&w, "from");
			json_uint(&w, b ? (uint64_t)1 << (b - 1) : 0);
			json_key(&w, "below");
			json_uint(&w, b ? (uint64_t)1 << b : 1);
			json_key(&w, "calls");
			json_uint(&w, s->hist[b]);
			json_object_end(&w);
		}
		json_array_end(&w);
		const struct trace_stack *st = s->stack ? &m->stacks[s->stack - 1] : NULL;
		const struct sym_frame *f = site_frame(m, sym, s);
		json_key(&w, "site");
		if (f) {
			json_object_begin(&w);
			json_key(&w, "function");
			json_string(&w, f->function);
			json_key(&w, "file");
			json_string(&w, f->file);
			json_key(&w, "line");
			if (f->file)
				json_uint(&w, f->line);
			else
				json_null(&w);
			json_key(&w, "address");
			json_hex(&w, f->address);
			json_object_end(&w);
		} else {
			json_null(&w);
		}
		json_key(&w, "frames");
		stack_print_json(&w, sym, st ? st->frames : NULL, st ? st->n : 0);
		json_object_end(&w);
	}
	json_array_end(&w);

	json_key(&w, "kernel");
	int64_t by = io_model_bypassed_writes(io);
	if (by >= 0) {
		json_object_begin(&w);
		json_key(&w, "syscw");
		json_uint(&w, io->end.syscw - io->start.syscw);
		json_key(&w, "syscr");
		json_uint(&w, io->end.syscr - io->start.syscr);
		json_key(&w, "wchar");
		json_uint(&w, io->end.wchar - io->start.wchar);
		json_key(&w, "rchar");
		json_uint(&w, io->end.rchar - io->start.rchar);
		json_key(&w, "seen_writes");
		json_uint(&w, io->end.seen_writes - io->start.seen_writes);
		json_key(&w, "seen_reads");
		json_uint(&w, io->end.seen_reads - io->start.seen_reads);
		json_key(&w, "bypassed_writes");
		json_int(&w, by);
		json_object_end(&w);
	} else {
		json_null(&w);
	}

	json_key(&w, "syscalls");
	json_array_begin(&w);
	for (size_t i = 0; i < io->n_syscalls; i++) {
		const struct io_syscall *y = &io->syscalls[i];
		json_object_begin(&w);
		json_key(&w, "nr");
		json_uint(&w, y->nr);
		json_key(&w, "name");
		json_string(&w, io_syscall_name(y->nr));
		json_key(&w, "calls");
		json_uint(&w, y->calls);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_key(&w, "bad_records");
	json_uint(&w, io->bad_records);
	json_key(&w, "findings");
	findings_print_json(&w, sym, fl);
	json_object_end(&w);
	fputc('\n', stdout);
}

int cmd_syscalls(const struct cmd_args *a)
{
	struct trace_model m;
	if (cmd_load(a->trace, &m))
		return 2;
	struct io_model io;
	struct finding_list fl = { 0 };
	struct symbolizer *sym = NULL;
	if (io_model_build(&m, &io) < 0) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		trace_model_release(&m);
		return 2;
	}
	if (detect_io(&m, &fl) < 0 || !(sym = symbolizer_new(&m))) {
		fprintf(stderr, "analyze: %s: out of memory\n", a->trace);
		finding_list_release(&fl);
		io_model_release(&io);
		trace_model_release(&m);
		return 2;
	}
	if (a->json)
		print_json(&m, &io, sym, &fl);
	else
		print_text(&m, &io, sym, &fl);
	int status = fl.n ? 1 : 0;
	symbolizer_free(sym);
	finding_list_release(&fl);
	io_model_release(&io);
	trace_model_release(&m);
	return cmd_finish(status);
}
