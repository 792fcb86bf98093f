/*
 * bench_pipeline.c — the signature-bound benchmark: `postmark replay`
 * throughput beside the limit it chases, libsecp256k1's
 * secp256k1_schnorrsig_verify rate with pre-parsed keys, both measured in
 * this run on the same N cores (sched_setaffinity, as taskset does), for
 * N = 1 .. the core count.
 *
 * The workload is the generator's TRANSFERS shape (a chain of one-input
 * transfers among a few thousand owners), packed once. Each figure is the
 * median of --reps runs, with min and max. The engine is the real command:
 * a child process pinned to the cores execs `postmark replay --json` and
 * its `tx_per_s` is read back.
 *
 * usage: bench_pipeline [--postmark PATH] [--txs N] [--reps R] [--json FILE]
 */
#include "gen.h"
#include "postmark.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRIPLES 4096

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pin_to_cores(int n)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < n; i++)
        CPU_SET(i, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        perror("sched_setaffinity");
}

/* ---- the limit: schnorrsig_verify with pre-parsed keys ---------------- */

typedef struct {
    secp256k1_xonly_pubkey key;
    uint8_t msg[32];
    uint8_t sig[64];
} triple;

typedef struct {
    const secp256k1_context *secp;
    const triple *t;
    double seconds;
    uint64_t done;
} verify_arg;

static void *verify_loop(void *p)
{
    verify_arg *a = p;
    double end = now() + a->seconds;
    uint64_t n = 0;
    while (now() < end)
        for (int i = 0; i < 256; i++, n++)
            if (!secp256k1_schnorrsig_verify(a->secp, a->t[n % TRIPLES].sig, a->t[n % TRIPLES].msg,
                                             32, &a->t[n % TRIPLES].key))
                abort();
    a->done = n;
    return NULL;
}

static double limit_rate(const triple *t, int threads, double seconds)
{
    secp256k1_context *secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    pthread_t th[256];
    verify_arg args[256];
    double start = now();
    for (int i = 0; i < threads; i++) {
        args[i] = (verify_arg){secp, t, seconds, 0};
        pthread_create(&th[i], NULL, verify_loop, &args[i]);
    }
    uint64_t total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += args[i].done;
    }
    double rate = (double)total / (now() - start);
    secp256k1_context_destroy(secp);
    return rate;
}

static triple *make_triples(void)
{
    secp256k1_context *secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    triple *t = calloc(TRIPLES, sizeof *t);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < TRIPLES; i++) {
        uint8_t seckey[32];
        secp256k1_keypair kp;
        do {
            for (int j = 0; j < 32; j++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                seckey[j] = (uint8_t)x;
            }
        } while (!secp256k1_keypair_create(secp, &kp, seckey));
        for (int j = 0; j < 32; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            t[i].msg[j] = (uint8_t)x;
        }
        if (!secp256k1_schnorrsig_sign32(secp, t[i].sig, t[i].msg, &kp, NULL) ||
            !secp256k1_keypair_xonly_pub(secp, &t[i].key, NULL, &kp))
            abort();
    }
    secp256k1_context_destroy(secp);
    return t;
}

/* ---- the engine: `postmark replay --json` pinned to N cores ----------- */

static double replay_rate(const char *postmark, const char *chain, int cores, double *sig_s)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        pin_to_cores(cores);
        dup2(fds[1], 1);
        close(fds[0]);
        char threads[16];
        snprintf(threads, sizeof threads, "%d", cores);
        execl(postmark, postmark, "replay", chain, "--threads", threads, "--json", "--quiet",
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[4096];
    size_t len = 0;
    ssize_t got;
    while ((got = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)got;
    buf[len] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    const char *p = strstr(buf, "\"tx_per_s\":");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !p) {
        fprintf(stderr, "replay failed: %s\n", buf);
        return 0;
    }
    double rate = strtod(p + 11, NULL);
    *sig_s = rate; /* one signature per transfer */
    return rate;
}

/* Run the limit in a child pinned to the same cores, so both see the
 * same scheduler constraints. */
