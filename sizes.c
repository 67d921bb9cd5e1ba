#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One freed block of each size, and one byte written into it after the
 * free at the offset given (argument "w"); "-" writes nothing. */
static const size_t size[] = { 24, 200, 1000, 3000, 8000, 15000, 20000, 65536 };
static const size_t at[] = { 12, 100, 500, 1500, 4000, 7500, 300, 40000 };

int main(int argc, char **argv)
{
	int write = argc > 1 && argv[1][0] == 'w';
	char *p[8];
	for (int i = 0; i < 8; i++) {
		p[i] = malloc(size[i]);
		memset(p[i], 'a', size[i]);
	}
	for (int i = 0; i < 8; i++)
		free(p[i]);
	if (write)
		for (int i = 0; i < 8; i++)
			p[i][at[i]] = 'W';
	puts("done");
	return 0;
}
