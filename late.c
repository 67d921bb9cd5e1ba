#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	char *victim = malloc(4096);
	free(victim);
	victim[100] = 'x';                     /* the bad write */
	victim[101] = 'y';
	/* enough frees to push it out of a 1 MiB quarantine */
	for (int i = 0; i < 2000; i++)
		free(malloc(4096));
	puts("done");
	return 0;
}