static double limit_pinned(const triple *t, int cores, double seconds)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        pin_to_cores(cores);
        double r = limit_rate(t, cores, seconds);
        if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    double r = 0;
    if (read(fds[0], &r, sizeof r) != (ssize_t)sizeof r)
        r = 0;
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *postmark = NULL, *json_path = NULL;
    uint64_t txs = 200000;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--postmark") && i + 1 < argc)
            postmark = argv[++i];
        else if (!strcmp(argv[i], "--txs") && i + 1 < argc)
            txs = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json_path = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--postmark PATH] [--txs N] [--reps R] [--json FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    char default_pm[4096];
    if (!postmark) {
        /* bench/ sits beside the program in the build tree. */
        ssize_t n = readlink("/proc/self/exe", default_pm, sizeof default_pm - 32);
        if (n <= 0)
            return 1;
        default_pm[n] = 0;
        char *slash = strrchr(default_pm, '/');
        strcpy(slash, "/../postmark");
        postmark = default_pm;
    }
    if (reps < 1 || reps > 99 || txs < 1000) {
        fprintf(stderr, "--reps 1..99, --txs >= 1000\n");
        return 2;
    }

    char dir[] = "/tmp/pmbench.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char stream[256], chain[256], cmd[8800];
    snprintf(stream, sizeof stream, "%s/transfers.pmtx", dir);
    snprintf(chain, sizeof chain, "%s/transfers.pmbk", dir);

    pm_context *ctx = pm_context_create();
    pm_gen_config cfg;
    pm_gen_config_default(&cfg, PM_GEN_TRANSFERS);
    cfg.txs = txs;
    int fd = open(stream, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    tool_fault fault = {.message = ""};
    double t0 = now();
    if (fd < 0 || pm_gen_write(ctx, &cfg, fd, NULL, &fault) != PM_OK) {
        fprintf(stderr, "gen: %s\n", fault.message);
        return 1;
    }
    close(fd);
    fprintf(stderr, "generated %llu transfers in %.1f s\n", (unsigned long long)txs, now() - t0);
    snprintf(cmd, sizeof cmd, "%s pack %s --chain %s --quiet", postmark, stream, chain);
    if (system(cmd) != 0) {
        fprintf(stderr, "pack failed: %s\n", cmd);
        return 1;
    }

    triple *t = make_triples();
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    FILE *json = json_path ? fopen(json_path, "w") : NULL;
    if (json)
        fprintf(json, "{\"benchmark\": \"pipeline\", \"txs\": %llu, \"reps\": %d, \"results\": [",
                (unsigned long long)txs, reps);
    printf("| cores | replay tx/s (median, min-max) | schnorrsig_verify/s (median, min-max) | ratio |\n");
    printf("|---:|---:|---:|---:|\n");
    for (int n = 1; n <= cores; n++) {
        double eng[99], lim[99], sig;
        for (int r = 0; r < reps; r++) {
            eng[r] = replay_rate(postmark, chain, n, &sig);
            /* The limit runs as long as the replay did, on the same cores. */
            lim[r] = limit_pinned(t, n, eng[r] > 0 ? (double)txs / eng[r] : 2.0);
        }
        qsort(eng, (size_t)reps, sizeof *eng, cmp_double);
        qsort(lim, (size_t)reps, sizeof *lim, cmp_double);
        double em = eng[reps / 2], lm = lim[reps / 2];
        printf("| %d | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.3f |\n", n, em, eng[0],
               eng[reps - 1], lm, lim[0], lim[reps - 1], lm > 0 ? em / lm : 0.0);
        if (json)
            fprintf(json,
                    "%s{\"cores\": %d, \"replay_tx_s\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f}, "
                    "\"verify_s\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f}, \"ratio\": %.4f}",
                    n > 1 ? ", " : "", n, em, eng[0], eng[reps - 1], lm, lim[0], lim[reps - 1],
                    lm > 0 ? em / lm : 0.0);
        fflush(stdout);
    }
    if (json) {
        fprintf(json, "]}\n");
        fclose(json);
    }
    free(t);
    pm_context_destroy(ctx);
    unlink(stream);
    unlink(chain);
    rmdir(dir);
    return 0;
}
