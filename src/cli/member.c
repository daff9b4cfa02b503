/*
 * Membership commands, offline from the state dir (no console API):
 *   sealmesh owner init|show [--state-dir DIR]
 *   sealmesh invite [--state-dir DIR] [--rights R] [--expires D]
 *                   [--single-use] [--address HOST:PORT]...
 *   sealmesh revoke NODE_ID [--state-dir DIR]
 * See doc/PROTOCOL.md, "Membership".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/util.h"
#include "mesh/member.h"
#include "mesh/node.h"
#include "mesh/roster.h"

#define MAX_EXPIRES_S (30ull * 86400)

static int
state_dir(const char *given, char *out, size_t len)
{
	if (given != NULL) {
		snprintf(out, len, "%s", given);
		return 0;
	}
	return identity_default_dir(out, len);
}

static int
load_owner(const char *dir, struct identity *owner, const char *cmd)
{
	char odir[4200];
	int r;

	snprintf(odir, sizeof(odir), "%s/%s", dir, ROSTER_OWNER_DIR);
	if ((r = identity_load(owner, odir, false)) != 0)
		fprintf(stderr,
		    "sealmesh %s: no usable owner key in %s (%s); "
		    "`sealmesh owner init` creates one\n",
		    cmd, odir, sm_strerror(r));
	return r;
}

/* Read DIR/mesh.secret (exactly 32 bytes, 0600), or create it. */
static int
mesh_secret(const char *dir, uint8_t out[TOKEN_SECRET_LEN], bool create)
{
	char path[4200];
	struct stat st;
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, MESH_SECRET_FILE);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0 ||
		    (st.st_uid != geteuid() && geteuid() != 0)) {
			fprintf(stderr, "%s is accessible by others\n", path);
			r = SM_ERR_PERM;
		} else if (read(fd, out, TOKEN_SECRET_LEN) !=
		    TOKEN_SECRET_LEN) {
			fprintf(stderr, "%s is malformed\n", path);
			r = SM_ERR_INVAL;
		}
		close(fd);
		return r;
	}
	if (!create) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return SM_ERR_IO;
	}
	randombytes_buf(out, TOKEN_SECRET_LEN);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) <
		0 ||
	    write(fd, out, TOKEN_SECRET_LEN) != TOKEN_SECRET_LEN) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		r = SM_ERR_IO;
	}
	if (fd >= 0)
		close(fd);
	return r;
}

static void
print_owner(const struct identity *owner)
{
	uint8_t mid[TOKEN_MESH_ID_LEN];
	char hex[TOKEN_MESH_ID_LEN * 2 + 1];

	member_mesh_id(owner->pk, mid);
	sm_hex(hex, mid, sizeof(mid));
	printf("owner %s\nmesh_id %s\n", owner->id_hex, hex);
}

static int
owner_usage(FILE *f)
{
	fprintf(f,
	    "usage: sealmesh owner init|show [--state-dir DIR]\n\n"
	    "init creates the owner key of a new owned mesh in "
	    "DIR/owner/identity.key\n"
	    "(0600; default DIR ~/.sealmesh) and the mesh's join secret. A "
	    "node started\n"
	    "with this state dir runs the owned mesh: only nodes holding a "
	    "credential\n"
	    "signed by this key (see sealmesh invite) can link to it. "
	    "Co-owners: copy\n"
	    "DIR/owner/ and DIR/mesh.secret to their state dir (0700/0600).\n"
	    "show prints the owner key and the mesh id.\n");
	return f == stdout ? 0 : 2;
}

