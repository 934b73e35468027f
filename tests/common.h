/*
 * common.h: helpers for the Criterion tests.  The test chain (made by
 * make-chain.sh through the real certs/ketenpost-certs) has these
 * organisations; tests that need to change a chain copy it first.
 */
#ifndef KP_TEST_COMMON_H
#define KP_TEST_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define OIN_LEERPLICHT "00000001001234567000"
#define OIN_HALT       "00000001002345678000"
#define OIN_RVDK       "00000001003456789000"
#define OIN_OM         "00000001004567890000"
#define OIN_JBT        "00000001005678901000"
#define OIN_AUDITOR    "00000001006789012000"

/* A store's case pseudonym key in tests that open a store directly
 * (store_open): any fixed 32 bytes, so a test can compute an own case's
 * pseudonym with pseudonym_with_key. */
extern const uint8_t test_pseudonym_key[32];

/* $KP_TEST_CHAIN, the shared read-only test chain. */
const char *test_chain(void);
/* $KP_BIN, the folder with the built programs. */
const char *test_bin(void);
/* $KP_SOURCE_DIR. */
const char *test_source_dir(void);
/* chain/orgs/<oin> into buf. */
const char *test_org_dir(const char *chain, const char *oin, char *buf,
    size_t len);
/* chain/orgs/<oin>/cert.pem into buf. */
const char *test_cert(const char *chain, const char *oin, char *buf,
    size_t len);
/* A fresh private temporary folder (mkdtemp); never NULL (asserts). */
char *test_tmpdir(char *buf, size_t len);
/* Run a shell command line (printf-style); returns its exit status. */
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like test_sh, but captures stdout+stderr into out (NUL-terminated). */
int test_sh_output(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* GET /metrics of a daemon's metrics listener on 127.0.0.1:port into out
 * (asserts it answered). */
void test_scrape(int port, char *out, size_t len);
/* The value of sample `series` (name with its labels exactly as exposed)
 * in a Prometheus text exposition, or -1 if it has no such line. */
double test_sample(const char *text, const char *series);
/* A document of the source tree, e.g. "docs/PROTOCOL.md" (malloc'd,
 * NUL-terminated; asserts it can be read). */
char *test_doc_load(const char *relpath);
/*
 * The worked examples of the docs: compare v with the doc line
 * "    NAME = <hex>" (hex continued on lines indented by 8) found after
 * `section` in doc (named docname in messages); with KP_PRINT_VECTORS set,
 * print the line instead (that is how the examples were written).
 */
void test_doc_check(const char *doc, const char *docname, const char *section,
    const char *name, const uint8_t *v, size_t len);
/* Init for every suite: sodium_init, asserting success. */
void test_init(void);

#endif
