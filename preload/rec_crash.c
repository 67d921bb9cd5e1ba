/* rec_crash.c: the fault a process dies of (SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL) or its own abort() is recorded where it happened: the signal
 * and its code, the address the fault was about, the instruction, a read
 * or a write, and the stack. The analyzer then says what the address was
 * (NULL, a freed block, past a block's end, read-only memory, nothing
 * mapped). Runs on the way to the default action of a fatal signal:
 * async-signal-safe, no allocation.
 */
#include "rec_crash.h"

#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "spy_core.h"
#include "spy_signals.h"
#include "spy_stack.h"
#include "spy_sys.h"
#include "spy_writer.h"
#include "trace_encode.h"
#include "trace_format.h"

static void on_fatal(int sig, siginfo_t *info, void *context)
{
	if (sig != SIGSEGV && sig != SIGBUS && sig != SIGFPE && sig != SIGILL &&
	    sig != SIGABRT)
		return;
	/* abort() raises SIGABRT at its own process; one sent from outside
	 * is a request to stop, not a crash */
	if (sig == SIGABRT && (!info || info->si_pid != spy_sys_getpid()))
		return;
	int code = info ? info->si_code : 0;
	uintptr_t addr = info ? (uintptr_t)info->si_addr : 0;
	uintptr_t pc = context ? spy_signals_fault_pc(context) : 0;
	unsigned access = spy_signals_fault_access(sig, context);
	/* A fault signal the kernel did not raise (kill, raise, sigqueue:
	 * si_code <= 0, no address) is no fault: a program passing on the
	 * signal its child died of (timeout), or a request to stop. Unless
	 * the program's handler of a real fault passes that one on. */
	if (sig != SIGABRT && info && info->si_code <= 0 &&
	    !spy_signals_handled_fault(sig, &code, &addr, &pc, &access))
		return;
	/* die_of took the guard once: more means libspy's own code faulted,
	 * and its stack is not for the unwinder's caches to walk now */
	uint32_t stack = spy_self.guard > 1 ? 0 : spy_stack_capture();
	uint8_t *w = spy_writer_begin(TRACE_CRASH, 6 * TRACE_VARINT_MAX);
	if (!w)
		return;
	w = trace_put_varint(w, (uint64_t)sig);
	w = trace_put_varint(w, (uint64_t)(uint32_t)code);
	w = trace_put_varint(w, (uint64_t)addr);
	w = trace_put_varint(w, (uint64_t)pc);
	w = trace_put_varint(w, access);
	w = trace_put_varint(w, stack);
	spy_writer_end(w);
}

void rec_crash_init(void)
{
	spy_signals_observe_faults(on_fatal);
}
