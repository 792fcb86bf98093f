/*
 * agree.c — divergence detection through the stream's KV bucket
 * (cluster.h, docs/cluster.md).
 *
 * Every node packs the same stream, so every node must make the same
 * blocks. Each node writes, per block, "block.H.NODE" = the block's hash
 * (and every CLUSTER_DIGEST_EVERY blocks "digest.H.NODE" = its UTXO
 * digest), and "node.NODE" = {"node","height","tip","seq"} for status.
 * After writing its own, a node reads the others' for that height: when
 * a strict majority of all the nodes (those with a "node.NODE" record)
 * agree on another value, it is the odd one out and stops (the log is the
 * same for everyone, so a different block means a different engine,
 * state or snapshot here). Until a strict majority agrees on one value
 * the height is undecided and checked again later (follow.c): a node
 * that runs ahead with a wrong block waits for the others' votes, then
 * stops; an honest node that meets it first does not. With every node
 * voted and no majority, every node says so and stops.
 */
#include "cluster_kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Call fn for each current value under `pattern` (e.g. "block.7.*"). */
static int kv_each(cluster_conn *c, const char *pattern,
                   void (*fn)(void *data, const char *key, const char *value), void *data,
                   char *err, size_t errlen)
{
    kvWatcher *w = NULL;
    kvWatchOptions o;
    kvWatchOptions_Init(&o);
    o.IgnoreDeletes = true;
    natsStatus s = kvStore_Watch(&w, c->kv, pattern, &o);
    if (s != NATS_OK) {
        snprintf(err, errlen, "%s: watching %s: %s", c->bucket, pattern, natsStatus_GetText(s));
        return -1;
    }
    /* The initial values end with a NULL entry. */
    for (;;) {
        kvEntry *e = NULL;
        s = kvWatcher_Next(&e, w, 5000);
        if (s != NATS_OK) {
            snprintf(err, errlen, "%s: reading %s: %s", c->bucket, pattern, natsStatus_GetText(s));
            kvWatcher_Destroy(w);
            return -1;
        }
        if (!e)
            break;
        char *value = strndup(kvEntry_Value(e) ? (const char *)kvEntry_Value(e) : "",
                              (size_t)kvEntry_ValueLen(e));
        if (value)
            fn(data, kvEntry_Key(e), value);
        free(value);
        kvEntry_Destroy(e);
    }
    kvWatcher_Destroy(w);
    return 0;
}

