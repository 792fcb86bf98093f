/*
 * stream.c — the connection, the stream, its KV bucket, reading messages
 * (cluster.h). Everything here is a thin, checked layer over libnats
 * 3.4.1; the choices that matter:
 *  - reads that must see the committed log (the resume check, export's
 *    length) go to the stream leader (js_GetMsg, stream info), never to a
 *    replica that may lag;
 *  - the consumer is an ordered push consumer: libnats 3.4.1's
 *    natsSubscription_Fetch overflows its heap with buffered messages, and
 *    an ordered consumer needs no acks and restarts itself on a gap.
 */
#include "cluster.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void nats_error(char *err, size_t errlen, const char *what, natsStatus s, jsErrCode jerr)
{
    if (jerr)
        snprintf(err, errlen, "%s: %s (JetStream error %d)", what, natsStatus_GetText(s), (int)jerr);
    else
        snprintf(err, errlen, "%s: %s", what, natsStatus_GetText(s));
}

static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 48)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

int cluster_connect(cluster_conn *c, const char *urls, const char *stream, char *err,
                    size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (!valid_name(stream)) {
        snprintf(err, errlen, "--stream %s: expected 1 to 48 letters, digits, '-' or '_'", stream);
        return -1;
    }
    snprintf(c->stream, sizeof c->stream, "%s", stream);
    snprintf(c->subject, sizeof c->subject, "postmark.%s", stream);
    snprintf(c->bucket, sizeof c->bucket, "postmark-%s", stream);
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    /* URLS: "nats://a:1,nats://b:2" -> the server list. */
    char *copy = strdup(urls), *save = NULL;
    const char *list[16];
    int n = 0;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && n < 16; t = strtok_r(NULL, ",", &save))
        if (*t)
            list[n++] = t;
    if (s == NATS_OK)
        s = n ? natsOptions_SetServers(o, list, n) : NATS_INVALID_ARG;
    /* Random order spreads the nodes over the servers. */
    if (s == NATS_OK)
        s = natsOptions_SetNoRandomize(o, false);
    /* A node outlives any one server: reconnect forever, and keep what
     * is published meanwhile buffered (the publisher bounds its waits). */
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, false, NULL, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 3000);
    if (s == NATS_OK)
        s = natsConnection_Connect(&c->nc, o);
    natsOptions_Destroy(o);
    free(copy);
    if (s != NATS_OK) {
        nats_error(err, errlen, urls, s, 0);
        return -1;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000; /* a leader election takes 5-7 s on loopback */
    s = natsConnection_JetStream(&c->js, c->nc, &jo);
    if (s != NATS_OK) {
        nats_error(err, errlen, "JetStream", s, 0);
        cluster_close(c);
        return -1;
    }
    return 0;
}

void cluster_close(cluster_conn *c)
{
    if (c->kv)
        kvStore_Destroy(c->kv);
    if (c->js)
        jsCtx_Destroy(c->js);
    if (c->nc) {
        natsConnection_Close(c->nc);
        natsConnection_Destroy(c->nc);
    }
    memset(c, 0, sizeof *c);
}

void cluster_sha256(uint8_t out[32], const uint8_t *bytes, size_t size)
{
    unsigned int n = 32;
    EVP_Digest(bytes, size, out, &n, EVP_sha256(), NULL);
}

void cluster_sha256_hex(char out[65], const uint8_t *bytes, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t h[32];
    cluster_sha256(h, bytes, size);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[64] = 0;
}

