/*
 * postmark.h — the public API of Postmark, a transaction validation engine
 * for the ledger of a digital postage-stamp market.
 *
 * The normative protocol is ../shared/spec/protocol.md; section numbers
 * below ("§5") refer to it.
 *
 * Conventions (as in libsecp256k1):
 *  - Argument order: context or engine first, then outputs, then in/out,
 *    then inputs.
 *  - Errors in *data* (a malformed transaction, an invalid block, running
 *    out of memory) are returned: a pm_status, or 0/1 for predicates, with a
 *    message retrievable from the engine (pm_engine_last_error).
 *  - *Misuse* of the API (a NULL where none is allowed, an index or a
 *    count out of its documented range, a bad pm_config) is a programming
 *    error: it is reported through the illegal callback of the context the
 *    function was given (the engine's context for pm_engine_* calls), which
 *    by default prints to stderr and aborts. The embedding program can
 *    replace it (pm_context_set_illegal_callback); if the replacement
 *    returns, the function returns the value its `Returns:` line names for
 *    misuse (PM_ERR_ARG, 0, or nothing) and changes no state. Where there
 *    is no context to take a callback from (a NULL context or engine,
 *    pm_context_static) the default callback runs.
 *  - Every function that can detect misuse takes a context (or an engine).
 *    A caller without one passes pm_context_static, as with
 *    libsecp256k1's secp256k1_context_static.
 *  - Nothing in the library prints, exits or keeps global mutable state.
 *  - Memory: the library allocates only what it owns and frees it on
 *    destroy. Pointers into caller buffers (the pm_tx view) are borrowed:
 *    they are valid while the caller's buffer is.
 *  - Hashes, txids and keys are 32-byte arrays in byte order as stored.
 */
#ifndef POSTMARK_H
#define POSTMARK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PM_BUILDING_LIBRARY) && defined(__GNUC__)
#define PM_API __attribute__((visibility("default")))
#else
#define PM_API
#endif

/* Inside the library the non-null attributes are left out, as
 * libsecp256k1 does, so that the compiler keeps the run-time argument
 * checks that report misuse to the illegal callback. A program that passes
 * NULL on purpose to see that callback (a misuse test) defines
 * PM_NO_NONNULL before including this header: with the attributes, the
 * compiler rejects such calls and UBSan traps before the library runs. */
#if defined(__GNUC__) && !defined(PM_BUILDING_LIBRARY) && !defined(PM_NO_NONNULL)
#define PM_WARN_UNUSED __attribute__((warn_unused_result))
#define PM_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#elif defined(__GNUC__)
#define PM_WARN_UNUSED __attribute__((warn_unused_result))
#define PM_NONNULL(...)
#else
#define PM_WARN_UNUSED
#define PM_NONNULL(...)
#endif

#define PM_VERSION_MAJOR 2
#define PM_VERSION_MINOR 0
#define PM_VERSION_PATCH 0

/* ---------------------------------------------------------------------- */
/* Sizes and limits of the protocol (§2, §3, §6, §7).                      */
/* ---------------------------------------------------------------------- */
#define PM_FILE_HEADER_SIZE 60
#define PM_NETWORK_SIZE 16
#define PM_HASH_SIZE 32
#define PM_KEY_SIZE 32
#define PM_SIG_SIZE 64
#define PM_OUTPUT_SIZE 45
#define PM_INPUT_SIZE 34
#define PM_BLOCK_HEADER_SIZE 80
#define PM_TX_MIN_SIZE 2
#define PM_TX_MAX_SIZE 65536
#define PM_TX_MAX_INPUTS 256
#define PM_TX_MAX_OUTPUTS 1024
#define PM_BLOCK_MAX_SIZE 4194304
#define PM_BLOCK_MAX_TXS 65536
#define PM_DEFAULT_BLOCK_TXS 4096

/* ---------------------------------------------------------------------- */
/* Status codes and reject reasons.                                        */
/* ---------------------------------------------------------------------- */

/** Result of a library call. PM_OK is 0; every other value is an error
 *  whose message is available from pm_engine_last_error where an engine
 *  is involved. */
typedef enum {
    PM_OK = 0,
    PM_ERR_INVALID = 1,  /**< the data is invalid per the protocol (a tx or
                              block reject); the reason is in the verdict */
    PM_ERR_NOMEM = 2,    /**< out of memory; state unchanged */
    PM_ERR_IO = 3,       /**< a read or write failed (tools only) */
    PM_ERR_STATE = 4,    /**< the request does not fit the engine's state
                              (e.g. disconnect with no undo data left) */
    PM_ERR_MISMATCH = 5, /**< another chain (header bytes 8..59 differ) */
    PM_ERR_ARG = 6       /**< API misuse, after the illegal callback returned */
} pm_status;

/** Reject reasons: transaction reasons 1..12 are the codes of §9; block
 *  and file reasons follow. */
