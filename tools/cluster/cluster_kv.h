/*
 * cluster_kv.h — agreement between nodes through the stream's KV bucket
 * (agree.c). Apart from cluster.h so that only its users need jansson.
 */
#ifndef PM_TOOLS_CLUSTER_KV_H
#define PM_TOOLS_CLUSTER_KV_H

#include "cluster.h"

#include <jansson.h>

#define CLUSTER_MAX_NODES 32
/* UTXO digests are voted at blocks closed by a cut, at least this many
 * heights apart (follow.c: vote_digest). */
#define CLUSTER_DIGEST_EVERY 8

/* "node.NODE" = {"node","height","tip","seq"}. Returns 0, or -1. */
int cluster_kv_note_node(cluster_conn *c, const char *node, int64_t height, const char *tip_hex,
                         uint64_t seq, char *err, size_t errlen);

/* Write "WHAT.HEIGHT.NODE" = mine (what: "block" or "digest"), then read
 * every node's value for that height. Returns 0 (this node agrees with
 * every one), 2 (with a strict majority, but some node differs: err names
 * it and the height), 1 (it disagrees with the majority, or there is
 * none: err names the height), -1 an error. */
int cluster_kv_vote(cluster_conn *c, const char *what, const char *node, uint64_t height,
                    const char *mine, char *err, size_t errlen);

/* The nodes' records, sorted by name (*nodes: a new JSON array), and
 * whether their block hashes agree at the lowest height they all have.
 * Returns 0, or -1. */
int cluster_kv_status(cluster_conn *c, json_t **nodes, int *agree, char *err, size_t errlen);

#endif
