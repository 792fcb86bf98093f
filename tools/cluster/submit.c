/*
 * submit.c — publishing records to the stream (cluster.h).
 *
 * A record's message id is the hex SHA-256 of its bytes (not its txid: a
 * malformed record has none, and two different byte strings are two
 * records even when they name the same transaction). JetStream drops a
 * second message with the same id inside the stream's duplicate window
 * and acknowledges it with the first one's sequence, so resending is
 * always safe and a client that resubmits learns where its record is.
 *
 * Publishing is asynchronous (18-28k msg/s on three loopback servers
 * against ~2k/s for one synchronous publish at a time) with a bounded
 * wait per attempt: in libnats 3.4.1 an async publish without MaxWait is
 * never timed out, so a message lost in a leader change would be waited
 * for forever. The ack handler only records the outcome; failed messages
 * are resent by the publishing thread with a fresh jsPubOptions (the
 * options rewrite the message's headers, and resending from inside the
 * handler re-enters the library).
 */
#include "cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOMBSTONE ((natsMsg *)(uintptr_t)1)

/* The messages in flight: msg pointer -> its record (open addressing). */
typedef struct {
    natsMsg *key;
    cluster_pub *rec;
} inflight;

struct cluster_publisher {
    cluster_conn *c;
    jsCtx *js;
    int64_t max_wait_ms, total_ms;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    inflight *slots;
    size_t cap, used;            /* used counts tombstones too */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t slot_hash(const natsMsg *m, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)m;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

static int slots_grow(cluster_publisher *p)
{
    size_t cap = p->cap ? p->cap * 2 : 1024;
    inflight *grown = calloc(cap, sizeof *grown);
    if (!grown)
        return -1;
    size_t used = 0;
    for (size_t i = 0; i < p->cap; i++) {
        inflight *e = &p->slots[i];
        if (!e->key || e->key == TOMBSTONE)
            continue;
        size_t j = slot_hash(e->key, cap);
        while (grown[j].key)
            j = (j + 1) & (cap - 1);
        grown[j] = *e;
        used++;
    }
    free(p->slots);
    p->slots = grown;
    p->cap = cap;
    p->used = used;
    return 0;
}

/* Under lock. */
static int slot_put(cluster_publisher *p, natsMsg *m, cluster_pub *rec)
{
    if ((p->used + 1) * 2 > p->cap && slots_grow(p) != 0)
        return -1;
    size_t j = slot_hash(m, p->cap);
    while (p->slots[j].key && p->slots[j].key != TOMBSTONE)
        j = (j + 1) & (p->cap - 1);
    if (!p->slots[j].key)
        p->used++;
    p->slots[j].key = m;
    p->slots[j].rec = rec;
    return 0;
}

/* Under lock: take m's record out of the table (NULL when absent). */
static cluster_pub *slot_take(cluster_publisher *p, natsMsg *m)
{
    if (!p->cap)
        return NULL;
    for (size_t j = slot_hash(m, p->cap); p->slots[j].key; j = (j + 1) & (p->cap - 1)) {
        if (p->slots[j].key == m) {
            cluster_pub *rec = p->slots[j].rec;
            p->slots[j].key = TOMBSTONE;
            p->slots[j].rec = NULL;
            return rec;
        }
    }
    return NULL;
}

/* On a library thread: note the outcome, nothing else. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    cluster_publisher *p = closure;
    pthread_mutex_lock(&p->lock);
    cluster_pub *rec = slot_take(p, msg);
    if (rec && pa && !pae) {
        rec->seq = pa->Sequence;
        rec->duplicate = pa->Duplicate;
        rec->ok = 1;
        rec->msg = NULL;
        natsMsg_Destroy(msg);
    } else if (rec) {
        rec->failed = 1; /* rec->msg is still msg: the publisher resends it */
    } else {
        natsMsg_Destroy(msg);
    }
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

cluster_publisher *cluster_publisher_new(cluster_conn *c, int64_t max_wait_ms, int64_t total_ms,
                                         char *err, size_t errlen)
{
    cluster_publisher *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->c = c;
    p->max_wait_ms = max_wait_ms;
    p->total_ms = total_ms;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = max_wait_ms;
    jo.PublishAsync.MaxPending = 8192;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = p;
    jo.PublishAsync.StallWait = max_wait_ms;
    natsStatus s = natsConnection_JetStream(&p->js, c->nc, &jo);
    if (s != NATS_OK) {
        snprintf(err, errlen, "JetStream: %s", natsStatus_GetText(s));
        cluster_publisher_free(p);
        return NULL;
    }
    return p;
}

void cluster_publisher_free(cluster_publisher *p)
{
    if (!p)
        return;
    if (p->js) {
        /* Every publish waited for its outcome: nothing is in flight. */
        jsCtx_Destroy(p->js);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->slots);
    free(p);
}

