#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/config.h"

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static int
push(struct config_args *a, char *arg, char *origin)
{
	char **v, **o;

	if (arg == NULL)
		return SM_ERR_NOMEM;
	v = realloc(a->argv, (size_t)(a->argc + 2) * sizeof(*v));
	if (v == NULL)
		return SM_ERR_NOMEM;
	a->argv = v;
	o = realloc(a->origin, (size_t)(a->argc + 1) * sizeof(*o));
	if (o == NULL)
		return SM_ERR_NOMEM;
	a->origin = o;
	a->argv[a->argc] = arg;
	a->origin[a->argc] = origin;
	a->argc++;
	a->argv[a->argc] = NULL;
	return 0;
}

static const struct option *
find_opt(const struct option *opts, const char *name, size_t len)
{
	for (; opts->name != NULL; opts++)
		if (strlen(opts->name) == len &&
		    strncmp(opts->name, name, len) == 0)
			return opts;
	return NULL;
}

static bool
word_is(const char *s, size_t len, const char *const *words)
{
	for (; *words != NULL; words++)
		if (strlen(*words) == len && strncasecmp(s, *words, len) == 0)
			return true;
	return false;
}

static const char *const yes_words[] = {"true", "yes", "on", "1", NULL};
static const char *const no_words[] = {"false", "no", "off", "0", NULL};

/* One trimmed, non-empty, non-comment line. */
static int
parse_line(const char *s, size_t len, const char *path, unsigned lineno,
    const struct option *opts, const char *const *deny, const char *deny_why,
    struct config_args *out, char *err, size_t errlen)
{
	const char *eq = memchr(s, '=', len), *val = NULL;
	const struct option *o;
	size_t nlen = eq ? (size_t)(eq - s) : len, vlen = 0;
	char where[512], *arg = NULL, *origin = NULL;
	int r;

	snprintf(where, sizeof(where), "%s:%u", path, lineno);
	while (nlen > 0 && is_space(s[nlen - 1]))
		nlen--;
	for (size_t i = 0; i < nlen; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') ||
			(i > 0 && ((c >= '0' && c <= '9') || c == '-')))) {
			snprintf(err, errlen,
			    "%s: expected 'name = value' or 'name', with a "
			    "lowercase option name",
			    where);
			return SM_ERR_INVAL;
		}
	}
	if (nlen == 0) {
		snprintf(err, errlen, "%s: no option name before '='", where);
		return SM_ERR_INVAL;
	}
	if (eq != NULL) {
		val = eq + 1;
		vlen = len - (size_t)(val - s);
		while (vlen > 0 && is_space(*val)) {
			val++;
			vlen--;
		}
		if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
			val++;
			vlen -= 2;
		}
	}
	if ((o = find_opt(opts, s, nlen)) == NULL) {
		snprintf(err, errlen, "%s: unknown option '%.*s'", where,
		    (int)nlen, s);
		return SM_ERR_INVAL;
	}
	if (deny != NULL && word_is(s, nlen, deny)) {
		snprintf(err, errlen, "%s: '%s' %s", where, o->name,
		    deny_why ? deny_why : "is not allowed in a config file");
		return SM_ERR_INVAL;
	}
	if (o->has_arg == no_argument && eq != NULL) {
		if (word_is(val, vlen, no_words))
			return 0; /* a switch turned off: nothing to add */
		if (!word_is(val, vlen, yes_words)) {
			snprintf(err, errlen,
			    "%s: '%s' is a switch: write '%s' or '%s = "
			    "true'",
			    where, o->name, o->name, o->name);
			return SM_ERR_INVAL;
		}
		eq = NULL;
	}
	if (o->has_arg == required_argument && (eq == NULL || vlen == 0)) {
		snprintf(err, errlen, "%s: '%s' needs a value: '%s = VALUE'",
		    where, o->name, o->name);
		return SM_ERR_INVAL;
	}
	if (out->argc >= CONFIG_MAX_ENTRIES) {
		snprintf(err, errlen, "%s: more than %d options", where,
		    CONFIG_MAX_ENTRIES);
		return SM_ERR_TOOBIG;
	}
	if (eq != NULL &&
	    asprintf(&arg, "--%s=%.*s", o->name, (int)vlen, val) < 0)
		arg = NULL;
	else if (eq == NULL && asprintf(&arg, "--%s", o->name) < 0)
		arg = NULL;
	origin = strdup(where);
	if (arg == NULL || origin == NULL) {
		r = SM_ERR_NOMEM;
		goto out;
	}
	if ((r = push(out, arg, origin)) == 0)
		return 0;
out:
	snprintf(err, errlen, "%s: out of memory", where);
	free(arg);
	free(origin);
	return r;
}

