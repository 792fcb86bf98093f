/*
 * fault.c — the tools' one error record (see fault.h).
 */
#include "fault.h"

#include <stdarg.h>
#include <stdio.h>

void tool_fault_clear(tool_fault *f)
{
    if (!f)
        return;
    f->reason = PM_REASON_NONE;
    f->errnum = 0;
    f->record = TOOL_FAULT_NONE;
    f->item = -1;
    f->offset = TOOL_FAULT_NONE;
    f->message[0] = 0;
}

void tool_fault_set(tool_fault *f, uint64_t record, uint64_t offset, int errnum, const char *fmt,
                    ...)
{
    if (!f)
        return;
    f->reason = PM_REASON_NONE;
    f->errnum = errnum;
    f->record = record;
    f->item = -1;
    f->offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
}

void tool_fault_copy_text(const tool_fault *f, char *err, size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", f->message);
}
