/*
 * fuzz_policy: a chain policy file (policy_load with every problem
 * reported); a valid one is then asked for its rules.
 */
#include <unistd.h>

#include "events.h"
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
	char path[FZ_PATH_MAX];
	const policy_rule_t *r;
	policy_t *p = NULL;
	size_t lines = 0;
	int problems = 0, type, role, answer;
	uint64_t lead;
	kp_err_t e;

	fz_tmpfile(data, size, path);
	if (policy_load(path, &p, s_report, &lines, &problems, &e) == 0) {
		for (type = 0; type < 16; type++) {
			if ((r = policy_rule(p, type)) == NULL)
				continue;
			(void)policy_rule_purpose(r);
			(void)policy_rule_retention_ms(r);
			for (role = 0; role < 8; role++)
				(void)policy_rule_expects(r, role, &answer,
				    &lead);
		}
		policy_destroy(&p);
	}
	unlink(path);
	return 0;
}
