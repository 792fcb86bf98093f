/*
 * follow.c — a Postmark node on the stream: `serve --nats` (cluster.h,
 * docs/cluster.md).
 *
 * The stream is the journal. One follower thread reads it in order with
 * an ordered push consumer and feeds the transaction records to the
 * service (serve_admit_local: the local journal becomes a copy of the
 * stream's records, index = number of tx messages before). HTTP requests
 * publish instead of admitting (admit_hook) and wait until the follower
 * has packed their sequence, then answer with its verdict.
 *
 * Blocks close only on what the stream says, so that every node makes the
 * same blocks: when full (the engine's limit), or at a cut. A cut carries
 * the height H of the block it closes: it closes the open block when that
 * block is H (the chain holds H blocks) and anything waits in it; any
 * other cut — for a block already closed by being full, by an earlier cut
 * (concurrent cuts for one height have one message id, but a cut outside
 * the duplicate window may repeat), or with nothing waiting — is ignored.
 * That depends on the stream's content only, so all nodes agree. A node
 * publishes a cut for H when its open block H is older than
 * --block-interval (on its own clock: only the publication depends on
 * time, never the decision) and for POST /v1/flush.
 *
 * Resume: before each block is written, CHAIN.cluster gets the line
 * "block H HASH LAST SEQ SHA256" (synced): LAST the block's last record
 * index, SEQ its stream sequence, SHA256 that message's hash. On start the
 * tip's line is checked against the stream's message SEQ, read from the
 * leader: another hash (or no message) means the log was rewound or
 * replaced, and the node stops loudly. The local journal is cut back to
 * LAST+1 records and reading resumes at SEQ+1: the dropped open block and
 * any cut after it are read again, the cut ignored by the rule above. A
 * sequence that skips ahead (a gap) stops the node too.
 *
 * Divergence: after each block the node votes its hash into the KV bucket
 * (agree.c) and stops when the majority has another one.
 */
#include "cluster.h"
#include "cluster_kv.h"

#include "../serve/serve.h"
#include "cliutil.h"
#include "recfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VERDICT_SLOTS (1u << 18) /* answers kept by sequence (a ring) */
#define FEED_MAX 2048            /* records per serve_admit_local */

typedef struct {
    uint64_t seq, index;
    uint8_t reason, has_txid;
    uint8_t txid[32];
} verdict;

typedef struct cluster_node cluster_node;
/* Undecided votes kept at once: a node that far ahead of the others
 * votes no further until they catch up (it goes on packing). */
#define VOTES_UNDECIDED_MAX 64

struct cluster_node {
    serve *s;
    cluster_conn conn;
    cluster_publisher *pub;
    natsSubscription *sub;
    pthread_t thread;
    int started;
    atomic_int stop;
    uint64_t interval_ms;

    pthread_mutex_t lock;
    pthread_cond_t applied_cond;
    uint64_t applied;            /* the last sequence packed */
    verdict *verdicts;           /* [seq % VERDICT_SLOTS] */
    atomic_int failed;
    char why[600];

    /* The follower's (and, during its serve_admit_local, the committer's). */
    uint64_t next_index;         /* the index of the next tx record */
    uint64_t *idx_seq;           /* sequence of index idx_base + i */
    uint8_t (*idx_hash)[32];     /* and that message's SHA-256 */
    uint64_t idx_base;
    size_t idx_n, idx_cap;
    uint64_t cut_sent;           /* the height whose cut we published + 1 */
    int resume_fd;
    char *resume_path;
    uint64_t start_seq;          /* where reading resumes */
    /* The sequences of the cut messages read (ascending; under lock): a
     * record's index is its sequence - 2 - the cuts before it, so an
     * answer has its index also for a record packed before a restart. */
    uint64_t *cuts;
    size_t cuts_n, cuts_cap;
    int cuts_all;                /* CHAIN.cluster has every cut (line "cuts all") */
    uint64_t blocks_voted;       /* heights below this were voted */
    uint64_t next_digest;        /* a cut-closed block from this height on votes its digest */
    /* For /metrics: 0 once a vote found another node with another hash. */
    atomic_int agree;
    _Atomic int64_t voted_height, digest_height;
    /* Votes not decided yet (cluster_kv_check returned 3: no majority of
     * the nodes has voted), checked again until one has. */
    struct {
        char what[8];
        uint64_t height;
        char mine[65];
    } undecided[VOTES_UNDECIDED_MAX];
    size_t n_undecided;
    double last_recheck;
    double last_note;
};

static cluster_node *node_of(const serve *s) { return s->cluster; }

