/* sharing_model.c: cache lines written by several threads, from sampled
 * instruction pointers and registers (sharing_model.h).
 *
 * A timer sample interrupts a thread after an instruction retired: the
 * instruction that was slow (a store that waited for its cache line) is
 * the one before the sampled pc, so that is the one decoded ("skid"). It is
 * found by decoding forward from several points before pc and keeping the
 * instruction that ends exactly at pc in most of those decodings; a
 * previous instruction that jumps away means pc was reached by a jump and
 * the sample is left out.
 */
#include "sharing_model.h"

#include <capstone/capstone.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lock_dwarf.h"
#include "text_out.h"
#include "trace_decode.h"
#include "trace_format.h"
#include "u64map.h"

#define MAX_WRITERS 8
#define BACK 32           /* bytes decoded before pc */

/* One decoded instruction, cached by pc. */
struct decoded {
	bool ok;              /* a memory write we can compute */
	uint8_t base, index;  /* register slots (sample order) + 1, 0 = none */
	bool rip;             /* base is rip: the address is pc + disp */
	uint8_t scale, width;
	int64_t disp;
	uint64_t insn;        /* the instruction's address */
};

struct file_cache {
	char path[4096];
	int fd;
};

struct decoder {
	const struct trace_model *m;
	csh cs;
	struct file_cache files[16];
	size_t n_files;
	struct u64map by_pc;  /* pc -> index + 1 into dec */
	struct decoded *dec;
	size_t n_dec, cap_dec;
};

/* Sample register order (trace_format.h TRACE_SAMPLE). */
static int slot_of(unsigned reg)
{
	switch (reg) {
	case X86_REG_R8: case X86_REG_R8D: return 0;
	case X86_REG_R9: case X86_REG_R9D: return 1;
	case X86_REG_R10: case X86_REG_R10D: return 2;
	case X86_REG_R11: case X86_REG_R11D: return 3;
	case X86_REG_R12: case X86_REG_R12D: return 4;
	case X86_REG_R13: case X86_REG_R13D: return 5;
	case X86_REG_R14: case X86_REG_R14D: return 6;
	case X86_REG_R15: case X86_REG_R15D: return 7;
	case X86_REG_RDI: case X86_REG_EDI: return 8;
	case X86_REG_RSI: case X86_REG_ESI: return 9;
	case X86_REG_RBP: case X86_REG_EBP: return 10;
	case X86_REG_RBX: case X86_REG_EBX: return 11;
	case X86_REG_RDX: case X86_REG_EDX: return 12;
	case X86_REG_RAX: case X86_REG_EAX: return 13;
	case X86_REG_RCX: case X86_REG_ECX: return 14;
	case X86_REG_RSP: case X86_REG_ESP: return 15;
	default: return -1;
	}
}

/* The file-backed module record holding addr in the latest snapshot. */
static const struct trace_module *module_of(const struct trace_model *m, uint64_t addr)
{
	return trace_snapshot_module_at(m, addr);
}

