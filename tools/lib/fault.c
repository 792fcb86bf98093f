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

static void set_v(tool_fault *f, pm_reason reason, uint64_t record, int64_t item, uint64_t offset,
                  int errnum, const char *fmt, va_list ap)
{
    f->reason = reason;
    f->errnum = errnum;
    f->record = record;
    f->item = item;
    f->offset = offset;
    vsnprintf(f->message, sizeof f->message, fmt, ap);
}

void tool_fault_set(tool_fault *f, uint64_t record, uint64_t offset, int errnum, const char *fmt,
                    ...)
{
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    set_v(f, PM_REASON_NONE, record, -1, offset, errnum, fmt, ap);
    va_end(ap);
}

void tool_fault_msg(tool_fault *f, int errnum, const char *fmt, ...)
{
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    set_v(f, PM_REASON_NONE, TOOL_FAULT_NONE, -1, TOOL_FAULT_NONE, errnum, fmt, ap);
    va_end(ap);
}

void tool_fault_set_at(tool_fault *f, pm_reason reason, uint64_t record, int64_t item,
                       uint64_t offset, const char *fmt, ...)
{
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    set_v(f, reason, record, item, offset, 0, fmt, ap);
    va_end(ap);
}

void tool_fault_copy_text(const tool_fault *f, char *err, size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", f->message);
}
