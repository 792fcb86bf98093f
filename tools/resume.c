/* resume.c — see resume.h for the design. */
#include "resume.h"
#include "cliutil.h"
#include "fsutil.h"

#include <errno.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define PREFIX_TAG "postmark/stream-prefix"

/* ---- the prefix hash ---------------------------------------------------- */

static int ring_push(stream_prefix *p, const uint8_t h[32])
{
    if (p->ring_len == p->ring_cap) {
        size_t cap = p->ring_cap ? p->ring_cap * 2 : 4096;
        uint8_t *r = malloc(cap * 32);
        if (!r)
            return 0;
        for (size_t i = 0; i < p->ring_len; i++)
            memcpy(r + i * 32, p->ring + ((p->ring_head + i) % p->ring_cap) * 32, 32);
        free(p->ring);
        p->ring = r;
        p->ring_cap = cap;
        p->ring_head = 0;
    }
    memcpy(p->ring + ((p->ring_head + p->ring_len) % p->ring_cap) * 32, h, 32);
    p->ring_len++;
    return 1;
}

/* The record hash runs once per record on pack's submitting thread: one
 * reused OpenSSL context and a fetched digest, not a context made per call
 * (that doubled its cost). */
static int tagged(stream_prefix *p, uint8_t out[32], const uint8_t *a, size_t alen,
                  const uint8_t *b, size_t blen)
{
    unsigned len = 0;
    return EVP_DigestInit_ex(p->sha, p->md, NULL) == 1 &&
           EVP_DigestUpdate(p->sha, p->tag2, sizeof p->tag2) == 1 &&
           EVP_DigestUpdate(p->sha, a, alen) == 1 &&
           (blen == 0 || EVP_DigestUpdate(p->sha, b, blen) == 1) &&
           EVP_DigestFinal_ex(p->sha, out, &len) == 1 && len == 32;
}

int prefix_init(stream_prefix *p, const uint8_t header[60], int keep)
{
    prefix_free(p);
    p->keep = keep;
    p->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    p->sha = EVP_MD_CTX_new();
    unsigned len = 0;
    if (!p->md || !p->sha ||
        EVP_Digest(PREFIX_TAG, strlen(PREFIX_TAG), p->tag2, &len, p->md, NULL) != 1)
        return 0;
    memcpy(p->tag2 + 32, p->tag2, 32);
    if (!tagged(p, p->cur, header, PM_FILE_HEADER_SIZE, NULL, 0))
        return 0;
    return !keep || ring_push(p, p->cur);
}

int prefix_add(stream_prefix *p, const uint8_t *bytes, size_t size)
{
    uint8_t head[36];
    memcpy(head, p->cur, 32);
    for (int i = 0; i < 4; i++)
        head[32 + i] = (uint8_t)(size >> (8 * i));
    if (!tagged(p, p->cur, head, sizeof head, bytes, bytes ? size : 0))
        return 0;
    p->count++;
    return !p->keep || ring_push(p, p->cur);
}

void prefix_start_at(stream_prefix *p, uint64_t n, const uint8_t hash[32])
{
    memcpy(p->cur, hash, 32);
    p->count = p->base = n;
    p->ring_head = 0;
    p->ring_len = 0;
    if (p->keep)
        (void)ring_push(p, hash); /* prefix_init made room for one entry */
}

const uint8_t *prefix_take(stream_prefix *p, uint64_t n)
{
    if (!p->keep || n < p->base || n > p->count)
        return NULL;
    size_t skip = (size_t)(n - p->base);
    p->ring_head = (p->ring_head + skip) % p->ring_cap;
    p->ring_len -= skip;
    p->base = n;
    return p->ring + p->ring_head * 32;
}

void prefix_free(stream_prefix *p)
{
    free(p->ring);
    EVP_MD_CTX_free(p->sha);
    EVP_MD_free(p->md);
    memset(p, 0, sizeof *p);
}

/* ---- the journal ------------------------------------------------------ */

static char *journal_path(const char *chain_path)
{
    size_t len = strlen(chain_path) + 6;
    char *path = malloc(len);
    if (path)
        snprintf(path, len, "%s.runs", chain_path);
    return path;
}

/* A line is "TEXT CHECK\n" with CHECK the XXH64 of TEXT in 16 hex digits.
 * Returns TEXT's length when the line checks, 0 otherwise. */
static size_t line_checks(const char *line)
{
    size_t len = strlen(line);
    if (len < 18 || line[len - 1] != '\n' || line[len - 18] != ' ')
        return 0;
    char want[17];
    snprintf(want, sizeof want, "%016" PRIx64, (uint64_t)XXH64(line, len - 18, 0));
    return memcmp(want, line + len - 17, 16) == 0 ? len - 18 : 0;
}

