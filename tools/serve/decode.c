/*
 * decode.c — what `postmark serve` reads from a request before anything
 * else happens: the route of a path, numbers and hashes in paths, a JSON
 * {"tx": HEX} body, a body of framed records. Pure functions of their
 * input (no service state), so that fuzz/fuzz_serve_decode.c can drive
 * them with any bytes.
 */
#include "serve.h"

#include "cliutil.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const route *route_match(const route *table, size_t n, const char *method, const char *path,
                         int *status)
{
    *status = 404;
    for (size_t i = 0; i < n; i++) {
        const route *r = &table[i];
        size_t len = strlen(r->prefix);
        int match = len > 1 && r->prefix[len - 1] == '/'
                        ? strncmp(path, r->prefix, len) == 0 && path[len]
                        : strcmp(path, r->prefix) == 0;
        if (!match)
            continue;
        if (strcmp(method, r->method) == 0)
            return r;
        *status = 405;
    }
    return NULL;
}

int decode_height(const char *text, uint64_t *h)
{
    return text && pm_cli_parse_u64(text, 0, UINT64_MAX / 2, h);
}

int decode_outpoint(const char *text, pm_outpoint *op)
{
    const char *colon = strchr(text, ':');
    char hex[65];
    uint64_t index;
    if (!colon || colon - text != 64)
        return 0;
    memcpy(hex, text, 64);
    hex[64] = 0;
    if (!pm_cli_unhex(op->txid, 32, hex) || !pm_cli_parse_u64(colon + 1, 0, UINT16_MAX, &index))
        return 0;
    op->index = (uint16_t)index;
    return 1;
}

const char *decode_json_tx(const uint8_t *body, size_t size, uint8_t **bytes, size_t *out)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)body, size, JSON_REJECT_DUPLICATES, &jerr);
    *bytes = NULL;
    *out = 0;
    if (!doc)
        return "malformed JSON";
    const char *why = NULL;
    json_t *tx = json_object_get(doc, "tx");
    const char *hex = json_is_string(tx) ? json_string_value(tx) : NULL;
    size_t len = hex ? json_string_length(tx) : 0;
    if (!json_is_object(doc))
        why = "expected a JSON object";
    else if (!hex)
        why = "expected {\"tx\": HEX}";
    else if (len == 0 || len % 2 || strlen(hex) != len)
        why = "tx: expected an even, non-zero number of hex digits";
    else if (!(*bytes = malloc(len / 2)))
        why = "out of memory";
    else if (!pm_cli_unhex(*bytes, len / 2, hex))
        why = "tx: not hex";
    if (why) {
        free(*bytes);
        *bytes = NULL;
    } else {
        *out = len / 2;
    }
    json_decref(doc);
    return why;
}

int decode_frames(const uint8_t *body, size_t size, const uint8_t **recs, size_t *sizes,
                  size_t *n, char *err, size_t errlen)
{
    size_t at = 0, k = 0;
    while (at < size) {
        if (size - at < 4) {
            snprintf(err, errlen, "record %zu at byte %zu: cut inside its length", k, at);
            return -1;
        }
        const uint8_t *p = body + at;
        uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24;
        if (len > size - at - 4) {
            snprintf(err, errlen, "record %zu at byte %zu: declares %u bytes, %zu follow", k, at,
                     len, size - at - 4);
            return -1;
        }
        if (recs) {
            recs[k] = p + 4;
            sizes[k] = len;
        }
        at += 4 + (size_t)len;
        k++;
    }
    *n = k;
    return 0;
}
