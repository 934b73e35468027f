/*
 * apikey.c: `ketenpost api-key FILE`, a CURVE key pair for a client of a
 * tcp:// local API (ketenpostd.conf(5) [api] allow = key:...).
 *
 * The secret key is written once, to a new file of mode 0600, and never
 * printed; the public key is printed as the allow line to put in the
 * daemon's config.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "cli.h"

static const char s_help[] =
"usage: ketenpost api-key FILE\n"
"Make a CURVE key pair for a client of a tcp:// local API: FILE (new,\n"
"mode 0600) gets the public and the secret key, and the line to add to\n"
"the daemon's config is printed.  Use the file with KETENPOST_API_KEY.\n";

int
cmd_api_key(int argc, char **argv)
{
	char pk[41], sk[41], text[96];
	int fd = -1, n, rc = EXIT_REFUSED;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(s_help, stdout);
		return 0;
	}
	if (argc != 2)
		return cli_usage_error("api-key", "expected one FILE");
	if (zmq_curve_keypair(pk, sk) != 0)
		return cli_error("api-key: no CURVE in this libzmq");
	n = snprintf(text, sizeof(text), "%s\n%s\n", pk, sk);
	if ((fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0) {
		cli_error("api-key: %s: %s (an existing key file is never "
		    "overwritten)", argv[1], strerror(errno));
		goto out;
	}
	if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
		cli_error("api-key: %s: %s", argv[1], strerror(errno));
		(void)unlink(argv[1]);
		goto out;
	}
	printf("[api]\nallow = key:%s submit inbox\n", pk);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(text, sizeof(text));
	return rc;
}
