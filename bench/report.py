#!/usr/bin/env python3
"""report.py — the benchmark harness's report (python3 standard library only).

    report.py machine OUT_DIR       write OUT_DIR/machine.json (CPU, cores,
                                    kernel, memory, load, compiler, commit)
    report.py report OUT_DIR        merge everything bench/run.sh left in
                                    OUT_DIR into results.json, and write
                                    results.md (Markdown tables) and plot.svg
    report.py check FILE.json...    exit 1 when a Google Benchmark result
                                    holds a benchmark that reported an error

What OUT_DIR holds (written by bench/run.sh):
    machine.json, run.json              the machine; the run (mode, command,
                                        steps and their exit status)
    scenario-NAME.json                  bench_scenarios, one per scenario
    gbench-NAME.json                    Google Benchmark JSON (--benchmark_out);
    gbench-NAME.K.json                  or one file per repetition K
    other-NAME.txt                      the text of a plain benchmark program

Every figure is a median of repetitions with min and max; ratios divide
medians. Nothing here judges a figure: goals are reported as ratios.
"""

import glob
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time


# ---- machine ----------------------------------------------------------------

def read(path, default=""):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return default


def command(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=20,
                              check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(out_dir, build_dir=None):
    cpuinfo = read("/proc/cpuinfo")
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
    flags = flags.group(1).split() if flags else []
    mem = re.search(r"^MemTotal:\s*(\d+) kB", read("/proc/meminfo"), re.M)
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cache = read(os.path.join(build_dir, "CMakeCache.txt")) if build_dir else ""

    def cache_value(key):
        m = re.search(r"^%s:[A-Z]+=(.*)$" % re.escape(key), cache, re.M)
        return m.group(1) if m else None

    compiler = cache_value("CMAKE_C_COMPILER")
    info = {
        "host": socket.gethostname(),
        "cpu_model": models[0] if models else platform.processor(),
        "cpus_online": os.cpu_count(),
        "cpus_usable": affinity,
        "sha_ni": "sha_ni" in flags,
        "avx2": "avx2" in flags,
        "memory_bytes": int(mem.group(1)) * 1024 if mem else None,
        "kernel": " ".join(platform.uname()[i] for i in (0, 2, 3, 4)),
        "loadavg_start": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": command("git", "-C", root, "rev-parse", "HEAD"),
        "git_dirty": bool(command("git", "-C", root, "status", "--porcelain", "--untracked-files=no")),
        "build_dir": build_dir,
        "build_type": cache_value("CMAKE_BUILD_TYPE"),
        "c_compiler": compiler,
        "c_compiler_version": command(compiler, "--version").splitlines()[0] if compiler else None,
    }
    with open(os.path.join(out_dir, "machine.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")


# ---- loading ----------------------------------------------------------------

def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"ok": False, "error": "%s: %s" % (os.path.basename(path), e)}


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def gbench_errors(path):
    """The benchmarks of a Google Benchmark JSON file that reported an error."""
    data = load_json(path)
    if "benchmarks" not in data:
        return [data.get("error", "no benchmarks in %s" % path)]
    return ["%s: %s" % (b.get("name"), b.get("error_message"))
            for b in data["benchmarks"] if b.get("error_occurred")]


def gbench(paths):
    """Google Benchmark JSON files (repetitions in one file, or one file per
    repetition) -> one entry per run name: median/min/max of the repetitions
    of the main figure (items/s when set, else real time per iteration) and
    the medians of the user counters."""
    runs = {}
    order = []
    context = {}
    for path in paths:
        data = load_json(path)
        if "benchmarks" not in data:
            return {"ok": False, "error": data.get("error", "no benchmarks in %s" % path)}
        context = context or data.get("context", {})
        for b in data["benchmarks"]:
            if b.get("run_type") == "aggregate":
                continue
            name = b.get("run_name", b.get("name"))
            if name not in runs:
                runs[name] = []
                order.append(name)
            runs[name].append(b)
    skip = {"name", "run_name", "run_type", "family_index", "per_family_instance_index",
            "repetitions", "repetition_index", "threads", "iterations", "real_time",
            "cpu_time", "time_unit", "items_per_second", "bytes_per_second", "error_occurred",
            "error_message", "aggregate_name", "label"}
    entries = []
    for name in order:
        reps = runs[name]
        errors = [b.get("error_message") for b in reps if b.get("error_occurred")]
        e = {"name": name, "repetitions": len(reps), "time_unit": reps[0].get("time_unit")}
        if errors:
            e["error"] = errors[0]
        if any("items_per_second" in b for b in reps):
            e["metric"] = "items_per_second"
            e["value"] = stats([b.get("items_per_second") for b in reps])
        else:
            e["metric"] = "real_time"
            e["value"] = stats([b.get("real_time") for b in reps])
        e["real_time"] = stats([b.get("real_time") for b in reps])
        e["cpu_time"] = stats([b.get("cpu_time") for b in reps])
        counters = {}
        for k in reps[0]:
            if k not in skip and isinstance(reps[0][k], (int, float)):
                counters[k] = statistics.median(b.get(k, 0) for b in reps)
        e["counters"] = counters
        entries.append(e)
    return {"ok": True, "context": context, "files": [os.path.basename(p) for p in paths],
            "benchmarks": entries}


def merge(out_dir):
    res = {
        "machine": load_json(os.path.join(out_dir, "machine.json")),
        "run": load_json(os.path.join(out_dir, "run.json")),
        "scenarios": {},
        "microbenchmarks": {},
    }
    for path in sorted(glob.glob(os.path.join(out_dir, "scenario-*.json"))):
        name = os.path.basename(path)[len("scenario-"):-len(".json")]
        res["scenarios"][name] = load_json(path)
    # gbench-NAME.json, or gbench-NAME.K.json for one file per repetition.
    files = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "gbench-*.json"))):
        name = os.path.basename(path)[len("gbench-"):-len(".json")].split(".")[0]
        files.setdefault(name, []).append(path)
    for name, paths in files.items():
        res["microbenchmarks"][name] = gbench(paths)
    # bench_utxo prints ours / ck_hs / mutex side by side after its table.
    log = read(os.path.join(out_dir, "micro-utxo.log"))
    at = log.rfind("\nsummary")
    if at >= 0 and res["microbenchmarks"].get("utxo", {}).get("ok"):
        res["microbenchmarks"]["utxo"]["summary"] = log[at + 1:]
    res["other_programs"] = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "other-*.txt"))):
        name = os.path.basename(path)[len("other-"):-len(".txt")]
        res["other_programs"][name] = read(path)
    derive(res)
    return res