static bool safe_path(const char *p)
{
	static const char *const skip[] = { "/proc/", "/sys/", "/dev/" };
	struct stat st;
	if (p[0] != '/')
		return false;
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (!strncmp(p, skip[i], strlen(skip[i])))
			return false;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int file_fd(struct decoder *d, const struct trace_str *path)
{
	if (!path->len || path->len >= sizeof(d->files[0].path))
		return -1;
	for (size_t i = 0; i < d->n_files; i++)
		if (strlen(d->files[i].path) == path->len &&
		    !memcmp(d->files[i].path, path->p, path->len))
			return d->files[i].fd;
	if (d->n_files == sizeof(d->files) / sizeof(d->files[0]))
		return -1;
	struct file_cache *f = &d->files[d->n_files];
	memcpy(f->path, path->p, path->len);
	f->path[path->len] = 0;
	f->fd = safe_path(f->path) ? open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
	d->n_files++;
	return f->fd;
}

/* The instruction ending at pc, decoded, or ok=false. */
static struct decoded decode(struct decoder *d, uint64_t pc)
{
	struct decoded r = { 0 };
	const struct trace_module *mod = module_of(d->m, pc);
	if (!mod || !(mod->prot & 1) || !mod->path.len || mod->path.p[0] != '/')
		return r;
	static const char self[] = "/libspy.so";
	if (mod->path.len >= sizeof(self) - 1 &&
	    !memcmp(mod->path.p + mod->path.len - (sizeof(self) - 1), self, sizeof(self) - 1))
		return r; /* libspy's own code */
	int fd = file_fd(d, &mod->path);
	if (fd < 0)
		return r;
	uint64_t lo = pc - BACK < mod->start ? mod->start : pc - BACK;
	uint8_t buf[BACK + 16];
	ssize_t got = pread(fd, buf, (size_t)(pc - lo) + 16,
			    (off_t)(lo - mod->start + mod->file_offset));
	if (got < (ssize_t)(pc - lo))
		return r;
	/* Vote for the start of the instruction that ends at pc. */
	uint64_t votes_at[BACK] = { 0 };
	unsigned votes[BACK] = { 0 };
	size_t n_cand = 0;
	cs_insn *insn = cs_malloc(d->cs);
	if (!insn)
		return r;
	for (uint64_t s = lo; s < pc; s++) {
		const uint8_t *code = buf + (s - lo);
		size_t size = (size_t)(pc - s);
		uint64_t at = s;
		while (size && cs_disasm_iter(d->cs, &code, &size, &at, insn)) {
			if (at == pc) {
				size_t k = 0;
				while (k < n_cand && votes_at[k] != insn->address)
					k++;
				if (k == n_cand && n_cand < BACK) {
					votes_at[n_cand] = insn->address;
					n_cand++;
				}
				if (k < BACK)
					votes[k]++;
			}
		}
	}
	size_t best = 0;
	for (size_t k = 1; k < n_cand; k++)
		if (votes[k] > votes[best])
			best = k;
	if (!n_cand) {
		cs_free(insn, 1);
		return r;
	}
	const uint8_t *code = buf + (votes_at[best] - lo);
	size_t size = (size_t)(pc - votes_at[best]);
	uint64_t at = votes_at[best];
	if (!cs_disasm_iter(d->cs, &code, &size, &at, insn) || !insn->detail) {
		cs_free(insn, 1);
		return r;
	}
	const cs_x86 *x = &insn->detail->x86;
	bool jumps = false;
	for (uint8_t g = 0; g < insn->detail->groups_count; g++)
		if (insn->detail->groups[g] == CS_GRP_JUMP || insn->detail->groups[g] == CS_GRP_RET ||
		    insn->detail->groups[g] == CS_GRP_CALL)
			jumps = true;
	bool compares = !strncmp(insn->mnemonic, "cmp", 3) || !strncmp(insn->mnemonic, "test", 4) ||
			strstr(insn->mnemonic, "comis") || !strncmp(insn->mnemonic, "bt", 2);
	for (uint8_t i = 0; !jumps && !compares && i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];
		if (op->type != X86_OP_MEM || !strcmp(insn->mnemonic, "lea") ||
		    !strcmp(insn->mnemonic, "nop"))
			continue;
		/* capstone marks most stores; the destination comes first. */
		if (!(op->access & CS_AC_WRITE) && i != 0)
			continue;
		if (op->mem.segment != X86_REG_INVALID)
			break; /* fs/gs: thread-local storage, never shared */
		r.rip = op->mem.base == X86_REG_RIP;
		int b = op->mem.base == X86_REG_INVALID || r.rip ? -1 : slot_of(op->mem.base);
		int ix = op->mem.index == X86_REG_INVALID ? -1 : slot_of(op->mem.index);
		if ((op->mem.base != X86_REG_INVALID && !r.rip && b < 0) ||
		    (op->mem.index != X86_REG_INVALID && ix < 0))
			break;
		r.base = (uint8_t)(b + 1);
		r.index = (uint8_t)(ix + 1);
		r.scale = (uint8_t)op->mem.scale;
		r.disp = op->mem.disp;
		r.width = op->size ? op->size : 8;
		r.insn = insn->address;
		r.ok = true;
		break;
	}
	cs_free(insn, 1);
	return r;
}