void cluster_msg_from(cluster_msg *m, natsMsg *msg, uint64_t seq)
{
    memset(m, 0, sizeof *m);
    m->msg = msg;
    m->seq = seq;
    m->data = (const uint8_t *)natsMsg_GetData(msg);
    m->size = (size_t)natsMsg_GetDataLength(msg);
    if (!m->seq) {
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
            m->seq = meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
        } else {
            m->seq = natsMsg_GetSequence(msg);
        }
    }
    const char *kind = NULL;
    if (natsMsgHeader_Get(msg, CLUSTER_KIND_HEADER, &kind) != NATS_OK || !kind)
        return;
    if (!strcmp(kind, "tx"))
        m->kind = CLUSTER_MSG_TX;
    else if (!strcmp(kind, "header") && m->size == PM_FILE_HEADER_SIZE)
        m->kind = CLUSTER_MSG_HEADER;
    else if (!strcmp(kind, "cut")) {
        const char *h = NULL;
        char *end;
        if (natsMsgHeader_Get(msg, CLUSTER_HEIGHT_HEADER, &h) == NATS_OK && h && *h) {
            m->cut_height = strtoull(h, &end, 10);
            if (!*end)
                m->kind = CLUSTER_MSG_CUT;
        }
    }
    /* Anything else stays CLUSTER_MSG_BAD: a node stops on it. */
}

void cluster_msg_free(cluster_msg *m)
{
    if (m->msg)
        natsMsg_Destroy(m->msg);
    memset(m, 0, sizeof *m);
}

int cluster_stream_state(cluster_conn *c, uint64_t *last_seq, char *leader, size_t cap,
                         int *lagging, char *err, size_t errlen)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, c->js, c->stream, NULL, &jerr);
    if (s != NATS_OK) {
        nats_error(err, errlen, c->stream, s, jerr);
        return -1;
    }
    *last_seq = si->State.LastSeq;
    if (leader && cap)
        snprintf(leader, cap, "%s", si->Cluster && si->Cluster->Leader ? si->Cluster->Leader : "");
    if (lagging) {
        *lagging = 0;
        for (int i = 0; si->Cluster && i < si->Cluster->ReplicasLen; i++)
            *lagging += !si->Cluster->Replicas[i]->Current || si->Cluster->Replicas[i]->Offline;
    }
    jsStreamInfo_Destroy(si);
    return 0;
}

int cluster_get(cluster_conn *c, uint64_t seq, cluster_msg *m, char *err, size_t errlen)
{
    natsMsg *msg = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(&msg, c->js, c->stream, seq, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
        return 0;
    }
    if (s != NATS_OK) {
        nats_error(err, errlen, "reading the stream", s, jerr);
        return -1;
    }
    cluster_msg_from(m, msg, seq);
    return 1;
}

static int header_msg(cluster_conn *c, natsMsg **out, const uint8_t header[PM_FILE_HEADER_SIZE])
{
    natsMsg *msg = NULL;
    char id[65];
    cluster_sha256_hex(id, header, PM_FILE_HEADER_SIZE);
    natsStatus s = natsMsg_Create(&msg, c->subject, NULL, (const char *)header, PM_FILE_HEADER_SIZE);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, CLUSTER_KIND_HEADER, "header");
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
    /* libnats only sends an expected last sequence above 0: set the
     * header itself, so a second header can never follow records. */
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, "Nats-Expected-Last-Sequence", "0");
    *out = msg;
    return s == NATS_OK ? 0 : -1;
}

/* One attempt of cluster_stream_create; *timed_out says a JetStream API
 * call timed out (a stream's leader election, a loaded server). */
