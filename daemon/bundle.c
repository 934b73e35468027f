/*
 * bundle.c: keeps the daemon's chain in step with the signed chain bundle.
 *
 * With `bundle = FILE` (and `ca = FILE`, the pinned CA) the daemon's chain
 * folder is not given by the operator: this module verifies the bundle
 * (lib/bundle.c), unpacks each newer version into
 * <state_dir>/trust/v<version>/ and points cfg.chain_dir (and, unless the
 * config names one, cfg.policy) there.  It re-reads the file every
 * bundle_check_interval and on SIGHUP; when it unpacked a newer version
 * the caller reloads the chain (main.c s_reload), which connects new
 * partners and drops and refuses revoked ones.
 *
 * It owns the applied version: the highest v<N> folder in trust/, so a
 * restart keeps refusing older bundles (rollback).  It never applies a
 * bundle that did not verify, never an older or equal version, and it
 * logs a refused file once, not at every check.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "daemon.h"
#include "log.h"

#define S_KEEP 2 /* unpacked versions kept: the applied one and one before */

struct kpd_bundle {
	uint64_t applied;        /* 0: none yet */
	uint64_t next_check_ms;
	bool policy_from_bundle; /* cfg.policy follows the bundle */
	struct stat seen;        /* the file last looked at */
	bool have_seen;
	char refused[KP_ERR_MSG_MAX]; /* last refusal logged */
};

