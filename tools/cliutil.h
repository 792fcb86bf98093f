/*
 * cliutil.h — small helpers shared by the subcommands: option parsing with
 * range checks (usage errors exit 2), hex, JSON output with jansson, and the
 * one-line error format "postmark: FILE: record N at byte B: REASON".
 */
#ifndef PM_TOOLS_CLIUTIL_H
#define PM_TOOLS_CLIUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <stdio.h>

#include "fault.h"

#define PM_EXIT_OK 0
#define PM_EXIT_INVALID 1
#define PM_EXIT_USAGE 2

/* Print "postmark CMD: message" to stderr (printf-style; CMD NULL:
 * "postmark: message"), control bytes escaped as \xNN. pm_cli_error for
 * failures, pm_cli_note for progress and summaries. */
void pm_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pm_cli_note(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print a tool_fault with pm_cli_error: "FILE: record N at byte B:
 * MESSAGE", leaving out what the fault does not know ("FILE: record N:
 * MESSAGE", "FILE: MESSAGE"); file NULL: the message alone (it names the
 * file itself, as "cannot open FILE: ..." does). */
void tool_fault_print(const char *cmd, const char *file, const tool_fault *f);

/* Parse a decimal unsigned integer in [min, max]; 1 on success. */
int pm_cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Lowercase hex of n bytes into out (2n+1 chars). Returns out. */
char *pm_cli_hex(char *out, const uint8_t *bytes, size_t n);

/* Parse exactly 2n hex digits (either case); 1 on success. */
int pm_cli_unhex(uint8_t *out, size_t n, const char *hex);

/* Length of the valid UTF-8 sequence at s (1..4; s[0] >= 0x80), or 0
 * when it is not one (overlong, surrogate, past U+10FFFF, cut). */
size_t pm_cli_utf8_length(const unsigned char *s, size_t avail);

/* ---- JSON output, with jansson ------------------------------------------ */
/* The chain's names are any bytes; JSON strings are UTF-8: these keep the
 * valid sequences and put U+FFFD for each byte that is not one. NULL only
 * when out of memory (and jansson's setters then ignore the member). */
json_t *pm_cli_json_text(const char *s, size_t len);
/* Lowercase hex of n bytes, as a JSON string. */
json_t *pm_cli_json_hex(const uint8_t *bytes, size_t n);
/* An unsigned integer as a JSON number, exact even past json_int_t
 * (int64): pm_cli_json_decimal takes its decimal digits (a 128-bit sum).
 * jansson has no such number, so a large one is a string holding a marker
 * no other string printed here holds (a NUL, which no name from the chain
 * has, then U+E000, which no header byte turns into) that
 * pm_cli_json_print writes as the bare digits. */
json_t *pm_cli_json_u64(uint64_t v);
json_t *pm_cli_json_decimal(const char *digits);
/* Print one object and a newline (members in insertion order; compact:
 * no spaces, as trace, gen and demo always printed; else ", " and ": ", as
 * pack and replay did), then release it; numbers from pm_cli_json_u64 and
 * pm_cli_json_decimal as bare digits. Returns 0, or -1 (out of memory or
 * a write error). */
int pm_cli_json_print(FILE *f, json_t *obj, int compact);

/* Find the number of a top-level-looking member "key": N in a JSON text
 * (first occurrence of the quoted key followed by a colon; spaces allowed
 * around it). Enough to read back the flat summaries the subcommands
 * print; not a JSON parser. Returns 1 and *out, or 0 when absent. */
int pm_cli_json_number(const char *json, const char *key, double *out);

/* 1 if stderr is a terminal and progress lines should be shown. */
int pm_cli_progress_enabled(void);

/* Monotonic seconds. */
double pm_cli_now(void);

#endif