/* Stop the node: loudly, once, then the whole service (SIGTERM to
 * ourselves: the main thread waits for it, and the exit status is 1). */
static void fail_stop(cluster_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_stop(cluster_node *n, const char *fmt, ...)
{
    if (atomic_exchange(&n->failed, 1))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->why, sizeof n->why, fmt, ap);
    va_end(ap);
    pm_cli_error("serve", "node %s STOPPED: %s", n->s->opts.node, n->why);
    pthread_mutex_lock(&n->lock);
    pthread_cond_broadcast(&n->applied_cond);
    pthread_mutex_unlock(&n->lock);
    kill(getpid(), SIGTERM);
}

int cluster_node_release(serve *s)
{
    cluster_node *n = node_of(s);
    if (!n)
        return 0;
    int failed = atomic_load(&n->failed);
    if (n->pub)
        cluster_publisher_free(n->pub);
    cluster_close(&n->conn);
    if (n->resume_fd >= 0)
        close(n->resume_fd);
    free(n->resume_path);
    free(n->verdicts);
    free(n->idx_seq);
    free(n->idx_hash);
    free(n->cuts);
    pthread_cond_destroy(&n->applied_cond);
    pthread_mutex_destroy(&n->lock);
    free(n);
    s->cluster = NULL;
    return failed;
}

/* ---- the resume lines ------------------------------------------------- */

/* On the committer, before the block's journal line and the chain append. */
static void on_block_hook(serve *s, uint64_t height, const uint8_t hash[32], uint64_t last)
{
    cluster_node *n = node_of(s);
    char hex[65], line[256], mh[65] = "";
    pthread_mutex_lock(&n->lock);
    uint64_t seq = 0;
    uint8_t msg_hash[32];
    if (last >= n->idx_base && last - n->idx_base < n->idx_n) {
        seq = n->idx_seq[last - n->idx_base];
        memcpy(msg_hash, n->idx_hash[last - n->idx_base], 32);
    }
    if (seq) { /* records up to `last` are in this block: forget them */
        size_t drop = (size_t)(last - n->idx_base + 1);
        memmove(n->idx_seq, n->idx_seq + drop, (n->idx_n - drop) * sizeof *n->idx_seq);
        memmove(n->idx_hash, n->idx_hash + drop, (n->idx_n - drop) * sizeof *n->idx_hash);
        n->idx_n -= drop;
        n->idx_base = last + 1;
    }
    pthread_mutex_unlock(&n->lock);
    if (!seq) {
        s->io_failed = EIO;
        fail_stop(n, "block %llu: its last record %llu has no stream sequence",
                  (unsigned long long)height, (unsigned long long)last);
        return;
    }
    /* The hash of message seq's bytes, taken as it was read: reading it
     * back here would stall (or fail) every block while the stream has
     * no leader. */
    pm_cli_hex(mh, msg_hash, 32);
    pm_cli_hex(hex, hash, 32);
    int len = snprintf(line, sizeof line, "block %llu %s %llu %llu %s\n", (unsigned long long)height,
                       hex, (unsigned long long)last, (unsigned long long)seq, mh);
    if (write(n->resume_fd, line, (size_t)len) != len || fdatasync(n->resume_fd) != 0)
        s->io_failed = errno ? errno : EIO;
}

/* Under lock, or before the follower runs: append cut sequence seq. */
static int cut_push(cluster_node *n, uint64_t seq)
{
    if (n->cuts_n && n->cuts[n->cuts_n - 1] >= seq)
        return 0; /* read again after a restart */
    if (n->cuts_n == n->cuts_cap) {
        size_t cap = n->cuts_cap ? 2 * n->cuts_cap : 256;
        uint64_t *g = realloc(n->cuts, cap * sizeof *g);
        if (!g)
            return -1;
        n->cuts = g;
        n->cuts_cap = cap;
    }
    n->cuts[n->cuts_n++] = seq;
    return 0;
}

/* Under lock: the journal index of the tx message at sequence seq (the
 * header is seq 1; the others are records and cuts). */