int runs_find(const char *chain_path, int64_t tip_height, const uint8_t tip_hash[32],
             resume_point *rp, tool_fault *fault)
{
    memset(rp, 0, sizeof *rp);
    char *path = journal_path(chain_path);
    if (!path) {
        tool_fault_msg(fault, ENOMEM, "out of memory");
        return -1;
    }
    /* open(2), not fopen: a failure is seen (and can be injected) as it
     * is. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (e != ENOENT)
            tool_fault_msg(fault, e,
                           "%s: %s (the journal says where a run resumes: refusing to guess)",
                           path, strerror(e));
        free(path);
        return e == ENOENT ? 0 : -1;
    }
    char line[512], hash[65], prefix[65];
    unsigned long long height, count;
    long long h;
    while (fgets(line, sizeof line, f)) {
        size_t text = line_checks(line);
        if (!text)
            continue; /* cut by a crash or a full disk: it never counted */
        line[text] = 0;
        uint8_t hb[32], pb[32];
        int is_block = sscanf(line, "block %llu %64s %llu %64s", &height, hash, &count, prefix) == 4;
        int is_end = !is_block && sscanf(line, "end %lld %64s %llu %64s", &h, hash, &count, prefix) == 4;
        if (is_block)
            h = (long long)height, count++; /* the block's last index: K is one more */
        if ((!is_block && !is_end) || !pm_cli_unhex(hb, 32, hash) || !pm_cli_unhex(pb, 32, prefix))
            continue;
        if (h != tip_height || (tip_height >= 0 && memcmp(hb, tip_hash, 32) != 0))
            continue;
        rp->found = 1;
        rp->records = count;
        memcpy(rp->prefix, pb, 32);
    }
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad)
        tool_fault_msg(fault, e, "%s: %s", path, strerror(e));
    free(path);
    return bad ? -1 : 0;
}

int runs_open(runs_journal *j, const char *chain_path, tool_fault *fault)
{
    j->fd = -1;
    j->path = journal_path(chain_path);
    if (!j->path) {
        tool_fault_msg(fault, ENOMEM, "out of memory");
        return -1;
    }
    struct stat st;
    int existed = stat(j->path, &st) == 0;
    j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (j->fd < 0 || fstat(j->fd, &st) != 0) {
        tool_fault_msg(fault, errno, "%s: %s", j->path, strerror(errno));
        return -1;
    }
    /* A last line without its newline was cut (by a crash, before this
     * version, by a full disk): remove it so the next line stands alone. */
    if (st.st_size > 0) {
        off_t end = st.st_size, keep = 0;
        char buf[4096];
        for (off_t at = end; at > 0 && keep == 0;) {
            size_t n = at > (off_t)sizeof buf ? sizeof buf : (size_t)at;
            at -= (off_t)n;
            if (pread(j->fd, buf, n, at) != (ssize_t)n) {
                int e = errno ? errno : EIO;
                tool_fault_set(fault, TOOL_FAULT_NONE, (uint64_t)at, e, "%s: read: %s", j->path,
                               strerror(e));
                return -1;
            }
            for (size_t i = n; i > 0; i--)
                if (buf[i - 1] == '\n') {
                    keep = at + (off_t)i;
                    break;
                }
        }
        if (keep != end && (ftruncate(j->fd, keep) != 0 || fdatasync(j->fd) != 0)) {
            tool_fault_set(fault, TOOL_FAULT_NONE, (uint64_t)keep, errno,
                           "%s: cannot cut its partial last line: %s", j->path, strerror(errno));
            return -1;
        }
    }
    if (!existed && pm_sync_parent(j->path) != 0) {
        tool_fault_msg(fault, errno, "%s: cannot sync its directory: %s", j->path,
                       strerror(errno));
        return -1;
    }
    return 0;
}

/* Append "TEXT CHECK\n" and sync; on failure cut the file back. */
static int append_line(runs_journal *j, const char *text)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%s %016" PRIx64 "\n", text,
                     (uint64_t)XXH64(text, strlen(text), 0));
    struct stat st;
    if (fstat(j->fd, &st) != 0)
        return -1;
    const char *p = line;
    size_t left = (size_t)n;
    while (left) {
        ssize_t w = write(j->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            if (ftruncate(j->fd, st.st_size) == 0)
                (void)fdatasync(j->fd);
            errno = e;
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    return fdatasync(j->fd);
}

int runs_block(runs_journal *j, uint64_t height, const uint8_t hash[32], uint64_t last_index,
                  const uint8_t prefix[32])
{
    char text[256], h1[65], h2[65];
    snprintf(text, sizeof text, "block %llu %s %llu %s", (unsigned long long)height,
             pm_cli_hex(h1, hash, 32), (unsigned long long)last_index, pm_cli_hex(h2, prefix, 32));
    return append_line(j, text);
}

int runs_end(runs_journal *j, int64_t height, const uint8_t tip[32], uint64_t records,
                const uint8_t prefix[32])
{
    char text[256], h1[65], h2[65];
    snprintf(text, sizeof text, "end %lld %s %llu %s", (long long)height, pm_cli_hex(h1, tip, 32),
             (unsigned long long)records, pm_cli_hex(h2, prefix, 32));
    return append_line(j, text);
}

void runs_close(runs_journal *j)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    free(j->path);
    j->path = NULL;
}

/* ---- the rejects file ---------------------------------------------------- */

int rejects_cut_offset(const char *path, uint64_t below, uint64_t *offset)
{
    *offset = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char line[256];
    uint64_t at = 0;
    int header = 1;
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (line[len - 1] != '\n')
            break;
        if (header) {
            if (strcmp(line, "index,txid,reason\n") != 0)
                break;
            header = 0;
        } else {
            char *end;
            errno = 0;
            unsigned long long idx = strtoull(line, &end, 10);
            if (end == line || *end != ',' || errno || idx >= below)
                break;
        }
        at += len;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return -1;
    *offset = at;
    return 0;
}
