/*
 * gen.h — the seeded generator of signed transaction streams: realistic
 * stamp-market workloads (with chosen rates of every kind of invalid
 * record), signature-bound benchmark chains, and large UTXO sets.
 *
 * Determinism: the bytes written are a function of the configuration alone
 * (the number of signing threads excepted): keys derive from the seed,
 * every choice comes from a seeded PRNG, and BIP-340 signatures are made
 * with no auxiliary randomness, so they are deterministic too.
 *
 * Exactness: the generator keeps its own model of the ledger, so it knows
 * how a sequential validator (§5, §7) will judge every record it writes;
 * pm_gen_report.planned counts those verdicts exactly.
 */
#ifndef PM_ENGINE_GEN_H
#define PM_ENGINE_GEN_H

#include "fault.h"
#include "postmark.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PM_GEN_MARKET,      /* a stamp market with invalid records mixed in */
    PM_GEN_TRANSFERS,   /* setup, then one-input transfers: all valid */
    PM_GEN_LARGE_STATE  /* mostly 1024-output ISSUEs: a large UTXO set */
} pm_gen_shape;

typedef struct {
    pm_gen_shape shape;
    uint64_t seed;
    uint64_t txs;                  /* records to write, all included */
    char network[PM_NETWORK_SIZE]; /* e.g. "upu-dpg-test"; NUL padded */
    uint32_t operators;            /* 1..; named after real postal
                                      administrations, ids are ISO 3166
                                      numeric codes (250 La Poste, ...) */
    uint32_t series_per_operator;  /* 1.. */
    uint32_t collectors;           /* 1.. */
    /* Rates in parts per million of the records after the setup: */
    uint32_t double_spend_ppm;     /* spends an already spent outpoint:
                                      MISSING_INPUT */
    uint32_t bad_signature_ppm;    /* otherwise valid, a wrong signature:
                                      BAD_SIGNATURE */
    uint32_t conflict_ppm;         /* a valid transfer, then soon after a
                                      second spend of one of its inputs:
                                      MISSING_INPUT */
    uint32_t replay_ppm;           /* an earlier accepted record repeated:
                                      MISSING_INPUT (TRANSFER) or
                                      BAD_SEQUENCE (REGISTER/SERIES/ISSUE) */
    uint32_t malformed_ppm;        /* MALFORMED bytes */
    uint32_t chain_ppm;            /* a valid transfer spending an output of
                                      the record just before it */
    uint32_t other_ppm;            /* the other reasons: DUPLICATE_INPUT,
                                      BAD_SEQUENCE, UNKNOWN_OPERATOR,
                                      SERIES_EXISTS, WRONG_ISSUER,
                                      UNKNOWN_SERIES, SERIAL_OUT_OF_RANGE,
                                      ALREADY_MINTED, NOT_CONSERVED */
    unsigned threads;              /* signing threads, 0 = online CPUs */
    uint32_t chunk_records;        /* records planned, signed and written at
                                      a time: 0 = 65,536 (the maximum). The
                                      bytes depend on it (replays draw on
                                      the chunk); smaller bounds memory. */
} pm_gen_config;

/** Fill cfg with the defaults of a shape (seed 1, 100,000 records,
 *  network "upu-dpg-test"; MARKET: 12 operators, 20 series each, 5,000
 *  collectors, a few invalid records per thousand; TRANSFERS: 1 operator,
 *  4,000 owners, no invalid record; LARGE_STATE: 4 operators, 10,000
 *  owners, no invalid record). */
void pm_gen_config_default(pm_gen_config *cfg, pm_gen_shape shape);

typedef struct {
    uint64_t records;                   /* records written */
    uint64_t planned[PM_REASON_COUNT];  /* rejects by reason, as a sequential
                                           validator judges them */
    uint64_t planned_accepted;
    uint8_t governance_key[PM_KEY_SIZE];
} pm_gen_report;

/** Write a whole POSTMKTX stream (header, then cfg->txs records) to fd.
 *  Returns: PM_OK; PM_ERR_ARG for a configuration out of range (*fault
 *           says which); PM_ERR_NOMEM; PM_ERR_IO when a write fails
 *           (*fault: errnum and its text). On error the stream written so
 *           far is partial.
 *  Out: report: may be NULL. fault: may be NULL.
 *  In:  ctx, cfg: not NULL. fd: open for writing.
 *  Memory: bounded by the chunk (64K records or 64 MB) and the model of
 *  the spendable outputs, whatever cfg->txs. */
pm_status pm_gen_write(const pm_context *ctx, const pm_gen_config *cfg, int fd,
                       pm_gen_report *report, tool_fault *fault);

#endif