static uint64_t index_of_seq(const cluster_node *n, uint64_t seq)
{
    size_t lo = 0, hi = n->cuts_n; /* cuts below seq: the first >= seq */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (n->cuts[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return seq - 2 - lo;
}

/* The cut lines of CHAIN.cluster below sequence `below` (the others are
 * read again from the stream). 0, or -1 out of memory. */
static int load_cuts(cluster_node *n, uint64_t below)
{
    FILE *f = fopen(n->resume_path, "r");
    if (!f)
        return 0;
    char line[300];
    unsigned long long q;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        if (!strcmp(line, "cuts all\n"))
            n->cuts_all = 1;
        else if (sscanf(line, "cut %llu", &q) == 1 && q < below)
            rc = cut_push(n, q);
    }
    fclose(f);
    return rc;
}

/* The line of the tip (height, hash): 1 found, 0 none, -1 unreadable. */
static int find_line(cluster_node *n, int64_t height, const char *tip_hex, uint64_t *last,
                     uint64_t *seq, char mh[65])
{
    FILE *f = fopen(n->resume_path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char line[300], hex[65], h2[65];
    unsigned long long h, l, q;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "block %llu %64s %llu %llu %64s", &h, hex, &l, &q, h2) == 5 &&
            (int64_t)h == height && !strcmp(hex, tip_hex)) {
            *last = l, *seq = q;
            memcpy(mh, h2, 65);
            found = 1; /* the last such line wins */
        }
    }
    fclose(f);
    return found;
}

/* cluster_get, tried again while the stream has no leader (an election
 * takes seconds): 1 found, 0 no such message, -1 still an error. */
static int get_patiently(cluster_conn *c, uint64_t seq, cluster_msg *m, char *err, size_t errlen)
{
    int got = -1;
    for (int i = 0; i < 60 && got < 0; i++) {
        got = cluster_get(c, seq, m, err, errlen);
        if (got < 0) {
            struct timespec pause = {1, 0};
            nanosleep(&pause, NULL);
        }
    }
    return got;
}

/* Cut the local journal to `records` records (the rest is read again). */
static int cut_journal(serve *s, uint64_t records, char *err, size_t errlen)
{
    pm_recfile *rf;
    pm_recfile_header hdr;
    if (access(s->opts.journal_path, F_OK) != 0)
        return records == 0 ? 0 : (snprintf(err, errlen, "%s is missing", s->opts.journal_path), -1);
    if (pm_recfile_open(&rf, &hdr, err, errlen, s->opts.journal_path, PM_TX_MAX_SIZE) != PM_OK)
        return -1;
    pm_recfile_record rec;
    uint64_t end = PM_FILE_HEADER_SIZE, have = 0;
    while (have < records && pm_recfile_next(rf, &rec, err, errlen) == 1 && !rec.truncated) {
        end = rec.offset + 4 + rec.size;
        have++;
    }
    pm_recfile_close(rf);
    if (have < records) {
        snprintf(err, errlen, "%s holds %llu records, the chain needs %llu",
                 s->opts.journal_path, (unsigned long long)have, (unsigned long long)records);
        return -1;
    }
    int fd = open(s->opts.journal_path, O_WRONLY | O_CLOEXEC);
    int ok = fd >= 0 && ftruncate(fd, (off_t)end) == 0 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok)
        snprintf(err, errlen, "%s: cannot cut: %s", s->opts.journal_path, strerror(errno));
    return ok ? 0 : -1;
}

int cluster_node_attach(serve *s)
{
    cluster_node *n = calloc(1, sizeof *n);
    if (!n) {
        pm_cli_error("serve", "out of memory");
        return -1;
    }
    n->s = s;
    n->resume_fd = -1;
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->applied_cond, NULL);
    atomic_store(&n->agree, 1);
    atomic_store(&n->voted_height, -1);
    atomic_store(&n->digest_height, -1);
    /* Time never closes a block here: the follower publishes a cut. */
    n->interval_ms = s->opts.interval_ms;
    s->opts.interval_ms = 0;
    s->cluster = n;
    s->block_hook = on_block_hook;
    n->verdicts = calloc(VERDICT_SLOTS, sizeof *n->verdicts);
    if (!n->verdicts || asprintf(&n->resume_path, "%s.cluster", s->opts.chain_path) < 0) {
        pm_cli_error("serve", "out of memory");
        return -1;
    }
    return 0;
}

