# libspy: build the preload library, the analyzer, the runner and the demos.
#   make          build everything (libspy.so, spy, analyze at the top, demos in demos/)
#   make demo     install what is missing, build, run a demo under libspy
#   make test     install what is missing, build, run every test
#   make bench    overhead benchmarks (bench/)
#   make install PREFIX=/usr/local

CC      ?= cc
PREFIX  ?= /usr/local
CFLAGS_COMMON := -std=gnu11 -g -O2 -Wall -Wextra -Werror -Icommon
# Flags that fit an interposer: hidden by default, TLS that never allocates,
# no builtin assumptions about the functions we replace.
PRELOAD_CFLAGS := $(CFLAGS_COMMON) -flto -fPIC -fvisibility=hidden -ftls-model=initial-exec \
	-fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free \
	-fno-stack-protector -D_GNU_SOURCE
PRELOAD_LIBS := -lunwind -ldl -lpthread
ANALYZE_CFLAGS := $(CFLAGS_COMMON) -D_GNU_SOURCE
# capstone decodes sampled instructions (analyze sharing); analyze only.
ANALYZE_LIBS := -ldw -lelf -lm -lstdc++ -lcapstone
DEMO_CFLAGS := -std=gnu11 -g -O1 -Wall -Wextra -pthread -fno-omit-frame-pointer

