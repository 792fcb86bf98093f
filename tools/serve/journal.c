/*
 * journal.c — the files of `postmark serve` beside the chain (serve.h).
 *
 * The journal is a stream file (protocol §2): `pack JOURNAL` is the audit.
 * Records are appended and fdatasync'ed before the engine sees them, so a
 * record is durable before its verdict is answered and before any block
 * holding it is appended to the chain.
 *
 * Where a restart resumes: JOURNAL.blocks gets "start H" when the journal
 * is created (the chain's blocks below H are not the journal's), then
 * "block H HASH LAST" — the journal index of the block's last transaction —
 * synced before each block is appended. After a crash, the validated tip
 * of the chain has its line (or is below H): every record after LAST is
 * validated again on the tip's state, exactly as pack resumes, so the
 * verdicts and block boundaries are the ones the crashed run was making.
 * A peer's block or a disconnection changes the tip while nothing is
 * pending: "tip H HASH NEXT" (H may be -1, HASH then the chain id) says
 * that on that tip the next record is NEXT. The last line naming the
 * validated tip wins.
 * This is the service's own copy of what tools/resume.c does for pack's
 * CHAIN.runs: the journal is one stream forever, so it needs no stream
 * identity.
 */
#include "serve.h"

#include "cliutil.h"
#include "recfile.h"
#include "resume.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(copy);
}

/* Count the journal's whole records, cutting a partial last one (its
 * answer was never sent: the write was not synced). */
static int count_records(serve_journal *j, const pm_chain_params *params, char *err, size_t errlen)
{
    pm_recfile *rf;
    pm_recfile_header hdr;
    if (pm_recfile_open(&rf, &hdr, err, errlen, j->path, PM_TX_MAX_SIZE) != PM_OK)
        return -1;
    int rc = -1;
    if (!hdr.valid || hdr.kind != PM_FILE_STREAM) {
        snprintf(err, errlen, "%s: not a transaction stream (bad header)", j->path);
        goto out;
    }
    if (memcmp(&hdr.params, params, sizeof *params) != 0) {
        snprintf(err, errlen, "%s: the journal of another chain (header bytes 8..59 differ)",
                 j->path);
        goto out;
    }
    pm_recfile_record rec;
    int r;
    j->records = 0;
    while ((r = pm_recfile_next(rf, &rec, err, errlen)) == 1) {
        if (rec.truncated) {
            if (ftruncate(j->fd, (off_t)rec.offset) != 0 || fsync(j->fd) != 0) {
                snprintf(err, errlen, "%s: cannot cut the partial record: %s", j->path,
                         strerror(errno));
                goto out;
            }
            break;
        }
        j->records++;
    }
    rc = r < 0 ? -1 : 0;
out:
    pm_recfile_close(rf);
    return rc;
}

/* Where the chain's tip is in the journal (see the top of the file). */
static int find_resume(serve_journal *j, int64_t tip_height, const uint8_t tip_hash[32],
                       uint64_t *resume_at, char *err, size_t errlen)
{
    FILE *f = fopen(j->blocks_path, "r");
    char line[256], hex[65];
    uint64_t start = 0;
    int found = 0;
    unsigned long long a, b;
    long long h;
    uint8_t hash[32];
    *resume_at = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n'))
            break; /* cut by a crash: its block never became durable */
        if (sscanf(line, "start %llu", &a) == 1)
            start = a;
        else if (sscanf(line, "block %llu %64s %llu", &a, hex, &b) == 3 &&
                 pm_cli_unhex(hash, 32, hex) && tip_height >= 0 &&
                 a == (unsigned long long)tip_height && memcmp(hash, tip_hash, 32) == 0) {
            found = 1;
            *resume_at = b + 1;
        } else if (sscanf(line, "tip %lld %64s %llu", &h, hex, &b) == 3 &&
                   pm_cli_unhex(hash, 32, hex) && h == tip_height &&
                   memcmp(hash, tip_hash, 32) == 0) {
            found = 1;
            *resume_at = b;
        }
    }
    if (f)
        fclose(f);
    if (!found && tip_height >= 0 && (uint64_t)tip_height >= start) {
        snprintf(err, errlen, "%s: no line for the chain's tip block %lld: the chain and the "
                              "journal do not belong together",
                 j->blocks_path, (long long)tip_height);
        return -1;
    }
    if (*resume_at > j->records) {
        snprintf(err, errlen, "%s: holds %llu records, but the chain's blocks reach record %llu",
                 j->path, (unsigned long long)j->records, (unsigned long long)*resume_at);
        return -1;
    }
    return 0;
}