int cluster_node_prepare(serve *s)
{
    cluster_node *n = node_of(s);
    char err[600];
    if (cluster_connect(&n->conn, s->opts.nats, s->opts.stream, err, sizeof err) != 0) {
        pm_cli_error("serve", "%s", err);
        return -1;
    }
    /* Opening the bucket asks its stream's leader: tried for about a
     * minute, as the bucket may be electing one (a server was killed). */
    int kv = -1;
    for (int64_t until = nats_Now() + 60000; kv != 0 && nats_Now() < until;) {
        kv = cluster_kv_open(&n->conn, err, sizeof err);
        if (kv != 0)
            nats_Sleep(500);
    }
    if (kv != 0) {
        pm_cli_error("serve", "%s", err);
        return -1;
    }
    /* The stream must be this chain's. */
    cluster_msg m;
    int got = get_patiently(&n->conn, 1, &m, err, sizeof err);
    uint8_t mine[PM_FILE_HEADER_SIZE];
    pm_file_header_encode(pm_context_static, mine, PM_FILE_STREAM, &s->params);
    if (got <= 0 || m.kind != CLUSTER_MSG_HEADER ||
        memcmp(m.data + 8, mine + 8, PM_FILE_HEADER_SIZE - 8) != 0) {
        pm_cli_error("serve", "stream %s: %s", s->opts.stream,
                     got < 0 ? err : "not this chain's (no header, or header bytes 8..59 differ)");
        if (got > 0)
            cluster_msg_free(&m);
        return -1;
    }
    cluster_msg_free(&m);

    uint8_t tip[32];
    int64_t height;
    char tip_hex[65];
    pm_engine_tip(s->engine, tip, &height);
    pm_cli_hex(tip_hex, tip, 32);
    uint64_t last = 0, seq = 1, records = 0;
    if (height >= 0) {
        char mh[65];
        int f = find_line(n, height, tip_hex, &last, &seq, mh);
        if (f <= 0) {
            pm_cli_error("serve", "%s: %s for the chain's tip (block %lld)", n->resume_path,
                         f < 0 ? strerror(errno) : "no line", (long long)height);
            return -1;
        }
        got = get_patiently(&n->conn, seq, &m, err, sizeof err);
        if (got < 0) {
            pm_cli_error("serve", "%s", err);
            return -1;
        }
        char have[65] = "";
        if (got) {
            cluster_sha256_hex(have, m.data, m.size);
            cluster_msg_free(&m);
        }
        if (strcmp(have, mh) != 0) {
            pm_cli_error("serve", "stream %s REWOUND: block %lld ends at message %llu with hash "
                         "%s, but the stream %s; refusing to go on (docs/cluster.md: rewind)",
                         s->opts.stream, (long long)height, (unsigned long long)seq, mh,
                         got ? "has another message there" : "has no such message");
            atomic_store(&n->failed, 1);
            return -1;
        }
        records = last + 1;
    }
    if (cut_journal(s, records, err, sizeof err) != 0) {
        pm_cli_error("serve", "%s", err);
        return -1;
    }
    n->start_seq = seq + 1;
    if (load_cuts(n, n->start_seq) != 0) {
        pm_cli_error("serve", "out of memory");
        return -1;
    }
    n->resume_fd = open(n->resume_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (n->resume_fd < 0) {
        pm_cli_error("serve", "%s: %s", n->resume_path, strerror(errno));
        return -1;
    }
    /* A chain packed from the start records every cut; one whose file
     * predates the cut lines answers without an index for what it packed
     * before this run. */
    if (height < 0 && !n->cuts_all) {
        static const char all[] = "cuts all\n";
        if (write(n->resume_fd, all, sizeof all - 1) != (ssize_t)(sizeof all - 1)) {
            pm_cli_error("serve", "%s: %s", n->resume_path, strerror(errno));
            return -1;
        }
        n->cuts_all = 1;
    }
    n->applied = seq;
    n->next_index = n->idx_base = records;
    n->blocks_voted = (uint64_t)(height + 1);
    n->cut_sent = (uint64_t)(height + 1);
    if (!s->opts.quiet)
        fprintf(stderr, "postmark serve: node %s: stream %s from sequence %llu (record %llu)\n",
                s->opts.node, s->opts.stream, (unsigned long long)n->start_seq,
                (unsigned long long)records);
    return 0;
}

/* ---- following ---------------------------------------------------------- */

typedef struct {
    serve_record recs[FEED_MAX];
    uint8_t *copies[FEED_MAX];
    uint64_t seqs[FEED_MAX];
    uint8_t hashes[FEED_MAX][32];
    size_t n;
} feed;

static int index_push(cluster_node *n, uint64_t seq, const uint8_t hash[32])
{
    if (n->idx_n == n->idx_cap) {
        size_t cap = n->idx_cap ? 2 * n->idx_cap : 4096;
        uint64_t *g = realloc(n->idx_seq, cap * sizeof *g);
        if (!g)
            return -1;
        n->idx_seq = g;
        uint8_t(*h)[32] = realloc(n->idx_hash, cap * sizeof *h);
        if (!h)
            return -1;
        n->idx_hash = h;
        n->idx_cap = cap;
    }
    memcpy(n->idx_hash[n->idx_n], hash, 32);
    n->idx_seq[n->idx_n++] = seq;
    return 0;
}

static void note_node(cluster_node *n)
{
    serve *s = n->s;
    uint8_t tip[32];
    int64_t height;
    char hex[65], err[256];
    pthread_mutex_lock(&s->engine_lock);
    pm_engine_tip(s->engine, tip, &height);
    pthread_mutex_unlock(&s->engine_lock);
    pm_cli_hex(hex, tip, 32);
    pthread_mutex_lock(&n->lock);
    uint64_t applied = n->applied;
    pthread_mutex_unlock(&n->lock);
    if (cluster_kv_note_node(&n->conn, s->opts.node, height, hex, applied, err, sizeof err) != 0)
        pm_cli_error("serve", "%s", err);
    n->last_note = pm_cli_now();
}

/* The outcome of a vote: 1 this node is the odd one out (stop), 2 with
 * the majority but another node differs (say so; /metrics shows it), 3
 * undecided (kept, with what, height and mine, for recheck_votes), -1
 * the KV failed (advisory: keep packing). */
static void note_vote(cluster_node *n, int v, const char *err, const char *what,
                      uint64_t height, const char *mine)
{
    if (v == 3 && n->n_undecided < VOTES_UNDECIDED_MAX) {
        snprintf(n->undecided[n->n_undecided].what, sizeof n->undecided[0].what, "%s", what);
        n->undecided[n->n_undecided].height = height;
        snprintf(n->undecided[n->n_undecided].mine, sizeof n->undecided[0].mine, "%s", mine);
        n->n_undecided++;
    } else if (v == 1) {
        atomic_store(&n->agree, 0);
        fail_stop(n, "%s", err);
    } else if (v == 2) {
        atomic_store(&n->agree, 0);
        pm_cli_error("serve", "%s", err);
    } else if (v < 0) {
        pm_cli_error("serve", "%s", err);
    }
}

/* After a cut closed block `height`: nothing waits, so the engine's state
 * is exactly the chain's up to that block, the same on every node — the
 * one point where a UTXO digest can be compared. Voted at most every
 * CLUSTER_DIGEST_EVERY heights (the digest sorts the whole UTXO set). */
static void vote_digest(cluster_node *n, uint64_t height)
{
    serve *s = n->s;
    if (height < n->next_digest || n->n_undecided == VOTES_UNDECIDED_MAX)
        return;
    uint8_t d[32];
    char hex[65], err[600];
    pthread_mutex_lock(&s->engine_lock);
    pm_status st = s->pending == 0 ? pm_engine_utxo_digest(s->engine, d) : PM_ERR_STATE;
    pthread_mutex_unlock(&s->engine_lock);
    if (st != PM_OK)
        return;
    n->next_digest = height + CLUSTER_DIGEST_EVERY;
    pm_cli_hex(hex, d, 32);
    int v = cluster_kv_vote(&n->conn, "digest", s->opts.node, height, hex, err, sizeof err);
    note_vote(n, v, err, "digest", height, hex);
    if (v >= 0)
        atomic_store(&n->digest_height, (int64_t)height);
}

void cluster_node_metrics(const serve *s, FILE *f)
{
    cluster_node *n = node_of(s);
    pthread_mutex_lock(&n->lock);
    uint64_t applied = n->applied;
    pthread_mutex_unlock(&n->lock);
    fprintf(f, "# HELP postmark_cluster_seq The last stream sequence this node packed.\n"
               "# TYPE postmark_cluster_seq gauge\npostmark_cluster_seq %llu\n",
            (unsigned long long)applied);
    fprintf(f, "# HELP postmark_cluster_agree 1 while every block and digest vote of this node "
               "matched every other node's (0: a divergence was seen).\n"
               "# TYPE postmark_cluster_agree gauge\npostmark_cluster_agree %d\n",
            atomic_load(&n->agree) && !atomic_load(&n->failed));
    fprintf(f, "# HELP postmark_cluster_voted_height The last height whose block hash was voted.\n"
               "# TYPE postmark_cluster_voted_height gauge\npostmark_cluster_voted_height %lld\n",
            (long long)atomic_load(&n->voted_height));
    fprintf(f, "# HELP postmark_cluster_digest_height The last height whose UTXO digest was "
               "voted.\n# TYPE postmark_cluster_digest_height gauge\n"
               "postmark_cluster_digest_height %lld\n",
            (long long)atomic_load(&n->digest_height));
}

/* Check the undecided votes again (at most twice a second): those a
 * majority has decided leave the list, and a node on the wrong side
 * stops. */
static void recheck_votes(cluster_node *n)
{
    if (!n->n_undecided || pm_cli_now() - n->last_recheck < 0.5)
        return;
    n->last_recheck = pm_cli_now();
    size_t kept = 0;
    for (size_t i = 0; i < n->n_undecided && !atomic_load(&n->failed); i++) {
        char err[600];
        int v = cluster_kv_check(&n->conn, n->undecided[i].what, n->undecided[i].height,
                                 n->undecided[i].mine, err, sizeof err);
        if (v == 3 || v < 0) { /* still open, or the KV failed: later */
            n->undecided[kept++] = n->undecided[i];
            continue;
        }
        note_vote(n, v, err, NULL, 0, NULL);
    }
    n->n_undecided = kept;
}

/* Vote the hashes of the blocks made since the last vote. */
static void vote_blocks(cluster_node *n)
{
    serve *s = n->s;
    uint64_t count = serve_block_count(s);
    recheck_votes(n);
    for (; n->blocks_voted < count && n->n_undecided < VOTES_UNDECIDED_MAX &&
           !atomic_load(&n->failed);
         n->blocks_voted++) {
        pm_block_header h;
        uint8_t hash[32];
        size_t size;
        char hex[65], err[600];
        if (!serve_block_header(s, n->blocks_voted, &h, hash, &size))
            break;
        pm_cli_hex(hex, hash, 32);
        int v = cluster_kv_vote(&n->conn, "block", s->opts.node, n->blocks_voted, hex, err,
                                sizeof err);
        note_vote(n, v, err, "block", n->blocks_voted, hex);
        if (v >= 0)
            atomic_store(&n->voted_height, (int64_t)n->blocks_voted);
    }
    if (count)
        note_node(n);
}

/* Pack what was read: one batch through the service. */
static int feed_flush(cluster_node *n, feed *f)
{
    if (!f->n)
        return 0;
    serve_record *ptrs = f->recs;
    pthread_mutex_lock(&n->lock);
    int ok = 1;
    for (size_t i = 0; i < f->n && ok; i++)
        ok = index_push(n, f->seqs[i], f->hashes[i]) == 0;
    pthread_mutex_unlock(&n->lock);
    pm_status st = ok ? serve_admit_local(n->s, ptrs, f->n, NULL) : PM_ERR_NOMEM;
    if (st != PM_OK) {
        fail_stop(n, "packing records at sequence %llu: %s", (unsigned long long)f->seqs[0],
                  pm_status_text(st));
        return -1;
    }
    pthread_mutex_lock(&n->lock);
    for (size_t i = 0; i < f->n; i++) {
        verdict *v = &n->verdicts[f->seqs[i] % VERDICT_SLOTS];
        v->seq = f->seqs[i];
        v->index = f->recs[i].index;
        v->reason = (uint8_t)f->recs[i].reason;
        v->has_txid = (uint8_t)f->recs[i].has_txid;
        memcpy(v->txid, f->recs[i].txid, 32);
        free(f->copies[i]);
    }
    n->next_index += f->n;
    n->applied = f->seqs[f->n - 1];
    pthread_cond_broadcast(&n->applied_cond);
    pthread_mutex_unlock(&n->lock);
    f->n = 0;
    return 0;
}

static void set_applied(cluster_node *n, uint64_t seq)
{
    pthread_mutex_lock(&n->lock);
    n->applied = seq;
    pthread_cond_broadcast(&n->applied_cond);
    pthread_mutex_unlock(&n->lock);
}

/* --block-interval: publish the cut of the open block when it is old. */
static void maybe_cut(cluster_node *n)
{
    serve *s = n->s;
    if (!n->interval_ms)
        return;
    pthread_mutex_lock(&s->engine_lock);
    int due = s->pending > 0 &&
              (pm_cli_now() - s->open_since) * 1000.0 >= (double)n->interval_ms;
    pthread_mutex_unlock(&s->engine_lock);
    uint64_t h = serve_block_count(s);
    if (!due || n->cut_sent > h)
        return;
    char err[256];
    if (cluster_publish_cut(&n->conn, h, NULL, err, sizeof err) == 0)
        n->cut_sent = h + 1;
    else
        pm_cli_error("serve", "%s", err); /* tried again on the next pass */
}

/* The ordered push consumer of libnats 3.4.1 can stop delivering with no
 * error (seen under load and after a leader kill: nodes sat a few
 * messages behind the stream for minutes). Re-creating it was tried and
 * made the nodes' order differ from the stream's, so instead, when it has
 * brought nothing for a second while the stream holds more, the follower
 * reads the next messages itself, by sequence, from the leader (they
 * cannot be reordered); what the consumer delivers later for them is
 * skipped by sequence. Returns 1 with *m = message `expect`, else 0. */
static int catch_up(cluster_node *n, uint64_t expect, double last_push, int *catching,
                    double *last_check, cluster_msg *m)
{
    double now = pm_cli_now();
    char err[600];
    if (now - last_push < 1.0) {
        *catching = 0;
        return 0;
    }
    if (!*catching) {
        uint64_t last = 0;
        if (now - *last_check < 0.5)
            return 0;
        *last_check = now;
        if (cluster_stream_state(&n->conn, &last, NULL, 0, NULL, err, sizeof err) != 0 ||
            last < expect)
            return 0;
        *catching = 1;
    }
    if (cluster_get(&n->conn, expect, m, err, sizeof err) != 1) {
        *catching = 0;
        return 0;
    }
    return 1;
}

static void *follower(void *arg)
{
    cluster_node *n = arg;
    serve *s = n->s;
    feed *f = calloc(1, sizeof *f);
    uint64_t expect = n->start_seq;
    double last_push = pm_cli_now(), last_check = 0;
    int catching = 0;
    char err[600];
    if (!f) {
        fail_stop(n, "out of memory");
        return NULL;
    }
    while (!atomic_load(&n->stop) && !atomic_load(&n->failed)) {
        cluster_msg m;
        int r = cluster_next(n->sub, &m, f->n || catching ? 0 : 100, err, sizeof err);
        if (r == 1 && m.seq >= expect)
            last_push = pm_cli_now();
        if (r <= 0 && catch_up(n, expect, last_push, &catching, &last_check, &m))
            r = 1;
        if (r < 0 && f->n == 0) {
            /* A disconnection: the library reconnects and the ordered
             * consumer starts again where it was. */
            struct timespec pause = {0, 100000000L};
            nanosleep(&pause, NULL);
        }
        if (r <= 0) {
            if (feed_flush(n, f) != 0)
                break;
            vote_blocks(n);
            maybe_cut(n);
            if (pm_cli_now() - n->last_note > 1.0)
                note_node(n);
            continue;
        }
        if (m.seq < expect) { /* redelivered after a consumer reset */
            cluster_msg_free(&m);
            continue;
        }
        if (m.seq > expect) {
            fail_stop(n, "stream %s: GAP: sequence %llu where %llu was expected",
                      s->opts.stream, (unsigned long long)m.seq, (unsigned long long)expect);
            cluster_msg_free(&m);
            break;
        }
        expect++;
        if (m.kind == CLUSTER_MSG_TX) {
            uint8_t *copy = malloc(m.size ? m.size : 1);
            if (!copy) {
                fail_stop(n, "out of memory");
                cluster_msg_free(&m);
                break;
            }
            memcpy(copy, m.data, m.size);
            f->copies[f->n] = copy;
            f->seqs[f->n] = m.seq;
            cluster_sha256(f->hashes[f->n], copy, m.size);
            serve_record_prepare(s, &f->recs[f->n], copy, m.size);
            f->n++;
            cluster_msg_free(&m);
            if (f->n == FEED_MAX && feed_flush(n, f) != 0)
                break;
            continue;
        }
        if (m.kind == CLUSTER_MSG_CUT) {
            uint64_t height = m.cut_height, seq = m.seq;
            cluster_msg_free(&m);
            if (feed_flush(n, f) != 0)
                break;
            /* Its line: synced with the next block's resume line, which a
             * restart needs anyway; later ones are read again. */
            char line[48];
            int len = snprintf(line, sizeof line, "cut %llu\n", (unsigned long long)seq);
            pthread_mutex_lock(&n->lock);
            int pushed = cut_push(n, seq);
            pthread_mutex_unlock(&n->lock);
            if (pushed != 0 || write(n->resume_fd, line, (size_t)len) != len) {
                fail_stop(n, "recording the cut at sequence %llu: %s", (unsigned long long)seq,
                          pushed ? "out of memory" : strerror(errno));
                break;
            }
            /* The rule (top of the file): only the cut of the open block. */
            int64_t closed = -1;
            if (height == serve_block_count(s)) {
                if (serve_admit_local(s, NULL, 0, &closed) != PM_OK) {
                    fail_stop(n, "closing block %llu at the cut %llu: cannot write",
                              (unsigned long long)height, (unsigned long long)seq);
                    break;
                }
            }
            set_applied(n, seq);
            vote_blocks(n);
            if (closed >= 0)
                vote_digest(n, (uint64_t)closed);
            continue;
        }
        if (m.kind == CLUSTER_MSG_HEADER && m.seq == 1) {
            set_applied(n, 1);
            cluster_msg_free(&m);
            continue;
        }
        fail_stop(n, "stream %s: message %llu is neither a record nor a cut", s->opts.stream,
                  (unsigned long long)m.seq);
        cluster_msg_free(&m);
        break;
    }
    for (size_t i = 0; i < f->n; i++)
        free(f->copies[i]);
    free(f);
    return NULL;
}

/* ---- requests: publish, then wait for the verdict -------------------------- */

static int wait_applied(cluster_node *n, uint64_t seq, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    pthread_mutex_lock(&n->lock);
    int rc = 0;
    while (n->applied < seq && !atomic_load(&n->failed) && !atomic_load(&n->stop) && rc == 0)
        rc = pthread_cond_timedwait(&n->applied_cond, &n->lock, &until);
    int there = n->applied >= seq;
    pthread_mutex_unlock(&n->lock);
    return there;
}

static pm_status cluster_admit(serve *s, serve_record *recs, size_t count, int64_t *flush_height)
{
    cluster_node *n = node_of(s);
    if (atomic_load(&n->failed) || atomic_load(&n->stop))
        return PM_ERR_STATE;
    if (flush_height) {
        uint64_t h = serve_block_count(s), seq = 0;
        char err[256];
        *flush_height = -1;
        if (cluster_publish_cut(&n->conn, h, &seq, err, sizeof err) != 0) {
            pm_cli_error("serve", "%s", err);
            return PM_ERR_IO;
        }
        if (!wait_applied(n, seq, 60000))
            return PM_ERR_IO;
        if (serve_block_count(s) > h)
            *flush_height = (int64_t)h;
        return PM_OK;
    }
    cluster_pub *pubs = calloc(count ? count : 1, sizeof *pubs);
    if (!pubs)
        return PM_ERR_NOMEM;
    for (size_t i = 0; i < count; i++) {
        pubs[i].bytes = recs[i].bytes;
        pubs[i].size = recs[i].size;
    }
    size_t acked = count ? cluster_publish(n->pub, pubs, count) : 0;
    pm_status st = acked == count ? PM_OK : PM_ERR_IO;
    uint64_t top = 0;
    for (size_t i = 0; i < count; i++)
        if (pubs[i].seq > top)
            top = pubs[i].seq;
    if (st == PM_OK && !wait_applied(n, top, 120000))
        st = PM_ERR_IO;
    pthread_mutex_lock(&n->lock);
    for (size_t i = 0; i < count && st == PM_OK; i++) {
        const verdict *v = &n->verdicts[pubs[i].seq % VERDICT_SLOTS];
        recs[i].seq = pubs[i].seq;
        if (v->seq == pubs[i].seq) {
            recs[i].index = v->index;
            recs[i].reason = (pm_reason)v->reason;
        } else {
            /* Packed before this run (a resubmission after a restart):
             * the state of its txid is the answer. */
            uint64_t height;
            pm_reason reason = PM_REASON_NONE;
            serve_tx_state ts = recs[i].has_txid ? serve_tx_lookup(s, recs[i].txid, &height, &reason)
                                                 : TX_UNKNOWN;
            recs[i].index = n->cuts_all ? index_of_seq(n, pubs[i].seq) /* packed: wait_applied */
                                        : SERVE_INDEX_UNKNOWN;
            recs[i].reason = ts == TX_REJECTED ? reason : ts == TX_UNKNOWN ? PM_REASON_MALFORMED
                                                                           : PM_REASON_NONE;
        }
    }
    pthread_mutex_unlock(&n->lock);
    free(pubs);
    return st;
}

int cluster_node_start(serve *s)
{
    cluster_node *n = node_of(s);
    char err[600];
    n->pub = cluster_publisher_new(&n->conn, 5000, 60000, err, sizeof err);
    if (!n->pub || cluster_consume(&n->conn, &n->sub, n->start_seq, err, sizeof err) != 0) {
        pm_cli_error("serve", "%s", err);
        return -1;
    }
    n->last_note = 0;
    if (pthread_create(&n->thread, NULL, follower, n) != 0) {
        pm_cli_error("serve", "cannot start a thread");
        return -1;
    }
    n->started = 1;
    s->admit_hook = cluster_admit;
    return 0;
}

void cluster_node_stop(serve *s)
{
    cluster_node *n = node_of(s);
    if (!n)
        return;
    atomic_store(&n->stop, 1);
    pthread_mutex_lock(&n->lock);
    pthread_cond_broadcast(&n->applied_cond);
    pthread_mutex_unlock(&n->lock);
    if (n->started)
        pthread_join(n->thread, NULL);
    n->started = 0;
    if (n->sub) {
        natsSubscription_Unsubscribe(n->sub);
        natsSubscription_Destroy(n->sub);
        n->sub = NULL;
    }
}
