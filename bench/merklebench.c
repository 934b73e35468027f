/*
 * merklebench: what the audit log's Merkle tree (lib/merkle.c) costs.
 *
 *   merklebench [LEAVES]      (default 1000000)
 *
 * Times, on one core: leaf hashing, appending LEAVES leaf hashes (the
 * daemon's rebuild at start), the current root, roots of old sizes,
 * inclusion and consistency proofs and their verification.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merkle.h"
#include "util.h"

#define SAMPLES 20000

static void
s_report(const char *what, double t0, uint64_t n)
{
	double dt = kp_mono_s() - t0;

	printf("%-34s %10.3f us/op %12.0f op/s\n", what, dt * 1e6 / (double)n,
	    (double)n / dt);
}

/* xorshift64: reproducible sample positions without libc rand(). */
static uint64_t
s_rand(uint64_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return *st;
}

static int
s_proofs(merkle_t *t, uint64_t size, const uint8_t root[MERKLE_HASH_LEN])
{
	uint8_t (*p)[MERKLE_HASH_LEN], leaf[MERKLE_HASH_LEN], old[MERKLE_HASH_LEN];
	uint64_t st = 0x9e3779b97f4a7c15ULL, idx[SAMPLES], i;
	size_t n;
	double t0;

	for (i = 0; i < SAMPLES; i++)
		idx[i] = s_rand(&st) % size;
	t0 = kp_mono_s();
	for (i = 0; i < SAMPLES; i++) {
		if (merkle_inclusion_proof(t, idx[i], size, &p, &n) != 0)
			return -1;
		free(p);
	}
	s_report("inclusion proof", t0, SAMPLES);
	/* s_run appends leaf hash i as the 8 bytes of i, then zeros. */
	memset(leaf, 0, sizeof(leaf));
	memcpy(leaf, &idx[0], sizeof(idx[0]));
	if (merkle_inclusion_proof(t, idx[0], size, &p, &n) != 0)
		return -1;
	t0 = kp_mono_s();
	for (i = 0; i < SAMPLES; i++)
		if (merkle_verify_inclusion(leaf, idx[0], size,
		    (const uint8_t (*)[MERKLE_HASH_LEN])p, n, root) != 0)
			return -1;
	s_report("verify inclusion", t0, SAMPLES);
	free(p);
	t0 = kp_mono_s();
	for (i = 0; i < SAMPLES; i++) {
		if (merkle_consistency_proof(t, idx[i] + 1, size, &p, &n) != 0)
			return -1;
		free(p);
	}
	s_report("consistency proof", t0, SAMPLES);
	if (merkle_consistency_proof(t, idx[0] + 1, size, &p, &n) != 0 ||
	    merkle_root(t, idx[0] + 1, old) != 0)
		return -1;
	t0 = kp_mono_s();
	for (i = 0; i < SAMPLES; i++)
		if (merkle_verify_consistency(idx[0] + 1, size, old, root,
		    (const uint8_t (*)[MERKLE_HASH_LEN])p, n) != 0)
			return -1;
	s_report("verify consistency", t0, SAMPLES);
	free(p);
	return 0;
}

static int
s_run(merkle_t *t, uint64_t leaves)
{
	uint8_t h[MERKLE_HASH_LEN], root[MERKLE_HASH_LEN];
	uint8_t entry[256];
	uint64_t i;
	double t0;

	memset(entry, 0x42, sizeof(entry));
	t0 = kp_mono_s();
	for (i = 0; i < SAMPLES; i++)
		if (merkle_leaf_hash(entry, sizeof(entry), h) != 0)
			return -1;
	s_report("leaf hash (256-byte entry)", t0, SAMPLES);
	memset(h, 0, sizeof(h));
	t0 = kp_mono_s();
	for (i = 0; i < leaves; i++) {
		memcpy(h, &i, sizeof(i));
		if (merkle_append(t, h) != 0)
			return -1;
	}
	s_report("append (rebuild at start)", t0, leaves);
	t0 = kp_mono_s();
	for (i = 0; i < SAMPLES; i++)
		if (merkle_root(t, leaves - (i % 2), root) != 0)
			return -1;
	s_report("root of current/old size", t0, SAMPLES);
	if (merkle_root(t, leaves, root) != 0)
		return -1;
	return s_proofs(t, leaves, root);
}

int
main(int argc, char **argv)
{
	uint64_t leaves = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	merkle_t *t;
	int rc;

	if (leaves < 2) {
		fprintf(stderr, "usage: merklebench [LEAVES >= 2]\n");
		return 2;
	}
	if ((t = merkle_new()) == NULL) {
		fprintf(stderr, "merklebench: merkle_new failed\n");
		return 1;
	}
	printf("%llu leaves\n", (unsigned long long)leaves);
	rc = s_run(t, leaves);
	merkle_destroy(&t);
	if (rc != 0)
		fprintf(stderr, "merklebench: a tree operation failed\n");
	return rc == 0 ? 0 : 1;
}