int
config_parse(const char *text, size_t len, const char *path,
    const struct option *opts, const char *const *deny, const char *deny_why,
    struct config_args *out, char *err, size_t errlen)
{
	unsigned lineno = 0;
	size_t pos = 0;
	int r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (memchr(text, '\0', len) != NULL) {
		snprintf(
		    err, errlen, "%s: holds a NUL byte: not a text file", path);
		return SM_ERR_INVAL;
	}
	while (pos < len) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;

		pos += n + (nl != NULL);
		lineno++;
		if (n > CONFIG_MAX_LINE) {
			snprintf(err, errlen,
			    "%s:%u: line longer than %d bytes", path, lineno,
			    CONFIG_MAX_LINE);
			return SM_ERR_TOOBIG;
		}
		while (n > 0 && is_space(*s)) {
			s++;
			n--;
		}
		while (n > 0 && is_space(s[n - 1]))
			n--;
		if (n == 0 || s[0] == '#')
			continue;
		if ((r = parse_line(s, n, path, lineno, opts, deny, deny_why,
			 out, err, errlen)) != 0)
			return r;
	}
	return 0;
}

/* Read the whole file into a NUL-terminated buffer. */
static int
read_file(const char *path, char **text, size_t *len, struct stat *st,
    char *err, size_t errlen)
{
	char *b = NULL;
	size_t n = 0;
	ssize_t k;
	int fd, r = 0;

	*text = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(
		    err, errlen, "config file %s: %s", path, strerror(errno));
		return SM_ERR_IO;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "config file %s: %s", path,
		    errno ? strerror(errno) : "not a regular file");
		r = SM_ERR_IO;
		goto out;
	}
	if (st->st_size > CONFIG_MAX_BYTES) {
		snprintf(err, errlen, "config file %s: larger than %d bytes",
		    path, CONFIG_MAX_BYTES);
		r = SM_ERR_TOOBIG;
		goto out;
	}
	if ((b = malloc((size_t)st->st_size + 1)) == NULL) {
		r = SM_ERR_NOMEM;
		goto out;
	}
	while (n < (size_t)st->st_size &&
	    (k = read(fd, b + n, (size_t)st->st_size - n)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			snprintf(err, errlen, "config file %s: %s", path,
			    strerror(errno));
			r = SM_ERR_IO;
			goto out;
		}
		n += (size_t)k;
	}
	b[n] = '\0';
	*text = b;
	*len = n;
	b = NULL;
out:
	free(b);
	close(fd);
	return r;
}

int
config_expand(int argc, char **argv, const struct option *opts,
    struct config_args *out, char *err, size_t errlen)
{
	/* Acted on before any file is read (harden_early), or meaningless. */
	static const char *const deny[] = {
	    "config", "help", "strict-env", NULL};
	const char *path = NULL;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int r, i;

	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *p = NULL;

		if (strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "--config needs a FILE");
				return SM_ERR_INVAL;
			}
			p = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			p = argv[i] + 9;
		}
		if (p == NULL)
			continue;
		if (path != NULL) {
			snprintf(err, errlen, "--config given twice");
			return SM_ERR_INVAL;
		}
		path = p;
	}
	if ((r = push(out, strdup(argv[0]), NULL)) != 0)
		goto out;
	if (path != NULL) {
		if ((r = read_file(path, &text, &len, &st, err, errlen)) != 0)
			goto out;
		r = config_parse(text, len, path, opts, deny,
		    "must be given on the command line", out, err, errlen);
		if (r != 0)
			goto out;
		/* An invite token is a secret: like a key file, 0600. */
		for (i = 1; i < out->argc; i++)
			if (strncmp(out->argv[i], "--join=", 7) == 0 &&
			    (st.st_mode & 077) != 0) {
				snprintf(err, errlen,
				    "%s: holds an invite token (a secret) "
				    "but group or others can read it (mode "
				    "%03o); refusing it — chmod 600 it",
				    out->origin[i],
				    (unsigned)(st.st_mode & 0777));
				r = SM_ERR_PERM;
				goto out;
			}
	}
	for (i = 1; i < argc; i++)
		if ((r = push(out, strdup(argv[i]), NULL)) != 0)
			goto out;
out:
	if (text != NULL) {
		/* it may hold an invite token */
		sodium_memzero(text, len);
		free(text);
	}
	if (r == SM_ERR_NOMEM && err[0] == '\0')
		snprintf(err, errlen, "out of memory");
	if (r != 0)
		config_args_clear(out);
	return r;
}

void
config_args_clear(struct config_args *a)
{
	for (int i = 0; i < a->argc; i++) {
		free(a->argv[i]);
		free(a->origin[i]);
	}
	free(a->argv);
	free(a->origin);
	memset(a, 0, sizeof(*a));
}
