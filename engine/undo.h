/*
 * undo.h — the layout of the ledger's undo records, in one place: state.c
 * writes and applies them, snapshot.c saves them and checks every record
 * of a snapshot before a disconnect may apply it.
 *
 * An undo log is a sequence of records: a kind byte, the payload (the
 * struct of that kind below, in memory layout), and the record's total
 * size as a little-endian u16 (so a log can be walked backwards). A
 * snapshot's header carries the payload sizes (undo_payload_size), so a
 * build whose layout differs refuses the snapshot instead of misreading it.
 */
#ifndef PM_ENGINE_UNDO_H
#define PM_ENGINE_UNDO_H

#include "postmark.h"
#include "state.h"

#include <stddef.h>
#include <stdint.h>

enum {
    UNDO_SPENT = 1,   /* txid, index, output: re-insert */
    UNDO_CREATED,     /* txid, n_out: remove outputs 0..n_out-1 */
    UNDO_GOV_SEQ,     /* previous gov_seq */
    UNDO_OPERATOR,    /* id, existed, previous record */
    UNDO_OP_SEQ,      /* op index, previous op_seq */
    UNDO_SERIES,      /* (op, series) added */
    UNDO_MINTED,      /* (op, series, serial) added */
    UNDO_KINDS = UNDO_MINTED
};

typedef struct {
    uint8_t txid[32];
    uint16_t index;
    uint8_t output[PM_OUTPUT_SIZE];
} undo_spent;

typedef struct {
    uint8_t txid[32];
    uint16_t n_out;
} undo_created;

typedef struct {
    uint32_t id;
    uint8_t existed;
    pm_operator_info prev;
} undo_operator;

typedef struct {
    size_t index;
    uint64_t prev;
} undo_op_seq;

/* A SPENT record's bytes in a log: kind, payload, size. */
#define PM_UNDO_SPENT_RECORD (1 + sizeof(undo_spent) + 2)

/* UNDO_SERIES and UNDO_MINTED: the key added to the series or minted set
 * (state.c's regkey). */
typedef struct {
    uint64_t k0, k1;
} undo_key;

/* The payload size of a kind, 0 for an unknown kind. */
static inline size_t undo_payload_size(unsigned kind)
{
    switch (kind) {
    case UNDO_SPENT: return sizeof(undo_spent);
    case UNDO_CREATED: return sizeof(undo_created);
    case UNDO_GOV_SEQ: return sizeof(uint64_t);
    case UNDO_OPERATOR: return sizeof(undo_operator);
    case UNDO_OP_SEQ: return sizeof(undo_op_seq);
    case UNDO_SERIES: return sizeof(undo_key);
    case UNDO_MINTED: return sizeof(undo_key);
    }
    return 0;
}

#endif
