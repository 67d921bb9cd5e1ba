/* detect_io.c: unbuffered-io: a call site that makes many small writes to
 * one descriptor, each a trip into the kernel and back.
 *
 * A site (one call site, one kind of write call, one descriptor, all
 * threads together) is flagged when both hold (docs/syscalls.md):
 *   - it made at least IO_MIN_CALLS write-class calls;
 *   - the median call asked for fewer than IO_SMALL bytes (sizes are kept
 *     in power-of-two buckets, so this is "the median call's bucket lies
 *     wholly below IO_SMALL").
 * The same bytes written through a buffer are few large calls, and clean.
 * On a terminal the finding is only "info": stdio line-buffers terminals
 * on purpose.
 */
#include "detect_io.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_model.h"
#include "symbolize.h"
#include "summary.h"
#include "text_out.h"

#define IO_MIN_CALLS 1000
#define IO_SMALL 512
#define IO_BUFFER (64 * 1024)

/* "write_bytes (syscall_overhead.c:42)" or "write_bytes", or for code
 * without symbols "libfoo.so.1+0x1234" (as its stack line reads). */
static void site_name(char *buf, size_t len, const struct sym_frame *f)
{
	const char *fn = f && f->function ? f->function : "an unknown function";
	if (f && !f->function && f->module) {
		const char *b = strrchr(f->module, '/');
		snprintf(buf, len, "%s+0x%" PRIx64, b ? b + 1 : f->module,
			 f->offset);
	} else if (f && f->file) {
		const char *b = strrchr(f->file, '/');
		snprintf(buf, len, "%s (%s:%u)", fn, b ? b + 1 : f->file, f->line);
	} else {
		snprintf(buf, len, "%s", fn);
	}
}

