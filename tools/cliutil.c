/* cliutil.c — see cliutil.h. */
#include "cliutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One line on stderr, "postmark CMD: message". Control bytes (from a
 * file name or an argument) are shown escaped: they would otherwise reach
 * the terminal raw, where they can move the cursor or retitle the
 * window. */
static void print_line(const char *cmd, const char *fmt, va_list ap)
{
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "postmark%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(stderr, "\\x%02x", *p);
        else
            fputc(*p, stderr);
    }
    fputc('\n', stderr);
}

void pm_cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_line(cmd, fmt, ap);
    va_end(ap);
}

void pm_cli_note(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_line(cmd, fmt, ap);
    va_end(ap);
}

void tool_fault_print(const char *cmd, const char *file, const tool_fault *f)
{
    char where[96] = "";
    if (f->record != TOOL_FAULT_NONE && f->offset != TOOL_FAULT_NONE)
        snprintf(where, sizeof where, "record %" PRIu64 " at byte %" PRIu64 ": ", f->record,
                 f->offset);
    else if (f->record != TOOL_FAULT_NONE)
        snprintf(where, sizeof where, "record %" PRIu64 ": ", f->record);
    if (file)
        pm_cli_error(cmd, "%s: %s%s", file, where, f->message);
    else
        pm_cli_error(cmd, "%s%s", where, f->message);
}

int pm_cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

char *pm_cli_hex(char *out, const uint8_t *bytes, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = 0;
    return out;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pm_cli_unhex(uint8_t *out, size_t n, const char *hex)
{
    if (strlen(hex) != 2 * n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 1;
}

size_t pm_cli_utf8_length(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80; /* no overlong forms */
    unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf; /* no surrogates, <= U+10FFFF */
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
            return 0;
    return n;
}

json_t *pm_cli_json_text(const char *s, size_t len)
{
    /* At most 3 bytes (U+FFFD) for each byte in. */
    char *clean = malloc(3 * len + 1);
    if (!clean)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = p[i] < 0x80 ? 1 : pm_cli_utf8_length(p + i, len - i);
        if (n) {
            memcpy(clean + o, p + i, n);
            o += n, i += n;
        } else {
            memcpy(clean + o, "\xef\xbf\xbd", 3);
            o += 3, i++;
        }
    }
    json_t *j = json_stringn(clean, o);
    free(clean);
    return j;
}

json_t *pm_cli_json_hex(const uint8_t *bytes, size_t n)
{
    char *hex = malloc(2 * n + 1);
    if (!hex)
        return NULL;
    json_t *j = json_string(pm_cli_hex(hex, bytes, n));
    free(hex);
    return j;
}

/* The marker of a large number: NUL, U+E000. */
static const char big_mark[] = "\0\xee\x80\x80";
#define BIG_MARK_LEN 4
/* ... as jansson prints it: NUL escaped, U+E000 as is. */
static const char big_mark_dumped[] = "\"\\u0000\xee\x80\x80";

json_t *pm_cli_json_decimal(const char *digits)
{
    size_t n = strlen(digits);
    if (n < 19) /* below 10^18: an ordinary integer */
        return json_integer((json_int_t)strtoll(digits, NULL, 10));
    char *s = malloc(BIG_MARK_LEN + n);
    if (!s)
        return NULL;
    memcpy(s, big_mark, BIG_MARK_LEN);
    memcpy(s + BIG_MARK_LEN, digits, n);
    json_t *j = json_stringn(s, BIG_MARK_LEN + n);
    free(s);
    return j;
}

json_t *pm_cli_json_u64(uint64_t v)
{
    if (v <= INT64_MAX)
        return json_integer((json_int_t)v);
    char digits[24];
    snprintf(digits, sizeof digits, "%" PRIu64, v);
    return pm_cli_json_decimal(digits);
}

int pm_cli_json_print(FILE *f, json_t *obj, int compact)
{
    /* Reals to 10 digits: enough for seconds and rates. */
    size_t flags = JSON_REAL_PRECISION(10) | (compact ? JSON_COMPACT : 0);
    char *text = obj ? json_dumps(obj, flags) : NULL;
    json_decref(obj);
    if (!text)
        return -1;
    /* Large numbers: the marked string "\u0000<U+E000>DIGITS" becomes DIGITS. */
    size_t mark = sizeof big_mark_dumped - 1, len = strlen(text), out = 0;
    for (size_t i = 0; i < len;) {
        if (text[i] == '"' && len - i >= mark && memcmp(text + i, big_mark_dumped, mark) == 0) {
            i += mark;
            while (text[i] != '"')
                text[out++] = text[i++];
            i++;
        } else {
            text[out++] = text[i++];
        }
    }
    int rc = fwrite(text, 1, out, f) == out && fputc('\n', f) != EOF ? 0 : -1;
    free(text);
    return rc;
}

int pm_cli_progress_enabled(void)
{
    return isatty(STDERR_FILENO);
}

double pm_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int pm_cli_json_number(const char *json, const char *key, double *out)
{
    size_t klen = strlen(key);
    for (const char *p = json; (p = strchr(p, '"')) != NULL; p++) {
        if (strncmp(p + 1, key, klen) != 0 || p[1 + klen] != '"')
            continue;
        const char *q = p + 2 + klen;
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            q++;
        if (*q != ':')
            continue;
        q++;
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            q++;
        char *end = NULL;
        double v = strtod(q, &end);
        if (end == q)
            return 0;
        *out = v;
        return 1;
    }
    return 0;
}
