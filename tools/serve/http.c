/*
 * http.c — the HTTP side of `postmark serve`, on libmicrohttpd: one thread
 * per connection (a submission waits for its group commit, an SSE stream
 * waits for blocks; both simply block), a connection limit, an idle
 * timeout (a client that stalls mid-request is dropped: slowloris), a
 * deadline for a whole request (a client trickling bytes gets 408, or is
 * cut off when it trickles its body), a
 * body limit (413, refused from Content-Length before reading when it
 * says so), bearer tokens on the write routes (401 without, 403 wrong).
 * The route table and the handlers are in routes.c.
 *
 * Shutdown (SIGINT/SIGTERM): the listening socket is closed first, SSE
 * streams end, requests in flight get their answers, then the service
 * closes and syncs its open block.
 */
#include "serve.h"

#include "cliutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    double started;              /* when its request line was read */
    int routed;                  /* the headers were seen (route found) */
    const route *route;
    size_t route_index;
    uint8_t *body;
    size_t size, cap;
    int too_big;
} conn_request;

static _Atomic long in_flight;

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    http_stream *st = cls;
    size_t n = st->next(st->state, buf, max);
    if (n == HTTP_STREAM_FAILED)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_free(void *cls)
{
    http_stream *st = cls;
    st->free_state(st->state);
    free(st);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, const conn_request *q, http_reply *r)
{
    struct MHD_Response *resp;
    if (r->stream.next) {
        http_stream *st = malloc(sizeof *st);
        if (!st) {
            r->stream.free_state(r->stream.state);
            return MHD_NO;
        }
        *st = r->stream;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_reader, st,
                                                 stream_free);
        if (resp)
            MHD_add_response_header(resp, "Cache-Control", "no-cache");
        else
            stream_free(st);
    } else {
        resp = MHD_create_response_from_buffer(r->size, r->body ? r->body : (char *)"",
                                               r->body ? MHD_RESPMEM_MUST_FREE
                                                       : MHD_RESPMEM_PERSISTENT);
        if (!resp)
            free(r->body);
    }
    if (!resp)
        return MHD_NO;
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->retry_after) {
        char secs[16];
        snprintf(secs, sizeof secs, "%u", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    metrics_count_request(q->route_index, r->status);
    return ok;
}

/* 0 when the request may go on; else the status to refuse it with. */
static int authorize(const serve *s, struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || strncmp(auth, "Bearer ", 7) != 0)
        return 401;
    const char *given = auth + 7;
    size_t n = strlen(s->token), m = strlen(given);
    /* The same time whatever the first difference. */
    unsigned char diff = n != m;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(s->token[i] ^ given[i < m ? i : 0]);
    return diff ? 403 : 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    serve *s = cls;
    conn_request *q = *con_cls;
    if (!q)
        return MHD_NO; /* on_uri could not allocate it */
    /* A client trickling its headers or body a byte at a time is never
     * idle long enough for the idle timeout: the whole request has a
     * deadline too. */
    int late = pm_cli_now() - q->started > (double)s->opts.request_timeout_s;
    if (!q->routed) {
        q->routed = 1;
        int status;
        q->route = route_find(method, url, &status);
        q->route_index = q->route ? (size_t)(q->route - serve_routes) : serve_route_count;
        const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        http_reply r = {0};
        if (late)
            reply_error(&r, 408, "the request took over %u s", s->opts.request_timeout_s);
        else if (!q->route)
            reply_error(&r, status, status == 404 ? "no such path: %s" : "method %s not allowed here",
                        status == 404 ? url : method);
        else if (q->route->write && s->token && (status = authorize(s, c)) != 0)
            reply_error(&r, status, status == 401 ? "missing bearer token" : "wrong bearer token");
        else if (!atomic_load(&s->ready)) {
            /* The chain and journal are still being validated: the engine
             * is not ours to read yet. */
            reply_error(&r, 503, "starting");
            r.retry_after = 1;
        } else if (length && strtoull(length, NULL, 10) > s->opts.max_body)
            reply_error(&r, 413, "body over the limit of %zu bytes", s->opts.max_body);
        /* Refused before the body is read: the connection is closed after
         * the answer. */
        return r.status ? send_reply(c, q, &r) : MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (late) {
            /* libmicrohttpd (0.9.75) cannot queue an answer in the middle
             * of a body: the connection is closed, counted as a 408. */
            metrics_count_request(q->route_index, 408);
            return MHD_NO;
        }
        if (q->too_big || q->size + n > s->opts.max_body) {
            q->too_big = 1;
            return MHD_YES;
        }
        if (q->size + n > q->cap) {
            size_t cap = q->cap ? q->cap : 4096;
            while (cap < q->size + n)
                cap *= 2;
            uint8_t *b = realloc(q->body, cap);
            if (!b)
                return MHD_NO;
            q->body = b;
            q->cap = cap;
        }
        memcpy(q->body + q->size, upload, n);
        q->size += n;
        return MHD_YES;
    }
    http_reply r = {0};
    if (q->too_big) {
        reply_error(&r, 413, "body over the limit of %zu bytes", s->opts.max_body);
        return send_reply(c, q, &r);
    }
    const char *qpath = strchr(url, '?'); /* MHD strips the query; keep it safe anyway */
    char *path = strndup(url, qpath ? (size_t)(qpath - url) : strlen(url));
    if (!path)
        return MHD_NO;
    http_request req = {
        .method = method,
        .path = path,
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT),
        .last_event_id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID"),
        .body = q->body,
        .body_size = q->size,
        .conn = c,
    };
    q->route->handle(s, &req, &r);
    free(path);
    return send_reply(c, q, &r);
}