static int kv_put(cluster_conn *c, const char *key, const char *value, char *err, size_t errlen)
{
    natsStatus s = kvStore_PutString(NULL, c->kv, key, value);
    if (s != NATS_OK) {
        snprintf(err, errlen, "%s: writing %s: %s", c->bucket, key, natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

int cluster_kv_note_node(cluster_conn *c, const char *node, int64_t height, const char *tip_hex,
                         uint64_t seq, char *err, size_t errlen)
{
    char key[128], value[256];
    snprintf(key, sizeof key, "node.%s", node);
    snprintf(value, sizeof value, "{\"node\":\"%s\",\"height\":%lld,\"tip\":\"%s\",\"seq\":%llu}",
             node, (long long)height, tip_hex, (unsigned long long)seq);
    return kv_put(c, key, value, err, errlen);
}

typedef struct {
    char values[CLUSTER_MAX_NODES][72];
    char nodes[CLUSTER_MAX_NODES][64];
    size_t n;
} votes;

static void add_vote(void *data, const char *key, const char *value)
{
    votes *v = data;
    const char *node = strrchr(key, '.');
    if (v->n < CLUSTER_MAX_NODES && node) {
        snprintf(v->values[v->n], sizeof v->values[v->n], "%s", value);
        snprintf(v->nodes[v->n], sizeof v->nodes[v->n], "%s", node + 1);
        v->n++;
    }
}

static void count_node(void *data, const char *key, const char *value)
{
    (void)key;
    (void)value;
    (*(size_t *)data)++;
}

int cluster_kv_check(cluster_conn *c, const char *what, uint64_t height, const char *mine,
                     char *err, size_t errlen)
{
    char pattern[160];
    snprintf(pattern, sizeof pattern, "%s.%llu.*", what, (unsigned long long)height);
    votes v = {0};
    size_t known = 0;
    if (kv_each(c, pattern, add_vote, &v, err, errlen) != 0 ||
        kv_each(c, "node.*", count_node, &known, err, errlen) != 0)
        return -1;
    /* The nodes that count: those that ever reported, or voted here. A
     * node that stopped for good still counts, so a majority is one of
     * all nodes, never of whoever happens to be ahead. */
    size_t total = known > v.n ? known : v.n;
    size_t same = 0, best = 0, best_i = 0;
    for (size_t i = 0; i < v.n; i++) {
        size_t k = 0;
        for (size_t j = 0; j < v.n; j++)
            k += strcmp(v.values[i], v.values[j]) == 0;
        if (k > best)
            best = k, best_i = i;
        same += strcmp(v.values[i], mine) == 0;
    }
    if (best * 2 > total && strcmp(v.values[best_i], mine) != 0) {
        snprintf(err, errlen, "diverged at height %llu: this node's %s hash %s, the majority's "
                 "(%zu of %zu nodes, e.g. %s) %s", (unsigned long long)height, what, mine, best,
                 total, v.nodes[best_i], v.values[best_i]);
        return 1;
    }
    if (best * 2 <= total) {
        if (v.n < total)
            return 3; /* not decided yet: a node ahead waits for the others */
        snprintf(err, errlen, "diverged at height %llu: no majority among %zu nodes for the %s "
                 "hash", (unsigned long long)height, v.n, what);
        return 1;
    }
    if (same == v.n)
        return 0;
    /* This node is with the majority: the other one stops. */
    for (size_t i = 0; i < v.n; i++)
        if (strcmp(v.values[i], mine) != 0)
            snprintf(err, errlen, "height %llu: node %s has another %s hash than %zu of %zu nodes "
                     "(it should stop)", (unsigned long long)height, v.nodes[i], what, best, total);
    return 2;
}

int cluster_kv_vote(cluster_conn *c, const char *what, const char *node, uint64_t height,
                    const char *mine, char *err, size_t errlen)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%llu.%s", what, (unsigned long long)height, node);
    if (kv_put(c, key, mine, err, errlen) != 0)
        return -1;
    return cluster_kv_check(c, what, height, mine, err, errlen);
}

typedef struct {
    json_t *nodes;
} node_list;

static void add_node(void *data, const char *key, const char *value)
{
    (void)key;
    node_list *l = data;
    json_t *o = json_loads(value, 0, NULL);
    if (o)
        json_array_append_new(l->nodes, o);
}

static int cmp_node(const void *a, const void *b)
{
    json_t *const *x = a, *const *y = b;
    return strcmp(json_string_value(json_object_get(*x, "node")),
                  json_string_value(json_object_get(*y, "node")));
}

int cluster_kv_status(cluster_conn *c, json_t **nodes_out, int *agree, char *err, size_t errlen)
{
    node_list l = {json_array()};
    *agree = 1;
    if (!l.nodes || kv_each(c, "node.*", add_node, &l, err, errlen) != 0) {
        json_decref(l.nodes);
        return -1;
    }
    size_t n = json_array_size(l.nodes);
    json_t **sorted = calloc(n ? n : 1, sizeof *sorted);
    int64_t min_h = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        sorted[i] = json_array_get(l.nodes, i);
        json_t *name = json_object_get(sorted[i], "node");
        if (!json_is_string(name)) {
            snprintf(err, errlen, "%s: a node record without a name", c->bucket);
            free(sorted);
            json_decref(l.nodes);
            return -1;
        }
        int64_t h = (int64_t)json_integer_value(json_object_get(sorted[i], "height"));
        if (h < min_h)
            min_h = h;
    }
    qsort(sorted, n, sizeof *sorted, cmp_node);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(out, sorted[i]);
    free(sorted);
    json_decref(l.nodes);
    /* Agreement: every node that reported a hash for the lowest common
     * height reported the same one. */
    if (n > 1 && min_h >= 0 && min_h != INT64_MAX) {
        char pattern[64];
        snprintf(pattern, sizeof pattern, "block.%lld.*", (long long)min_h);
        votes v = {0};
        if (kv_each(c, pattern, add_vote, &v, err, errlen) != 0) {
            json_decref(out);
            return -1;
        }
        for (size_t i = 1; i < v.n; i++)
            if (strcmp(v.values[i], v.values[0]) != 0)
                *agree = 0;
    }
    *nodes_out = out;
    return 0;
}
