/*
 * util.c: small pure helpers (see util.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "util.h"

static const char *const s_roles[] = {
	[KP_ROLE_NONE] = "none",
	[KP_ROLE_LEERPLICHT] = "leerplicht",
	[KP_ROLE_HALT] = "halt",
	[KP_ROLE_RVDK] = "rvdk",
	[KP_ROLE_OM] = "om",
	[KP_ROLE_JBT] = "jbt",
	[KP_ROLE_AUDITOR] = "auditor",
	[KP_ROLE_ZORG] = "zorg",
};

int
kp_role_from_string(const char *s)
{
	size_t i;

	if (s == NULL)
		return KP_ROLE_NONE;
	for (i = 1; i < sizeof(s_roles) / sizeof(s_roles[0]); i++)
		if (strcmp(s, s_roles[i]) == 0)
			return (int)i;
	return KP_ROLE_NONE;
}

const char *
kp_role_name(int role)
{
	if (role < 0 || (size_t)role >= sizeof(s_roles) / sizeof(s_roles[0]))
		return "none";
	return s_roles[role];
}

bool
kp_oin_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < KP_OIN_LEN; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return s[KP_OIN_LEN] == '\0';
}

void
kp_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

static int
s_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
kp_unhex(const char *in, uint8_t *out, size_t len)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < len; i++) {
		if (in[2 * i] == '\0' || in[2 * i + 1] == '\0')
			return -1;
		hi = s_nibble(in[2 * i]);
		lo = s_nibble(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return in[2 * len] == '\0' ? 0 : -1;
}

void
kp_uuid_format(const uint8_t id[16], char out[KP_UUID_TEXT_LEN + 1])
{
	size_t i, o = 0;

	/* by hand, not snprintf: an id is formatted for every event line
	 * of a drain (snprintf was 1.5% of a sender's loop) */
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		kp_hex(id + i, 1, out + o);
		o += 2;
	}
	out[o] = '\0';
}

int
kp_uuid_parse(const char *text, uint8_t id[16])
{
	char hex[33];
	size_t i, j = 0;

	if (text == NULL || strlen(text) != KP_UUID_TEXT_LEN)
		return -1;
	for (i = 0; i < KP_UUID_TEXT_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (text[i] != '-')
				return -1;
			continue;
		}
		hex[j++] = text[i];
	}
	hex[32] = '\0';
	return kp_unhex(hex, id, 16);
}

/*
 * UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.
 * Time-ordered ids keep the SQLite indexes on event ids append-mostly; with
 * random (v4) ids every insert touched a random index page and batched
 * inserts cost about twice as much.  The creation time is in the signed
 * header anyway, so the id reveals nothing new.
 */
void
kp_uuid_new(uint8_t id[16])
{
	uint64_t ms = kp_now_ms();
	int i;

	randombytes_buf(id + 6, 10);
	for (i = 5; i >= 0; i--) {
		id[i] = (uint8_t)ms;
		ms >>= 8;
	}
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x70);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

/*
 * A simulated clock, for simulations and tests only: when the environment
 * names KETENPOST_CLOCK_FILE, "now" is the decimal milliseconds in that
 * file (read on every call, so a simulator moves the time of every daemon
 * of a chain at once by rewriting one file).  A file that cannot be read
 * leaves the real clock in force.  Compiled in only with the CMake option
 * KP_SIMULATED_CLOCK (off by default): in a release binary the variable
 * does not exist, so no environment can move replay windows, expiry or
 * purge times.
 */
#ifdef KP_SIMULATED_CLOCK
bool
kp_clock_simulated(void)
{
	return true;
}

static bool
s_sim_now(uint64_t *ms)
{
	const char *path = getenv("KETENPOST_CLOCK_FILE");
	char buf[32];
	ssize_t n;
	int fd;

	if (path == NULL || *path == '\0')
		return false;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	*ms = strtoull(buf, NULL, 10);
	return *ms > 0;
}
#else
bool
kp_clock_simulated(void)
{
	return false;
}

static bool
s_sim_now(uint64_t *ms)
{
	(void)ms;
	return false;
}
#endif

uint64_t
kp_now_ms(void)
{
	struct timespec ts;
	uint64_t sim;

	if (s_sim_now(&sim))
		return sim;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

double
kp_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
kp_time_format(uint64_t ms, char out[32])
{
	time_t secs = (time_t)(ms / 1000u);
	struct tm tm;

	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000u));
}

