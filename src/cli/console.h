/* Reading a running node's console (/api/status) from the CLI. */
#ifndef SM_CLI_CONSOLE_H
#define SM_CLI_CONSOLE_H

#include <stdbool.h>

#include <cJSON.h>

/* GET http://127.0.0.1:port/api/status; *out is the parsed JSON (caller
 * deletes). Returns 0 or SM_ERR_* with a message on stderr. */
int console_status(int port, cJSON **out);
/* Any console call (with "Authorization: Bearer $SEALMESH_API_KEY" when
 * that variable is set, for a node with --api-key-file); '*status' gets the
 * HTTP status, '*out' the JSON body (also for an error answer). Returns 0 only
 * for a 2xx answer. */
int console_call(
    int port, const char *method, const char *path, int *status, cJSON **out);
/* Parse "--console N" style options shared by token and status. */
int
console_port_arg(int argc, char **argv, const char *cmd, int *port, bool *json);

#endif