def med(x):
    return x["median"] if isinstance(x, dict) and "median" in x else None


def div(a, b):
    return a / b if a is not None and b else None


def derive(res):
    """Ratios across scenarios: conflict-heavy against signatures, same N."""
    sc = res["scenarios"]
    sig = {r["cores"]: r for r in sc.get("signatures", {}).get("rows", [])}
    for r in sc.get("conflict", {}).get("rows", []):
        base = sig.get(r["cores"])
        if base:
            r["replay_ratio_to_signatures"] = div(med(r.get("replay_tx_s")),
                                                  med(base.get("replay_tx_s")))
            r["pack_ratio_to_signatures"] = div(med(r.get("pack_tx_s")), med(base.get("pack_tx_s")))


# ---- Markdown ---------------------------------------------------------------

def si(x, digits=3):
    """1234567 -> '1.23M'."""
    if x is None:
        return "–"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return "%.*g%s" % (digits, x / scale, unit)
    return "%.*g" % (digits, x)


def rng(s, scale=1.0, fmt=si):
    """A samples object as 'median (min–max)'."""
    if not isinstance(s, dict) or "median" not in s:
        return "–"
    med_txt, lo, hi = (fmt(s[k] * scale) for k in ("median", "min", "max"))
    if len(s.get("runs", [])) <= 1 or lo == hi:
        return med_txt
    return "%s (%s–%s)" % (med_txt, lo, hi)