static const struct decoded *decoded_at(struct decoder *d, uint64_t pc)
{
	uint64_t *slot = u64map_get(&d->by_pc, pc);
	if (slot)
		return &d->dec[*slot - 1];
	if (d->n_dec == d->cap_dec) {
		size_t ncap = d->cap_dec ? d->cap_dec * 2 : 64;
		void *p = realloc(d->dec, ncap * sizeof(*d->dec));
		if (!p)
			return NULL;
		d->dec = p;
		d->cap_dec = ncap;
	}
	d->dec[d->n_dec] = decode(d, pc);
	if (u64map_put(&d->by_pc, pc, d->n_dec + 1) < 0)
		return NULL;
	return &d->dec[d->n_dec++];
}

struct line_acc {
	uint64_t line;
	struct line_writer w[MAX_WRITERS];
	size_t n;
};

static int cmp_samples(const void *a, const void *b)
{
	const struct line_writer *x = a, *y = b;
	return x->samples < y->samples ? 1 : x->samples > y->samples ? -1 : 0;
}

int sharing_model_build(const struct trace_model *m, struct sharing_model *sm)
{
	memset(sm, 0, sizeof(*sm));
	struct decoder d = { .m = m };
	struct u64map lines = U64MAP_INIT;
	struct line_acc *acc = NULL;
	size_t n_acc = 0, cap_acc = 0;
	int rc = -1;
	bool have_cs = false;
	for (size_t i = 0; i < m->n_events; i++)
		if (m->events[i].kind == TRACE_SAMPLE)
			sm->samples++;
	if (!sm->samples)
		return 0;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &d.cs) != CS_ERR_OK)
		return 0; /* no decoder: no samples decoded */
	have_cs = true;
	cs_option(d.cs, CS_OPT_DETAIL, CS_OPT_ON);
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		if (e->kind != TRACE_SAMPLE || e->b > m->size || e->a > m->size - e->b)
			continue;
		struct trace_cursor c = trace_cursor_make(m->data + e->b, (size_t)e->a);
		uint64_t pc, reg[16];
		if (trace_get_varint(&c, &pc) < 0)
			continue;
		bool full = true;
		for (int k = 0; k < 16 && full; k++)
			full = trace_get_varint(&c, &reg[k]) == 0;
		if (!full)
			continue;
		const struct decoded *dc = decoded_at(&d, pc);
		if (!dc)
			goto out;
		if (!dc->ok)
			continue;
		sm->decoded++;
		uint64_t addr = (uint64_t)dc->disp + (dc->rip ? pc : 0) +
				(dc->base ? reg[dc->base - 1] : 0) +
				(dc->index ? reg[dc->index - 1] * dc->scale : 0);
		uint64_t sp = reg[15];
		if (addr + (256u << 10) >= sp && addr < sp + (1u << 20))
			continue; /* the thread's own stack */
		sm->writes++;
		uint64_t line = addr & ~(uint64_t)(SHARING_LINE - 1);
		uint64_t *slot = u64map_get(&lines, line);
		struct line_acc *la;
		if (slot) {
			la = &acc[*slot - 1];
		} else {
			if (n_acc == cap_acc) {
				size_t ncap = cap_acc ? cap_acc * 2 : 64;
				void *p = realloc(acc, ncap * sizeof(*acc));
				if (!p)
					goto out;
				acc = p;
				cap_acc = ncap;
			}
			la = &acc[n_acc];
			memset(la, 0, sizeof(*la));
			la->line = line;
			if (u64map_put(&lines, line, ++n_acc) < 0)
				goto out;
		}
		struct line_writer *w = NULL;
		for (size_t k = 0; k < la->n; k++)
			if (la->w[k].tid == e->tid)
				w = &la->w[k];
		if (!w) {
			if (la->n == MAX_WRITERS)
				continue;
			w = &la->w[la->n++];
			*w = (struct line_writer){ .tid = e->tid, .first_ts = e->ts,
						   .pc = dc->insn, .addr = addr,
						   .width = dc->width };
		}
		w->samples++;
		w->last_ts = e->ts;
		if (addr < w->addr)
			w->addr = addr;
		for (unsigned b = 0; b < dc->width && (addr & 63) + b < 64; b++)
			w->offsets |= 1ull << ((addr & 63) + b);
	}
	for (size_t i = 0; i < n_acc; i++) {
		struct line_acc *la = &acc[i];
		size_t k = 0;
		for (size_t j = 0; j < la->n; j++)
			if (la->w[j].samples >= SHARING_MIN_SAMPLES)
				la->w[k++] = la->w[j];
		la->n = k;
		if (la->n < 2)
			continue;
		qsort(la->w, la->n, sizeof(la->w[0]), cmp_samples);
		bool overlap_bytes = false, together = false;
		for (size_t a = 0; a < la->n; a++)
			for (size_t b = a + 1; b < la->n; b++) {
				if (la->w[a].offsets & la->w[b].offsets)
					overlap_bytes = true;
				if (la->w[a].first_ts <= la->w[b].last_ts &&
				    la->w[b].first_ts <= la->w[a].last_ts)
					together = true;
			}
		void *p = realloc(sm->lines, (sm->n_lines + 1) * sizeof(*sm->lines));
		if (!p)
			goto out;
		sm->lines = p;
		struct shared_line *sl = &sm->lines[sm->n_lines];
		sl->line = la->line;
		sl->n_writers = la->n;
		sl->kind = !together ? SHARING_APART : overlap_bytes ? SHARING_TRUE : SHARING_FALSE;
		sl->w = malloc(la->n * sizeof(*sl->w));
		if (!sl->w)
			goto out;
		memcpy(sl->w, la->w, la->n * sizeof(*sl->w));
		sm->n_lines++;
	}
	rc = 0;
