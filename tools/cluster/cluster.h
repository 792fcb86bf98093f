/*
 * cluster.h — Postmark nodes on one NATS JetStream stream (serve.md,
 * "cluster"; design and operations in docs/cluster.md).
 *
 * Packing is deterministic, so every node packs the same totally ordered
 * stream on its own and gets the same blocks (Hyperledger Fabric's
 * model: the ordering service orders, every peer validates). One file per
 * concern:
 *   stream.c   the connection, the stream and its KV bucket, the message
 *              kinds, direct reads, the ordered consumer
 *   submit.c   publishing records: message id = SHA-256 of the record,
 *              async with bounded waits, resends from the caller's thread
 *   follow.c   the node inside `serve --nats`: consume, pack, cut, resume
 *              with a (sequence, hash) check, fail-stop on a rewind or gap
 * tools/cmd_cluster.c and tools/cmd_submit.c are the front doors.
 *
 * The stream `NAME` holds, on the one subject "postmark.NAME":
 *   seq 1     the 60-byte stream header (Pm-Kind: header), published with
 *             "expected last sequence 0", so a stream has one header only;
 *   then      transaction records (Pm-Kind: tx; the body is the raw
 *             transaction, the message id its hex SHA-256) and block cuts
 *             (Pm-Kind: cut, Pm-Height: H; message id "cut-H").
 * A record's index (the engine's submission index, the journal's) is the
 * number of tx messages before it.
 */
#ifndef PM_TOOLS_CLUSTER_H
#define PM_TOOLS_CLUSTER_H

#include "postmark.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define CLUSTER_KIND_HEADER "Pm-Kind"
#define CLUSTER_HEIGHT_HEADER "Pm-Height"

typedef enum { CLUSTER_MSG_BAD = 0, CLUSTER_MSG_HEADER, CLUSTER_MSG_TX, CLUSTER_MSG_CUT } cluster_kind;

/* A connection to the cluster, bound to one stream. */
typedef struct {
    natsConnection *nc;
    jsCtx *js;
    char stream[64];
    char subject[80];            /* "postmark.NAME" */
    char bucket[80];             /* the KV bucket "postmark-NAME" */
    kvStore *kv;                 /* opened by cluster_kv_open */
} cluster_conn;

/* One message of the stream, as read back. */
typedef struct {
    cluster_kind kind;
    uint64_t seq;                /* stream sequence */
    const uint8_t *data;         /* valid while msg lives */
    size_t size;
    uint64_t cut_height;         /* CLUSTER_MSG_CUT */
    natsMsg *msg;
} cluster_msg;

/* ---- stream.c ---------------------------------------------------------- */

/* Connect to URLS (comma-separated nats://HOST:PORT) for stream NAME
 * (letters, digits, '-' and '_'). Reconnects forever in the background.
 * Returns 0, or -1 with a message in err. */
int cluster_connect(cluster_conn *c, const char *urls, const char *stream, char *err,
                    size_t errlen);
void cluster_close(cluster_conn *c);

/* Create the stream (R replicas, file storage, no limits, deny delete and
 * purge, duplicate window dup_ms) and its KV bucket, then publish the
 * header as seq 1 with "expected last sequence 0". An existing stream
 * with the same header is accepted (init is idempotent); another header
 * is an error. A JetStream API call that times out is tried again (up to
 * three attempts). Returns 0, or -1 with a message. */
int cluster_stream_create(cluster_conn *c, const uint8_t header[PM_FILE_HEADER_SIZE],
                          int replicas, int64_t dup_ms, char *err, size_t errlen);

/* The stream's last sequence, the leader's name (leader may be NULL; cap
 * bytes) and how many other replicas are offline or still catching up
 * (lagging may be NULL). Returns 0, or -1 with a message. */
int cluster_stream_state(cluster_conn *c, uint64_t *last_seq, char *leader, size_t cap,
                         int *lagging, char *err, size_t errlen);

/* Read message seq from the stream leader (not a replica that may lag).
 * Returns 1 (*m filled; free with cluster_msg_free), 0 no such message,
 * -1 an error (message in err). */
int cluster_get(cluster_conn *c, uint64_t seq, cluster_msg *m, char *err, size_t errlen);

/* Classify a delivered message (kind, seq from its metadata when it came
 * through a consumer, else from 'seq'). Takes ownership of msg. */
void cluster_msg_from(cluster_msg *m, natsMsg *msg, uint64_t seq);
void cluster_msg_free(cluster_msg *m);

/* The hex SHA-256 of bytes (65 bytes with the NUL) and its raw form. */
void cluster_sha256(uint8_t out[32], const uint8_t *bytes, size_t size);
void cluster_sha256_hex(char out[65], const uint8_t *bytes, size_t size);

/* An ordered push consumer from sequence `from` on (flow control and
 * heartbeats; it re-creates itself on a gap it sees, and the caller
 * checks the sequence of every message too). Returns 0, or -1. */
int cluster_consume(cluster_conn *c, natsSubscription **sub, uint64_t from, char *err,
                    size_t errlen);
/* The next message within timeout_ms: 1 (*m filled), 0 timeout, -1 error. */
int cluster_next(natsSubscription *sub, cluster_msg *m, int64_t timeout_ms, char *err,
                 size_t errlen);

/* Open the stream's KV bucket (created by cluster init). */
int cluster_kv_open(cluster_conn *c, char *err, size_t errlen);

/* ---- submit.c ---------------------------------------------------------- */

/* One record to publish and, after cluster_publish, its outcome. */
typedef struct {
    const uint8_t *bytes;
    size_t size;
    uint64_t seq;                /* out: its stream sequence (the original's for a duplicate) */
    int duplicate;               /* out: the stream already had it (same message id) */
    int ok;                      /* out: acknowledged */
    natsMsg *msg;                /* private */
    int failed;                  /* private: an error or timeout, to resend */
} cluster_pub;

typedef struct cluster_publisher cluster_publisher;

/* A publisher on c (its own JetStream context, with an ack handler).
 * max_wait_ms bounds each attempt; a record is tried until total_ms. */
cluster_publisher *cluster_publisher_new(cluster_conn *c, int64_t max_wait_ms, int64_t total_ms,
                                         char *err, size_t errlen);
void cluster_publisher_free(cluster_publisher *p);

/* Publish n transaction records (async, message id = hex SHA-256 of each)
 * and wait for their acknowledgements, resending failures from this
 * thread with fresh options until each is acknowledged or total_ms has
 * passed. Thread-safe: many callers may publish at once. Returns the
 * number acknowledged (n when all were). */
size_t cluster_publish(cluster_publisher *p, cluster_pub *recs, size_t n);

/* Publish the cut closing block `height` (message id "cut-HEIGHT": nodes
 * cutting at once make one message). Returns 0, or -1. */
int cluster_publish_cut(cluster_conn *c, uint64_t height, uint64_t *seq, char *err,
                        size_t errlen);

#endif
