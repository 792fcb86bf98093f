/*
 * hash.c — tagged SHA-256 over OpenSSL's EVP interface (see hash.h).
 *
 * Why midstates: H(tag, x) = SHA256(SHA256(tag) || SHA256(tag) || x). The
 * 64-byte prefix is exactly one SHA-256 block, so a context that has
 * absorbed it can be copied for every hash, saving one compression of the
 * three or four a transaction hash needs.
 */
#include "hash.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static const char *const tag_names[PM_TAG_COUNT] = {
    "postmark/chain", "postmark/txid",  "postmark/sighash", "postmark/leaf",
    "postmark/node",  "postmark/block", "postmark/utxo",
};

struct pm_tag_midstates {
    EVP_MD_CTX *tag[PM_TAG_COUNT];
};

struct pm_hasher {
    const pm_tag_midstates *midstates;
    EVP_MD_CTX *work;
};

/* SHA256(tag) || SHA256(tag) absorbed into a fresh context. */
static int absorb_tag_prefix(EVP_MD_CTX *md, const char *tag)
{
    uint8_t tag_hash[32];
    unsigned int len = 0;
    if (!EVP_Digest(tag, strlen(tag), tag_hash, &len, EVP_sha256(), NULL))
        return 0;
    return EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, tag_hash, 32) &&
           EVP_DigestUpdate(md, tag_hash, 32);
}

pm_tag_midstates *pm_tag_midstates_create(void)
{
    pm_tag_midstates *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    for (int i = 0; i < PM_TAG_COUNT; i++) {
        m->tag[i] = EVP_MD_CTX_new();
        if (!m->tag[i] || !absorb_tag_prefix(m->tag[i], tag_names[i])) {
            pm_tag_midstates_destroy(m);
            return NULL;
        }
    }
    return m;
}

void pm_tag_midstates_destroy(pm_tag_midstates *m)
{
    if (!m)
        return;
    for (int i = 0; i < PM_TAG_COUNT; i++)
        EVP_MD_CTX_free(m->tag[i]);
    free(m);
}

pm_hasher *pm_hasher_create(const pm_tag_midstates *m)
{
    pm_hasher *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->midstates = m;
    h->work = EVP_MD_CTX_new();
    if (!h->work) {
        free(h);
        return NULL;
    }
    return h;
}

void pm_hasher_destroy(pm_hasher *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->work);
    free(h);
}

int pm_hash_begin(pm_hasher *h, pm_tag tag)
{
    return EVP_MD_CTX_copy_ex(h->work, h->midstates->tag[tag]);
}

int pm_hash_update(pm_hasher *h, const uint8_t *data, size_t len)
{
    return len == 0 || EVP_DigestUpdate(h->work, data, len);
}

int pm_hash_final(pm_hasher *h, uint8_t out[32])
{
    unsigned int len = 0;
    return EVP_DigestFinal_ex(h->work, out, &len) && len == 32;
}

/* H(tag, a || b): either part may be empty (NULL, 0). Returns 1, or 0 if
 * OpenSSL fails (it does not, once the hasher exists, but it is checked).
 * File-local: a compiler that inlines it everywhere leaves no unreachable
 * copy in the library (tests/boundary.sh). */
static int hash_tagged2(pm_hasher *h, uint8_t out[32], pm_tag tag, const uint8_t *a,
                        size_t alen, const uint8_t *b, size_t blen)
{
    return pm_hash_begin(h, tag) && pm_hash_update(h, a, alen) && pm_hash_update(h, b, blen) &&
           pm_hash_final(h, out);
}

int pm_hash_tagged_any(pm_hasher *h, uint8_t out[32], const char *tag, const uint8_t *data,
                       size_t len)
{
    return absorb_tag_prefix(h->work, tag) && pm_hash_update(h, data, len) &&
           pm_hash_final(h, out);
}

int pm_hash_txid(pm_hasher *h, uint8_t out[32], const pm_tx *tx)
{
    return hash_tagged2(h, out, PM_TAG_TXID, tx->bytes, tx->unsigned_size, NULL, 0);
}

int pm_hash_sighash(pm_hasher *h, uint8_t out[32], const uint8_t chain_id[32],
                    const uint8_t txid[32])
{
    return hash_tagged2(h, out, PM_TAG_SIGHASH, chain_id, 32, txid, 32);
}

int pm_hash_leaf(pm_hasher *h, uint8_t out[32], const pm_tx *tx, const uint8_t txid[32])
{
    return hash_tagged2(h, out, PM_TAG_LEAF, txid, 32, tx->sigs, tx->n_sigs * PM_SIG_SIZE);
}

int pm_hash_block(pm_hasher *h, uint8_t out[32], const uint8_t header[80])
{
    return hash_tagged2(h, out, PM_TAG_BLOCK, header, 80, NULL, 0);
}

int pm_hash_chain_id(pm_hasher *h, uint8_t out[32], const pm_chain_params *params)
{
    return hash_tagged2(h, out, PM_TAG_CHAIN, params->network, PM_NETWORK_SIZE,
                           params->governance_key, PM_KEY_SIZE);
}

struct pm_hash_prefix {
    EVP_MD_CTX *md;
};

pm_hash_prefix *pm_hash_prefix_create(const uint8_t prefix[64])
{
    pm_hash_prefix *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->md = EVP_MD_CTX_new();
    if (!p->md || !EVP_DigestInit_ex(p->md, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(p->md, prefix, 64)) {
        pm_hash_prefix_destroy(p);
        return NULL;
    }
    return p;
}

void pm_hash_prefix_destroy(pm_hash_prefix *p)
{
    if (!p)
        return;
    EVP_MD_CTX_free(p->md);
    free(p);
}

int pm_hash_prefixed(pm_hasher *h, uint8_t out[32], const pm_hash_prefix *p, const uint8_t *a,
                     size_t alen, const uint8_t *b, size_t blen)
{
    return EVP_MD_CTX_copy_ex(h->work, p->md) && pm_hash_update(h, a, alen) &&
           pm_hash_update(h, b, blen) && pm_hash_final(h, out);
}

/* MTH(D[0:n]) with k the largest power of two below n; the recursion
 * depth is log2(n) <= 16 for a block, so it stays on the stack. */
int pm_hash_merkle(pm_hasher *h, uint8_t out[32], const uint8_t (*leaves)[32], size_t n)
{
    if (n == 0)
        return 0;
    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return 1;
    }
    size_t k = 1;
    while (k * 2 < n)
        k *= 2;
    uint8_t left[32], right[32];
    return pm_hash_merkle(h, left, leaves, k) && pm_hash_merkle(h, right, leaves + k, n - k) &&
           hash_tagged2(h, out, PM_TAG_NODE, left, 32, right, 32);
}
