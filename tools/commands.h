/*
 * commands.h — the subcommands of the `postmark` program. Each takes the
 * arguments after its name (argv[0] is the subcommand name) and returns the
 * exit status of ../shared/spec/cli.md: 0 success, 1 invalid input or a
 * failed run, 2 usage error.
 */
#ifndef PM_TOOLS_COMMANDS_H
#define PM_TOOLS_COMMANDS_H

int pm_cmd_pack(int argc, char **argv);
int pm_cmd_replay(int argc, char **argv);
int pm_cmd_inspect(int argc, char **argv);
int pm_cmd_trace(int argc, char **argv);
int pm_cmd_holdings(int argc, char **argv);
int pm_cmd_gen(int argc, char **argv);
int pm_cmd_demo(int argc, char **argv);
int pm_cmd_snapshot(int argc, char **argv);
int pm_cmd_serve(int argc, char **argv);
int pm_cmd_cluster(int argc, char **argv);
int pm_cmd_submit(int argc, char **argv);

#endif