int journal_open(serve_journal *j, const char *path, const pm_chain_params *params,
                 int64_t tip_height, const uint8_t tip_hash[32], uint64_t *resume_at, char *err,
                 size_t errlen)
{
    memset(j, 0, sizeof *j);
    j->fd = j->blocks_fd = -1;
    j->path = strdup(path);
    j->blocks_path = concat(path, ".blocks");
    j->rejects_path = concat(path, ".rejects.csv");
    if (!j->path || !j->blocks_path || !j->rejects_path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    if (j->fd < 0 || fstat(j->fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    *resume_at = 0;
    if (st.st_size == 0) {
        /* A new journal: its header, and where its blocks start. */
        uint8_t header[PM_FILE_HEADER_SIZE];
        pm_file_header_encode(pm_context_static, header, PM_FILE_STREAM, params);
        char line[64];
        int n = snprintf(line, sizeof line, "start %lld\n", (long long)(tip_height + 1));
        int bfd = open(j->blocks_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int ok = bfd >= 0 && write_all(bfd, line, (size_t)n) == 0 && fsync(bfd) == 0 &&
                 write_all(j->fd, header, sizeof header) == 0 && fsync(j->fd) == 0;
        if (bfd >= 0)
            close(bfd);
        if (!ok) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
        sync_dir(path);
        remove(j->rejects_path);
    } else if (count_records(j, params, err, errlen) != 0 ||
               find_resume(j, tip_height, tip_hash, resume_at, err, errlen) != 0) {
        return -1;
    }
    /* Rejects after the resume point are reported again. */
    uint64_t cut = 0;
    if (rejects_cut_offset(j->rejects_path, *resume_at, &cut) != 0 ||
        (truncate(j->rejects_path, (off_t)cut) != 0 && errno != ENOENT) ||
        !(j->rejects = fopen(j->rejects_path, "a"))) {
        snprintf(err, errlen, "%s: %s", j->rejects_path, strerror(errno));
        return -1;
    }
    if (ftell(j->rejects) == 0)
        fputs("index,txid,reason\n", j->rejects);
    j->blocks_fd = open(j->blocks_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (j->blocks_fd < 0 || lseek(j->fd, 0, SEEK_END) < 0) {
        snprintf(err, errlen, "%s: %s", j->blocks_path, strerror(errno));
        return -1;
    }
    return 0;
}

int journal_append(serve_journal *j, const uint8_t *const *recs, const size_t *sizes, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += 4 + sizes[i];
    uint8_t *buf = malloc(total ? total : 1), *p = buf;
    if (!buf)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)sizes[i];
        p[0] = (uint8_t)len, p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)(len >> 16),
        p[3] = (uint8_t)(len >> 24);
        if (sizes[i])
            memcpy(p + 4, recs[i], sizes[i]);
        p += 4 + sizes[i];
    }
    int rc = write_all(j->fd, buf, total) == 0 && fdatasync(j->fd) == 0 ? 0 : -1;
    free(buf);
    if (rc == 0)
        j->records += n;
    return rc;
}

/* A line "KIND HEIGHT HASH INDEX" in JOURNAL.blocks, synced after the
 * rejects reported before it. */
static int note_line(serve_journal *j, const char *kind, long long height, const uint8_t hash[32],
                     unsigned long long index)
{
    char hex[65], line[160];
    if (fflush(j->rejects) != 0 || fdatasync(fileno(j->rejects)) != 0)
        return -1;
    int n = snprintf(line, sizeof line, "%s %lld %s %llu\n", kind, height,
                     pm_cli_hex(hex, hash, 32), index);
    return write_all(j->blocks_fd, line, (size_t)n) == 0 && fdatasync(j->blocks_fd) == 0 ? 0 : -1;
}

int journal_note_block(serve_journal *j, uint64_t height, const uint8_t hash[32],
                       uint64_t last_index)
{
    return note_line(j, "block", (long long)height, hash, last_index);
}

int journal_note_tip(serve_journal *j, int64_t height, const uint8_t hash[32], uint64_t next)
{
    return note_line(j, "tip", height, hash, next);
}

void journal_note_reject(serve_journal *j, uint64_t index, const uint8_t *txid, pm_reason reason)
{
    char hex[65];
    fprintf(j->rejects, "%llu,%s,%s\n", (unsigned long long)index,
            txid ? pm_cli_hex(hex, txid, 32) : "", pm_reason_name(reason));
}

void journal_close(serve_journal *j)
{
    if (j->rejects)
        fclose(j->rejects);
    if (j->fd >= 0)
        close(j->fd);
    if (j->blocks_fd >= 0)
        close(j->blocks_fd);
    free(j->path);
    free(j->blocks_path);
    free(j->rejects_path);
    memset(j, 0, sizeof *j);
    j->fd = j->blocks_fd = -1;
}

int journal_each(const serve_journal *j, uint64_t from,
                 int (*fn)(void *data, uint64_t index, const uint8_t *bytes, size_t size),
                 void *data, char *err, size_t errlen)
{
    pm_recfile *rf;
    pm_recfile_header hdr;
    if (pm_recfile_open(&rf, &hdr, err, errlen, j->path, PM_TX_MAX_SIZE) != PM_OK)
        return -1;
    pm_recfile_record rec;
    int r, rc = 0;
    while (rc == 0 && (r = pm_recfile_next(rf, &rec, err, errlen)) == 1 && !rec.truncated)
        if (rec.index >= from)
            /* A record over the size limit is not kept by the reader: it
             * is MALFORMED whatever its bytes, as an empty one is. */
            rc = fn(data, rec.index, rec.bytes, rec.bytes ? rec.size : 0);
    pm_recfile_close(rf);
    return rc != 0 || r < 0 ? -1 : 0;
}

void journal_each_reject(const serve_journal *j,
                         void (*fn)(void *data, uint64_t index, const uint8_t *txid, pm_reason r),
                         void *data)
{
    FILE *f = fopen(j->rejects_path, "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        char *end, *txid, *name;
        unsigned long long index = strtoull(line, &end, 10);
        if (end == line || *end != ',')
            continue;
        txid = end + 1;
        if (!(name = strchr(txid, ',')))
            continue;
        *name++ = 0;
        name[strcspn(name, "\r\n")] = 0;
        uint8_t id[32];
        pm_reason reason;
        if (pm_reason_from_name(pm_context_static, &reason, name))
            fn(data, index, pm_cli_unhex(id, 32, txid) ? id : NULL, reason);
    }
    if (f)
        fclose(f);
}
