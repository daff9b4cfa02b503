#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/buf.h"
#include "http/apikey.h"

#define HASH_LEN 32

struct apikeys {
	size_t n;
	uint8_t hkey[crypto_generichash_KEYBYTES]; /* per set, random */
	uint8_t h[]; /* n * HASH_LEN */
};

static bool
key_char(int c)
{
	return c > 0x20 && c < 0x7f;
}

static void
hash_key(
    const struct apikeys *k, const char *key, size_t len, uint8_t out[HASH_LEN])
{
	crypto_generichash(out, HASH_LEN, (const unsigned char *)key, len,
	    k->hkey, sizeof(k->hkey));
}

void
apikeys_free(struct apikeys *k)
{
	if (k != NULL)
		sodium_free(k); /* wipes */
}

size_t
apikeys_count(const struct apikeys *k)
{
	return k == NULL ? 0 : k->n;
}

/* One line without its end: NULL key when blank or a comment. */
static int
line_key(const char *s, size_t len, const char **key, size_t *klen)
{
	*key = NULL;
	*klen = 0;
	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 &&
	    (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		len--;
	if (len == 0 || *s == '#')
		return 0;
	if (len < APIKEY_MIN_LEN || len > APIKEY_MAX_LEN)
		return SM_ERR_INVAL;
	for (size_t i = 0; i < len; i++)
		if (!key_char((unsigned char)s[i]))
			return SM_ERR_INVAL;
	*key = s;
	*klen = len;
	return 0;
}

int
apikeys_parse(struct apikeys **out, const char *text, size_t len, char *why,
    size_t whylen)
{
	struct apikeys *k = NULL;
	const char *p, *end = text + len, *nl, *key;
	size_t n = 0, line, klen;
	int r;

	*out = NULL;
	if (sodium_init() < 0)
		return SM_ERR_INTERNAL;
	if (len > APIKEY_FILE_MAX) {
		snprintf(why, whylen, "larger than %d bytes", APIKEY_FILE_MAX);
		return SM_ERR_TOOBIG;
	}
	/* Pass 1 counts and checks, pass 2 hashes into the sized set. */
	for (int pass = 0; pass < 2; pass++) {
		line = 0;
		n = 0;
		for (p = text; p < end; p = nl + 1) {
			line++;
			if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
				nl = end;
			if (memchr(p, '\0', (size_t)(nl - p)) != NULL ||
			    line_key(p, (size_t)(nl - p), &key, &klen) != 0) {
				snprintf(why, whylen,
				    "line %zu: a key must be %d to %d "
				    "printable characters without spaces",
				    line, APIKEY_MIN_LEN, APIKEY_MAX_LEN);
				r = SM_ERR_INVAL;
				goto out;
			}
			if (key == NULL)
				continue;
			if (n == APIKEY_MAX_KEYS) {
				snprintf(why, whylen, "more than %d keys",
				    APIKEY_MAX_KEYS);
				r = SM_ERR_TOOBIG;
				goto out;
			}
			if (pass == 1)
				hash_key(k, key, klen, k->h + n * HASH_LEN);
			n++;
		}
		if (n == 0) {
			snprintf(why, whylen, "no key in it");
			r = SM_ERR_INVAL;
			goto out;
		}
		if (pass == 0) {
			k = sodium_malloc(sizeof(*k) + n * HASH_LEN);
			if (k == NULL) {
				snprintf(why, whylen, "out of memory");
				r = SM_ERR_NOMEM;
				goto out;
			}
			k->n = n;
			randombytes_buf(k->hkey, sizeof(k->hkey));
		}
	}
	*out = k;
	k = NULL;
	r = 0;
out:
	apikeys_free(k);
	return r;
}

int
apikeys_read(const char *path, struct buf *out, char *why, size_t whylen)
{
	char *text = NULL;
	struct stat st;
	ssize_t got;
	size_t len = 0;
	int fd = -1, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		snprintf(
		    why, whylen, "cannot open %s: %s", path, strerror(errno));
		r = errno == ENOENT ? SM_ERR_NOTFOUND : SM_ERR_IO;
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", path);
		r = SM_ERR_IO;
		goto out;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		snprintf(why, whylen,
		    "key file %s is accessible by others (mode %03o, owner "
		    "%u); refusing it — chmod 600 it",
		    path, (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid);
		r = SM_ERR_PERM;
		goto out;
	}
	if (st.st_size > APIKEY_FILE_MAX) {
		snprintf(why, whylen, "%s is larger than %d bytes", path,
		    APIKEY_FILE_MAX);
		r = SM_ERR_TOOBIG;
		goto out;
	}
	if ((text = sodium_malloc((size_t)st.st_size + 1)) == NULL) {
		r = SM_ERR_NOMEM;
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	while (len < (size_t)st.st_size) {
		got = read(fd, text + len, (size_t)st.st_size - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			snprintf(why, whylen, "cannot read %s: %s", path,
			    got < 0 ? strerror(errno) : "short read");
			r = SM_ERR_IO;
			goto out;
		}
		len += (size_t)got;
	}
	r = buf_append(out, text, len);
out:
	if (text != NULL)
		sodium_free(text); /* wipes */
	if (fd >= 0)
		close(fd);
	return r;
}

int
apikeys_load(struct apikeys **out, const char *path, char *why, size_t whylen)
{
	struct buf text;
	char sub[160];
	int r;

	*out = NULL;
	buf_init(&text, APIKEY_FILE_MAX);
	if ((r = apikeys_read(path, &text, why, whylen)) != 0)
		goto out;
	if ((r = apikeys_parse(out, (const char *)buf_data(&text), text.len,
		 sub, sizeof(sub))) != 0)
		snprintf(why, whylen, "%s: %s", path, sub);
out:
	buf_clear(&text); /* wipes */
	return r;
}

bool
apikeys_check(const struct apikeys *k, const char *key, size_t len)
{
	uint8_t h[HASH_LEN];
	unsigned ok = 0;

	if (k == NULL || len == 0 || len > APIKEY_MAX_LEN)
		return false;
	hash_key(k, key, len, h);
	/* Every stored hash is compared: no early exit. */
	for (size_t i = 0; i < k->n; i++)
		ok |= (unsigned)(1 +
		    sodium_memcmp(h, k->h + i * HASH_LEN, HASH_LEN));
	sodium_memzero(h, sizeof(h));
	return ok != 0;
}

/* The value's key with surrounding blanks removed. */
static bool
check_value(const struct apikeys *k, const char *v)
{
	size_t len;

	while (*v == ' ' || *v == '\t')
		v++;
	len = strlen(v);
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	return apikeys_check(k, v, len);
}

bool
apikeys_check_headers(
    const struct apikeys *k, const char *authorization, const char *x_api_key)
{
	bool ok = false;

	if (authorization != NULL &&
	    strncasecmp(authorization, "bearer", 6) == 0 &&
	    (authorization[6] == ' ' || authorization[6] == '\t'))
		ok = check_value(k, authorization + 7);
	if (!ok && x_api_key != NULL)
		ok = check_value(k, x_api_key);
	return ok;
}
