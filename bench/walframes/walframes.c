/*
 * walframes.so: which pages a process writes into SQLite write-ahead logs,
 * over a whole run (bench/walframes.py loads it into kpbench's daemons
 * with LD_PRELOAD and names each page's B-tree afterwards).
 *
 * SQLite writes a WAL frame as two calls: its 24-byte header (page number,
 * then the database size if the frame ends a commit), then the page
 * (wal.c, walWriteOneFrame).  So every pwrite of exactly 24 bytes to a
 * file whose name ends in "-wal" is a frame header; its first 4 bytes
 * (big-endian) are the page written.  One line per frame goes to
 * $WALFRAMES_DIR/frames.PID: "PAGE COMMIT" (COMMIT 1 on a commit's last
 * frame); the file's first line is "# WAL-PATH".  A measuring aid, never
 * linked into the daemon: writes are passed on unchanged, whatever the
 * aid's own I/O does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define FRAME_HEADER 24

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

static pthread_mutex_t s_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *s_out;

/* The file behind fd, if its name ends in "-wal". */
static int
s_wal_path(int fd, char *path, size_t size)
{
	char link[64];
	ssize_t n;

	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, size - 1);
	if (n < 5)
		return -1;
	path[n] = '\0';
	return strcmp(path + n - 4, "-wal") == 0 ? 0 : -1;
}

static void
s_note(const char *path, const unsigned char *h)
{
	uint32_t page = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | h[3];
	uint32_t commit = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 |
	    (uint32_t)h[6] << 8 | h[7];
	const char *dir = getenv("WALFRAMES_DIR");
	char name[PATH_MAX];

	pthread_mutex_lock(&s_mu);
	if (s_out == NULL && dir != NULL) {
		(void)snprintf(name, sizeof(name), "%s/frames.%ld", dir,
		    (long)getpid());
		s_out = fopen(name, "w");
		if (s_out != NULL)
			(void)fprintf(s_out, "# %s\n", path);
	}
	if (s_out != NULL)
		(void)fprintf(s_out, "%u %d\n", page, commit != 0);
	pthread_mutex_unlock(&s_mu);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	static pwrite_fn real;
	char path[PATH_MAX];

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "pwrite64");
	if (n == FRAME_HEADER && s_wal_path(fd, path, sizeof(path)) == 0)
		s_note(path, buf);
	return real(fd, buf, n, off);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite64(fd, buf, n, off);
}
