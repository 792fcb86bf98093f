/*
 * chainfile.h — reading streams and chains for the subcommands, on top of
 * the ingest module (io_uring, zero-copy records): an input opened by path
 * ("-" for stdin, "unix:PATH" for a node pushing a stream) with its header
 * checked, and a chain's blocks verified into an engine as they are read.
 * Shared by pack (which validates the chain it appends to) and replay.
 */
#ifndef PM_TOOLS_CHAINFILE_H
#define PM_TOOLS_CHAINFILE_H

#include "ingest.h"
#include "postmark.h"

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <jansson.h>
#include <stdio.h>

typedef struct {
    const char *path;
    pm_ingest *in;
    int header_ok;          /* 60-byte header valid (magic, version) */
    pm_file_kind kind;
    pm_chain_params params;
    pm_parse_error header_error;
    uint8_t header[PM_FILE_HEADER_SIZE];
} pm_input;

/* How an input is read. */
typedef enum {
    PM_INPUT_CHAIN,  /* large buffers: a batch holds many whole blocks */
    PM_INPUT_STREAM  /* ingest's default buffers (records stay cached) */
} pm_input_use;

/* What an input may cost and when it gives up: a stop flag (a signal
 * handler's) that ends waits for a stream's input, and the longest record
 * assembled (longer ones come back with bytes NULL). NULL: no flag, and
 * the protocol's limit for the kind (PM_TX_MAX_SIZE, PM_BLOCK_MAX_SIZE). */
typedef struct {
    const volatile sig_atomic_t *cancel;
    size_t max_record;
} pm_input_limits;

/* Open `path` and read its header. Returns 0, or -1 with *fault set
 * (fault may be NULL). A short or bad header is not an error here: see header_ok. idle_ms: for
 * a stream (pipe, socket), pm_ingest_next gives up waiting after that long
 * (0: never). The ingest module's notice (why io_uring is not in use) is
 * printed on stderr unless quiet. PM_INGEST=read in the environment forces
 * the read(2) path. */
int input_open(pm_input *f, const char *path, pm_input_use use, unsigned idle_ms, int quiet,
               const pm_input_limits *limits, tool_fault *fault);
void pm_input_close(pm_input *f);

/* Print the BAD_HEADER line for `f` ("FILE: record 0 at byte B: BAD_HEADER
 * (why)"), `want` being the kind the command needs. Returns 1 when the
 * header is bad or of the other kind (and printed), 0 when it is fine. */
int pm_input_refuse_header(const pm_input *f, const char *cmd, pm_file_kind want);

typedef struct {
    int valid;
    pm_verdict verdict;     /* when !valid: reason; verdict.block is the
                               position in the file */
    uint64_t offset;        /* byte offset of the failing block */
    uint64_t blocks;        /* whole blocks connected */
    uint64_t txs;           /* transactions in them */
    int truncated;          /* the file ends inside a record */
    uint64_t truncated_offset;
    double seconds;
} pm_chain_result;

typedef struct {
    uint64_t assume_valid_upto; /* skip signatures at positions below it */
    const uint8_t *assume_valid_hash; /* with assume_valid_upto: the hash the
                                   block at assume_valid_upto - 1 must have
                                   in this very read (it commits to every
                                   block before it); otherwise the run
                                   fails: the file changed since it was
                                   searched */
    uint64_t start;             /* blocks below it are in the engine already
                                   (a snapshot's): read, not verified */
    const uint8_t *start_parent;/* with start > 0: the hash block start - 1
                                   must have (the snapshot's tip) */
    const char *progress;       /* the command, for a progress line; NULL */
} pm_verify_opts;

/* Verify the whole blocks of `f` (after its header) from opts->start on
 * into `engine`, on top of its tip, then report TRUNCATED if the input ends
 * inside a record. Positions in the result are positions in the file;
 * res->blocks counts the file's valid whole blocks (start included).
 * Returns PM_OK (see res->valid), PM_ERR_STATE when the file does not hold
 * opts->start_parent at opts->start - 1 (*fault: "snapshot tip is not in
 * this chain"), PM_ERR_IO (*fault; also when the assume-valid block is not
 * where it was found: then with its record and offset) or an engine error
 * (*fault: the engine's last error). A record over PM_BLOCK_MAX_SIZE is
 * BLOCK_MALFORMED, without being read. fault may be NULL. */
pm_status chain_verify(pm_engine *engine, pm_input *f, const pm_verify_opts *opts,
                       pm_chain_result *res, tool_fault *fault);

/* Compatibility: the err/errlen forms of input_open and chain_verify,
 * kept for tools/serve/service.c until it is converted (issue 11). */
int pm_input_open(pm_input *f, const char *path, pm_input_use use, unsigned idle_ms, int quiet,
                  const pm_input_limits *limits, char *err, size_t errlen);
pm_status pm_chain_verify(pm_engine *engine, pm_input *f, const pm_verify_opts *opts,
                          pm_chain_result *res, char *err, size_t errlen);

/* For --assume-valid: one pass over the chain at `path` hashing block
 * headers. Returns the position + 1 of the first whole block whose hash is
 * `hash`, 0 when none has (or -1 on a read error: *fault). */
int64_t pm_chain_find_block(const char *path, const uint8_t hash[32], tool_fault *fault);

/* Add the JSON members common to pack and replay to obj: height, tip,
 * utxo_count, utxo_digest. Returns PM_OK or the digest's error. */
pm_status pm_state_json(pm_engine *engine, json_t *obj);

/* A progress line on stderr (only when it is a terminal), at most twice a
 * second: records/s, blocks, and the ETA from the input's size. */
typedef struct {
    const char *cmd;
    int enabled;
    double started, last;
} pm_progress;

void pm_progress_start(pm_progress *p, const char *cmd, int quiet);
void pm_progress_update(pm_progress *p, const pm_ingest *in, uint64_t records, uint64_t blocks);
void pm_progress_end(pm_progress *p);

#endif
