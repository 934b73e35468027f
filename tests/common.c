/*
 * common.c: helpers for the Criterion tests (see common.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "common.h"
#include "util.h"

static const char *
s_env(const char *name)
{
	const char *v = getenv(name);

	cr_assert(v != NULL && *v != '\0', "%s is not set (run through ctest)",
	    name);
	return v;
}

const uint8_t test_pseudonym_key[32] = { 0x50, 0x53 };

const char *test_chain(void) { return s_env("KP_TEST_CHAIN"); }
const char *test_bin(void) { return s_env("KP_BIN"); }
const char *test_source_dir(void) { return s_env("KP_SOURCE_DIR"); }

const char *
test_org_dir(const char *chain, const char *oin, char *buf, size_t len)
{
	snprintf(buf, len, "%s/orgs/%s", chain, oin);
	return buf;
}

const char *
test_cert(const char *chain, const char *oin, char *buf, size_t len)
{
	snprintf(buf, len, "%s/orgs/%s/cert.pem", chain, oin);
	return buf;
}

char *
test_tmpdir(char *buf, size_t len)
{
	const char *base = getenv("TMPDIR");

	snprintf(buf, len, "%s/kptest.XXXXXX", base ? base : "/tmp");
	cr_assert(mkdtemp(buf) != NULL, "mkdtemp failed");
	return buf;
}

static int
s_status(int rc)
{
	if (rc == -1)
		return -1;
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

int
test_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return s_status(system(cmd));
}

int
test_sh_output(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[8192];
	size_t got = 0, n;
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	p = popen(cmd, "r");
	cr_assert(p != NULL, "popen failed");
	while (got + 1 < outlen &&
	    (n = fread(out + got, 1, outlen - 1 - got, p)) > 0)
		got += n;
	out[got] = '\0';
	return s_status(pclose(p));
}

void
test_init(void)
{
	cr_assert(sodium_init() >= 0, "sodium_init failed");
}

char *
test_doc_load(const char *relpath)
{
	char path[4096];
	uint8_t *buf = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/%s", test_source_dir(), relpath);
	cr_assert(kp_read_file(path, 1 << 20, &buf, &n) == 0, "cannot read %s",
	    path);
	return (char *)buf;
}

void
test_doc_check(const char *doc, const char *docname, const char *section,
    const char *name, const uint8_t *v, size_t len)
{
	char *hex = malloc(2 * len + 1), want[1 << 13], key[64];
	const char *p, *q;
	size_t w = 0;

	kp_hex(v, len, hex);
	if (getenv("KP_PRINT_VECTORS") != NULL) {
		printf("    %s = ", name);
		for (size_t i = 0; i < 2 * len; i += 64)
			printf("%s%.64s\n", i ? "        " : "", hex + i);
		free(hex);
		return;
	}
	p = strstr(doc, section);
	cr_assert_not_null(p, "%s has no '%s'", docname, section);
	snprintf(key, sizeof(key), "\n    %s = ", name);
	p = strstr(p, key);
	cr_assert_not_null(p, "%s's example lacks '%s'", docname, name);
	p += strlen(key);
	for (q = p; *q && w < sizeof(want) - 1; q++) {
		if ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f'))
			want[w++] = *q;
		else if (*q == '\n' && strncmp(q + 1, "        ", 8) != 0)
			break;
		else if (*q != '\n' && *q != ' ')
			break;
	}
	want[w] = '\0';
	cr_assert_str_eq(hex, want, "%s differs from %s", name, docname);
	free(hex);
}

void
test_scrape(int port, char *out, size_t len)
{
	cr_assert_eq(test_sh_output(out, len, "curl -sS --fail --max-time 10 "
	    "http://127.0.0.1:%d/metrics", port), 0, "scrape :%d: %s", port,
	    out);
}

double
test_sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}