static int stream_create_once(cluster_conn *c, const uint8_t header[PM_FILE_HEADER_SIZE],
                              int replicas, int64_t dup_ms, int *timed_out, char *err,
                              size_t errlen)
{
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[1] = {c->subject};
    cfg.Name = c->stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Retention = js_LimitsPolicy;
    cfg.MaxMsgs = cfg.MaxBytes = -1;
    cfg.MaxAge = 0;
    cfg.Replicas = replicas;
    cfg.DenyDelete = true;
    cfg.DenyPurge = true;
    cfg.Duplicates = dup_ms * 1000000; /* nanoseconds */
    cfg.AllowDirect = false;           /* every read goes to the leader */
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddStream(&si, c->js, &cfg, NULL, &jerr);
    if (s != NATS_OK && jerr != JSStreamNameExistErr) {
        *timed_out = s == NATS_TIMEOUT;
        nats_error(err, errlen, "creating the stream", s, jerr);
        return -1;
    }
    if (si)
        jsStreamInfo_Destroy(si);

    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = c->bucket;
    kc.History = 1;
    kc.StorageType = js_FileStorage;
    kc.Replicas = replicas;
    kvStore *kv = NULL;
    s = js_CreateKeyValue(&kv, c->js, &kc);
    if (s != NATS_OK) {
        *timed_out = s == NATS_TIMEOUT;
        nats_error(err, errlen, "creating the KV bucket", s, 0);
        return -1;
    }
    kvStore_Destroy(kv);

    natsMsg *msg = NULL;
    jsPubAck *ack = NULL;
    jerr = 0;
    if (header_msg(c, &msg, header) != 0) {
        natsMsg_Destroy(msg);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s = js_PublishMsg(&ack, c->js, msg, NULL, &jerr);
    natsMsg_Destroy(msg);
    if (ack)
        jsPubAck_Destroy(ack);
    /* Published or refused (not empty; or a duplicate, which the server
     * answers before checking the expected sequence): either way the
     * stream is this chain's only when seq 1 is this header. */
    cluster_msg m;
    int got = cluster_get(c, 1, &m, err, errlen);
    if (got < 0)
        return -1;
    int same = got && m.kind == CLUSTER_MSG_HEADER && memcmp(m.data, header, PM_FILE_HEADER_SIZE) == 0;
    if (got)
        cluster_msg_free(&m);
    if (!same) {
        snprintf(err, errlen, "stream %s already holds another chain (its first message is not "
                 "this header)", c->stream);
        return -1;
    }
    return 0;
}

int cluster_stream_create(cluster_conn *c, const uint8_t header[PM_FILE_HEADER_SIZE],
                          int replicas, int64_t dup_ms, char *err, size_t errlen)
{
    /* Every step is idempotent (an existing stream or bucket is taken, the
     * header goes in only as seq 1), so a timed-out attempt is made again,
     * for up to CREATE_TIMEOUT_TRIES attempts (each waits up to the
     * context's 10 s). */
    enum { CREATE_TIMEOUT_TRIES = 3 };
    for (int attempt = 1;; attempt++) {
        int timed_out = 0;
        if (stream_create_once(c, header, replicas, dup_ms, &timed_out, err, errlen) == 0)
            return 0;
        if (!timed_out || attempt == CREATE_TIMEOUT_TRIES)
            return -1;
    }
}

int cluster_kv_open(cluster_conn *c, char *err, size_t errlen)
{
    if (c->kv)
        return 0;
    natsStatus s = js_KeyValue(&c->kv, c->js, c->bucket);
    if (s != NATS_OK) {
        nats_error(err, errlen, c->bucket, s, 0);
        return -1;
    }
    return 0;
}

int cluster_consume(cluster_conn *c, natsSubscription **sub, uint64_t from, char *err,
                    size_t errlen)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = from;
    jsErrCode jerr = 0;
    natsStatus s = js_SubscribeSync(sub, c->js, c->subject, NULL, &so, &jerr);
    if (s != NATS_OK) {
        nats_error(err, errlen, "consuming the stream", s, jerr);
        return -1;
    }
    /* The whole stream may be read back at once (export, a new node):
     * let the library buffer generously rather than drop. */
    natsSubscription_SetPendingLimits(*sub, 1 << 20, 1 << 30);
    return 0;
}

int cluster_next(natsSubscription *sub, cluster_msg *m, int64_t timeout_ms, char *err,
                 size_t errlen)
{
    natsMsg *msg = NULL;
    natsStatus s = natsSubscription_NextMsg(&msg, sub, timeout_ms);
    if (s == NATS_TIMEOUT) {
        return 0;
    }
    if (s != NATS_OK) {
        nats_error(err, errlen, "reading the stream", s, 0);
        return -1;
    }
    cluster_msg_from(m, msg, 0);
    return 1;
}
