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

/* Write "WHAT.HEIGHT.NODE" = mine (what: "block" or "digest"), then
 * check that height (cluster_kv_check). */
int cluster_kv_vote(cluster_conn *c, const char *what, const char *node, uint64_t height,
                    const char *mine, char *err, size_t errlen);

/* Read every node's value for WHAT at HEIGHT and weigh it against mine,
 * a majority being more than half of all the nodes known (a "node.NODE"
 * record or a vote). Returns 0 (a majority agrees with this node and no
 * vote differs), 2 (a majority agrees with it, some node differs: err
 * names it and the height), 1 (a majority has another value, or every
 * node voted and there is none: err names the height), 3 (undecided: no
 * majority yet while some nodes have not voted; check again later), -1
 * an error. */
int cluster_kv_check(cluster_conn *c, const char *what, uint64_t height, const char *mine,
                     char *err, size_t errlen);

/* The nodes' records, sorted by name (*nodes: a new JSON array), and
 * whether their block hashes agree at the lowest height they all have.
 * Returns 0, or -1. */
int cluster_kv_status(cluster_conn *c, json_t **nodes, int *agree, char *err, size_t errlen);

#endif