typedef enum {
    PM_REASON_NONE = 0,
    PM_REASON_MALFORMED = 1,
    PM_REASON_DUPLICATE_INPUT = 2,
    PM_REASON_BAD_SEQUENCE = 3,
    PM_REASON_UNKNOWN_OPERATOR = 4,
    PM_REASON_SERIES_EXISTS = 5,
    PM_REASON_WRONG_ISSUER = 6,
    PM_REASON_UNKNOWN_SERIES = 7,
    PM_REASON_SERIAL_OUT_OF_RANGE = 8,
    PM_REASON_ALREADY_MINTED = 9,
    PM_REASON_MISSING_INPUT = 10,
    PM_REASON_NOT_CONSERVED = 11,
    PM_REASON_BAD_SIGNATURE = 12,
    PM_REASON_BAD_HEADER = 13,
    PM_REASON_TRUNCATED = 14,
    PM_REASON_BLOCK_MALFORMED = 15,
    PM_REASON_BAD_LINK = 16,
    PM_REASON_BAD_MERKLE = 17
} pm_reason;
#define PM_REASON_COUNT 18

/** Name of a reason as the protocol spells it ("MISSING_INPUT").
 *  Returns: a static string; "NONE" for PM_REASON_NONE, "UNKNOWN" for a
 *           value out of range (every value is accepted: no misuse).
 *  In:   reason: any value.
 *  Thread safety: any thread. */
PM_API const char *pm_reason_name(pm_reason reason);

/** Short text for a status ("out of memory").
 *  Returns: a static string; "unknown status" for a value out of range
 *           (every value is accepted: no misuse).
 *  In:   status: any value.
 *  Thread safety: any thread. */
PM_API const char *pm_status_text(pm_status status);

/* ---------------------------------------------------------------------- */
/* Context: shared, read-only after creation.                              */
/* ---------------------------------------------------------------------- */

/** A context carries what every operation shares: the misuse callback,
 *  the libsecp256k1 context, the SHA-256 midstates of the protocol's tags.
 *  Thread safety: after creation (and after any set_*_callback call, which
 *  must happen before other threads use it), every function taking a
 *  `const pm_context *` may be called from any number of threads at once. */
typedef struct pm_context pm_context;

/** Called on API misuse with a message naming the function and argument.
 *  `data` is the pointer given with the callback. */
typedef void (*pm_illegal_fn)(const char *message, void *data);

/** A context with no precomputation, for callers that have none of their
 *  own: enough for the functions that need only a misuse callback (the
 *  wire functions, pm_reason_from_name, pm_config_default), not for the
 *  hashes or an engine (passing it to those is misuse). Its callback is
 *  the default one and cannot be replaced. Like secp256k1_context_static.
 *  Thread safety: any thread (it is constant). */
PM_API extern const pm_context *const pm_context_static;

/** Create a context.
 *  Returns: a new context, or NULL when memory or the crypto backends
 *           could not be initialised. The caller owns it and frees it with
 *           pm_context_destroy after every engine made from it.
 *  Thread safety: any thread. */
PM_API pm_context *pm_context_create(void) PM_WARN_UNUSED;

/** Destroy a context.
 *  Args: ctx: a context from pm_context_create, or NULL (no-op); not
 *        pm_context_static (misuse, reported to the default callback).
 *  Thread safety: no other call may use ctx at the same time. */
PM_API void pm_context_destroy(pm_context *ctx);

/** Replace the misuse callback (default: print to stderr and abort()).
 *  Args: ctx: a context from pm_context_create; not NULL and not
 *        pm_context_static (misuse, reported to the default callback).
 *  In:   fn: the callback, or NULL to restore the default.
 *        data: passed to fn (may be NULL).
 *  Thread safety: before ctx is shared with other threads. */
PM_API void pm_context_set_illegal_callback(pm_context *ctx, pm_illegal_fn fn, void *data)
    PM_NONNULL(1);

/** Reason for a name as the protocol spells it.
 *  Returns: 1 and sets *reason when name is a reason name other than
 *           "NONE"; 0 otherwise, and 0 on misuse.
 *  Args: ctx: not NULL (pm_context_static will do).
 *  Out:  reason: not NULL.
 *  In:   name: NUL-terminated, not NULL.
 *  Thread safety: any thread. */
PM_API int pm_reason_from_name(const pm_context *ctx, pm_reason *reason, const char *name)
    PM_NONNULL(1, 2, 3);

/* ---------------------------------------------------------------------- */
/* Wire format (§2, §3, §6): zero-copy, strict parsing.                   */
/* ---------------------------------------------------------------------- */

typedef enum { PM_FILE_STREAM = 1, PM_FILE_CHAIN = 2 } pm_file_kind;

/** Chain parameters: the 48 bytes 12..59 of a file header. */
typedef struct {
    uint8_t network[PM_NETWORK_SIZE]; /**< ASCII, NUL padded, not validated */
    uint8_t governance_key[PM_KEY_SIZE];
} pm_chain_params;

/** Where and why a parse failed. `field` and `reason` are static strings
 *  ("n_in", "count out of range"); `offset` is the byte offset of the
 *  offending field from the start of the parsed buffer. */
typedef struct {
    size_t offset;
    const char *field;
    const char *reason;
} pm_parse_error;

typedef enum {
    PM_TX_REGISTER = 1,
    PM_TX_SERIES = 2,
    PM_TX_ISSUE = 3,
    PM_TX_TRANSFER = 4
} pm_tx_type;