def mib(x):
    return "–" if x is None else "%.0f MiB" % (x / 2**20)


def mb_s(x):
    return "–" if x is None else "%.1f" % (x / 1e6)


def ratio_txt(x):
    return "–" if x is None else "%.3f" % x


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def failed_note(s):
    if s.get("ok", False):
        return None
    return "**did not run:** %s" % (s.get("error") or "unknown error")


def markdown(res):
    m = res["machine"]
    run = res["run"]
    sc = res["scenarios"]
    md = ["# Postmark benchmark results", ""]
    md.append("Command: `%s` (%s mode, %s repetition(s) per figure; each cell: median (min–max)). "
              "Date %s, commit %s%s." % (run.get("command", "bench/run.sh"), run.get("mode", "?"),
                                        run.get("reps", "?"), m.get("date", "?"),
                                        (m.get("git_commit") or "?")[:12],
                                        " (uncommitted changes)" if m.get("git_dirty") else ""))
    md.append("")
    load0 = m.get("loadavg_start") or []
    load1 = run.get("loadavg_end") or []
    md.append("Machine: %s, %s usable cores (%s online), %s memory, kernel %s; SHA extensions: %s. "
              "Build: %s, %s. Load average (1/5/15 min) at start %s, at end %s." % (
                  m.get("cpu_model", "?"), m.get("cpus_usable", "?"), m.get("cpus_online", "?"),
                  "%.1f GiB" % (m["memory_bytes"] / 2**30) if m.get("memory_bytes") else "?",
                  m.get("kernel", "?"), "yes" if m.get("sha_ni") else "no",
                  m.get("build_type", "?"), m.get("c_compiler_version", "?"),
                  " / ".join("%.2f" % x for x in load0) or "?",
                  " / ".join("%.2f" % x for x in load1) or "?"))
    md.append("")

    # 1. signatures
    s = sc.get("signatures")
    if s is not None:
        w = s.get("workload", {})
        md.append("## 1. Full verification, signature-bound")
        md.append("")
        if w:
            md.append("`postmark replay` of a TRANSFERS chain (%s transactions, %s signatures, %s blocks, "
                      "%.1f MB), restricted to N cores, beside `secp256k1_schnorrsig_verify` with "
                      "pre-parsed keys on the same N cores. Ratio = engine signatures/s ÷ limit "
                      "(CPU-time ratio: the same per CPU-second used, less sensitive to other load). "
                      "Pack: `postmark pack` of the stream on N cores." % (
                          si(w.get("txs")), si(w.get("signatures")), w.get("blocks", "?"),
                          (w.get("chain_bytes") or 0) / 1e6))
            md.append("")
        note = failed_note(s)
        if note:
            md += [note, ""]
        rows = []
        for r in s.get("rows", []):
            rows.append([r["cores"], rng(r.get("replay_tx_s")), rng(r.get("replay_sig_s")),
                         rng(r.get("limit_sig_s")), ratio_txt(r.get("ratio")),
                         ratio_txt(r.get("ratio_cpu")), rng(r.get("pack_tx_s"))])
        if rows:
            md.append(table(["cores", "replay tx/s", "replay sig/s", "limit sig/s",
                             "engine ÷ limit", "(per CPU-s)", "pack tx/s"], rows))
            md.append("")

    # 2. assume-valid
    s = sc.get("assume-valid")
    if s is not None:
        md.append("## 2. Assume-valid replay, hash- and table-bound")
        md.append("")
        md.append("The same chain with `--assume-valid <tip>` (no signature checked), beside "
                  "single-thread SHA-256 (OpenSSL EVP) over the same file bytes: %s MB/s. "
                  "Ratio = engine bytes/s ÷ SHA-256 bytes/s. (`wall tx/s`: the whole command, "
                  "including the scan that finds the assume-valid block, start-up and exit.)"
                  % rng(s.get("sha256_bytes_s"), fmt=mb_s))
        md.append("")
        note = failed_note(s)
        if note:
            md += [note, ""]
        rows = []
        for r in s.get("rows", []):
            rows.append([r["cores"], rng(r.get("replay_tx_s")), rng(r.get("replay_bytes_s"), fmt=mb_s),
                         ratio_txt(r.get("ratio")), rng(r.get("replay_wall_tx_s"))])
        if rows:
            md.append(table(["cores", "replay tx/s", "replay MB/s", "engine ÷ SHA-256",
                             "wall tx/s"], rows))
            md.append("")

    # 3. large state
    s = sc.get("large-state")
    if s is not None:
        w = s.get("workload", {})
        p = s.get("probe", {})
        md.append("## 3. Large state")
        md.append("")
        if w:
            md.append("A LARGE_STATE chain (%s records, %s blocks, %.0f MB) leaving %s unspent outputs "
                      "(and %s minted stamps), replayed on %s cores. Peak RSS is the child's "
                      "`ru_maxrss`; the fixed part is the same command on the chain cut to its header." % (
                          si(w.get("records")), w.get("blocks", "?"), (w.get("chain_bytes") or 0) / 1e6,
                          "{:,}".format(w.get("utxo_count", 0)), "{:,}".format(p.get("minted", 0)),
                          s.get("cores", "?")))
            md.append("")
        note = failed_note(s)
        if note:
            md += [note, ""]
        if "replay_tx_s" in s:
            md.append(table(
                ["UTXOs", "replay tx/s", "UTXOs made/s", "peak RSS", "bytes/UTXO",
                 "above fixed", "fixed RSS", "table bytes/UTXO"],
                [["{:,}".format(w.get("utxo_count", 0)), rng(s.get("replay_tx_s")),
                  rng(s.get("replay_utxo_s")), rng(s.get("peak_rss_bytes"), fmt=mib),
                  "%.0f" % s.get("bytes_per_utxo", 0), "%.0f" % s.get("bytes_per_utxo_above_fixed", 0),
                  rng(s.get("header_only_rss_bytes"), fmt=mib),
                  "%.0f (%s)" % (p.get("table_bytes_per_utxo", 0), p.get("table_backend", "?"))]]))
            md.append("")
            md.append("The command's wall time also covers the UTXO digest (§8) it prints, a sort "
                      "of every key: %s tx/s over the whole command." % rng(s.get("replay_wall_tx_s")))
            md.append("")
            if p.get("ok"):
                utxos = p.get("utxo_count") or 1
                md.append("What the RSS holds: the UTXO table (%s, %.0f bytes per entry, measured "
                          "by the table itself, %s cells, memory from %s), the minted-stamp set "
                          "(%s keys), the undo logs of the last 100 blocks, two pipeline batches, "
                          "the ingest buffers, the program and its libraries (the fixed part), "
                          "and at the end the copy of every key that the UTXO digest sorts: the "
                          "same replay through the library, without the digest, peaks at %s "
                          "(%.0f bytes/UTXO)." % (
                              mib(p.get("table_bytes")), p.get("table_bytes_per_utxo", 0),
                              "{:,}".format(p.get("table_cells", 0)), p.get("table_backend", "?"),
                              "{:,}".format(p.get("minted", 0)), mib(p.get("maxrss_bytes")),
                              (p.get("maxrss_bytes") or 0) / utxos))
                md.append("")

    # 4. conflict
    s = sc.get("conflict")
    if s is not None:
        w = s.get("workload", {})
        md.append("## 4. Conflict-heavy")
        md.append("")
        if w:
            md.append("A MARKET stream of %s records with 10%% double spends and 10%% in-block chains "
                      "(%s accepted, %s rejected). Pack: records/s in (rejects included); replay: "
                      "the chain pack made. Ratios: against scenario 1 on the same cores." % (
                          si(w.get("records")), si(w.get("accepted")), si(w.get("rejected"))))
            md.append("")
        note = failed_note(s)
        if note:
            md += [note, ""]
        rows = []
        for r in s.get("rows", []):
            rows.append([r["cores"], rng(r.get("pack_tx_s")), ratio_txt(r.get("pack_ratio_to_signatures")),
                         rng(r.get("replay_tx_s")), ratio_txt(r.get("replay_ratio_to_signatures"))])
        if rows:
            # No signatures/s here: a trade's inputs of one owner carry the
            # same signature, which the engine verifies once.
            md.append(table(["cores", "pack records/s", "÷ scenario 1 pack", "replay tx/s",
                             "÷ scenario 1 replay"], rows))
            md.append("")

    # stage breakdown
    rows = []
    for name in ("signatures", "assume-valid", "large-state", "conflict"):
        p = sc.get(name, {}).get("probe")
        if p and p.get("ok"):
            rows.append([name, p["cores"], "%.3f" % p["seconds"], "%.3f" % p["seconds_commit"],
                         "%.0f%%" % (100 * p["commit_share"]), si(p["tx_per_s"]),
                         si(p["commit_ceiling_tx_per_s"])])
    if rows:
        md.append("## Where the time goes (probe)")
        md.append("")
        md.append("The engine through the library on the same chain and cores: seconds inside "
                  "`pm_engine_connect_blocks`, seconds of the committing thread (`pm_stats."
                  "seconds_commit`: in-order state changes, merkle roots, block hashes), and the "
                  "ceiling that thread alone allows (transactions ÷ commit seconds).")
        md.append("")
        md.append(table(["scenario", "cores", "connect s", "commit s", "commit share", "tx/s",
                         "commit ceiling tx/s"], rows))
        md.append("")

    # stage table: CPU ns per transaction, serial fraction, Amdahl
    rows = []
    for name in ("signatures", "assume-valid", "large-state", "conflict"):
        p = sc.get(name, {}).get("probe")
        st = p.get("stages") if p and p.get("ok") else None
        if st:
            n = st["ns_per_tx"]
            a = st["amdahl_tx_s"]
            rows.append([name, p["cores"]] +
                        ["%.0f" % n[k] for k in ("read", "dispatch", "parse_hash", "verify",
                                                 "commit_apply", "commit_hashing",
                                                 "apply_parallel", "other")] +
                        ["%.1f%%" % (100 * st["serial_fraction"]), si(p["tx_per_s"])] +
                        [si(a[c]) for c in ("8", "16", "64")])
    if rows:
        md.append("## Stage table (probe, CPU ns per transaction)")
        md.append("")
        md.append("CPU time of each stage per transaction, from the same probe run. Serial "
                  "(one thread, in order, whatever the cores): `read` (the file), `dispatch` "
                  "(the caller's framing and batch filling outside the commit), `commit apply` "
                  "(the committer's state changes and checks), `commit hashing` (merkle roots "
                  "and block hashes on the committer). Parallel: `parse+hash` and `verify` "
                  "(the workers), `apply ∥` (state changes partitioned over the workers). "
                  "`other`: process CPU in no stage (workers spinning at barriers, page faults "
                  "outside them), not projected. Serial fraction = serial ÷ (serial + "
                  "parallel); Amdahl tx/s at N cores = transactions ÷ (serial + parallel ÷ N).")
        md.append("")
        md.append(table(["scenario", "cores", "read", "dispatch", "parse+hash", "verify",
                         "commit apply", "commit hashing", "apply ∥", "other", "serial",
                         "measured tx/s", "Amdahl 8", "Amdahl 16", "Amdahl 64"], rows))
        md.append("")

    # microbenchmarks
    mbs = res["microbenchmarks"]
    if mbs:
        md.append("## 5. Microbenchmarks (Google Benchmark)")
        md.append("")
        md.append("Median (min–max) of the repetitions; items/s where the benchmark counts items, "
                  "else real time per iteration. Counters as each program defines them "
                  "(bench_wire `x_limit` = our ns ÷ the limit's ns; bench_verify `x_limit` = our "
                  "rate ÷ the limit's; bench_utxo `B_per_utxo` = table bytes per entry).")
        md.append("")
        for prog, data in mbs.items():
            md.append("### %s" % prog)
            md.append("")
            if not data.get("ok"):
                md += ["**did not run:** %s" % data.get("error"), ""]
                continue
            rows = []
            for b in data["benchmarks"]:
                if b["metric"] == "items_per_second":
                    value = rng(b["value"]) + "/s"
                else:
                    value = rng(b["value"], fmt=lambda x: "%.3g" % x) + " " + (b.get("time_unit") or "")
                counters = ", ".join("%s=%s" % (k, si(v)) for k, v in b["counters"].items()
                                     if k in ("x_limit", "limit_sig_s", "B_per_utxo", "reader_lookups"))
                if b.get("error"):
                    counters = "error: " + b["error"]
                rows.append([b["name"], value, counters])
            md.append(table(["benchmark", "figure", "counters"], rows))
            md.append("")
            if data.get("summary"):
                md.append("The program's own summary (its last run):")
                md.append("")
                md += ["```", data["summary"].rstrip(), "```", ""]
    others = res.get("other_programs", {})
    if others:
        md.append("## Other benchmark programs")
        md.append("")
        md.append("Their own output, each with the limit it measured in the same run "
                  "(bench_ingest: read(2); bench_snapshot: read + SHA-256 and bare table inserts; "
                  "bench_gen: raw signing; bench_trace: read + parse; bench_sigcache: the same block "
                  "connected cold).")
        md.append("")
        for name, text in others.items():
            md.append("```")
            md.append(text.rstrip())
            md.append("```")
            md.append("")
    steps = run.get("steps", [])
    if steps:
        md.append("Steps: " + ", ".join("%s %s" % (st["name"], "ok" if st["status"] == 0 else
                                                    "FAILED (exit %s)" % st["status"]) for st in steps)
                  + ". Plot: `plot.svg`; every figure and every run: `results.json`.")
        md.append("")
    return "\n".join(md)