out:
	for (size_t i = 0; i < d.n_files; i++)
		if (d.files[i].fd >= 0)
			close(d.files[i].fd);
	if (have_cs)
		cs_close(&d.cs);
	u64map_release(&d.by_pc);
	free(d.dec);
	u64map_release(&lines);
	free(acc);
	if (rc < 0)
		sharing_model_release(sm);
	return rc;
}

void sharing_model_release(struct sharing_model *sm)
{
	for (size_t i = 0; i < sm->n_lines; i++)
		free(sm->lines[i].w);
	free(sm->lines);
	memset(sm, 0, sizeof(*sm));
}

void sharing_name(const struct trace_model *m, uint64_t addr, char *buf, size_t cap)
{
	buf[0] = 0;
	const struct trace_module *in = module_of(m, addr);
	const struct trace_module *file = in;
	if (in && !in->path.len) {
		/* .bss past the file's last page: the file just before it. */
		file = NULL;
		for (size_t i = 0; i < m->n_modules; i++) {
			const struct trace_module *t = &m->modules[i];
			if (t->snapshot == in->snapshot && t->end == in->start &&
			    t->path.len && t->path.p[0] == '/')
				file = t;
		}
	}
	if (file && file->path.len && file->path.p[0] == '/' && file->path.len < 4096) {
		char path[4096];
		memcpy(path, file->path.p, file->path.len);
		path[file->path.len] = 0;
		uint64_t base = UINT64_MAX;
		for (size_t i = 0; i < m->n_modules; i++) {
			const struct trace_module *t = &m->modules[i];
			if (t->snapshot == file->snapshot && t->file_offset == 0 &&
			    t->path.len == file->path.len &&
			    !memcmp(t->path.p, file->path.p, t->path.len) && t->start < base)
				base = t->start;
		}
		if (base != UINT64_MAX && safe_path(path) &&
		    lock_dwarf_name(path, base, addr, 0, NULL, buf, cap) == 0)
			return;
	}
	/* A heap block: the last one handed out that holds addr. */
	uint64_t at = 0, size = 0;
	for (size_t i = 0; i < m->n_events; i++) {
		const struct trace_event *e = &m->events[i];
		uint64_t p = e->kind == TRACE_ALLOC ? e->a : e->kind == TRACE_REALLOC ? e->b : 0;
		if (p && p <= addr && addr < p + e->c) {
			at = p;
			size = e->c;
		}
	}
	if (at)
		snprintf(buf, cap, "heap block of %llu byte%s at 0x%llx, +%llu",
			 (unsigned long long)size, text_plural(size, "", "s"),
			 (unsigned long long)at, (unsigned long long)(addr - at));
}

const char *sharing_kind_name(enum sharing_kind k)
{
	switch (k) {
	case SHARING_FALSE: return "false sharing";
	case SHARING_TRUE: return "true sharing";
	default: return "not at the same time";
	}
}
