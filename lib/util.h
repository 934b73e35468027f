/*
 * util.h: small pure helpers shared by every module: hex and UUID text
 * forms, OIN and role validation, clocks, whole-file reading.
 */
#ifndef KP_UTIL_H
#define KP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define KP_OIN_LEN 20         /* an OIN is exactly 20 decimal digits */
#define KP_UUID_TEXT_LEN 36   /* 8-4-4-4-12 */

enum kp_role {
	KP_ROLE_NONE = 0,
	KP_ROLE_LEERPLICHT,
	KP_ROLE_HALT,
	KP_ROLE_RVDK,
	KP_ROLE_OM,
	KP_ROLE_JBT,
	KP_ROLE_AUDITOR,
	KP_ROLE_ZORG,         /* care partner: wijkteam / youth-care provider */
};

/* "leerplicht" -> KP_ROLE_LEERPLICHT; KP_ROLE_NONE for anything else. */
int kp_role_from_string(const char *s);
/* KP_ROLE_HALT -> "halt"; "none" for an unknown value. */
const char *kp_role_name(int role);

/* True if s is exactly 20 ASCII digits. */
bool kp_oin_valid(const char *s);

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void kp_hex(const uint8_t *in, size_t len, char *out);
/* Parse exactly 2*len hex digits; 0 / -1. */
int kp_unhex(const char *in, uint8_t *out, size_t len);

/* 16 bytes -> "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (37 bytes with NUL). */
void kp_uuid_format(const uint8_t id[16], char out[KP_UUID_TEXT_LEN + 1]);
/* Parse the form above (any version nibble); 0 / -1. */
int kp_uuid_parse(const char *text, uint8_t id[16]);
/* A new event id: UUIDv7 (48-bit ms timestamp, 74 random bits). */
void kp_uuid_new(uint8_t id[16]);

/* Wall clock, UTC, milliseconds since the epoch; $KETENPOST_CLOCK_FILE
 * (simulations and tests only) replaces it by the ms written there, in a
 * build configured with KP_SIMULATED_CLOCK only. */
uint64_t kp_now_ms(void);
/* Seconds on CLOCK_MONOTONIC, never simulated: for timing a duration
 * (the benchmarks), not for anything stored or compared with a time. */
double kp_mono_s(void);
/* Was this build configured with KP_SIMULATED_CLOCK? */
bool kp_clock_simulated(void);

/* Format ms since the epoch as "2027-01-31T12:00:00.123Z" (25 bytes). */
void kp_time_format(uint64_t ms, char out[32]);
/* Parse "2027-01-31T00:00:00Z" (optionally with .mmm); 0 / -1. */
int kp_time_parse(const char *text, uint64_t *ms_out);

/*
 * The address to bind or connect for a ZeroMQ endpoint.  A Unix socket
 * address holds at most 107 bytes of path, so ipc://<state_dir>/api.sock
 * breaks when the state folder lies deep in the file system.  For such an
 * ipc:// endpoint the socket's folder is opened (O_PATH) and the address
 * becomes ipc:///proc/self/fd/N/NAME (Linux): the same socket file, with
 * the same permissions, reached by a short path.  Anything else is copied.
 * OUT: out; *dirfd, the folder's descriptor (-1 if none), to be kept open
 * while the socket is in use (libzmq reconnects by that address) and
 * closed after.  0 / -1 (errno: ENAMETOOLONG, or the folder's open error).
 */
int kp_ipc_address(const char *endpoint, char *out, size_t len, int *dirfd);

/*
 * Read a whole file of at most max bytes into a malloc'd buffer, NUL
 * terminated (the NUL is not counted in *len).  0 / -1 with errno set
 * (EFBIG when the file is larger than max).
 */
int kp_read_file(const char *path, size_t max, uint8_t **buf, size_t *len);

/* "IPv4:PORT" or "[IPv6]:PORT" (literal addresses only) into *sa, for a
 * listening socket of ours.  0 / -1. */
int kp_parse_host_port(const char *text, struct sockaddr_storage *sa,
    socklen_t *len);

/* A decimal number without sign or spaces, at most max.  OUT: *out.
 * 0 / -1 (not a number, trailing text, overflow, over max). */
int kp_parse_uint(const char *text, uint64_t max, uint64_t *out);

#endif
