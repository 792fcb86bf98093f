/*
 * cmd_serve.c — `postmark serve --chain CHAIN [options]` (serve.md): the
 * front door of the service in tools/serve/. It parses the options and
 * runs the service until SIGINT/SIGTERM.
 */
#include "cliutil.h"
#include "commands.h"
#include "serve/serve.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char serve_usage[] =
    "usage: postmark serve --chain CHAIN.pmbk [--init STREAM.pmtx] [--listen HOST:PORT]\n"
    "                      [--journal FILE.pmtx] [--threads N] [--block-txs N]\n"
    "                      [--block-interval MS] [--token-file FILE] [--max-body BYTES]\n"
    "                      [--max-connections N] [--timeout S] [--request-timeout S]\n"
    "                      [--from-snapshot STATE] [--save-snapshot STATE --snapshot-every N]\n"
    "                      [--tls-cert F --tls-key F]\n"
    "                      [--nats URLS --stream NAME --node NAME]\n"
    "                      [--quiet]\n"
    "\n"
    "Keep the engine in memory and validate the transactions submitted over HTTP as\n"
    "`pack` validates a stream: each gets the next index of a journal (a stream file,\n"
    "synced before the answer), and `postmark pack JOURNAL --chain X` rebuilds the\n"
    "chain. On start the chain is validated and the journal's records after its tip\n"
    "are validated again (a crash loses nothing that was answered).\n"
    "  --chain CHAIN        the chain; it must exist unless --init is given\n"
    "  --init STREAM        a missing or empty CHAIN gets its header from STREAM's;\n"
    "                       an existing one must agree with it (bytes 8..59)\n"
    "  --listen HOST:PORT   default 127.0.0.1:8750; port 0 picks a free one; the\n"
    "                       address is printed as \"listening on HOST:PORT\" on stderr.\n"
    "                       A non-loopback address needs --token-file\n"
    "  --journal FILE       default CHAIN.journal.pmtx (FILE.blocks and\n"
    "                       FILE.rejects.csv beside it)\n"
    "  --threads N          signature workers (default: online CPUs)\n"
    "  --block-txs N        block transaction limit, 1..65536 (default 4096)\n"
    "  --block-interval MS  also close the open block when it is MS milliseconds old\n"
    "  --token-file FILE    every POST needs \"Authorization: Bearer TOKEN\" (the file's\n"
    "                       first line)\n"
    "  --max-body BYTES     request body limit (default 16777216): 413 above it\n"
    "  --max-connections N  simultaneous connections (default 128)\n"
    "  --timeout S          idle connection timeout in seconds (default 30)\n"
    "  --from-snapshot STATE  start from a snapshot's state (`postmark snapshot`, or\n"
    "                       --save-snapshot); CHAIN must hold its tip\n"
    "  --save-snapshot STATE --snapshot-every N\n"
    "                       save the state every N blocks (durably), to restart from\n"
    "  --request-timeout S  a request's whole time, from its first line to its last\n"
    "                       body byte, in seconds (default 60): a client trickling\n"
    "                       bytes is answered 408 and dropped\n"
    "  --tls-cert F --tls-key F  serve HTTPS with this certificate and key (PEM)\n"
    "  --nats URLS --stream NAME --node NAME\n"
    "                       a cluster node (docs/cluster.md): pack the NATS JetStream\n"
    "                       stream NAME instead of a journal of its own; POST /v1/tx\n"
    "                       publishes and answers once packed here (with \"seq\"); blocks\n"
    "                       close when full or at a cut in the stream (POST /v1/flush\n"
    "                       and --block-interval publish one); SIGTERM drops the open\n"
    "                       block (a restart reads it again from the stream)\n"
    "  --quiet              no progress or summary on stderr\n"
    "Endpoints: POST /v1/tx, /v1/txs, /v1/flush; GET /v1/tip, /v1/tx/TXID,\n"
    "/v1/block/H, /v1/blocks?from=H (SSE), /v1/stamp/OP:SERIES:SERIAL, /metrics.\n"
    "SIGINT/SIGTERM: stop accepting, answer what is in flight, close and sync the\n"
    "open block, exit 0.\n"
    "Exit status: 0 stopped by a signal, 1 bad chain or journal, I/O failure,\n"
    "2 usage error.\n";

/* A whole file as a string (a PEM certificate or key); NULL with a message. */
static char *read_text(const char *option, const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t size = 0;
    FILE *out = f ? open_memstream(&text, &size) : NULL;
    int c;
    while (out && (c = fgetc(f)) != EOF)
        fputc(c, out);
    int ok = f && out && !ferror(f) && fclose(out) == 0 && size > 0;
    if (f)
        fclose(f);
    if (!ok) {
        pm_cli_error("serve", "%s %s: %s", option, path, f ? "empty or unreadable" : strerror(errno));
        free(text);
        return NULL;
    }
    return text;
}

/* The token: the file's first line, without surrounding blanks. */
static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        pm_cli_error("serve", "--token-file %s: %s", path, strerror(errno));
        return NULL;
    }
    char line[1024];
    char *tok = NULL;
    if (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        while (isspace((unsigned char)*p))
            p++;
        end = p + strlen(p);
        while (end > p && isspace((unsigned char)end[-1]))
            *--end = 0;
        if (*p)
            tok = strdup(p);
    }
    fclose(f);
    if (!tok)
        pm_cli_error("serve", "--token-file %s: no token in its first line", path);
    return tok;
}