typedef enum { PM_OUTPUT_STAMP = 1, PM_OUTPUT_CREDIT = 2 } pm_output_kind;

/** A decoded output (§3.1). For a STAMP: operator_id, series, serial; for a
 *  CREDIT: operator_id is the issuer and amount is set. */
typedef struct {
    uint8_t kind;
    uint8_t owner[PM_KEY_SIZE];
    uint32_t operator_id;
    uint32_t series;
    uint32_t serial;
    uint64_t amount;
} pm_output;

/** An outpoint: (txid, output index). */
typedef struct {
    uint8_t txid[PM_HASH_SIZE];
    uint16_t index;
} pm_outpoint;

/** A parsed transaction: a view into the caller's bytes (nothing copied).
 *  Fields not used by `type` are zero / NULL. `inputs` points at n_in raw
 *  34-byte inputs, `outputs` at n_out raw 45-byte outputs, `sigs` at
 *  n_sigs raw 64-byte signatures; decode them with pm_tx_input and
 *  pm_tx_output. For pm_tx_serialize the same struct describes a
 *  transaction to write (then `bytes`/`size` are ignored). */
typedef struct {
    const uint8_t *bytes;   /**< the whole transaction */
    size_t size;
    uint8_t version;        /**< always 1 after a successful parse */
    uint8_t type;           /**< pm_tx_type */
    size_t unsigned_size;   /**< bytes before the signatures: txid preimage */
    uint64_t seq;           /**< REGISTER: gov_seq; SERIES/ISSUE: op_seq */
    uint32_t operator_id;   /**< REGISTER/SERIES/ISSUE */
    const uint8_t *key;     /**< REGISTER: the operator's new key (32) */
    const uint8_t *text;    /**< REGISTER: name; SERIES: title */
    size_t text_len;
    uint32_t series;        /**< SERIES */
    uint32_t max_supply;    /**< SERIES */
    uint64_t face_value;    /**< SERIES */
    const uint8_t *metadata;/**< SERIES (32) */
    size_t n_in;            /**< TRANSFER */
    const uint8_t *inputs;
    size_t n_out;           /**< ISSUE/TRANSFER */
    const uint8_t *outputs;
    size_t n_sigs;          /**< 1, or n_in for TRANSFER */
    const uint8_t *sigs;
} pm_tx;

/* Every function in this section is pure (it reads only its arguments)
 * and may be called from any thread; `ctx` serves only for reporting
 * misuse and may be pm_context_static. */

/** Parse one transaction strictly (§3, §5 step 1).
 *  Returns: 1 when `bytes` is exactly one well-formed transaction;
 *           0 when it is MALFORMED, with *err (if not NULL) naming the
 *           field, its byte offset and the reason; 0 on misuse.
 *  Args: ctx: not NULL.
 *  Out:  tx: not NULL; the view, valid while `bytes` is.
 *        err: may be NULL.
 *  In:   bytes: may be NULL only when size is 0. Any size is accepted. */
PM_API int pm_tx_parse(const pm_context *ctx, pm_tx *tx, pm_parse_error *err,
                       const uint8_t *bytes, size_t size) PM_WARN_UNUSED PM_NONNULL(1, 2);

/** Decode input i of a parsed TRANSFER.
 *  Args: ctx: not NULL.
 *  Out:  out: not NULL (left unchanged on misuse).
 *  In:   tx: not NULL, parsed by pm_tx_parse.
 *        i: must be < tx->n_in. */
PM_API void pm_tx_input(const pm_context *ctx, pm_outpoint *out, const pm_tx *tx, size_t i)
    PM_NONNULL(1, 2, 3);

/** Decode output i of a parsed ISSUE or TRANSFER.
 *  Args: ctx: not NULL.
 *  Out:  out: not NULL (left unchanged on misuse).
 *  In:   tx: not NULL, parsed by pm_tx_parse.
 *        i: must be < tx->n_out. */
PM_API void pm_tx_output(const pm_context *ctx, pm_output *out, const pm_tx *tx, size_t i)
    PM_NONNULL(1, 2, 3);

/** Decode one raw 45-byte output. Does not validate (pm_tx_parse did).
 *  Args: ctx: not NULL.
 *  Out:  out: not NULL.
 *  In:   raw: 45 bytes, not NULL. */
PM_API void pm_output_decode(const pm_context *ctx, pm_output *out,
                             const uint8_t raw[PM_OUTPUT_SIZE])
    PM_NONNULL(1, 2, 3);

/** Encode one output into its raw 45 bytes (for a CREDIT, series and
 *  serial are ignored; for a STAMP, amount).
 *  Args: ctx: not NULL.
 *  Out:  raw: 45 bytes, not NULL.
 *  In:   out: not NULL. */
PM_API void pm_output_encode(const pm_context *ctx, uint8_t raw[PM_OUTPUT_SIZE],
                             const pm_output *out)
    PM_NONNULL(1, 2, 3);

