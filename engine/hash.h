/*
 * hash.h — the protocol's tagged SHA-256 hashes (BIP-340 style), on the
 * hot path.
 *
 * SHA-256 is OpenSSL 3's EVP implementation (SHA extensions where the CPU
 * has them). H(tag, data) starts from a midstate that has already absorbed
 * SHA256(tag) || SHA256(tag): one EVP_MD_CTX per tag is prepared when the
 * context is created and copied (EVP_MD_CTX_copy_ex) for every hash, so a
 * hash costs the data's compression rounds only.
 *
 * Memory and threads: pm_tag_midstates is built once and only read after
 * (any number of threads). A pm_hasher holds one thread's working
 * EVP_MD_CTX: one per thread, never shared.
 */
#ifndef PM_ENGINE_HASH_H
#define PM_ENGINE_HASH_H

#include "postmark.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PM_TAG_CHAIN = 0, /* "postmark/chain" */
    PM_TAG_TXID,      /* "postmark/txid" */
    PM_TAG_SIGHASH,   /* "postmark/sighash" */
    PM_TAG_LEAF,      /* "postmark/leaf" */
    PM_TAG_NODE,      /* "postmark/node" */
    PM_TAG_BLOCK,     /* "postmark/block" */
    PM_TAG_UTXO,      /* "postmark/utxo" */
    PM_TAG_COUNT
} pm_tag;

/* Opaque: the prepared midstate of every tag. */
typedef struct pm_tag_midstates pm_tag_midstates;

/* Returns NULL on allocation failure. */
pm_tag_midstates *pm_tag_midstates_create(void);
void pm_tag_midstates_destroy(pm_tag_midstates *m);

/* One thread's hashing state. */
typedef struct pm_hasher pm_hasher;

/* Returns NULL on allocation failure. `m` must outlive the hasher. */
pm_hasher *pm_hasher_create(const pm_tag_midstates *m);
void pm_hasher_destroy(pm_hasher *h);

/* Streaming form, for digests over many pieces (the UTXO digest). */
int pm_hash_begin(pm_hasher *h, pm_tag tag);
int pm_hash_update(pm_hasher *h, const uint8_t *data, size_t len);
int pm_hash_final(pm_hasher *h, uint8_t out[32]);

/* H(tag, data) with the tag hashed from scratch (arbitrary tags). */
int pm_hash_tagged_any(pm_hasher *h, uint8_t out[32], const char *tag, const uint8_t *data,
                       size_t len);

/* Protocol hashes over a parsed transaction. */
int pm_hash_txid(pm_hasher *h, uint8_t out[32], const pm_tx *tx);
int pm_hash_sighash(pm_hasher *h, uint8_t out[32], const uint8_t chain_id[32],
                    const uint8_t txid[32]);
int pm_hash_leaf(pm_hasher *h, uint8_t out[32], const pm_tx *tx, const uint8_t txid[32]);
int pm_hash_block(pm_hasher *h, uint8_t out[32], const uint8_t header[80]);
int pm_hash_chain_id(pm_hasher *h, uint8_t out[32], const pm_chain_params *params);

/* Keyed hashes SHA256(prefix || data) with a secret 64-byte prefix (the
 * signature cache's salt): the midstate after the prefix is prepared once
 * and only read after, so one serves any number of threads. For inputs of
 * a fixed length, as the cache's are, a secret prefix makes SHA-256 a
 * keyed hash whose outputs cannot be predicted or aimed at. */
typedef struct pm_hash_prefix pm_hash_prefix;

/* Returns NULL on allocation failure. */
pm_hash_prefix *pm_hash_prefix_create(const uint8_t prefix[64]);
void pm_hash_prefix_destroy(pm_hash_prefix *p);

/* SHA256(prefix || a || b), in the hasher's working state. */
int pm_hash_prefixed(pm_hasher *h, uint8_t out[32], const pm_hash_prefix *p, const uint8_t *a,
                     size_t alen, const uint8_t *b, size_t blen);

/* Merkle root of n >= 1 leaves (§6), O(log n) stack, no allocation. */
int pm_hash_merkle(pm_hasher *h, uint8_t out[32], const uint8_t (*leaves)[32], size_t n);

#endif