/* n decimal digits at p into *v; 0 / -1. */
static int
s_digits(const char *p, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (p[i] - '0');
	}
	return 0;
}

static int
s_days_in_month(int year, int month)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

/*
 * Exactly YYYY-MM-DDTHH:MM:SS[.mmm]Z, and a moment that exists: strptime
 * and timegm would take 2027-02-30 (or second 60, hour 24) and roll it
 * into the next month (minute, day) without a word, and a deadline given
 * by hand must not silently move.
 */
int
kp_time_parse(const char *text, uint64_t *ms_out)
{
	int y, mo, d, h, mi, sec, frac = 0;
	struct tm tm;
	time_t secs;

	if (text == NULL || strlen(text) < 20 || text[4] != '-' ||
	    text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
	    text[16] != ':' || s_digits(text, 4, &y) != 0 ||
	    s_digits(text + 5, 2, &mo) != 0 || s_digits(text + 8, 2, &d) != 0 ||
	    s_digits(text + 11, 2, &h) != 0 ||
	    s_digits(text + 14, 2, &mi) != 0 ||
	    s_digits(text + 17, 2, &sec) != 0)
		return -1;
	text += 19;
	if (*text == '.') {
		if (s_digits(text + 1, 3, &frac) != 0)
			return -1;
		text += 4;
	}
	if (strcmp(text, "Z") != 0 || y < 1970 || mo < 1 || mo > 12 ||
	    d < 1 || d > s_days_in_month(y, mo) || h > 23 || mi > 59 ||
	    sec > 59)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((secs = timegm(&tm)) < 0)
		return -1;
	*ms_out = (uint64_t)secs * 1000u + (uint64_t)frac;
	return 0;
}

#define S_SUN_PATH_MAX 107  /* sizeof(sockaddr_un.sun_path) - 1, Linux */

int
kp_ipc_address(const char *endpoint, char *out, size_t len, int *dirfd)
{
	const char *path = endpoint + 6, *slash;
	char dir[4096];
	int n;

	*dirfd = -1;
	if (strncmp(endpoint, "ipc://", 6) != 0 || path[0] != '/' ||
	    strlen(path) <= S_SUN_PATH_MAX) {
		if ((size_t)snprintf(out, len, "%s", endpoint) >= len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return 0;
	}
	slash = strrchr(path, '/');
	if ((size_t)(slash - path) >= sizeof(dir) || strlen(slash + 1) > 64) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if ((*dirfd = open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY |
	    O_CLOEXEC)) < 0)
		return -1;
	n = snprintf(out, len, "ipc:///proc/self/fd/%d/%s", *dirfd, slash + 1);
	if (n < 0 || (size_t)n >= len) {
		close(*dirfd);
		*dirfd = -1;
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
kp_read_file(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	struct stat st;
	uint8_t *data = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	if ((size_t)st.st_size > max) {
		errno = EFBIG;
		goto fail;
	}
	data = malloc((size_t)st.st_size + 1);
	if (data == NULL)
		goto fail;
	while (got < (size_t)st.st_size) {
		n = read(fd, data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		got += (size_t)n;
	}
	data[got] = '\0';
	close(fd);
	*buf = data;
	*len = got;
	return 0;
fail:
	saved = errno;
	free(data);
	close(fd);
	errno = saved ? saved : EIO;
	return -1;
}

int
kp_parse_host_port(const char *text, struct sockaddr_storage *sa,
    socklen_t *len)
{
	char host[64];
	const char *colon;
	char *end;
	unsigned long port;
	size_t hl;

	memset(sa, 0, sizeof(*sa));
	if (text[0] == '[') {
		if ((colon = strstr(text, "]:")) == NULL)
			return -1;
		hl = (size_t)(colon - text - 1);
		colon++;
		text++;
	} else {
		if ((colon = strrchr(text, ':')) == NULL)
			return -1;
		hl = (size_t)(colon - text);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, text, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port == 0 ||
	    port > 65535)
		return -1;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)sa)->sin_addr)) {
		((struct sockaddr_in *)sa)->sin_family = AF_INET;
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
		*len = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, host,
	    &((struct sockaddr_in6 *)sa)->sin6_addr)) {
		((struct sockaddr_in6 *)sa)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	return -1;
}

int
kp_parse_uint(const char *text, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;

	if (!isdigit((unsigned char)*text))
		return -1;
	for (; isdigit((unsigned char)*text); text++)
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*text - '0'), &n))
			return -1;
	if (*text != '\0' || n > max)
		return -1;
	*out = n;
	return 0;
}