/** The stateless DUPLICATE_INPUT check (§5 step 2), linear in n_in.
 *  Returns: 1 when two inputs of the TRANSFER name the same outpoint
 *           (then *second, if not NULL, is the index of the later one);
 *           0 otherwise (and for other types), and 0 on misuse.
 *           Allocates nothing.
 *  Args: ctx: not NULL.
 *  Out:  second: may be NULL.
 *  In:   tx: not NULL; for a TRANSFER with n_in >= 2, n_in must be at most
 *        PM_TX_MAX_INPUTS and inputs not NULL (as pm_tx_parse leaves it). */
PM_API int pm_tx_has_duplicate_input(const pm_context *ctx, const pm_tx *tx, size_t *second)
    PM_NONNULL(1, 2);

/** Serialize the transaction described by `tx` (type, fields, raw
 *  inputs/outputs/sigs arrays; `bytes`, `size`, `unsigned_size` ignored;
 *  version written as 1). A NULL `sigs` writes zero signatures.
 *  Returns: the number of bytes the transaction takes; when that is more
 *           than `cap`, nothing is written (call with cap 0 to size it).
 *           0 when the type is unknown or a count or length does not fit
 *           its field, and 0 on misuse.
 *  Args: ctx: not NULL.
 *  Out:  out: may be NULL only when cap is 0.
 *  In:   tx: not NULL; the arrays its type uses (key, text, metadata,
 *        inputs, outputs) not NULL unless their count or length is 0. */
PM_API size_t pm_tx_serialize(const pm_context *ctx, uint8_t *out, size_t cap, const pm_tx *tx)
    PM_NONNULL(1, 4);

/** A block header (§6). */
typedef struct {
    uint32_t version;
    uint64_t height;
    uint8_t prev_hash[PM_HASH_SIZE];
    uint8_t merkle_root[PM_HASH_SIZE];
    uint32_t tx_count;
} pm_block_header;

/** Encode a block header into its 80 bytes.
 *  Args: ctx: not NULL.
 *  Out:  out: 80 bytes, not NULL.
 *  In:   h: not NULL. */
PM_API void pm_block_header_encode(const pm_context *ctx, uint8_t out[PM_BLOCK_HEADER_SIZE],
                                   const pm_block_header *h) PM_NONNULL(1, 2, 3);

/** Decode 80 bytes (no validation).
 *  Args: ctx: not NULL.
 *  Out:  h: not NULL.
 *  In:   in: 80 bytes, not NULL. */
PM_API void pm_block_header_decode(const pm_context *ctx, pm_block_header *h,
                                   const uint8_t in[PM_BLOCK_HEADER_SIZE]) PM_NONNULL(1, 2, 3);

/** A framed block: header decoded, transactions located (not parsed). */
typedef struct {
    pm_block_header header;
    const uint8_t *bytes;
    size_t size;
} pm_block;

/** Check a block's framing (§6 step 1: size, version, tx_count, records
 *  adding up exactly).
 *  Returns: 1 when well framed; 0 when BLOCK_MALFORMED, with *err (if not
 *           NULL) set; 0 on misuse.
 *  Args: ctx: not NULL.
 *  Out:  blk: not NULL. err: may be NULL.
 *  In:   bytes: may be NULL only when size is 0. */
PM_API int pm_block_parse(const pm_context *ctx, pm_block *blk, pm_parse_error *err,
                          const uint8_t *bytes, size_t size) PM_WARN_UNUSED PM_NONNULL(1, 2);

/** Iterate over the transaction records of a framed block.
 *  Returns: 1 while a record was produced, 0 at the end, and 0 on misuse.
 *  Args: ctx: not NULL.
 *  Out:  tx, size: not NULL; the record's bytes (not parsed).
 *  In:   blk: not NULL, accepted by pm_block_parse.
 *  In/Out: cursor: not NULL; start at 0; advanced past the record. */
PM_API int pm_block_next_tx(const pm_context *ctx, const uint8_t **tx, size_t *size,
                            const pm_block *blk, size_t *cursor) PM_NONNULL(1, 2, 3, 4, 5);

/** Parse a 60-byte file header (§2).
 *  Returns: 1 when valid (magic, version 1); 0 otherwise with *err (if not
 *           NULL) set; 0 on misuse.
 *  Args: ctx: not NULL.
 *  Out:  kind, params: not NULL. err: may be NULL.
 *  In:   bytes: may be NULL only when size is 0; bytes past the first 60
 *        are ignored. */
PM_API int pm_file_header_parse(const pm_context *ctx, pm_file_kind *kind, pm_chain_params *params,
                                pm_parse_error *err, const uint8_t *bytes, size_t size)
    PM_WARN_UNUSED PM_NONNULL(1, 2, 3);

/** Encode a 60-byte file header.
 *  Args: ctx: not NULL.
 *  Out:  out: 60 bytes, not NULL.
 *  In:   kind: PM_FILE_STREAM or PM_FILE_CHAIN.
 *        params: not NULL. */
PM_API void pm_file_header_encode(const pm_context *ctx, uint8_t out[PM_FILE_HEADER_SIZE],
                                  pm_file_kind kind, const pm_chain_params *params)
    PM_NONNULL(1, 2, 4);