PRELOAD_SRCS := $(wildcard preload/*.c)
PRELOAD_OBJS := $(PRELOAD_SRCS:.c=.o)
RUNNER_SRCS  := analyzers/spy_runner.c analyzers/spy_program.c analyzers/spy_traces.c
# The runner wraps its --help with the analyzer's text helpers.
RUNNER_SHARED := analyzers/text_out.c
ANALYZE_SRCS := $(filter-out $(RUNNER_SRCS),$(wildcard analyzers/*.c))
ANALYZE_OBJS := $(ANALYZE_SRCS:.c=.o)
COMMON_HDRS  := $(wildcard common/*.h)
DEMO_SRCS    := $(wildcard demos/*.c)
DEMOS        := $(DEMO_SRCS:.c=)
UNIT_SRCS    := $(wildcard tests/unit/*.c)
UNIT_BINS    := $(UNIT_SRCS:tests/unit/%.c=tests/unit/bin/%)
# Analyzer objects a unit test may link against (everything but main).
ANALYZE_LIB_OBJS := $(filter-out analyzers/analyze_main.o,$(ANALYZE_OBJS))

.PHONY: all deps demo test bench install clean check-preload-imports docs
all: libspy.so analyze spy $(DEMOS)

libspy.so: $(PRELOAD_OBJS)
	$(CC) -shared -flto -O2 -o $@ $^ $(PRELOAD_LIBS) -Wl,-z,nodelete -Wl,--no-undefined
	@$(MAKE) -s check-preload-imports

preload/%.o: preload/%.c $(wildcard preload/*.h) $(COMMON_HDRS)
	$(CC) $(PRELOAD_CFLAGS) -c -o $@ $<

analyzers/%.o: analyzers/%.c $(wildcard analyzers/*.h) $(COMMON_HDRS)
	$(CC) $(ANALYZE_CFLAGS) -c -o $@ $<

analyze: $(ANALYZE_OBJS)
	$(CC) -o $@ $^ $(ANALYZE_LIBS)

spy: $(RUNNER_SRCS) $(RUNNER_SHARED) $(wildcard analyzers/spy_*.h) analyzers/text_out.h $(COMMON_HDRS)
	$(CC) $(ANALYZE_CFLAGS) -o $@ $(RUNNER_SRCS) $(RUNNER_SHARED)

demos/%: demos/%.c
	$(CC) $(DEMO_CFLAGS) -o $@ $< -lm

# The live-block map is libspy.so code tested on its own, against a model.
tests/unit/bin/heapmap: tests/unit/heapmap.c preload/spy_heapmap.c preload/spy_shadow.c preload/spy_blockhash.c preload/spy_sys.c preload/spy_ownmem.c preload/spy_canary.c $(wildcard preload/*.h) tests/unit/tap.h
	@mkdir -p tests/unit/bin
	$(CC) $(CFLAGS_COMMON) -D_GNU_SOURCE -Ipreload -pthread -o $@ $< preload/spy_heapmap.c preload/spy_shadow.c preload/spy_blockhash.c preload/spy_sys.c preload/spy_ownmem.c preload/spy_canary.c

# And the canary in a block's slack.
tests/unit/bin/canary: tests/unit/canary.c preload/spy_canary.c preload/spy_canary.h tests/unit/tap.h
	@mkdir -p tests/unit/bin
	$(CC) $(CFLAGS_COMMON) -D_GNU_SOURCE -Ipreload -o $@ $< preload/spy_canary.c

# So is the registry of libspy's own mappings.
tests/unit/bin/ownmem: tests/unit/ownmem.c preload/spy_ownmem.c preload/spy_ownmem.h tests/unit/tap.h
	@mkdir -p tests/unit/bin
	$(CC) $(CFLAGS_COMMON) -D_GNU_SOURCE -Ipreload -o $@ $< preload/spy_ownmem.c

# Every command on hostile traces, with the analyzer built from its sources
# with UBSan's checks trapping (no runtime library needed): undefined
# behaviour that a plain build gets away with (qsort given NULL, a shift
# too wide) kills the command, and the test sees it.
UBSAN_TRAP := -fsanitize=undefined,float-cast-overflow -fsanitize-undefined-trap-on-error
tests/unit/bin/analyze_bad_input: tests/unit/analyze_bad_input.c $(ANALYZE_SRCS) $(wildcard analyzers/*.h) $(COMMON_HDRS) tests/unit/tap.h tests/unit/trace_builder.h
	@mkdir -p tests/unit/bin
	$(CC) $(ANALYZE_CFLAGS) $(UBSAN_TRAP) -Ianalyzers -o $@ $< $(filter-out analyzers/analyze_main.c,$(ANALYZE_SRCS)) $(ANALYZE_LIBS)

# The reader's limit on distinct stacks, met both ways with a small one.
READER_SRCS := analyzers/trace_reader.c analyzers/trace_records.c analyzers/trace_order.c \
	analyzers/trace_spans.c analyzers/u64map.c analyzers/text_out.c
tests/unit/bin/trace_limits: tests/unit/trace_limits.c $(READER_SRCS) $(wildcard analyzers/*.h) $(COMMON_HDRS) tests/unit/tap.h tests/unit/trace_builder.h
	@mkdir -p tests/unit/bin
	$(CC) $(ANALYZE_CFLAGS) -DTRACE_STACKS_MAX=1000 -Ianalyzers -o $@ $< $(READER_SRCS) -lm

# The writer's short heap records, stored by libspy.so's own inline code
# into a buffer of the test's, and read back.
tests/unit/bin/heap_short: tests/unit/heap_short.c $(ANALYZE_LIB_OBJS) $(wildcard preload/*.h) $(COMMON_HDRS) tests/unit/tap.h tests/unit/trace_builder.h
	@mkdir -p tests/unit/bin
	$(CC) $(ANALYZE_CFLAGS) -D_GNU_SOURCE -Ianalyzers -Ipreload -o $@ $< $(ANALYZE_LIB_OBJS) $(ANALYZE_LIBS)

tests/unit/bin/%: tests/unit/%.c $(ANALYZE_LIB_OBJS) $(COMMON_HDRS) tests/unit/tap.h
	@mkdir -p tests/unit/bin
	$(CC) $(ANALYZE_CFLAGS) -Ianalyzers -o $@ $< $(ANALYZE_LIB_OBJS) $(ANALYZE_LIBS)

# Hook code must never reach stdio or the program's allocator by itself:
# the only malloc-family and stdio imports allowed are the ones we forward to
# through dlsym. This proves it on the built objects.
check-preload-imports:
	@bad=$$(nm -u $(PRELOAD_OBJS) 2>/dev/null | awk '{print $$2}' | \
	  grep -E '^(printf|fprintf|sprintf|snprintf|vsnprintf|puts|fputs|fwrite|fopen|fclose|malloc|calloc|realloc|free|strdup|getline|perror)$$' | sort -u); \
	if [ -n "$$bad" ]; then echo "preload objects call forbidden functions: $$bad" >&2; exit 1; fi

deps:
	@tests/deps.sh

demo: deps all
	@tests/demo.sh

test: deps all $(UNIT_BINS)
	@tests/run.sh

bench: deps all
	@bench/run.sh

# The outputs shown in the lesson pages (docs/lessons/*.md), rerun and
# written between their markers; tests/e2e/t610 fails when they are stale.
docs: all
	@docs/generate.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/libspy
	install -m 755 spy analyze $(DESTDIR)$(PREFIX)/bin/
	install -m 755 libspy.so $(DESTDIR)$(PREFIX)/lib/libspy/

clean:
	rm -f libspy.so spy analyze preload/*.o analyzers/*.o $(DEMOS)
	rm -rf tests/unit/bin
