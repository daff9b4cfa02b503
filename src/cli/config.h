/*
 * Config files for `serve` and `client`: one option per line, named as the
 * long flag without its dashes.
 *
 *   # comment (a line whose first non-blank character is '#')
 *   port = 9337          ->  --port=9337
 *   no-relay             ->  --no-relay        (a switch)
 *   no-relay = true      ->  --no-relay        (true/yes/on; false/no/off:
 * omitted) join = TOKEN         ->  --join=TOKEN      (repeatable flags: repeat
 * the line)
 *
 * The file becomes argv entries placed before the command line's, so a flag
 * given on the command line overrides the file's value, and repeatable flags
 * add up (file first). Every name is checked against the command's getopt
 * table, so flags added to that table work in the file with no other change.
 */
#ifndef SM_CLI_CONFIG_H
#define SM_CLI_CONFIG_H

#include <getopt.h>
#include <stddef.h>

#include "core/err.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define CONFIG_MAX_ENTRIES 512
#define CONFIG_MAX_LINE 8192

/* The expanded argument vector. origin[i] names where argv[i] came from:
 * "FILE:LINE" for entries read from a file, NULL for the command line. */
struct config_args {
	int argc;
	char **argv; /* argc entries + NULL */
	char **origin; /* argc entries */
};

/*
 * Parse config text (no I/O). Appends "--name[=value]" entries to 'out'
 * (which starts zeroed or from earlier calls). 'path' only names the file in
 * messages. 'opts' is the getopt_long table the entries must match exactly
 * (no abbreviations); names in 'deny' (NULL-terminated, may be NULL) are
 * refused with the reason in 'deny_why'. On error: a negative SM_ERR_*, and
 * 'err' holds "PATH:LINE: what". NUL bytes, lines over CONFIG_MAX_LINE and
 * more than CONFIG_MAX_ENTRIES entries are errors.
 */
int config_parse(const char *text, size_t len, const char *path,
    const struct option *opts, const char *const *deny, const char *deny_why,
    struct config_args *out, char *err, size_t errlen) SM_MUST_CHECK;

/*
 * Expand "--config FILE" (or "--config=FILE") in argv[1..]: argv[0], then
 * FILE's entries, then argv[1..] unchanged (the --config flag stays; the
 * command treats it as a no-op). Without --config, 'out' is argv as is. The
 * file must be a regular file of at most CONFIG_MAX_BYTES; a file that holds
 * a "join" line (an invite token: a secret) must not be readable by group or
 * others. On error 'err' names the path and the OS error or PATH:LINE.
 */
int config_expand(int argc, char **argv, const struct option *opts,
    struct config_args *out, char *err, size_t errlen) SM_MUST_CHECK;

/* Free what config_parse/config_expand allocated. */
void config_args_clear(struct config_args *a);

#endif
