/*
 * test_secrets.c: the daemon's memory is out of reach of core files and
 * of other processes of its user.
 *
 * ketenpostd makes itself non-dumpable (PR_SET_DUMPABLE 0) at start: no
 * core file, no ptrace or /proc/PID/mem by a process of the same user.
 * The kernel shows it in /proc (proc(5)): the files of a non-dumpable
 * process belong to root, whatever user it runs as.  So the daemon is run
 * as `nobody` here (the test runs as root, as in CI) and /proc/PID must
 * belong to root, while a plain process of `nobody` (the control) shows
 * its own uid.  The unit's LimitCORE=0 is checked by systemd_verify.
 */
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common.h"
#include "daemons.h"

TestSuite(secrets, .init = test_init, .timeout = 120);

#define NOBODY 65534

/* Run argv as nobody, stdout and stderr to log. */
static pid_t
s_spawn_nobody(const char *log, char *const argv[])
{
	pid_t pid = fork();
	int fd;

	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0666)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 ||
		    setuid(NOBODY) != 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* The uid the real user of pid has (Uid: line of /proc/PID/status). */
static uid_t
s_real_uid(pid_t pid)
{
	char path[64], line[256];
	unsigned uid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	cr_assert_not_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Uid: %u", &uid) == 1)
			break;
	fclose(f);
	return (uid_t)uid;
}

/* Whether pid runs the program `comm` (/proc/PID/comm; set at exec). */
static bool
s_runs(pid_t pid, const char *comm)
{
	char path[64], line[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	return strcmp(line, comm) == 0;
}

static uid_t
s_proc_owner(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	cr_assert_eq(stat(path, &st), 0);
	return st.st_uid;
}

Test(secrets, the_daemon_is_not_dumpable)
{
	char prog[4200], tmp[4200], *argv[5];
	td_chain_t c;
	td_org_t *halt;
	pid_t pid, control;
	int i;

	if (geteuid() != 0)
		cr_skip_test("needs root, to run the daemon as another user");
	td_chain_make(&c, NULL);
	halt = td_org(&c, OIN_HALT);
	/* the daemon's files to nobody; the folders above it traversable */
	snprintf(tmp, sizeof(tmp), "%s", c.dir);
	*strrchr(tmp, '/') = '\0';
	cr_assert_eq(test_sh("chown -R %d:%d %s && chmod 0711 %s",
	    NOBODY, NOBODY, c.dir, tmp), 0);

	snprintf(prog, sizeof(prog), "%s/ketenpostd", test_bin());
	argv[0] = prog;
	argv[1] = (char *)"--config";
	argv[2] = halt->conf;
	argv[3] = NULL;
	pid = s_spawn_nobody(halt->log, argv);
	for (i = 0; i < 200 && !td_log_has(halt, "listening on", 0); i++) {
		cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0,
		    "ketenpostd exited at start; see %s", halt->log);
		usleep(50 * 1000);
	}
	cr_assert(td_log_has(halt, "listening on", 0), "see %s", halt->log);
	cr_assert_eq(s_real_uid(pid), NOBODY);
	cr_assert_eq(s_proc_owner(pid), 0, "the daemon is dumpable: its /proc "
	    "files belong to its user, a core file or ptrace would get its "
	    "keys");

	/* the control: a process of nobody that did not ask */
	argv[0] = (char *)"/bin/sleep";
	argv[1] = (char *)"30";
	argv[2] = NULL;
	control = s_spawn_nobody("/dev/null", argv);
	/* until it runs sleep: between its setuid and its exec the kernel
	 * keeps it non-dumpable too (fs.suid_dumpable), which is not the
	 * state to compare with */
	for (i = 0; i < 250 && !s_runs(control, "sleep"); i++)
		usleep(20 * 1000);
	cr_assert_eq(s_real_uid(control), NOBODY);
	cr_assert_eq(s_proc_owner(control), NOBODY, "the check is blind");

	kill(control, SIGKILL);
	waitpid(control, NULL, 0);
	kill(pid, SIGTERM);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	/* ownership back to root, so the test's clean-up can remove it */
	(void)test_sh("chown -R 0:0 %s", c.dir);
}