/* ---------------------------------------------------------------------- */
/* Hashes (§2, §3, §6, §8). All are BIP-340 tagged SHA-256.               */
/*                                                                         */
/* Each returns 1 on success; 0 if the SHA-256 backend cannot allocate its */
/* working state, and 0 on misuse. For each: ctx is a context from         */
/* pm_context_create (not NULL, not pm_context_static: the hashes start    */
/* from its midstates); out (32 bytes) and every input pointer must not be */
/* NULL unless said otherwise. Thread safety: any thread, concurrently.    */
/* ---------------------------------------------------------------------- */

/** chain_id = H("postmark/chain", network || governance_key).
 *  Args: ctx. Out: out. In: params. */
PM_API int pm_chain_id(const pm_context *ctx, uint8_t out[PM_HASH_SIZE],
                       const pm_chain_params *params) PM_NONNULL(1, 2, 3);

/** txid = H("postmark/txid", bytes before the signatures) of a parsed tx.
 *  Args: ctx. Out: out. In: tx: parsed by pm_tx_parse. */
PM_API int pm_tx_txid(const pm_context *ctx, uint8_t out[PM_HASH_SIZE], const pm_tx *tx)
    PM_NONNULL(1, 2, 3);

/** sighash = H("postmark/sighash", chain_id || txid).
 *  Args: ctx. Out: out. In: chain_id, txid: 32 bytes each. */
PM_API int pm_tx_sighash(const pm_context *ctx, uint8_t out[PM_HASH_SIZE],
                         const uint8_t chain_id[PM_HASH_SIZE], const uint8_t txid[PM_HASH_SIZE])
    PM_NONNULL(1, 2, 3, 4);

/** leaf = H("postmark/leaf", txid || sigs).
 *  Args: ctx. Out: out. In: tx: parsed by pm_tx_parse; txid: its txid. */
PM_API int pm_tx_leaf(const pm_context *ctx, uint8_t out[PM_HASH_SIZE], const pm_tx *tx,
                      const uint8_t txid[PM_HASH_SIZE]) PM_NONNULL(1, 2, 3, 4);

/** Merkle root of n leaves (RFC 6962 shape, "postmark/node").
 *  Uses O(log n) stack, allocates nothing but the hashing state.
 *  Args: ctx. Out: out. In: leaves: n 32-byte leaves; n: at least 1. */
PM_API int pm_merkle_root(const pm_context *ctx, uint8_t out[PM_HASH_SIZE],
                          const uint8_t (*leaves)[PM_HASH_SIZE], size_t n) PM_NONNULL(1, 2, 3);

/** block_hash = H("postmark/block", 80 header bytes).
 *  Args: ctx. Out: out. In: header: 80 bytes. */
PM_API int pm_block_hash(const pm_context *ctx, uint8_t out[PM_HASH_SIZE],
                         const uint8_t header[PM_BLOCK_HEADER_SIZE]) PM_NONNULL(1, 2, 3);

/** Any tagged hash H(tag, data), e.g. for tags not listed here.
 *  Args: ctx. Out: out.
 *  In:   tag: NUL-terminated. data: may be NULL only when size is 0. */
PM_API int pm_tagged_hash(const pm_context *ctx, uint8_t out[PM_HASH_SIZE], const char *tag,
                          const uint8_t *data, size_t size) PM_NONNULL(1, 2, 3);

/* ---------------------------------------------------------------------- */
/* The engine: ledger state plus the validation pipeline.                  */
/*                                                                         */
/* Thread safety: an engine is driven by one thread at a time — every      */
/* pm_engine_* call on one engine, the const queries included, must not    */
/* overlap another call on it (callers that share an engine across threads */
/* serialise with their own lock). Distinct engines are independent. Each  */
/* engine runs its own verifier threads internally (pm_config.threads);    */
/* the callbacks run on the thread that made the call, never on those.     */
/*                                                                         */
/* Misuse: every pm_engine_* function below takes an engine that must not  */
/* be NULL (except pm_engine_destroy); its other arguments are checked     */
/* through the callback of the engine's context. A NULL engine has no      */
/* context, so it goes to the default callback.                            */
/* ---------------------------------------------------------------------- */

/** The smallest pm_config.block_max_bytes: room for the largest
 *  transaction in a block of its own. */
#define PM_CONFIG_MIN_BLOCK_BYTES (PM_BLOCK_HEADER_SIZE + 4 + PM_TX_MAX_SIZE)
/** The largest pm_config.threads. */
#define PM_CONFIG_MAX_THREADS 1024

/** Engine configuration. Initialise with pm_config_default. */
typedef struct {
    unsigned threads;            /**< signature workers, 0..1024; 0 = online CPUs */
    size_t utxo_capacity_hint;   /**< expected live UTXOs (sizing only) */
    uint32_t block_max_txs;      /**< pack: tx limit, 1..65536 (4096) */
    uint32_t block_max_bytes;    /**< pack: size limit,
                                      PM_CONFIG_MIN_BLOCK_BYTES..4194304 */
    uint32_t undo_depth;         /**< blocks that can be disconnected;
                                      0 = the default (100) */
    size_t sigcache_bytes;       /**< signature cache: at most this many
                                      bytes (about 34 per signature; the
                                      default PM_DEFAULT_SIGCACHE_BYTES);
                                      0 = no cache. Signatures that
                                      verified in pm_engine_check_tx or
                                      pack mode (submit) are remembered,
                                      under a secret salt drawn at
                                      creation, and not verified again
                                      when a block holding them is
                                      connected. A hit needs the same
                                      chain, key, message and signature. */
} pm_config;

