/*
 * fuzz_config: a ketenpostd.conf (config_load, and the client's reading
 * of the API endpoint from it), every problem reported.
 */
#include <unistd.h>

#include "config.h"
#include "fuzzcommon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
s_report(void *arg, const char *line)
{
	(*(size_t *)arg) += line[0] != '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[FZ_PATH_MAX], endpoint[512];
	size_t lines = 0;
	config_t cfg;
	int problems = 0;
	kp_err_t e;

	fz_tmpfile(data, size, path);
	(void)config_load(path, &cfg, s_report, &lines, &problems, &e);
	(void)config_api_endpoint(path, endpoint, sizeof(endpoint), &e);
	unlink(path);
	return 0;
}
