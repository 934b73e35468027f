/*
 * fuzzcommon.h: what the libFuzzer targets of tests/fuzz share.
 *
 * The key material is a real chain made at build time by
 * certs/ketenpost-certs (tests/make-chain.sh) into the build folder, never
 * kept in git; its path is compiled in (KP_FUZZ_CHAIN) and may be
 * overridden with $KP_FUZZ_CHAIN.  This file loads an organisation of it
 * once per process.  It never writes anything.
 */
#ifndef KP_FUZZCOMMON_H
#define KP_FUZZCOMMON_H

#include <stddef.h>
#include <stdint.h>

#include "directory.h"
#include "identity.h"
#include "policy.h"

/* The OINs of tests/make-chain.sh. */
#define FZ_OIN_LEERPLICHT "00000001001234567000"
#define FZ_OIN_HALT       "00000001002345678000"

typedef struct fz_org {
	identity_t *id;
	directory_t *dir;
} fz_org_t;

/* The chain folder. */
const char *fz_chain(void);
/* Load the organisation `oin` with its directory of partners; aborts on
 * failure (a broken fuzz set-up must not look like a quiet run). */
void fz_org_load(const char *oin, fz_org_t *o);
/* The shipped chain policy (policy/mas.ini), loaded once. */
const policy_t *fz_policy(void);
/* Write data to a fresh private temporary file; OUT: path (caller
 * unlinks).  Aborts on failure. */
#define FZ_PATH_MAX 512
void fz_tmpfile(const uint8_t *data, size_t size, char path[FZ_PATH_MAX]);

#endif