/** The default pm_config.sigcache_bytes: 32 MiB (about 987,000
 *  signatures), as Bitcoin Core's default signature cache. */
#define PM_DEFAULT_SIGCACHE_BYTES ((size_t)32 << 20)

/** Fill a configuration with the defaults.
 *  Args: ctx: not NULL (pm_context_static will do).
 *  Out:  cfg: not NULL.
 *  Thread safety: any thread. */
PM_API void pm_config_default(const pm_context *ctx, pm_config *cfg) PM_NONNULL(1, 2);

typedef struct pm_engine pm_engine;

/** Called for each block the engine emits in pack mode, in height order,
 *  on the thread that called submit/flush. `block` (size bytes, the whole
 *  block as a chain file record holds it) and `hash` are valid during the
 *  call only. */
typedef void (*pm_block_fn)(void *data, const uint8_t *block, size_t size, uint64_t height,
                            const uint8_t hash[PM_HASH_SIZE]);

/** During the on_block callback: the submission index of the last
 *  transaction of the block being emitted (so a caller can record how far
 *  into its stream the durable chain reaches). Undefined elsewhere.
 *  Returns: that index; 0 on misuse.
 *  Args: engine: not NULL. */
PM_API uint64_t pm_engine_block_last_index(const pm_engine *engine);

/** Called for each rejected submitted transaction, in submission order,
 *  on the thread that called submit/flush. `index` is the 0-based
 *  submission index; `txid` is NULL for MALFORMED. */
typedef void (*pm_reject_fn)(void *data, uint64_t index, const uint8_t *txid, pm_reason reason);

/** Create an engine at the empty state of the chain `params`.
 *  Threads are started here and joined on destroy.
 *  Returns: PM_OK; PM_ERR_NOMEM; PM_ERR_ARG on misuse (a field of cfg out
 *           of its range included), with *engine set to NULL when engine
 *           is not NULL.
 *  Out:  engine: not NULL; the new engine, owned by the caller
 *        (pm_engine_destroy).
 *  In:   ctx: from pm_context_create (not NULL, not pm_context_static);
 *        must outlive the engine; misuse goes to its callback.
 *        params: not NULL; copied.
 *        cfg: NULL for the defaults, or every field in its range; copied. */
PM_API pm_status pm_engine_create(pm_engine **engine, const pm_context *ctx,
                                  const pm_chain_params *params, const pm_config *cfg)
    PM_WARN_UNUSED;

/** Destroy an engine, joining its threads. Pending (unflushed)
 *  transactions are dropped without callbacks.
 *  Args: engine: may be NULL (no-op). */
PM_API void pm_engine_destroy(pm_engine *engine);

/** The message of the last error returned by a call on this engine
 *  ("block 4 tx 16: BAD_SIGNATURE").
 *  Returns: the message, "" when none, and "" on misuse. Valid until the
 *           next call on the engine.
 *  Args: engine: not NULL. */
PM_API const char *pm_engine_last_error(const pm_engine *engine);

/** Set the pack-mode callbacks.
 *  Args: engine: not NULL.
 *  In:   on_block, on_reject: either may be NULL (no callback).
 *        data: passed to both (may be NULL). */
PM_API void pm_engine_set_callbacks(pm_engine *engine, pm_block_fn on_block, pm_reject_fn on_reject,
                                    void *data);

/** Pack mode (§7): submit one transaction record. The engine copies the
 *  bytes. It is validated against the state left by every earlier accepted
 *  transaction; verdicts arrive through the callbacks, possibly during a
 *  later submit or at flush. A record that is malformed is a MALFORMED
 *  reject, not an error; one longer than PM_TX_MAX_SIZE is rejected so
 *  without being copied (only its size is read).
 *  Returns: PM_OK; PM_ERR_NOMEM (the record was not taken; the message is
 *           pm_engine_last_error's); PM_ERR_ARG on misuse.
 *  Args: engine: not NULL.
 *  In:   tx: size bytes; may be NULL only when size is 0.
 *  Thread safety: one thread at a time per engine (as for every call that
 *  takes a non-const engine). */
PM_API pm_status pm_engine_submit(pm_engine *engine, const uint8_t *tx, size_t size) PM_WARN_UNUSED;

/** Submit n records at once (same as n calls to pm_engine_submit).
 *  Returns: PM_OK; PM_ERR_NOMEM (records before the failing one were
 *           taken, it and those after were not); PM_ERR_ARG on misuse
 *           (then nothing was taken).
 *  Args: engine: not NULL.
 *  In:   txs, sizes: n records; may be NULL only when n is 0; txs[i] may
 *        be NULL only when sizes[i] is 0. */
PM_API pm_status pm_engine_submit_batch(pm_engine *engine, const uint8_t *const *txs,
                                        const size_t *sizes, size_t n) PM_WARN_UNUSED;

