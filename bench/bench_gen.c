/*
 * bench_gen.c — how fast pm_gen_write makes a stream, beside the limit
 * measured in the same run: libsecp256k1's raw BIP-340 signing rate on the
 * same number of threads (signing is what generation mostly is).
 *
 *   bench_gen [market|transfers|large] [TXS] [THREADS] [OUT.pmtx]
 *
 * Defaults: transfers, 1,000,000 records, online CPUs, a temporary file
 * (removed). Prints the records' reasons as planned, then
 * "gen: N tx/s, M sig/s; raw signing: L sig/s; ratio M/L".
 */
#include "gen.h"

#include <fcntl.h>
#include <pthread.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    secp256k1_context *secp;
    unsigned n;
    unsigned seed;
} raw_job;

static void *raw_sign(void *arg)
{
    raw_job *job = arg;
    secp256k1_keypair kp;
    unsigned char secret[32], msg[32], sig[64];
    memset(secret, 0x42, 32);
    secret[0] = (unsigned char)job->seed;
    if (!secp256k1_keypair_create(job->secp, &kp, secret))
        return NULL;
    memset(msg, 0, 32);
    for (unsigned i = 0; i < job->n; i++) {
        memcpy(msg, &i, sizeof i);
        if (!secp256k1_schnorrsig_sign32(job->secp, sig, msg, &kp, NULL))
            return NULL;
        msg[31] ^= sig[0];
    }
    return NULL;
}

/* Signatures per second of `threads` threads signing flat out. */
static double raw_signing_rate(unsigned threads)
{
    secp256k1_context *secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    pthread_t tids[256];
    raw_job jobs[256];
    unsigned per = 20000;
    double t0 = now();
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (raw_job){secp, per, t + 1};
        pthread_create(&tids[t], NULL, raw_sign, &jobs[t]);
    }
    for (unsigned t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);
    double rate = (double)per * threads / (now() - t0);
    secp256k1_context_destroy(secp);
    return rate;
}

int main(int argc, char **argv)
{
    pm_gen_shape shape = PM_GEN_TRANSFERS;
    if (argc > 1 && strcmp(argv[1], "market") == 0)
        shape = PM_GEN_MARKET;
    else if (argc > 1 && strcmp(argv[1], "large") == 0)
        shape = PM_GEN_LARGE_STATE;
    pm_gen_config cfg;
    pm_gen_config_default(&cfg, shape);
    cfg.txs = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
    cfg.threads = argc > 3 ? (unsigned)atoi(argv[3]) : 0;
    unsigned threads = cfg.threads ? cfg.threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads > 256)
        threads = 256;
    char path[256];
    int keep = argc > 4;
    if (keep)
        snprintf(path, sizeof path, "%s", argv[4]);
    else
        snprintf(path, sizeof path, "/tmp/bench_gen.%d.pmtx", (int)getpid());

    pm_context *ctx = pm_context_create();
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (!ctx || fd < 0) {
        perror("bench_gen");
        return 1;
    }
    pm_gen_report rep;
    tool_fault fault;
    double t0 = now();
    pm_status st = pm_gen_write(ctx, &cfg, fd, &rep, &fault);
    double secs = now() - t0;
    if (st != PM_OK) {
        fprintf(stderr, "bench_gen: %s: %s\n", pm_status_text(st), fault.message);
        return 1;
    }

    /* Count the signatures written (records that parse). */
    struct stat sb;
    fstat(fd, &sb);
    size_t size = (size_t)sb.st_size;
    uint8_t *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    uint64_t sigs = 0;
    if (map != MAP_FAILED) {
        size_t pos = PM_FILE_HEADER_SIZE;
        while (size - pos >= 4) {
            uint32_t len = (uint32_t)map[pos] | (uint32_t)map[pos + 1] << 8 |
                           (uint32_t)map[pos + 2] << 16 | (uint32_t)map[pos + 3] << 24;
            if (size - pos - 4 < len)
                break;
            pm_tx tx;
            if (pm_tx_parse(pm_context_static, &tx, NULL, map + pos + 4, len))
                sigs += tx.n_sigs;
            pos += 4 + len;
        }
        munmap(map, size);
    }
    close(fd);
    if (!keep)
        unlink(path);

    printf("shape %s, %llu records, %u threads, %.1f MB\n",
           shape == PM_GEN_MARKET ? "market" : shape == PM_GEN_TRANSFERS ? "transfers" : "large",
           (unsigned long long)rep.records, threads, (double)size / 1e6);
    printf("planned: %llu accepted", (unsigned long long)rep.planned_accepted);
    for (int r = 1; r < PM_REASON_COUNT; r++)
        if (rep.planned[r])
            printf(", %llu %s", (unsigned long long)rep.planned[r], pm_reason_name((pm_reason)r));
    printf("\n");
    double raw = raw_signing_rate(threads);
    printf("gen: %.0f tx/s, %.0f sig/s in %.2f s; raw signing: %.0f sig/s; ratio %.2f\n",
           (double)rep.records / secs, (double)sigs / secs, secs, raw, (double)sigs / secs / raw);
    pm_context_destroy(ctx);
    return 0;
}