int pm_cmd_serve(int argc, char **argv)
{
    static const struct option options[] = {
        {"chain", required_argument, NULL, 'c'},
        {"init", required_argument, NULL, 'I'},
        {"listen", required_argument, NULL, 'l'},
        {"journal", required_argument, NULL, 'J'},
        {"threads", required_argument, NULL, 't'},
        {"block-txs", required_argument, NULL, 'b'},
        {"block-interval", required_argument, NULL, 'i'},
        {"token-file", required_argument, NULL, 'T'},
        {"max-body", required_argument, NULL, 'm'},
        {"max-connections", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 'o'},
        {"request-timeout", required_argument, NULL, 'r'},
        {"from-snapshot", required_argument, NULL, 'f'},
        {"save-snapshot", required_argument, NULL, 's'},
        {"snapshot-every", required_argument, NULL, 'e'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"quiet", no_argument, NULL, 'q'},
        {"nats", required_argument, NULL, 'N'},
        {"stream", required_argument, NULL, 'S'},
        {"node", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    serve_opts o = {.listen = "127.0.0.1:8750", .block_txs = PM_DEFAULT_BLOCK_TXS,
                    .max_body = 16u << 20, .max_connections = 128, .timeout_s = 30,
                    .request_timeout_s = 60};
    const char *token_file = NULL, *cert_file = NULL, *key_file = NULL;
    uint64_t v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c': o.chain_path = optarg; break;
        case 'I': o.init_path = optarg; break;
        case 'l': o.listen = optarg; break;
        case 'J': o.journal_path = optarg; break;
        case 'T': token_file = optarg; break;
        case 'C': cert_file = optarg; break;
        case 'K': key_file = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'N': o.nats = optarg; break;
        case 'S': o.stream = optarg; break;
        case 'D': o.node = optarg; break;
        case 'f': o.from_snapshot = optarg; break;
        case 's': o.save_snapshot = optarg; break;
        case 't':
        case 'b':
        case 'i':
        case 'm':
        case 'n':
        case 'o':
        case 'r':
        case 'e': {
            static const struct {
                int opt;
                const char *name;
                uint64_t min, max;
            } ranges[] = {
                {'t', "--threads", 1, 1024},
                {'b', "--block-txs", 1, PM_BLOCK_MAX_TXS},
                {'i', "--block-interval", 1, 86400000},
                {'m', "--max-body", 1024, 1u << 30},
                {'n', "--max-connections", 1, 65536},
                {'o', "--timeout", 1, 86400},
                {'r', "--request-timeout", 1, 86400},
                {'e', "--snapshot-every", 1, UINT32_MAX},
            };
            size_t k = 0;
            while (ranges[k].opt != c)
                k++;
            if (!pm_cli_parse_u64(optarg, ranges[k].min, ranges[k].max, &v)) {
                pm_cli_error("serve", "%s: expected %llu..%llu, got '%s'", ranges[k].name,
                             (unsigned long long)ranges[k].min, (unsigned long long)ranges[k].max,
                             optarg);
                return PM_EXIT_USAGE;
            }
            if (c == 't') o.threads = (unsigned)v;
            if (c == 'b') o.block_txs = (uint32_t)v;
            if (c == 'i') o.interval_ms = v;
            if (c == 'm') o.max_body = (size_t)v;
            if (c == 'n') o.max_connections = (unsigned)v;
            if (c == 'o') o.timeout_s = (unsigned)v;
            if (c == 'r') o.request_timeout_s = (unsigned)v;
            if (c == 'e') o.snapshot_every = v;
            break;
        }
        case 'h': fputs(serve_usage, stdout); return PM_EXIT_OK;
        default:
            pm_cli_error("serve", "unknown option or missing argument: %s", argv[optind - 1]);
            fputs(serve_usage, stderr);
            return PM_EXIT_USAGE;
        }
    }
    if (optind != argc || !o.chain_path) {
        pm_cli_error("serve", "expected --chain CHAIN and no other argument");
        fputs(serve_usage, stderr);
        return PM_EXIT_USAGE;
    }
    if ((o.save_snapshot != NULL) != (o.snapshot_every != 0)) {
        pm_cli_error("serve", "--save-snapshot and --snapshot-every go together");
        return PM_EXIT_USAGE;
    }
    if ((o.nats != NULL) != (o.stream != NULL) || (o.nats != NULL) != (o.node != NULL)) {
        pm_cli_error("serve", "--nats, --stream and --node go together");
        return PM_EXIT_USAGE;
    }
    if ((cert_file != NULL) != (key_file != NULL)) {
        pm_cli_error("serve", "--tls-cert and --tls-key go together");
        return PM_EXIT_USAGE;
    }
    char *journal = NULL, *token = NULL, *cert = NULL, *key = NULL;
    if (!o.journal_path) {
        if (asprintf(&journal, "%s.journal.pmtx", o.chain_path) < 0)
            return PM_EXIT_INVALID;
        o.journal_path = journal;
    }
    if (token_file && !(token = read_token(token_file))) {
        free(journal);
        return PM_EXIT_USAGE;
    }
    o.token = token;
    int rc = PM_EXIT_INVALID;
    if (cert_file && (!(cert = read_text("--tls-cert", cert_file)) ||
                      !(key = read_text("--tls-key", key_file)))) {
        rc = PM_EXIT_USAGE;
        goto out;
    }
    o.tls_cert = cert;
    o.tls_key = key;
    serve s;
    if (service_open(&s, &o) == 0 && http_run(&s) == 0)
        rc = PM_EXIT_OK;
    if (service_stop(&s) != 0)
        rc = PM_EXIT_INVALID;
    if (cluster_node_release(&s))
        rc = PM_EXIT_INVALID;
out:
    free(journal);
    free(token);
    free(cert);
    free(key);
    return rc;
}