# ---- SVG --------------------------------------------------------------------

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def nice_max(x):
    if x <= 0:
        return 1.0
    mag = 10 ** len(str(int(x))) / 10
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * mag >= x:
            return step * mag
    return 10 * mag


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def panel(x0, y0, w, h, title, ylabel, xs, series, hlines=()):
    """One chart: series = [(label, color, dashed, [(x, med, lo, hi)])],
    hlines = [(label, color, value)]; the legend goes under the x axis."""
    out = []
    series = [s for s in series if s[3]]
    n_legend = len(series) + len(hlines)
    top = max([p[3] for _, _, _, pts in series for p in pts] + [v for _, _, v in hlines] + [0])
    ymax = nice_max(top * 1.05)
    left, pw = x0 + 70, w - 90
    bottom = y0 + h - 65 - 16 * n_legend
    ph = bottom - (y0 + 35)
    xmin, xmaxv = (min(xs), max(xs)) if xs else (1, 1)
    span = (xmaxv - xmin) or 1

    def px(x):
        return left + (pw * (x - xmin) / span if xmaxv > xmin else pw / 2)

    def py(y):
        return bottom - ph * y / ymax

    out.append('<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>' % (x0 + 10, y0 + 20, esc(title)))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>' % (left, bottom - ph, pw, ph))
    for i in range(6):
        v = ymax * i / 5
        y = py(v)
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (left, y, left + pw, y))
        out.append('<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>' % (left - 5, y + 4, si(v, 3)))
    for x in xs:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#888"/>' % (px(x), bottom, px(x), bottom + 4))
        out.append('<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%d</text>' % (px(x), bottom + 17, x))
    out.append('<text x="%.1f" y="%d" font-size="12" text-anchor="middle">threads (cores the process may use)</text>' % (left + pw / 2, bottom + 33))
    out.append('<text x="%d" y="%.1f" font-size="12" text-anchor="middle" transform="rotate(-90 %d %.1f)">%s</text>' % (
        x0 + 15, bottom - ph / 2, x0 + 15, bottom - ph / 2, esc(ylabel)))
    legend = []
    for label, color, value in hlines:
        y = py(value)
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="6 4"/>' % (left, y, left + pw, y, color))
        legend.append((label, color, True))
    for label, color, dashed, pts in series:
        d = " ".join("%.1f,%.1f" % (px(x), py(m)) for x, m, _, _ in pts)
        out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>' % (
            d, color, ' stroke-dasharray="6 4"' if dashed else ""))
        for x, m, lo, hi in pts:
            out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>' % (px(x), py(lo), px(x), py(hi), color))
            out.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>' % (px(x), py(m), color))
        legend.append((label, color, dashed))
    for i, (label, color, dashed) in enumerate(legend):
        ly = bottom + 54 + 16 * i
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>' % (
            left, ly - 4, left + 24, ly - 4, color, ' stroke-dasharray="6 4"' if dashed else ""))
        out.append('<text x="%d" y="%d" font-size="11">%s</text>' % (left + 30, ly, esc(label)))
    return out


