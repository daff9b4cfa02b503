/* Reading a running node's console (/api/status) from the CLI. */
#ifndef SM_CLI_CONSOLE_H
#define SM_CLI_CONSOLE_H

#include <stdbool.h>

#include <cJSON.h>

/* GET http://127.0.0.1:port/api/status; *out is the parsed JSON (caller
 * deletes). Returns 0 or SM_ERR_* with a message on stderr. */
int console_status(int port, cJSON **out);
/* Parse "--console N" style options shared by token and status. */
int
console_port_arg(int argc, char **argv, const char *cmd, int *port, bool *json);

#endif