static natsMsg *tx_msg(const cluster_conn *c, const uint8_t *bytes, size_t size)
{
    natsMsg *msg = NULL;
    char id[65];
    cluster_sha256_hex(id, bytes, size);
    natsStatus s = natsMsg_Create(&msg, c->subject, NULL, (const char *)bytes, (int)size);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, CLUSTER_KIND_HEADER, "tx");
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
    if (s != NATS_OK) {
        natsMsg_Destroy(msg);
        return NULL;
    }
    return msg;
}

size_t cluster_publish(cluster_publisher *p, cluster_pub *recs, size_t n)
{
    double deadline = now_s() + (double)p->total_ms / 1000.0;
    for (size_t i = 0; i < n; i++) {
        recs[i].ok = recs[i].failed = recs[i].duplicate = 0;
        recs[i].seq = 0;
        recs[i].msg = tx_msg(p->c, recs[i].bytes, recs[i].size);
        recs[i].failed = recs[i].msg == NULL;
    }
    for (int attempt = 0;; attempt++) {
        size_t sent = 0;
        for (size_t i = 0; i < n; i++) {
            cluster_pub *r = &recs[i];
            if (r->ok || !r->msg || (attempt > 0 && !r->failed))
                continue;
            pthread_mutex_lock(&p->lock);
            r->failed = 0;
            int put = slot_put(p, r->msg, r);
            pthread_mutex_unlock(&p->lock);
            if (put != 0) {
                r->failed = 1;
                continue;
            }
            /* Fresh options for every attempt: the library writes them
             * into the message's headers. */
            jsPubOptions o;
            jsPubOptions_Init(&o);
            o.MaxWait = p->max_wait_ms;
            natsMsg *m = r->msg;
            natsStatus s = js_PublishMsgAsync(p->js, &m, &o);
            if (s != NATS_OK) {
                pthread_mutex_lock(&p->lock);
                if (slot_take(p, r->msg) == r)
                    r->failed = 1; /* never handed over: still ours */
                pthread_mutex_unlock(&p->lock);
            } else {
                sent++;
            }
        }
        /* Wait for every outcome: a message in flight belongs to the
         * library, which calls back within MaxWait. */
        pthread_mutex_lock(&p->lock);
        for (;;) {
            size_t flying = 0;
            for (size_t i = 0; i < n; i++)
                flying += !recs[i].ok && !recs[i].failed && recs[i].msg;
            if (!flying)
                break;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 200000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p->cond, &p->lock, &until);
        }
        pthread_mutex_unlock(&p->lock);
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += recs[i].ok;
        if (done == n || now_s() >= deadline)
            break;
        /* A leader change stalls writes for seconds: do not spin. */
        struct timespec pause = {0, sent ? 100000000L : 250000000L};
        nanosleep(&pause, NULL);
    }
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        done += recs[i].ok;
        if (recs[i].msg && !recs[i].ok) {
            natsMsg_Destroy(recs[i].msg);
            recs[i].msg = NULL;
        }
    }
    return done;
}

int cluster_publish_cut(cluster_conn *c, uint64_t height, uint64_t *seq, char *err,
                        size_t errlen)
{
    char h[32], id[48];
    snprintf(h, sizeof h, "%llu", (unsigned long long)height);
    snprintf(id, sizeof id, "cut-%llu", (unsigned long long)height);
    jsPubAck *ack = NULL;
    natsStatus s = NATS_ERR;
    /* Tried again for up to a minute: a leader election stalls writes for
     * seconds, and the message id makes a resend harmless. */
    for (int64_t until = nats_Now() + 60000; s != NATS_OK && nats_Now() < until;) {
        natsMsg *msg = NULL;
        jsErrCode jerr = 0;
        s = natsMsg_Create(&msg, c->subject, NULL, h, (int)strlen(h));
        if (s == NATS_OK)
            s = natsMsgHeader_Set(msg, CLUSTER_KIND_HEADER, "cut");
        if (s == NATS_OK)
            s = natsMsgHeader_Set(msg, CLUSTER_HEIGHT_HEADER, h);
        if (s == NATS_OK) {
            jsPubOptions o;
            jsPubOptions_Init(&o);
            o.MsgId = id;
            o.MaxWait = 5000;
            s = js_PublishMsg(&ack, c->js, msg, &o, &jerr);
        }
        natsMsg_Destroy(msg);
        if (s != NATS_OK)
            nats_Sleep(200);
    }
    if (s != NATS_OK) {
        snprintf(err, errlen, "publishing the cut of block %llu: %s", (unsigned long long)height,
                 natsStatus_GetText(s));
        return -1;
    }
    if (seq)
        *seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    return 0;
}