int
cli_owner(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *given = NULL, *verb;
	char dir[4096], odir[4200];
	uint8_t secret[TOKEN_SECRET_LEN];
	struct identity owner;
	int c, r;

	if (argc < 2 || argv[1][0] == '-')
		return owner_usage(argc >= 2 && strcmp(argv[1], "--help") == 0
			? stdout
			: stderr);
	verb = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'd')
			given = optarg;
		else
			return owner_usage(c == 'h' ? stdout : stderr);
	}
	if (state_dir(given, dir, sizeof(dir)) != 0)
		return owner_usage(stderr);
	if (strcmp(verb, "show") == 0) {
		if (load_owner(dir, &owner, "owner") != 0)
			return 1;
		print_owner(&owner);
		identity_clear(&owner);
		return 0;
	}
	if (strcmp(verb, "init") != 0)
		return owner_usage(stderr);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "sealmesh owner: cannot create %s: %s\n", dir,
		    strerror(errno));
		return 1;
	}
	snprintf(odir, sizeof(odir), "%s/%s", dir, ROSTER_OWNER_DIR);
	if ((r = identity_create(&owner, odir, false)) != 0) {
		fprintf(stderr, "sealmesh owner: %s/%s: %s%s\n", odir,
		    ID_KEY_FILE, sm_strerror(r),
		    r == SM_ERR_INVAL ? " (an owner key exists)" : "");
		return 1;
	}
	r = mesh_secret(dir, secret, true);
	sodium_memzero(secret, sizeof(secret));
	if (r != 0) {
		identity_clear(&owner);
		return 1;
	}
	print_owner(&owner);
	identity_clear(&owner);
	return 0;
}

/* "90", "90s", "15m", "1h", "7d" -> seconds. */
static int
parse_duration(const char *s, uint64_t *out)
{
	char num[24];
	size_t n = strlen(s);
	uint64_t mul = 1, v;

	if (n == 0 || n >= sizeof(num))
		return SM_ERR_INVAL;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 's':
		num[--n] = '\0';
		break;
	case 'm':
		mul = 60;
		num[--n] = '\0';
		break;
	case 'h':
		mul = 3600;
		num[--n] = '\0';
		break;
	case 'd':
		mul = 86400;
		num[--n] = '\0';
		break;
	}
	if (sm_parse_u64(num, 1, MAX_EXPIRES_S, &v) != 0 ||
	    v * mul > MAX_EXPIRES_S)
		return SM_ERR_INVAL;
	*out = v * mul;
	return 0;
}

static int
invite_usage(FILE *f)
{
	fprintf(f,
	    "usage: sealmesh invite [--state-dir DIR] [--rights R] "
	    "[--expires D]\n"
	    "                       [--single-use] [--address HOST:PORT]...\n\n"
	    "Print an invite to the owned mesh of DIR (default ~/.sealmesh), "
	    "signed by\n"
	    "its owner key. The invited node joins with `sealmesh serve "
	    "--join INVITE`\n"
	    "and redeems it at this node for its membership credential.\n"
	    "  --rights R       comma list of host, relay, use (default use; "
	    "use is\n"
	    "                   always granted): host = its models are routed "
	    "to,\n"
	    "                   relay = it may forward streams for others\n"
	    "  --expires D      redeemable for D (90s, 15m, 1h, 7d; default "
	    "1h, max 30d)\n"
	    "  --single-use     this node redeems it once only\n"
	    "  --address A      address to reach this node (default: "
	    "DIR/mesh.addrs,\n"
	    "                   written by the running node)\n"
	    "The invite holds the mesh's join secret: share it like a "
	    "password.\n");
	return f == stdout ? 0 : 2;
}

static int
addrs_from_file(const char *dir, struct member_invite *inv)
{
	char path[4200], line[TOKEN_ADDR_MAX + 2];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, ROSTER_ADDRS_FILE);
	if ((f = fopen(path, "re")) == NULL) {
		fprintf(stderr,
		    "sealmesh invite: cannot read %s (%s): start the node "
		    "once, or give --address\n",
		    path, strerror(errno));
		return SM_ERR_IO;
	}
	while (inv->n_addrs < TOKEN_MAX_ADDRS &&
	    fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (token_addr_check(line, strlen(line)) != 0)
			continue;
		memcpy(inv->addrs[inv->n_addrs++], line, strlen(line) + 1);
	}
	fclose(f);
	return 0;
}

