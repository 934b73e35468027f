/*
 * access.c: who may ask the local API what (see access.h).
 *
 * The allow list is part of the config (parsed here, held in config_t);
 * this module only answers questions about it and keeps no state.  It must
 * never grant a role from anything the client asserts: only from the
 * kernel's peer credentials or from a CURVE key ZAP has authenticated.
 */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "access.h"
#include "api.pb-c.h"

static const struct {
	const char *name;
	unsigned role;
} s_roles[] = {
	{ "submit", API_ROLE_SUBMIT }, { "inbox", API_ROLE_INBOX },
	{ "officer", API_ROLE_OFFICER }, { "subject", API_ROLE_SUBJECT },
	{ "admin", API_ROLE_ADMIN }, { "all", API_ROLE_ALL },
};

const char *
access_role_name(unsigned role)
{
	size_t i;

	for (i = 0; i < sizeof(s_roles) / sizeof(s_roles[0]); i++)
		if (s_roles[i].role == role)
			return s_roles[i].name;
	return "?";
}

static int
s_role(const char *name, unsigned *out)
{
	size_t i;

	for (i = 0; i < sizeof(s_roles) / sizeof(s_roles[0]); i++)
		if (strcmp(s_roles[i].name, name) == 0) {
			*out |= s_roles[i].role;
			return 0;
		}
	return -1;
}

/* A user or group by name or number.  OUT: *id.  0 / -1. */
static int
s_resolve(int kind, const char *v, uint32_t *id)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	struct passwd *pw;
	struct group *gr;

	if (*v != '\0' && *end == '\0' && n <= 0xfffffffeUL) {
		*id = (uint32_t)n;
		return 0;
	}
	if (kind == ACCESS_USER && (pw = getpwnam(v)) != NULL) {
		*id = (uint32_t)pw->pw_uid;
		return 0;
	}
	if (kind == ACCESS_GROUP && (gr = getgrnam(v)) != NULL) {
		*id = (uint32_t)gr->gr_gid;
		return 0;
	}
	return -1;
}

static int
s_principal(const char *p, api_allow_t *a, char *why, size_t whylen)
{
	if (strncmp(p, "user:", 5) == 0 || strncmp(p, "group:", 6) == 0) {
		a->kind = p[0] == 'u' ? ACCESS_USER : ACCESS_GROUP;
		p += a->kind == ACCESS_USER ? 5 : 6;
		if (s_resolve(a->kind, p, &a->id) == 0)
			return 0;
		snprintf(why, whylen, "no %s '%.40s' on this system",
		    a->kind == ACCESS_USER ? "user" : "group", p);
		return -1;
	}
	if (strncmp(p, "key:", 4) == 0) {
		a->kind = ACCESS_KEY;
		if (strlen(p + 4) == 40 && zmq_z85_decode(a->key, p + 4) != NULL)
			return 0;
		snprintf(why, whylen, "'%.50s' is not a CURVE public key "
		    "(40 characters of Z85)", p + 4);
		return -1;
	}
	snprintf(why, whylen, "'%.40s' is not user:NAME, group:NAME or "
	    "key:Z85", p);
	return -1;
}

int
access_parse_allow(const char *value, api_allow_t *a, char *why,
    size_t whylen)
{
	char buf[256], *tok, *save = NULL;
	int rc = -1;

	memset(a, 0, sizeof(*a));
	if (strlen(value) >= sizeof(buf)) {
		snprintf(why, whylen, "value too long");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", value);
	if ((tok = strtok_r(buf, " \t", &save)) == NULL ||
	    s_principal(tok, a, why, whylen) != 0)
		goto out;
	while ((tok = strtok_r(NULL, " \t,", &save)) != NULL)
		if (s_role(tok, &a->roles) != 0) {
			snprintf(why, whylen, "unknown role '%.30s' (roles: "
			    "submit, inbox, officer, subject, admin, all)", tok);
			goto out;
		}
	if (a->roles == 0) {
		snprintf(why, whylen, "no role given (e.g. allow = %s submit "
		    "inbox)", strtok_r(buf, " ", &save));
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

/* Is gid one of the groups of uid (primary or supplementary)? */
static bool
s_in_group(uid_t uid, gid_t primary, gid_t gid)
{
	struct passwd *pw;
	gid_t groups[256];
	int n = (int)(sizeof(groups) / sizeof(groups[0])), i;

	if (primary == gid)
		return true;
	if ((pw = getpwuid(uid)) == NULL ||
	    getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return false;
	for (i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

unsigned
access_roles_for_creds(const config_t *cfg, uid_t uid, gid_t gid)
{
	unsigned roles = 0;
	size_t i;

	if (uid == geteuid())
		return API_ROLE_ALL;  /* it can read the state folder anyway */
	for (i = 0; i < cfg->n_api_allow; i++) {
		const api_allow_t *a = &cfg->api_allow[i];

		if ((a->kind == ACCESS_USER && a->id == (uint32_t)uid) ||
		    (a->kind == ACCESS_GROUP && s_in_group(uid, gid,
		    (gid_t)a->id)))
			roles |= a->roles;
	}
	return roles;
}

unsigned
access_roles_for_key(const config_t *cfg, const uint8_t key[32])
{
	unsigned roles = 0;
	size_t i;

	for (i = 0; i < cfg->n_api_allow; i++)
		if (cfg->api_allow[i].kind == ACCESS_KEY &&
		    sodium_memcmp(cfg->api_allow[i].key, key, 32) == 0)
			roles |= cfg->api_allow[i].roles;
	return roles;
}

bool
access_has_others(const config_t *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_api_allow; i++)
		if (cfg->api_allow[i].kind != ACCESS_KEY &&
		    !(cfg->api_allow[i].kind == ACCESS_USER &&
		    cfg->api_allow[i].id == (uint32_t)geteuid()))
			return true;
	return false;
}

unsigned
access_role_for_op(int op_case)
{
	switch (op_case) {
	case KP__REQUEST__OP_SEND:
	case KP__REQUEST__OP_OUTBOX:
		return API_ROLE_SUBMIT;
	case KP__REQUEST__OP_INBOX:
	case KP__REQUEST__OP_FETCH:
	case KP__REQUEST__OP_ACK:
		return API_ROLE_INBOX;
	case KP__REQUEST__OP_SUBJECT:
		return API_ROLE_SUBJECT;
	case KP__REQUEST__OP_STATUS:
	case KP__REQUEST__OP_PURGE:
		return API_ROLE_ADMIN;
	default:
		return API_ROLE_OFFICER;  /* case, cases, remind, report, ... */
	}
}

int
access_user_id(const char *identity, unsigned roles, char *out, size_t len)
{
	int n = snprintf(out, len, "%s;roles=%u", identity, roles);

	return n > 0 && (size_t)n < len ? 0 : -1;
}

int
access_parse_user_id(const char *user_id, char *identity, size_t len,
    unsigned *roles)
{
	const char *semi = user_id ? strrchr(user_id, ';') : NULL;
	char *end;
	unsigned long r;

	*roles = 0;
	if (semi == NULL || strncmp(semi, ";roles=", 7) != 0 ||
	    (size_t)(semi - user_id) >= len)
		return -1;
	r = strtoul(semi + 7, &end, 10);
	if (*end != '\0' || r > API_ROLE_ALL)
		return -1;
	memcpy(identity, user_id, (size_t)(semi - user_id));
	identity[semi - user_id] = '\0';
	*roles = (unsigned)r;
	return 0;
}
