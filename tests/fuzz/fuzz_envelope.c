/*
 * fuzz_envelope: a sealed envelope as it arrives from the network, opened
 * by Halt (envelope_open: every check up to decryption), and the same
 * bytes stripped to evidence and searched for a riding tree head.
 */
#include <stdlib.h>

#include <sodium.h>

#include "envelope.h"
#include "fuzzcommon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static fz_org_t halt;
	envelope_meta_t meta;
	uint8_t digest[KP_DIGEST_LEN], *payload = NULL, *out = NULL;
	size_t payload_len = 0, out_len = 0;
	bool has_digest = false;
	kp_err_t e;

	if (halt.dir == NULL)
		fz_org_load(FZ_OIN_HALT, &halt);
	if (envelope_open(halt.dir, data, size, &meta, &payload, &payload_len,
	    digest, &has_digest, &e) == 0) {
		sodium_memzero(payload, payload_len);
		free(payload);
	}
	if (envelope_strip(data, size, &out, &out_len, &e) == 0)
		free(out);
	out = NULL;
	if (envelope_extract_head(data, size, false, &out, &out_len) == 0)
		free(out);
	return 0;
}
