/*
 * postmark.c — the `postmark` program: a dispatcher over the subcommands
 * (tools/commands.h). The command-line contract is ../shared/spec/cli.md.
 */
#include "commands.h"
#include "cliutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"pack", pm_cmd_pack, "validate a transaction stream and append blocks to a chain"},
    {"replay", pm_cmd_replay, "verify a chain file from height 0"},
    {"snapshot", pm_cmd_snapshot, "verify a chain and save its state, to restart from"},
    {"serve", pm_cmd_serve, "validate transactions submitted over HTTP (a daemon)"},
    {"cluster", pm_cmd_cluster, "a consortium ledger on NATS JetStream: init, status, export"},
    {"submit", pm_cmd_submit, "publish a stream's records to a cluster's stream (bulk)"},
    {"inspect", pm_cmd_inspect, "decode a stream or chain record by record"},
    {"trace", pm_cmd_trace, "the provenance of one stamp"},
    {"holdings", pm_cmd_holdings, "the stamps and credits one key owns"},
    {"gen", pm_cmd_gen, "generate a synthetic stamp-market stream"},
    {"demo", pm_cmd_demo, "run the whole job on a built-in demo market"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: postmark COMMAND [ARGS]   (postmark COMMAND --help for details)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
}

/* No restart with a larger static TLS reserve for jemalloc's dlopen (as
 * version 1 did): the UTXO table falls back to malloc when jemalloc cannot
 * be loaded, and the full-size benchmark measured no difference worth a
 * process-wide re-exec (20.6M UTXOs: 1.25k tx/s and 2979 MiB peak with
 * the jemalloc arena, 1.23k tx/s and 2966 MiB with malloc;
 * docs/bench/results.md). */

/* Data went to stdout: a full disk or a closed descriptor there is a
 * failed run, not a success with the output lost. */
static int finish_output(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        pm_cli_error(NULL, "cannot write the output (standard output): %s", strerror(errno ? errno : EIO));
        return rc == PM_EXIT_OK ? PM_EXIT_INVALID : rc;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return PM_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return PM_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return finish_output(commands[i].run(argc - 1, argv + 1));
    pm_cli_error(NULL, "unknown command '%s'", argv[1]);
    usage(stderr);
    return PM_EXIT_USAGE;
}
