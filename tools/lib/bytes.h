/*
 * bytes.h — little-endian fields of the record formats, for the tools.
 *
 * The library keeps its own accessors private (engine/wire.h); the tools
 * read the same formats through the public parsers where one exists, and
 * through these where they handle raw bytes (record length prefixes,
 * generated transactions). memcpy + <endian.h>: no hand-rolled shifts.
 */
#ifndef PM_TOOLS_BYTES_H
#define PM_TOOLS_BYTES_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t tool_le16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return le16toh(v);
}

static inline uint32_t tool_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return le32toh(v);
}

static inline uint64_t tool_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return le64toh(v);
}

static inline void tool_put_le16(uint8_t *p, uint16_t v)
{
    v = htole16(v);
    memcpy(p, &v, sizeof v);
}

static inline void tool_put_le32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, sizeof v);
}

static inline void tool_put_le64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof v);
}

#endif
