/*
 * kperr.c: error codes and their stable names.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kperr.h"

static const char *const s_names[KP_ERR_CODE_COUNT] = {
	[KP_OK] = "ok",
	[KP_ERR_INVALID_ARG] = "invalid_argument",
	[KP_ERR_IO] = "io",
	[KP_ERR_NOMEM] = "out_of_memory",
	[KP_ERR_KEY_FILE_MODE] = "key_file_mode",
	[KP_ERR_KEY_INVALID] = "key_invalid",
	[KP_ERR_CERT_INVALID] = "cert_invalid",
	[KP_ERR_CERT_UNTRUSTED] = "cert_untrusted",
	[KP_ERR_CERT_EXPIRED] = "cert_expired",
	[KP_ERR_CERT_NOT_YET_VALID] = "cert_not_yet_valid",
	[KP_ERR_CERT_REVOKED] = "cert_revoked",
	[KP_ERR_CERT_KEY_USAGE] = "cert_key_usage",
	[KP_ERR_CRL] = "crl",
	[KP_ERR_ROLE] = "role",
	[KP_ERR_MALFORMED] = "malformed",
	[KP_ERR_SCHEMA_VERSION] = "schema_version",
	[KP_ERR_OVERSIZE] = "oversize",
	[KP_ERR_WRONG_RECIPIENT] = "wrong_recipient",
	[KP_ERR_UNKNOWN_SENDER] = "unknown_sender",
	[KP_ERR_BAD_SIGNATURE] = "bad_signature",
	[KP_ERR_CIPHERTEXT_CORRUPT] = "ciphertext_corrupt",
	[KP_ERR_DECRYPT] = "decrypt_failed",
	[KP_ERR_MALFORMED_PAYLOAD] = "malformed_payload",
	[KP_ERR_POLICY] = "policy_violation",
	[KP_ERR_POLICY_MISMATCH] = "policy_mismatch",
	[KP_ERR_UNKNOWN_RECIPIENT] = "unknown_recipient",
	[KP_ERR_BATCH_PROOF] = "batch_proof",
};

int
kp_fail(kp_err_t *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

void
kp_err_clear(kp_err_t *err)
{
	if (err == NULL)
		return;
	err->code = KP_OK;
	err->msg[0] = '\0';
}

const char *
kp_code_name(int code)
{
	if (code < 0 || code >= KP_ERR_CODE_COUNT || s_names[code] == NULL)
		return "unknown";
	return s_names[code];
}
