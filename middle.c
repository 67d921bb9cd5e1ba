#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *stale;

static void *reader(void *arg)
{
	(void)arg;
	printf("read %d\n", stale[20000]);    /* MID: read in a thread */
	return NULL;
}

int main(int argc, char **argv)
{
	char *buf = malloc(64 * 1024);         /* MID: the block */
	memset(buf, 'x', 64 * 1024);
	free(buf);                             /* MID: freed */
	char mode = argc > 1 ? argv[1][0] : '-';
	if (mode == 'w')
		buf[30000] = 'A';              /* MID: write */
	else if (mode == 'r')
		printf("read %d\n", buf[30000]); /* MID: read */
	else if (mode == 't') {
		pthread_t t;
		stale = buf;
		pthread_create(&t, NULL, reader, NULL);
		pthread_join(t, NULL);
	}
	printf("still running\n");
	return 3;
}