static int
s_trust_dir(const config_t *cfg, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/trust", cfg->state_dir);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int
s_version_dir(const config_t *cfg, uint64_t v, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/trust/v%020ju", cfg->state_dir,
	    (uintmax_t)v);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* v<20 digits> -> version; 0 if the name is not one. */
static uint64_t
s_parse_version(const char *name)
{
	uint64_t v = 0;
	size_t i;

	if (name[0] != 'v' || strlen(name) != 21)
		return 0;
	for (i = 1; i < 21; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	return v;
}

/* The highest unpacked version in <state_dir>/trust (0 if none). */
static uint64_t
s_applied(const config_t *cfg)
{
	char dir[KP_PATH_MAX];
	struct dirent *e;
	uint64_t v, max = 0;
	DIR *dp;

	if (s_trust_dir(cfg, dir, sizeof(dir)) == -1 ||
	    (dp = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(dp)) != NULL)
		if ((v = s_parse_version(e->d_name)) > max)
			max = v;
	closedir(dp);
	return max;
}

static void
s_rm_tree(const char *dir)
{
	char path[KP_PATH_MAX + 300];
	struct dirent *e;
	struct stat st;
	DIR *dp;

	if ((dp = opendir(dir)) == NULL)
		return;
	while ((e = readdir(dp)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			s_rm_tree(path);
		else
			(void)unlink(path);
	}
	closedir(dp);
	(void)rmdir(dir);
}

/* Drop unpacked versions older than the S_KEEP newest. */
static void
s_prune(const config_t *cfg, uint64_t applied)
{
	char dir[KP_PATH_MAX], path[KP_PATH_MAX];
	struct dirent *e;
	uint64_t v;
	DIR *dp;

	if (s_trust_dir(cfg, dir, sizeof(dir)) == -1 ||
	    (dp = opendir(dir)) == NULL)
		return;
	while ((e = readdir(dp)) != NULL) {
		v = s_parse_version(e->d_name);
		if (v != 0 && v + S_KEEP <= applied &&
		    s_version_dir(cfg, v, path, sizeof(path)) == 0)
			s_rm_tree(path);
	}
	closedir(dp);
}

/* Point cfg at the unpacked version v. */
static int
s_use(config_t *cfg, bool policy_too, uint64_t v, kp_err_t *err)
{
	char dir[KP_PATH_MAX];

	if (s_version_dir(cfg, v, dir, sizeof(dir)) == -1 ||
	    snprintf(cfg->chain_dir, sizeof(cfg->chain_dir), "%s", dir) >=
	    (int)sizeof(cfg->chain_dir) || (policy_too &&
	    snprintf(cfg->policy, sizeof(cfg->policy), "%s/policy.ini", dir) >=
	    (int)sizeof(cfg->policy)))
		return kp_fail(err, KP_ERR_INVALID_ARG, "state_dir %s is too "
		    "long for the bundle's folder", cfg->state_dir);
	return 0;
}

/* Unpack b as version folder (via a temporary name: all or nothing). */
static int
s_install(const config_t *cfg, const bundle_t *b, kp_err_t *err)
{
	char trust[KP_PATH_MAX], tmp[KP_PATH_MAX + 32], dir[KP_PATH_MAX];

	if (s_trust_dir(cfg, trust, sizeof(trust)) == -1 ||
	    s_version_dir(cfg, bundle_version(b), dir, sizeof(dir)) == -1)
		return kp_fail(err, KP_ERR_INVALID_ARG, "state_dir is too long");
	if ((mkdir(cfg->state_dir, 0700) == -1 && errno != EEXIST) ||
	    (mkdir(trust, 0700) == -1 && errno != EEXIST))
		return kp_fail(err, KP_ERR_IO, "cannot make %s: %s", trust,
		    strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s/.new-%ld", trust, (long)getpid());
	s_rm_tree(tmp);
	if (bundle_unpack(b, tmp, err) == -1)
		return -1;
	if (rename(tmp, dir) == -1) {
		kp_fail(err, KP_ERR_IO, "cannot rename %s to %s: %s", tmp, dir,
		    strerror(errno));
		s_rm_tree(tmp);
		return -1;
	}
	return 0;
}

/*
 * Verify cfg->bundle and decide: 1 a newer version `*b` to apply, 0 none
 * (same version), -1 refused (err: tampered, another CA, older).
 */
static int
s_examine(const config_t *cfg, uint64_t applied, bundle_t **b,
    kp_err_t *err)
{
	if (bundle_load(cfg->bundle, cfg->ca, b, err) == -1)
		return -1;
	if (bundle_version(*b) > applied)
		return 1;
	if (bundle_version(*b) == applied)
		return 0;
	kp_fail(err, KP_ERR_INVALID_ARG, "bundle %s has version %ju, older "
	    "than the applied version %ju: refused (rollback); install the "
	    "newest bundle from the chain CA", cfg->bundle,
	    (uintmax_t)bundle_version(*b), (uintmax_t)applied);
	bundle_destroy(b);
	return -1;
}

int
kpd_bundle_start(kpd_t *d, kp_err_t *err)
{
	struct kpd_bundle *s;
	bundle_t *b = NULL;
	kp_err_t e;
	int r;

	if (d->cfg.bundle[0] == '\0')
		return 0;
	if ((s = d->bundle = calloc(1, sizeof(*s))) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	s->policy_from_bundle = d->cfg.policy[0] == '\0';
	s->applied = s_applied(&d->cfg);
	r = s_examine(&d->cfg, s->applied, &b, &e);
	if (r == 1 && s_install(&d->cfg, b, &e) == 0) {
		s->applied = bundle_version(b);
		log_info("bundle %s: version %ju (issued %s) applied, %zu "
		    "files", d->cfg.bundle, (uintmax_t)s->applied,
		    bundle_issued(b), bundle_count(b));
	} else if (r != 0) {
		if (s->applied == 0) {
			bundle_destroy(&b);
			*err = e;
			return -1;
		}
		log_warnx("%s; keeping the applied version %ju", e.msg,
		    (uintmax_t)s->applied);
		snprintf(s->refused, sizeof(s->refused), "%s", e.msg);
	}
	bundle_destroy(&b);
	s_prune(&d->cfg, s->applied);
	s->next_check_ms = kp_now_ms() + d->cfg.bundle_check_interval_ms;
	return s_use(&d->cfg, s->policy_from_bundle, s->applied, err);
}

/* The file is the one last examined (same inode, size, mtime). */
static bool
s_unchanged(struct kpd_bundle *s, const char *path)
{
	struct stat st;
	bool same;

	if (stat(path, &st) == -1)
		return false;
	same = s->have_seen && st.st_ino == s->seen.st_ino &&
	    st.st_dev == s->seen.st_dev && st.st_size == s->seen.st_size &&
	    st.st_mtim.tv_sec == s->seen.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == s->seen.st_mtim.tv_nsec;
	s->seen = st;
	s->have_seen = true;
	return same;
}

bool
kpd_bundle_tick(kpd_t *d, bool force)
{
	struct kpd_bundle *s = d->bundle;
	bundle_t *b = NULL;
	kp_err_t e;
	int r;

	if (s == NULL || (!force && kp_now_ms() < s->next_check_ms))
		return false;
	s->next_check_ms = kp_now_ms() + d->cfg.bundle_check_interval_ms;
	if (s_unchanged(s, d->cfg.bundle) && !force)
		return false;
	r = s_examine(&d->cfg, s->applied, &b, &e);
	if (r == 1 && s_install(&d->cfg, b, &e) == 0 &&
	    s_use(&d->cfg, s->policy_from_bundle, bundle_version(b), &e) == 0) {
		s->applied = bundle_version(b);
		s->refused[0] = '\0';
		log_info("bundle %s: version %ju (issued %s) applied",
		    d->cfg.bundle, (uintmax_t)s->applied, bundle_issued(b));
		bundle_destroy(&b);
		s_prune(&d->cfg, s->applied);
		return true;
	}
	bundle_destroy(&b);
	if (r != 0 && strcmp(s->refused, e.msg) != 0) {
		log_warnx("%s; keeping the applied version %ju", e.msg,
		    (uintmax_t)s->applied);
		snprintf(s->refused, sizeof(s->refused), "%s", e.msg);
	}
	return false;
}

uint64_t
kpd_bundle_applied(const kpd_t *d)
{
	return d->bundle != NULL ? d->bundle->applied : 0;
}

const char *
kpd_bundle_refused(const kpd_t *d)
{
	return d->bundle != NULL && d->bundle->refused[0] != '\0' ?
	    d->bundle->refused : NULL;
}

void
kpd_bundle_stop(kpd_t *d)
{
	free(d->bundle);
	d->bundle = NULL;
}

int
kpd_bundle_for_check(config_t *cfg, char *tmp, size_t len, kp_err_t *err)
{
	bundle_t *b = NULL;
	int n, rc = -1;

	tmp[0] = '\0';
	if (cfg->bundle[0] == '\0')
		return 0;
	if (s_examine(cfg, s_applied(cfg), &b, err) == -1)
		return -1;
	n = snprintf(tmp, len, "%s/ketenpostd-check.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (n < 0 || (size_t)n >= len || mkdtemp(tmp) == NULL ||
	    rmdir(tmp) == -1) {
		kp_fail(err, KP_ERR_IO, "cannot make a temporary folder: %s",
		    strerror(errno));
		tmp[0] = '\0';
		goto out;
	}
	if (bundle_unpack(b, tmp, err) == -1) {
		tmp[0] = '\0';
		goto out;
	}
	if (snprintf(cfg->chain_dir, sizeof(cfg->chain_dir), "%s", tmp) >=
	    (int)sizeof(cfg->chain_dir) || (cfg->policy[0] == '\0' &&
	    snprintf(cfg->policy, sizeof(cfg->policy), "%s/policy.ini", tmp) >=
	    (int)sizeof(cfg->policy))) {
		kp_fail(err, KP_ERR_INVALID_ARG, "the temporary folder %s is "
		    "too long", tmp);
		goto out;
	}
	rc = 0;
out:
	bundle_destroy(&b);
	return rc;
}

void
kpd_bundle_check_done(const char *tmp)
{
	if (tmp[0] != '\0')
		s_rm_tree(tmp);
}
