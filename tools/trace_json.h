/*
 * trace_json.h — what `trace` shares with `serve` (GET /v1/stamp answers
 * with the object of `trace --json`): parsing a stamp's name and printing
 * a trace as JSON, and the object of `holdings --json` (GET
 * /v1/holdings/KEY). Defined in cmd_trace.c.
 */
#ifndef PM_TOOLS_TRACE_JSON_H
#define PM_TOOLS_TRACE_JSON_H

#include "provenance.h"

#include <stdint.h>
#include <stdio.h>

/* "OPERATOR:SERIES:SERIAL", each a decimal number up to 2^32-1. Returns 1
 * and v[0..2], or 0. */
int pm_trace_parse_stamp(const char *s, uint32_t v[3]);

/* What an event did to the stamp: "issue", "trade" (credits went back to
 * the previous owner), "gift" or "self" (to the same owner). */
const char *pm_trace_event_kind(const pm_stamp_event *ev);

/* One JSON object and a newline: the stamp, owner, outpoint, events, ...
 * (cli.md's trace --json); `seconds` is the scan's time. */
void pm_trace_print_json(FILE *f, const pm_stamp_trace *t, double seconds);

/* The object of holdings --json for `key`. Returns 0, or -1 when out of
 * memory (nothing printed). */
int pm_holdings_print_json(FILE *f, const uint8_t key[32], const pm_holdings *h, double seconds);

#endif
