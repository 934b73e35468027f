/*
 * test_ops.c: what an operator relies on: every program's --version, the
 * install layout (cmake --install into a staging folder, then the
 * installed ketenpost-certs finds the MAS policy beside itself).
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common.h"

TestSuite(ops, .init = test_init, .timeout = 240);

Test(ops, every_program_prints_name_and_version)
{
	static const char *progs[] = { "ketenpostd", "ketenpost",
	    "ketenpost-certs", "kpbench", "simyear" };
	char out[256], want[128];
	size_t i;

	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		cr_assert_eq(test_sh_output(out, sizeof(out), "%s/%s --version",
		    test_bin(), progs[i]), 0, "%s --version failed", progs[i]);
		snprintf(want, sizeof(want), "%s %s\n", progs[i], KP_VERSION);
		cr_assert_str_eq(out, want, "%s --version", progs[i]);
	}
}

Test(ops, installed_tree_has_the_layout_the_unit_expects)
{
	static const char *files[] = { "usr/bin/ketenpostd", "usr/bin/ketenpost",
	    "usr/bin/ketenpost-certs", "usr/share/ketenpost/mas.ini",
	    "usr/share/man/man1/ketenpost.1", "usr/share/man/man8/ketenpostd.8",
	    "usr/share/man/man5/ketenpostd.conf.5",
	    "usr/lib/systemd/system/ketenpostd@.service",
	    "usr/lib/sysusers.d/ketenpost.conf",
	    "usr/lib/tmpfiles.d/ketenpost.conf",
	    "usr/share/doc/ketenpost/examples/referral.json" };
	char tmp[4096], out[4096];
	size_t i;

	test_tmpdir(tmp, sizeof(tmp));
	cr_assert_eq(test_sh_output(out, sizeof(out), "DESTDIR=%s/root cmake "
	    "--install %s/.. --prefix /usr", tmp, test_bin()), 0, "%s", out);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		cr_assert_eq(test_sh("test -f %s/root/%s", tmp, files[i]), 0,
		    "not installed: %s", files[i]);
	cr_assert_eq(test_sh("grep -q '^ExecStart=/usr/bin/ketenpostd ' "
	    "%s/root/usr/lib/systemd/system/ketenpostd@.service", tmp), 0);
	/* the installed certs tool copies the installed MAS policy */
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/root/usr/bin/"
	    "ketenpost-certs init --dir %s/chain", tmp, tmp), 0, "%s", out);
	cr_assert_eq(test_sh("cmp -s %s/chain/policy.ini "
	    "%s/root/usr/share/ketenpost/mas.ini", tmp, tmp), 0,
	    "the chain policy is not the installed MAS policy");
	test_sh("rm -rf %s", tmp);
}
