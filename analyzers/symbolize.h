/* symbolize.h: turns recorded return addresses into function, file and line,
 * offline, from the module map a trace carries and the ELF files it names
 * (elfutils libdwfl). Never touches the network (debuginfod is switched
 * off for this process); odd, missing or replaced files give "unknown"
 * answers, never a crash.
 */
#ifndef SPY_SYMBOLIZE_H
#define SPY_SYMBOLIZE_H

#include <stdint.h>

#include "trace_reader.h"

/* A call the compiler inlined at a frame's address, innermost first. */
struct sym_inline {
	const char *function;
	const char *file;     /* NULL when unknown */
	unsigned line;        /* 0 when unknown */
};

/* One symbolized frame. Strings are owned by the symbolizer and live until
 * symbolizer_free; any of them may be NULL when unknown. When the address
 * lies in code inlined into the function, inl lists the inlined calls
 * (innermost first, each with where it is) and file/line give where the
 * function itself is at that point (the outermost inlined call). */
struct sym_frame {
	uint64_t address;     /* as recorded (a return address) */
	const char *function; /* demangled C++ names; NULL when unknown */
	const char *file;     /* source file, NULL without line information */
	unsigned line;        /* 0 without line information */
	const char *module;   /* path of the mapping holding the address */
	uint64_t offset;      /* address - the module's load base */
	const struct sym_inline *inl;
	unsigned n_inl;
};

struct symbolizer;

/* Prepares lookups over m's module records; m must outlive the result.
 * Returns NULL only when memory runs out. */
struct symbolizer *symbolizer_new(const struct trace_model *m);

/* Symbolizes one recorded address (looked up as address - 1, since frames
 * are return addresses). The result stays valid until symbolizer_free.
 * Cannot fail: unknown parts are NULL. */
const struct sym_frame *symbolizer_lookup(struct symbolizer *s,
					  uint64_t address);

void symbolizer_free(struct symbolizer *s);

#endif