/** Count one record that could not be framed (a stream cut inside a
 *  record, §2) as a MALFORMED reject at the next index.
 *  Returns: PM_OK; PM_ERR_NOMEM; PM_ERR_ARG on misuse.
 *  Args: engine: not NULL. */
PM_API pm_status pm_engine_submit_truncated(pm_engine *engine) PM_WARN_UNUSED;

/** Advance the submission index by n without submitting anything: the
 *  first n records of a stream were packed by an earlier run (resuming
 *  after a crash), so the next submitted record gets index n.
 *  Returns: PM_OK; PM_ERR_ARG on misuse.
 *  Args: engine: not NULL.
 *  In:   n: any count. */
PM_API pm_status pm_engine_skip_records(pm_engine *engine, uint64_t n);

/** Validate everything submitted, close the open block (emitting it if it
 *  holds any transaction) and deliver all callbacks.
 *  Returns: PM_OK; PM_ERR_NOMEM; PM_ERR_ARG on misuse.
 *  Args: engine: not NULL. */
PM_API pm_status pm_engine_flush(pm_engine *engine) PM_WARN_UNUSED;

/** Pack mode: advance the pipeline by one step without waiting for it to
 *  empty, so a caller that answers each record (a service) need not drain
 *  between batches. The records submitted since the previous step start
 *  verifying on the verifier threads while those of the previous step are
 *  decided on this thread (their callbacks delivered, a full block
 *  emitted); the call returns when both are done. Two calls with nothing
 *  submitted in between decide everything submitted before them; the open
 *  block stays open. Verdicts and blocks are the same however submits and
 *  steps interleave (and the same as pm_engine_flush's).
 *  Returns: PM_OK; PM_ERR_NOMEM (as for pm_engine_flush); PM_ERR_ARG on
 *           misuse.
 *  Args: engine: not NULL.
 *  Out:  settled: not NULL: the submission index of the first record whose
 *        verdict is not yet delivered (every record before it is decided:
 *        rejected through on_reject, or accepted into the open block or an
 *        emitted one); the next index to be submitted when all are.
 *  Thread safety: one thread at a time per engine. */
PM_API pm_status pm_engine_step(pm_engine *engine, uint64_t *settled) PM_WARN_UNUSED;

/** Verdict on a block or a chain. */
typedef struct {
    pm_reason reason;      /**< PM_REASON_NONE when valid */
    uint64_t block;        /**< position of the failing block among those
                                given (0-based) */
    int64_t tx;            /**< tx index in that block, -1 block-level */
    int has_txid;          /**< txid is set (not for MALFORMED/block) */
    uint8_t txid[PM_HASH_SIZE];
} pm_verdict;

/** Connect blocks (a peer's, or a chain file's) on top of the tip, in
 *  order, each atomically (§6). Pending pack-mode transactions are first
 *  taken out of the open block, then checked again on the new state (the
 *  mempool re-check): those still valid stay pending, the others are
 *  rejected through the reject callback.
 *  Returns: PM_OK when all are valid and connected; PM_ERR_INVALID when
 *           block verdict->block is invalid (blocks before it stay
 *           connected, the state is exactly as after them); PM_ERR_NOMEM
 *           (state as after the blocks before the one being connected);
 *           PM_ERR_ARG on misuse (nothing connected).
 *  Args: engine: not NULL.
 *  Out:  verdict: not NULL: the first failure.
 *  In:   blocks, sizes: n whole block records; may be NULL only when n
 *        is 0; blocks[i] may be NULL only when sizes[i] is 0 (a
 *        BLOCK_MALFORMED block).
 *        assume_valid_upto: skip signature checks in blocks[0..k-1] where
 *        k = assume_valid_upto (0 checks every signature). */
PM_API pm_status pm_engine_connect_blocks(pm_engine *engine, pm_verdict *verdict,
                                          const uint8_t *const *blocks, const size_t *sizes,
                                          size_t n, size_t assume_valid_upto) PM_WARN_UNUSED;

/** Disconnect the tip block, restoring the exact earlier state. Pending
 *  transactions are re-checked as for connect.
 *  Returns: PM_OK; PM_ERR_STATE (no block, or its undo data is older
 *           than undo_depth); PM_ERR_NOMEM; PM_ERR_ARG on misuse.
 *  Args: engine: not NULL. */
PM_API pm_status pm_engine_disconnect_tip(pm_engine *engine) PM_WARN_UNUSED;

/** Check one transaction against the current state (including pending
 *  ones) without applying it: mempool admission.
 *  Returns: PM_OK (verdict in *reason); PM_ERR_NOMEM; PM_ERR_ARG on misuse.
 *  Args: engine: not NULL.
 *  Out:  reason: not NULL; PM_REASON_NONE if it would be accepted.
 *  In:   tx: size bytes; may be NULL only when size is 0. */
PM_API pm_status pm_engine_check_tx(pm_engine *engine, pm_reason *reason, const uint8_t *tx,
                                    size_t size) PM_WARN_UNUSED;