const char *http_query(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Called when a request line is read: the request's state, and its clock,
 * start here. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls, (void)uri, (void)c;
    conn_request *q = calloc(1, sizeof *q);
    if (q) {
        q->started = pm_cli_now();
        atomic_fetch_add(&in_flight, 1);
    }
    return q;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)c, (void)code;
    conn_request *q = *con_cls;
    if (!q)
        return;
    free(q->body);
    free(q);
    *con_cls = NULL;
    atomic_fetch_sub(&in_flight, 1);
}

/* HOST:PORT, HOST an IPv4 address, a name, or [IPv6]. */
static int parse_listen(const char *listen, struct sockaddr_storage *addr, socklen_t *len)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1])
        return -1;
    char host[256];
    size_t hl = (size_t)(colon - listen);
    if (listen[0] == '[' && colon[-1] == ']')
        listen++, hl -= 2;
    if (hl >= sizeof host)
        return -1;
    memcpy(host, listen, hl);
    host[hl] = 0;
    uint64_t port;
    if (!pm_cli_parse_u64(colon + 1, 0, 65535, &port))
        return -1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return -1;
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    if (addr->ss_family == AF_INET)
        ((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
    return 0;
}

static int is_loopback(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *v6 = &((const struct sockaddr_in6 *)a)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(v6);
}

int http_run(serve *s)
{
    struct sockaddr_storage addr;
    socklen_t len;
    if (parse_listen(s->opts.listen, &addr, &len) != 0) {
        pm_cli_error("serve", "--listen %s: expected HOST:PORT", s->opts.listen);
        return -1;
    }
    if (!is_loopback(&addr) && !s->token) {
        pm_cli_error("serve", "--listen %s is not loopback: give --token-file for the write routes",
                     s->opts.listen);
        return -1;
    }
    /* Signals are taken by sigwait below: block them before any thread
     * starts, so that every thread inherits the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    int tls = s->opts.tls_cert != NULL;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0) |
                     (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    /* TLS (GnuTLS, inside libmicrohttpd) when a certificate is given. */
    struct MHD_OptionItem tls_options[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)s->opts.tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)s->opts.tls_cert},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, s->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        s->opts.timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_ARRAY,
        tls_options, MHD_OPTION_END);
    if (!d) {
        pm_cli_error("serve", "cannot listen on %s: %s", s->opts.listen, strerror(errno));
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char host[INET6_ADDRSTRLEN];
    const void *a = addr.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&addr)->sin_addr
                                              : (const void *)&((struct sockaddr_in6 *)&addr)->sin6_addr;
    inet_ntop(addr.ss_family, a, host, sizeof host);
    fprintf(stderr, addr.ss_family == AF_INET6 ? "listening on [%s]:%u\n" : "listening on %s:%u\n",
            host, info ? (unsigned)info->port : 0u);
    fflush(stderr);

    /* SIGINT/SIGTERM during the load stay pending (blocked above): they
     * stop the service as soon as it is loaded. */
    if (service_load(s) != 0) {
        MHD_stop_daemon(d);
        return -1;
    }
    uint8_t tip[32];
    int64_t height;
    pthread_mutex_lock(&s->engine_lock); /* the committer is running */
    pm_engine_tip(s->engine, tip, &height);
    pthread_mutex_unlock(&s->engine_lock);
    fprintf(stderr, "ready at height %lld\n", (long long)height);
    fflush(stderr);

    int sig = 0;
    sigwait(&stop, &sig);
    if (!s->opts.quiet)
        fprintf(stderr, "postmark serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    MHD_socket fd = MHD_quiesce_daemon(d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    serve_close_streams(s);
    /* Requests in flight finish (their group commit answers them); idle
     * keep-alive connections are closed by the stop. */
    for (int i = 0; i < 1000 && atomic_load(&in_flight) > 0; i++)
        usleep(10000);
    MHD_stop_daemon(d);
    return 0;
}
