/* Subcommand entry points: each returns a process exit code. */
#ifndef SM_CLI_H
#define SM_CLI_H

/* A serving node's invite token, in its state directory (0600). */
#define CLI_TOKEN_FILE "invite.token"

int cli_main(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_client(int argc, char **argv);
int cli_token(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_attest(int argc, char **argv);
int cli_keygen(int argc, char **argv);
int cli_posture(int argc, char **argv);
int cli_owner(int argc, char **argv);
int cli_invite(int argc, char **argv);
int cli_revoke(int argc, char **argv);

#endif
