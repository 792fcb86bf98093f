"""Counting checks in the Python halves of the shell tests: check() counts
a pass or prints FAIL and counts a failure; summary() is the closing line
"N passed, N failed" the shell side reads."""
import sys

passes = fails = 0


def check(cond, what):
    global passes, fails
    if cond:
        passes += 1
    else:
        fails += 1
        print("FAIL:", what, file=sys.stderr)


def summary(extra=""):
    print("%d passed, %d failed%s" % (passes, fails, extra))
    return 1 if fails else 0