int
cli_invite(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"rights", required_argument, NULL, 'r'},
	    {"expires", required_argument, NULL, 'e'},
	    {"single-use", no_argument, NULL, 's'},
	    {"address", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static struct member_invite inv;
	static char text[MEMBER_INVITE_STR_MAX];
	const char *given = NULL;
	char dir[4096];
	struct identity owner, node;
	uint64_t ttl = 3600;
	int c, r, rc = 1;

	memset(&inv, 0, sizeof(inv));
	inv.rights = MEMBER_RIGHT_USE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			given = optarg;
			break;
		case 'r':
			if (member_rights_parse(optarg, &inv.rights) != 0) {
				fprintf(stderr,
				    "sealmesh invite: bad --rights '%s' "
				    "(host, relay, use)\n",
				    optarg);
				return 2;
			}
			break;
		case 'e':
			if (parse_duration(optarg, &ttl) != 0) {
				fprintf(stderr,
				    "sealmesh invite: bad --expires '%s'\n",
				    optarg);
				return 2;
			}
			break;
		case 's':
			inv.flags |= MEMBER_FLAG_SINGLE_USE;
			break;
		case 'a':
			if (inv.n_addrs == TOKEN_MAX_ADDRS ||
			    token_addr_check(optarg, strlen(optarg)) != 0) {
				fprintf(stderr,
				    "sealmesh invite: bad --address '%s'\n",
				    optarg);
				return 2;
			}
			snprintf(inv.addrs[inv.n_addrs++], TOKEN_ADDR_MAX + 1,
			    "%s", optarg);
			break;
		default:
			return invite_usage(c == 'h' ? stdout : stderr);
		}
	}
	if (optind < argc || state_dir(given, dir, sizeof(dir)) != 0)
		return invite_usage(stderr);
	if (load_owner(dir, &owner, "invite") != 0)
		return 1;
	if ((r = identity_load(&node, dir, false)) != 0) {
		fprintf(stderr, "sealmesh invite: no node identity in %s: %s\n",
		    dir, sm_strerror(r));
		identity_clear(&owner);
		return 1;
	}
	if (mesh_secret(dir, inv.join_secret, false) != 0 ||
	    (inv.n_addrs == 0 && addrs_from_file(dir, &inv) != 0))
		goto out;
	memcpy(inv.node_id, node.pk, ID_PK_LEN);
	randombytes_buf(inv.id, sizeof(inv.id));
	inv.expires = sm_wall_s() + ttl;
	if ((r = member_invite_write(&inv, &owner, text, sizeof(text))) != 0) {
		fprintf(stderr, "sealmesh invite: %s\n", sm_strerror(r));
		goto out;
	}
	printf("%s\n", text);
	rc = 0;
out:
	sodium_memzero(text, sizeof(text));
	member_invite_clear(&inv);
	identity_clear(&owner);
	identity_clear(&node);
	return rc;
}

int
cli_revoke(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *given = NULL;
	char dir[4096], path[4200];
	uint8_t rec[MEMBER_REV_LEN];
	struct member_rev rv;
	struct identity owner;
	struct stat dst;
	int c, fd, rc = 1;

	memset(&rv, 0, sizeof(rv));
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'd') {
			given = optarg;
			continue;
		}
		fprintf(c == 'h' ? stdout : stderr,
		    "usage: sealmesh revoke NODE_ID [--state-dir DIR]\n\n"
		    "Revoke a member of the owned mesh of DIR for good: the "
		    "owner-signed\n"
		    "revocation goes to DIR/revocations; the running node "
		    "picks it up at its\n"
		    "next gossip interval and every node enforces it from "
		    "then on.\n");
		return c == 'h' ? 0 : 2;
	}
	if (optind != argc - 1 ||
	    sm_unhex(rv.node_id, ID_PK_LEN, argv[optind]) != 0) {
		fprintf(stderr,
		    "sealmesh revoke: NODE_ID is the 64 hex digits of a node "
		    "id\n");
		return 2;
	}
	if (state_dir(given, dir, sizeof(dir)) != 0)
		return 2;
	if (load_owner(dir, &owner, "revoke") != 0)
		return 1;
	if (memcmp(rv.node_id, owner.pk, ID_PK_LEN) == 0) {
		fprintf(stderr, "sealmesh revoke: that is the owner key\n");
		goto out;
	}
	rv.issued = sm_wall_s();
	if (member_rev_write(&rv, &owner, rec) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/%s", dir, ROSTER_REV_FILE);
	/* One O_APPEND write of one record: the node reads whole records.
	 * Root writing for a running node: the file goes to the state dir's
	 * owner, the node's worker user under privilege separation. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) <
		0 ||
	    (geteuid() == 0 && stat(dir, &dst) == 0 &&
		fchown(fd, dst.st_uid, dst.st_gid) != 0) ||
	    write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec)) {
		fprintf(stderr, "sealmesh revoke: cannot write %s: %s\n", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	printf("revoked %s\n", argv[optind]);
	rc = 0;
out:
	identity_clear(&owner);
	return rc;
}