def points(rows, key, scale=1.0):
    pts = []
    for r in rows:
        s = r.get(key)
        if isinstance(s, dict) and "median" in s:
            pts.append((r["cores"], s["median"] * scale, s["min"] * scale, s["max"] * scale))
    return pts


def svg(res):
    sc = res["scenarios"]
    s1 = sc.get("signatures", {}).get("rows", [])
    s2 = sc.get("assume-valid", {})
    s4 = sc.get("conflict", {}).get("rows", [])
    xs = sorted({r["cores"] for r in s1 + s2.get("rows", []) + s4})
    W, H = 1000, 500
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif">' % (W, H, W, H),
           '<rect width="100%" height="100%" fill="white"/>']
    out += panel(0, 0, W // 2, H, "Signature-bound: engine and limit", "signatures (transactions) per second", xs, [
        ("limit: schnorrsig_verify, pre-parsed keys", COLORS[1], True, points(s1, "limit_sig_s")),
        ("replay (transfers), sig/s", COLORS[0], False, points(s1, "replay_sig_s")),
        ("pack (transfers), tx/s", COLORS[2], False, points(s1, "pack_tx_s")),
        ("replay (conflict-heavy), tx/s", COLORS[3], False, points(s4, "replay_tx_s")),
        ("pack (conflict-heavy), records/s", COLORS[4], False, points(s4, "pack_tx_s")),
    ])
    sha = med(s2.get("sha256_bytes_s"))
    out += panel(W // 2, 0, W // 2, H, "Assume-valid: engine and SHA-256", "MB per second", xs, [
        ("replay --assume-valid, chain MB/s", COLORS[0], False, points(s2.get("rows", []), "replay_bytes_s", 1e-6)),
    ], hlines=[("limit: SHA-256, 1 thread (OpenSSL EVP)", COLORS[1], sha * 1e-6)] if sha else [])
    m = res["machine"]
    out.append('<text x="10" y="%d" font-size="10" fill="#555">%s, %s cores; medians with min–max bars; load average at start %s</text>' % (
        H - 5, esc(m.get("cpu_model", "?")), m.get("cpus_usable", "?"),
        " / ".join("%.2f" % x for x in m.get("loadavg_start", []))))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---- main -------------------------------------------------------------------

def main(argv):
    if len(argv) >= 3 and argv[1] == "machine":
        machine(argv[2], argv[3] if len(argv) > 3 else None)
        return 0
    if len(argv) >= 3 and argv[1] == "check":
        errors = [e for path in argv[2:] for e in gbench_errors(path)]
        for e in errors:
            sys.stderr.write("report.py: benchmark error: %s\n" % e)
        return 1 if errors else 0
    if len(argv) == 3 and argv[1] == "report":
        out_dir = argv[2]
        res = merge(out_dir)
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
        with open(os.path.join(out_dir, "results.md"), "w") as f:
            f.write(markdown(res) + "\n")
        with open(os.path.join(out_dir, "plot.svg"), "w") as f:
            f.write(svg(res))
        return 0
    sys.stderr.write("usage: report.py machine OUT_DIR [BUILD_DIR] | report OUT_DIR | check FILE.json...\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
