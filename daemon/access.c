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

const char *
access_role_name(unsigned role)
{
	return config_role_name(role);
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

unsigned
access_roles_for_cert(const config_t *cfg, const uint8_t sha256[32])
{
	unsigned roles = 0;
	size_t i;

	for (i = 0; i < cfg->n_api_allow; i++)
		if (cfg->api_allow[i].kind == ACCESS_CERT &&
		    sodium_memcmp(cfg->api_allow[i].key, sha256, 32) == 0)
			roles |= cfg->api_allow[i].roles;
	return roles;
}

bool
access_has_others(const config_t *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_api_allow; i++)
		if (cfg->api_allow[i].kind != ACCESS_KEY &&
		    cfg->api_allow[i].kind != ACCESS_CERT &&
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
