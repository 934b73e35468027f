/*
 * kperr.h: error codes and the caller-owned error buffer.
 *
 * Every fallible function in lib/ returns 0 or -1 and, on -1, fills a
 * kp_err_t that the caller owns (the anet pattern: no globals, no errno
 * games).  The code is machine-readable and stable (tests and receipts
 * depend on it); the message is one human line naming what and where.
 */
#ifndef KP_KPERR_H
#define KP_KPERR_H

#include <stddef.h>

enum kp_code {
	KP_OK = 0,
	KP_ERR_INVALID_ARG,       /* caller passed something unusable */
	KP_ERR_IO,                /* a file could not be read or written */
	KP_ERR_NOMEM,
	KP_ERR_KEY_FILE_MODE,     /* secret key readable by group or others */
	KP_ERR_KEY_INVALID,       /* key file unparsable or not matching */
	KP_ERR_CERT_INVALID,      /* certificate unparsable or incomplete */
	KP_ERR_CERT_UNTRUSTED,    /* does not chain to the chain CA */
	KP_ERR_CERT_EXPIRED,
	KP_ERR_CERT_NOT_YET_VALID,
	KP_ERR_CERT_REVOKED,
	KP_ERR_CERT_KEY_USAGE,    /* key usage does not allow signing */
	KP_ERR_CRL,               /* CRL missing, unreadable or out of date */
	KP_ERR_ROLE,              /* this role may not do this */
	KP_ERR_MALFORMED,         /* not a valid (complete) protobuf message */
	KP_ERR_SCHEMA_VERSION,    /* unknown schema major version */
	KP_ERR_OVERSIZE,
	KP_ERR_WRONG_RECIPIENT,
	KP_ERR_UNKNOWN_SENDER,
	KP_ERR_BAD_SIGNATURE,
	KP_ERR_CIPHERTEXT_CORRUPT,
	KP_ERR_DECRYPT,
	KP_ERR_MALFORMED_PAYLOAD, /* decrypted, but not a valid event */
	KP_ERR_POLICY,            /* the chain policy forbids this event */
	KP_ERR_POLICY_MISMATCH,   /* sender and receiver apply other policies */
	KP_ERR_UNKNOWN_RECIPIENT, /* not a verified partner to send to */
	KP_ERR_BATCH_PROOF,       /* batch path does not lead to its root */
	KP_ERR_CODE_COUNT
};

#define KP_ERR_MSG_MAX 320

typedef struct kp_err {
	int code;                 /* enum kp_code */
	char msg[KP_ERR_MSG_MAX]; /* one line, no trailing newline */
} kp_err_t;

/* Fill err (if not NULL) and return -1, so callers can `return kp_fail(...)`. */
int kp_fail(kp_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset err to KP_OK / empty message. */
void kp_err_clear(kp_err_t *err);

/* Stable snake_case name of a code, e.g. "bad_signature". */
const char *kp_code_name(int code);

#endif