static void desc_name(char *buf, size_t len, const struct io_desc *d,
		      int64_t fd)
{
	if (!d) {
		snprintf(buf, len, "descriptor %" PRId64, fd);
		return;
	}
	/* The path comes from the traced program: keep it printable. */
	char p[256];
	size_t n = d->path.len < sizeof(p) - 1 ? d->path.len : sizeof(p) - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d->path.p[i];
		p[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	p[n] = 0;
	snprintf(buf, len, "descriptor %" PRId64 " (%s%s%s)", fd,
		 n ? p : trace_fd_type_name(d->type), n ? ", a " : "",
		 n ? trace_fd_type_name(d->type) : "");
}

static int flag(const struct trace_model *m, const struct io_model *io,
		struct symbolizer *sym, const struct io_site *s,
		struct finding_list *out)
{
	const struct trace_stack *st =
		s->stack ? &m->stacks[s->stack - 1] : NULL;
	size_t uf = io_user_frame(sym, st);
	const struct sym_frame *f =
		st && st->n ? symbolizer_lookup(sym, st->frames[uf]) : NULL;
	const struct sym_frame *via =
		st && uf > 0 ? symbolizer_lookup(sym, st->frames[uf - 1]) : NULL;
	const struct io_desc *d = io_site_desc(io, s);
	const char *call = trace_io_fn_name(s->fn);
	uint64_t buffered = (s->bytes + IO_BUFFER - 1) / IO_BUFFER;
	if (!buffered)
		buffered = 1;
	uint64_t t_ns = io_site_time_ns(s), median = io_site_median_below(s);
	double per = s->calls ? (double)s->bytes / (double)s->calls : 0;
	char site[512], dn[400], calls[32], bytes[32], bufc[32], timed[32];
	char head[1200], expl[3000], viatext[400] = "", timetext[200] = "";
	site_name(site, sizeof(site), f);
	desc_name(dn, sizeof(dn), d, s->fd);
	summary_format_count(calls, sizeof(calls), s->calls);
	summary_format_count(bytes, sizeof(bytes), s->bytes);
	summary_format_count(bufc, sizeof(bufc), buffered);
	summary_format_count(timed, sizeof(timed), s->timed_calls);
	if (via && via->function && uf > 0)
		snprintf(viatext, sizeof(viatext),
			 " The calls come from inside the C library (%s, "
			 "called from this line): the stream writes every time "
			 "instead of filling its buffer (it is unbuffered, or "
			 "flushed after every call).", via->function);
	if (t_ns)
		snprintf(timetext, sizeof(timetext),
			 " They took about %.3f ms in all (%.0f ns a call, "
			 "estimated from %s timed call%s).", (double)t_ns / 1e6,
			 (double)t_ns / (double)s->calls, timed,
			 text_plural(s->timed_calls, "", "s"));
	char where[512];
	if (f && f->file) {
		const char *b = strrchr(f->file, '/');
		snprintf(where, sizeof(where), "%s:%u", b ? b + 1 : f->file, f->line);
	} else {
		snprintf(where, sizeof(where), "%s", site);
	}
	/* Short enough for one line of the report: "100,000 writes of 1
	 * byte at demo.c:43". */
	char what[32];
	if (s->fn == TRACE_IO_WRITE)
		snprintf(what, sizeof(what), "writes");
	else
		snprintf(what, sizeof(what), "%s calls", call);
	/* "1", "2.5", "1,092": never "1.09e+03" */
	char pers[32];
	if (per >= 100)
		summary_format_count(pers, sizeof(pers), (uint64_t)(per + 0.5));
	else
		snprintf(pers, sizeof(pers), "%.3g", per);
	if (median && (double)median * 2 < per) /* a few large calls skew the mean */
		snprintf(head, sizeof(head), "%s %s, half of them under %" PRIu64
			 " bytes, at %s", calls, what, median, where);
	else
		snprintf(head, sizeof(head), "%s %s of %s byte%s at %s", calls,
			 what, pers, per == 1.0 ? "" : "s", where);
	snprintf(expl, sizeof(expl),
		 "Every %s is a system call: the program stops, the CPU enters "
		 "the kernel, copies the bytes and comes back, which costs far "
		 "more than the bytes themselves. %s made %s %s calls to %s, "
		 "%s byte%s in all; half of the calls asked for fewer than "
		 "%" PRIu64 " byte%s.%s%s With a 64 KiB buffer the same bytes "
		 "take %s call%s: %s calls -> %s.",
		 call, site, calls, call, dn, bytes, text_plural(s->bytes, "", "s"),
		 median ? median : 1, text_plural(median ? median : 1, "", "s"),
		 viatext,
		 timetext, bufc, text_plural(buffered, "", "s"), calls, bufc);
	const char *fix =
		"Collect the bytes in a buffer and write it when it is full "
		"(a fixed 64 KiB array and one write per fill keeps memory "
		"small and calls few), or let stdio do it: leave the stream "
		"fully buffered (no setvbuf(..., _IONBF)), and fflush once at "
		"the end rather than after every write. In Python, write to a "
		"buffered file object (open(path, 'wb')) instead of calling "
		"os.write for every piece.";
	/* A terminal is line-buffered by stdio on purpose (people read it as
	 * it comes): worth knowing, not a mistake. */
	bool tty = d && d->type == TRACE_FD_TTY;
	if (tty) {
		size_t l = strlen(expl);
		snprintf(expl + l, sizeof(expl) - l,
			 " The descriptor is a terminal, where stdio writes at "
			 "every newline so that people see each line as it comes; "
			 "sent to a file or a pipe, the same output goes out in "
			 "blocks of 4 KiB.");
	}
	struct finding *fd = finding_add(out, "unbuffered-io",
					 tty ? SEV_INFO : SEV_WARNING, head,
					 expl, fix);
	if (!fd)
		return -1;
	if (st && finding_add_stack(fd, "the calls are made here", s->tid,
				    st->frames, st->n) < 0)
		return -1;
	if (finding_add_str(fd, "call", call) < 0 ||
	    finding_add_int(fd, "fd", s->fd) < 0 ||
	    finding_add_str(fd, "fd_type", d ? trace_fd_type_name(d->type) : "") < 0 ||
	    finding_add_int(fd, "calls", (int64_t)s->calls) < 0 ||
	    finding_add_int(fd, "bytes", (int64_t)s->bytes) < 0 ||
	    finding_add_int(fd, "median_size_below", (int64_t)median) < 0 ||
	    finding_add_int(fd, "max_size", (int64_t)s->max_size) < 0 ||
	    finding_add_int(fd, "time_ns", (int64_t)t_ns) < 0 ||
	    finding_add_int(fd, "timed_calls", (int64_t)s->timed_calls) < 0 ||
	    finding_add_int(fd, "calls_with_64k_buffer", (int64_t)buffered) < 0)
		return -1;
	if (d) {
		char *path = strndup(d->path.p, d->path.len);
		int r = path ? finding_add_str(fd, "fd_path", path) : -1;
		free(path);
		if (r < 0)
			return -1;
	}
	if (f && f->file && (finding_add_str(fd, "file", f->file) < 0 ||
			     finding_add_int(fd, "line", f->line) < 0))
		return -1;
	return 0;
}

int detect_io(const struct trace_model *m, struct finding_list *out)
{
	struct io_model io;
	if (io_model_build(m, &io) < 0)
		return -1;
	int rc = 0;
	struct symbolizer *sym = NULL;
	for (size_t i = 0; i < io.n_sites && rc == 0; i++) {
		const struct io_site *s = &io.sites[i];
		if (!trace_io_fn_is_write(s->fn) || s->calls < IO_MIN_CALLS ||
		    io_site_median_below(s) > IO_SMALL || s->fd < 0)
			continue;
		if (!sym && !(sym = symbolizer_new(m))) {
			rc = -1;
			break;
		}
		rc = flag(m, &io, sym, s, out);
	}
	if (sym)
		symbolizer_free(sym);
	io_model_release(&io);
	return rc;
}
