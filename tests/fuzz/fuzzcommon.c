/*
 * fuzzcommon.c: set-up shared by the fuzz targets (fuzzcommon.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <sodium.h>

#include "fuzzcommon.h"

const char *
fz_chain(void)
{
	const char *c = getenv("KP_FUZZ_CHAIN");

	return c != NULL && *c != '\0' ? c : KP_FUZZ_CHAIN;
}

static void __attribute__((noreturn))
s_die(const char *what, const kp_err_t *e)
{
	fprintf(stderr, "fuzz set-up: %s: %s\n", what, e ? e->msg : "failed");
	abort();
}

void
fz_org_load(const char *oin, fz_org_t *o)
{
	static trust_t *trust;
	char path[4096];
	int problems = 0;
	kp_err_t e;

	if (sodium_init() < 0)
		s_die("sodium_init", NULL);
	if (trust == NULL && trust_load(fz_chain(), &trust, &e) != 0)
		s_die("trust", &e);
	snprintf(path, sizeof(path), "%s/orgs/%s", fz_chain(), oin);
	if (identity_load(trust, path, &o->id, &e) != 0)
		s_die(path, &e);
	if ((o->dir = directory_new(o->id)) == NULL)
		s_die("directory", NULL);
	if (directory_load(o->dir, trust, fz_chain(), NULL, NULL, &problems,
	    &e) != 0 || problems != 0)
		s_die("directory", &e);
}

const policy_t *
fz_policy(void)
{
	static policy_t *p;
	int problems = 0;
	kp_err_t e;

	if (p == NULL && policy_load(KP_FUZZ_POLICY, &p, NULL, NULL,
	    &problems, &e) != 0)
		s_die(KP_FUZZ_POLICY, &e);
	return p;
}

void
fz_tmpfile(const uint8_t *data, size_t size, char path[FZ_PATH_MAX])
{
	const char *dir = getenv("TMPDIR");
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	if (snprintf(path, FZ_PATH_MAX, "%s/kpfuzz.XXXXXX", dir) >= FZ_PATH_MAX)
		s_die("TMPDIR is too long", NULL);
	if ((fd = mkstemp(path)) < 0 ||
	    (size > 0 && write(fd, data, size) != (ssize_t)size))
		s_die(path, NULL);
	close(fd);
}
