/*
 * wire.h — internal helpers of the wire format (protocol §1-3, §6), shared
 * by the modules that read or write Postmark bytes: little-endian integer
 * readers and writers, the §1 text rule, raw accessors into a parsed
 * transaction, and the framing of length-prefixed records in a file.
 *
 * The public wire functions (pm_tx_parse, pm_tx_serialize, the block and
 * file header functions) are declared in postmark.h and live in wire.c.
 *
 * Conventions of wire.c that postmark.h leaves open:
 *  - pm_parse_error.field is a static generic name in the protocol's words
 *    ("n_in", "name", "output.kind", "output.amount", "sigs"), and `offset`
 *    is where that field starts in the parsed buffer, with two refinements:
 *    for a text field it is the first byte of the offending UTF-8 sequence
 *    (or control byte), for an output it is the field inside the
 *    output at fault, and for extra bytes it is where the transaction
 *    should have ended (the field is then "end").
 *  - The first problem in byte order is reported (a transaction is read
 *    front to back), except for the size bounds 2..65,536, checked first.
 *  - pm_tx_serialize writes 64 zero bytes per signature when tx->sigs is
 *    NULL (to size and hash an unsigned transaction, then sign it), and
 *    returns 0 for what cannot be encoded at all: an unknown type, a
 *    text_len over 255, n_in or n_out over 65,535.
 *  - pm_file_header_parse accepts a buffer longer than 60 bytes (a whole
 *    file) and reads its first 60.
 */
#ifndef PM_ENGINE_WIRE_H
#define PM_ENGINE_WIRE_H

#include "postmark.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- little-endian integers (memcpy: no alignment assumption) -------- */

static inline uint16_t pm_read_u16le(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static inline uint32_t pm_read_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t pm_read_u64le(const uint8_t *p)
{
    return (uint64_t)pm_read_u32le(p) | (uint64_t)pm_read_u32le(p + 4) << 32;
}

static inline void pm_write_u16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void pm_write_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void pm_write_u64le(uint8_t *p, uint64_t v)
{
    pm_write_u32le(p, (uint32_t)v);
    pm_write_u32le(p + 4, (uint32_t)(v >> 32));
}

/* ---- offsets inside a raw 45-byte output (§3.1) ----------------------- */
#define PM_OUT_KIND 0
#define PM_OUT_OWNER 1
#define PM_OUT_OPERATOR 33 /* STAMP operator, CREDIT issuer */
#define PM_OUT_SERIES 37   /* STAMP */
#define PM_OUT_SERIAL 41   /* STAMP */
#define PM_OUT_AMOUNT 37   /* CREDIT */

/* ---- raw accessors into a parsed transaction (no bounds check) -------- */

/* Input i: txid (32 bytes) then index u16le: the 34-byte outpoint key. */
static inline const uint8_t *pm_tx_input_raw(const pm_tx *tx, size_t i)
{
    return tx->inputs + i * PM_INPUT_SIZE;
}

static inline uint16_t pm_tx_input_index(const pm_tx *tx, size_t i)
{
    return pm_read_u16le(tx->inputs + i * PM_INPUT_SIZE + PM_HASH_SIZE);
}

static inline const uint8_t *pm_tx_output_raw(const pm_tx *tx, size_t i)
{
    return tx->outputs + i * PM_OUTPUT_SIZE;
}

static inline const uint8_t *pm_tx_sig(const pm_tx *tx, size_t i)
{
    return tx->sigs + i * PM_SIG_SIZE;
}

/* The signature bytes as they stand (the leaf preimage after the txid). */
static inline size_t pm_tx_sigs_size(const pm_tx *tx)
{
    return tx->n_sigs * PM_SIG_SIZE;
}

/* ---- §1 text ---------------------------------------------------------- */

/* Check the §1 text rule: valid UTF-8 per RFC 3629 (shortest form, no
 * surrogates, at most U+10FFFF) with no byte below 0x20.
 * Returns: NULL when valid; otherwise a static reason ("invalid UTF-8",
 *          "control byte") and *bad (if not NULL) = the index of the first
 *          byte of the offending sequence. */
const char *pm_text_check(const uint8_t *text, size_t len, size_t *bad);

/* ---- length-prefixed records of a file (§2) --------------------------- */

/* Read the record at *pos of buf[0..size): u32le length then that many
 * bytes. Returns 1 with *rec, *len set and *pos advanced past it; 0 at the
 * end (*pos == size); -1 when the buffer ends inside the record (inside
 * its length prefix too): a truncated record, *pos unchanged. */
static inline int pm_record_next(const uint8_t *buf, size_t size, size_t *pos,
                                 const uint8_t **rec, size_t *len)
{
    size_t p = *pos;
    if (p >= size)
        return 0;
    if (size - p < 4)
        return -1;
    uint32_t n = pm_read_u32le(buf + p);
    if (n > size - p - 4)
        return -1;
    *rec = buf + p + 4;
    *len = n;
    *pos = p + 4 + (size_t)n;
    return 1;
}

#endif
