/*
 * fuzz_serve_decode.c — libFuzzer target for what `postmark serve` reads
 * from a request before anything else happens (tools/serve/decode.c):
 * the route of a method and path, heights and outpoints in paths, a JSON
 * {"tx": HEX} body, a body of framed records.
 *
 * The input's first byte chooses the decoder; the rest is the body, or a
 * string (cut at its first NUL) for the path decoders. Invariants: framed
 * records account for every byte of an accepted body, each inside it and
 * in order; a decoded {"tx"} is half its hex's length and encodes back to
 * it; a decoded outpoint or height prints back to what was parsed (either
 * hex case); a route matches only its method's table entry. Nothing may
 * crash, hang or leak.
 */
#include "serve.h"

#include "cliutil.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void no_handler(serve *s, const http_request *req, http_reply *out)
{
    (void)s, (void)req, (void)out;
}

/* The shapes of serve's table: exact paths, prefixes, "/" (exact). */
static const route table[] = {
    {"POST", "/v1/tx", "tx", 1, no_handler},
    {"GET", "/v1/tx/", "tx_status", 0, no_handler},
    {"GET", "/v1/blocks", "blocks", 0, no_handler},
    {"GET", "/v1/block/", "block", 0, no_handler},
    {"GET", "/", "explorer", 0, no_handler},
};

static void check_frames(const uint8_t *body, size_t size)
{
    size_t n;
    char err[160];
    if (decode_frames(body, size, NULL, NULL, &n, err, sizeof err) != 0) {
        if (!err[0])
            abort();
        return;
    }
    const uint8_t **recs = malloc((n ? n : 1) * sizeof *recs);
    size_t *sizes = malloc((n ? n : 1) * sizeof *sizes), again, at = 0;
    if (!recs || !sizes || decode_frames(body, size, recs, sizes, &again, err, sizeof err) != 0 ||
        again != n)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (recs[i] != body + at + 4)
            abort();
        at += 4 + sizes[i];
    }
    if (at != size)
        abort();
    free(recs);
    free(sizes);
}

static void check_json_tx(const uint8_t *body, size_t size)
{
    uint8_t *bytes;
    size_t n;
    const char *why = decode_json_tx(body, size, &bytes, &n);
    if (why) {
        if (bytes)
            abort();
        return;
    }
    if (!bytes || n == 0)
        abort();
    /* The hex it came from is in the body, in either case. */
    char *hex = malloc(2 * n + 1);
    if (!hex)
        abort();
    pm_cli_hex(hex, bytes, n);
    int found = 0;
    for (size_t i = 0; i + 2 * n <= size && !found; i++)
        found = strncasecmp((const char *)body + i, hex, 2 * n) == 0;
    if (!found)
        abort();
    free(hex);
    free(bytes);
}

static void check_path(const char *text)
{
    uint64_t h;
    if (decode_height(text, &h)) {
        char back[32];
        snprintf(back, sizeof back, "%llu", (unsigned long long)h);
        if (strcmp(back, text) != 0 && !(text[0] == '0' && strspn(text, "0123456789") == strlen(text)))
            abort();
    }
    pm_outpoint op;
    if (decode_outpoint(text, &op)) {
        char hex[65];
        if (strncasecmp(text, pm_cli_hex(hex, op.txid, 32), 64) != 0 || text[64] != ':')
            abort();
    }
    for (int m = 0; m < 2; m++) {
        int status;
        const char *method = m ? "POST" : "GET";
        const route *r = route_match(table, sizeof table / sizeof table[0], method, text, &status);
        if (r ? strcmp(r->method, method) != 0 : status != 404 && status != 405)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0:
        check_frames(body, n);
        break;
    case 1:
        check_json_tx(body, n);
        break;
    default: {
        char *text = malloc(n + 1);
        if (!text)
            return 0;
        memcpy(text, body, n);
        text[n] = 0;
        check_path(text);
        free(text);
    }
    }
    return 0;
}
