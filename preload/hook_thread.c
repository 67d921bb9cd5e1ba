/* hook_thread.c: thread creation. A program that starts threads gets the
 * background flusher at once (so an idle thread's events are written out
 * within flush_ms); the thread recorder proper slots in here.
 */
#include <pthread.h>

#include "spy_core.h"
#include "spy_real.h"
#include "spy_writer.h"

SPY_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			      void *(*start)(void *), void *arg)
{
	spy_init();
	if (spy_state == SPY_STATE_READY && spy_tracing)
		spy_writer_start_flusher();
	return spy_real.pthread_create(thread, attr, start, arg);
}
