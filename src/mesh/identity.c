#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/log.h"
#include "core/util.h"
#include "mesh/identity.h"

static int
key_path(char *out, size_t len, const char *dir)
{
	int n = snprintf(out, len, "%s/%s", dir, ID_KEY_FILE);

	return n < 0 || (size_t)n >= len ? SM_ERR_TOOBIG : 0;
}

/* Make 'dir' 0700 if missing; refuse an existing one others can access. */
static int
ensure_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_error(
		    "cannot create state dir %s: %s", dir, strerror(errno));
		return SM_ERR_IO;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		log_error("state dir %s is not a directory", dir);
		return SM_ERR_IO;
	}
	/* Root's signer shares the dir with its worker's user (--user): the
	 * key files inside stay root's and are checked one by one. */
	if ((st.st_uid != geteuid() && geteuid() != 0) ||
	    (st.st_mode & 077) != 0) {
		log_error(
		    "state dir %s must be owned by this user with mode 0700 "
		    "(it is %03o)",
		    dir, (unsigned)(st.st_mode & 0777));
		return SM_ERR_PERM;
	}
	return 0;
}

int
identity_create(struct identity *id, const char *state_dir, bool overwrite)
{
	uint8_t seed[ID_SEED_LEN];
	char path[4096];
	int fd = -1, r;

	memset(id, 0, sizeof(*id));
	if ((r = ensure_dir(state_dir)) != 0 ||
	    (r = key_path(path, sizeof(path), state_dir)) != 0)
		goto out;
	if (overwrite)
		unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) <
	    0) {
		log_error("cannot create %s: %s", path, strerror(errno));
		r = errno == EEXIST ? SM_ERR_INVAL : SM_ERR_IO;
		goto out;
	}
	randombytes_buf(seed, sizeof(seed));
	if (write(fd, seed, sizeof(seed)) != (ssize_t)sizeof(seed) ||
	    fsync(fd) != 0) {
		log_error("cannot write %s: %s", path, strerror(errno));
		unlink(path);
		r = SM_ERR_IO;
		goto out;
	}
	r = identity_from_seed(id, seed);
out:
	if (fd >= 0)
		close(fd);
	sodium_memzero(seed, sizeof(seed));
	return r;
}

int
identity_load(struct identity *id, const char *state_dir, bool create)
{
	uint8_t seed[ID_SEED_LEN];
	char path[4096];
	struct stat st;
	ssize_t n;
	int fd = -1, r;

	memset(id, 0, sizeof(*id));
	if ((r = key_path(path, sizeof(path), state_dir)) != 0)
		goto out;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT && create)
			return identity_create(id, state_dir, false);
		log_error("cannot open %s: %s", path, strerror(errno));
		r = errno == ENOENT ? SM_ERR_NOTFOUND : SM_ERR_IO;
		goto out;
	}
	if ((r = ensure_dir(state_dir)) != 0)
		goto out;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		log_error("key file %s: %s", path,
		    fstat(fd, &st) != 0 ? strerror(errno)
					: "not a regular file");
		r = SM_ERR_IO;
		goto out;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		log_error("key file %s is accessible by others (mode %03o); "
			  "refusing it — chmod 600 it",
		    path, (unsigned)(st.st_mode & 0777));
		r = SM_ERR_PERM;
		goto out;
	}
	if ((n = read(fd, seed, sizeof(seed))) != (ssize_t)sizeof(seed) ||
	    st.st_size != (off_t)sizeof(seed)) {
		log_error("key file %s is malformed", path);
		r = SM_ERR_INVAL;
		goto out;
	}
	r = identity_from_seed(id, seed);
out:
	if (fd >= 0)
		close(fd);
	sodium_memzero(seed, sizeof(seed));
	return r;
}

int
identity_default_dir(char *out, size_t len)
{
	const char *home = getenv("HOME");
	int n;

	if (home == NULL || *home == '\0')
		return SM_ERR_NOTFOUND;
	n = snprintf(out, len, "%s/.sealmesh", home);
	return n < 0 || (size_t)n >= len ? SM_ERR_TOOBIG : 0;
}