/** The tip: its hash (the chain_id when there is no block) and height
 *  (-1 when there is no block). Sealed blocks only: the open block of
 *  pack mode is not part of the tip.
 *  Args: engine: not NULL.
 *  Out:  hash (32 bytes) and height: either may be NULL. */
PM_API void pm_engine_tip(const pm_engine *engine, uint8_t hash[PM_HASH_SIZE], int64_t *height);

/** Look up an unspent output in the current state (in pack mode the
 *  transactions already accepted into the open block count; those still
 *  being validated do not — pm_engine_flush or pm_engine_check_tx first
 *  settle them).
 *  Returns: 1 and *out when unspent; 0 otherwise (*out untouched), and 0
 *           on misuse.
 *  Args: engine: not NULL.
 *  Out:  out: not NULL.
 *  In:   outpoint: not NULL. */
PM_API int pm_engine_get_utxo(const pm_engine *engine, pm_output *out, const pm_outpoint *outpoint);

/** Number of unspent outputs in the current state (as for get_utxo).
 *  Returns: the count; 0 on misuse.
 *  Args: engine: not NULL. */
PM_API uint64_t pm_engine_utxo_count(const pm_engine *engine);

/** UTXO digest of the current state (§8, as for get_utxo).
 *  Returns: PM_OK; PM_ERR_NOMEM (it sorts references to the entries);
 *           PM_ERR_ARG on misuse.
 *  Args: engine: not NULL.
 *  Out:  out: 32 bytes, not NULL. */
PM_API pm_status pm_engine_utxo_digest(pm_engine *engine, uint8_t out[PM_HASH_SIZE]) PM_WARN_UNUSED;

/** Counters since creation. seconds_hash and seconds_verify are the time
 *  the verifier threads spent parsing/hashing and resolving keys/verifying,
 *  summed over the threads; seconds_commit is the time the calling thread
 *  spent deciding and applying transactions in order.
 *  signatures_verified counts signatures actually verified (a signature
 *  cache hit is not). With a signature cache (pm_config.sigcache_bytes),
 *  every signature check is a hit or a miss: sigcache_hits (found, not
 *  verified again), sigcache_misses (verified), sigcache_inserts (verified
 *  signatures written into the cache while admitting: check_tx and pack
 *  mode; connecting blocks never inserts). All three stay 0 without a
 *  cache. */
typedef struct {
    uint64_t txs_accepted;
    uint64_t txs_rejected;
    uint64_t signatures_verified;
    uint64_t blocks_connected;
    uint64_t blocks_emitted;
    uint64_t rejects[PM_REASON_COUNT];
    double seconds_hash;
    double seconds_verify;
    double seconds_commit;
    uint64_t sigcache_hits;
    uint64_t sigcache_misses;
    uint64_t sigcache_inserts;
} pm_stats;

/** Read the counters.
 *  Args: engine: not NULL.
 *  Out:  stats: not NULL (left unchanged on misuse). */
PM_API void pm_engine_stats(const pm_engine *engine, pm_stats *stats);

/* ---------------------------------------------------------------------- */
/* State snapshots: restart in seconds instead of replaying history.       */
/* ---------------------------------------------------------------------- */

/** Save the engine's state at its tip — UTXO set, operators, governance
 *  sequence, series, minted set, chain id, tip height and hash, UTXO
 *  digest, and the undo data of the last blocks — to `path`: written
 *  streaming to a temporary file, fsync'ed, renamed over `path`, and the
 *  directory fsync'ed, so `path` is always either the old or the new
 *  snapshot. Pending pack-mode transactions (the open block) are not part
 *  of it. May be called from the on_block callback (the state is then
 *  exactly that block's).
 *  Returns: PM_OK; PM_ERR_IO (message in pm_engine_last_error);
 *           PM_ERR_NOMEM; PM_ERR_ARG on misuse.
 *  Args: engine: not NULL.
 *  In:   path: NUL-terminated, not NULL. */
PM_API pm_status pm_engine_save_snapshot(pm_engine *engine, const char *path) PM_WARN_UNUSED;

/** Create an engine from a snapshot file. Every section's checksum is
 *  verified and the UTXO digest recomputed; a snapshot that fails is
 *  refused whole.
 *  Returns: PM_OK; PM_ERR_IO (unreadable); PM_ERR_INVALID (corrupt, with
 *           the section and offset in err); PM_ERR_MISMATCH (params is not
 *           NULL and names another chain); PM_ERR_NOMEM; PM_ERR_ARG on
 *           misuse (the file is not opened), with *engine set to NULL when
 *           engine is not NULL.
 *  Out:  engine: not NULL; the new engine at the snapshot's tip.
 *        err: errlen bytes for a message; may be NULL only when errlen
 *        is 0.
 *  In:   ctx: as for pm_engine_create.
 *        params: the chain the caller expects, or NULL to accept the
 *        snapshot's.
 *        cfg: as for pm_engine_create (NULL for defaults).
 *        path: NUL-terminated, not NULL. */
PM_API pm_status pm_engine_create_from_snapshot(pm_engine **engine, const pm_context *ctx,
                                                const pm_chain_params *params,
                                                const pm_config *cfg, const char *path,
                                                char *err, size_t errlen) PM_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif /* POSTMARK_H */
