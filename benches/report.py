#!/usr/bin/env python3
"""report.py OUT: the markdown report of one scripts/bench run, from the raw data in OUT.

Every figure is a median of hyperfine's runs (ms); ratios divide medians. Missing data (a row that
failed, a phase that did not run) shows as n/a rather than stopping the report.
"""
import glob
import json
import os
import re
import statistics as st
import sys

OUT = sys.argv[1]
RAW = os.path.join(OUT, "raw")


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def times(name):
    """{row: [seconds]} of one hyperfine export (several rounds are merged)."""
    res = {}
    for path in sorted(glob.glob(os.path.join(RAW, name))):
        try:
            for x in json.load(open(path))["results"]:
                res.setdefault(x["command"], []).extend(x["times"])
        except (OSError, ValueError, KeyError):
            pass
    return res


def med(t, row):
    return st.median(t[row]) * 1e3 if row in t else None


def ms(v, nd=2):
    return "n/a" if v is None else f"{v:.{nd}f}"


def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"


meta = dict(line.split("=", 1) for line in read(os.path.join(OUT, "meta.txt")).splitlines() if "=" in line)
loads = [line.split(None, 1) for line in read(os.path.join(OUT, "load.txt")).splitlines() if line.strip()]

p = print
p(f"## nsboot start-up benchmark, {meta.get('date', '?')}")
p()
p(f"- machine: {meta.get('nproc', '?')} CPUs ({meta.get('cpu', '?')}), {meta.get('mem', '?')}, "
  f"kernel {meta.get('kernel', '?')}, Debian {meta.get('debian', '?')}")
p(f"- load average (1/5/15 min) at each phase: " + "; ".join(f"{k} {v}" for k, v in loads))
p(f"- nsboot {meta.get('nsboot', '?')}; crun {meta.get('crun', '?')}, runc {meta.get('runc', '?')}, "
  f"bwrap {meta.get('bwrap', '?')}, hyperfine {meta.get('hyperfine', '?')} (-N); RUNS={meta.get('runs', '?')}")
notes = read(os.path.join(OUT, "notes.txt")).strip()
if notes:
    p("- problems: " + "; ".join(notes.splitlines()))

# 1. launch (compare.sh's single hyperfine run, plus the do rows)
L = times("compare/r*.json")
rss = {}
for path in glob.glob(os.path.join(RAW, "compare", "rss-*")):
    v = read(path).strip().splitlines()
    if v and v[-1].isdigit():
        rss[os.path.basename(path)[4:]] = int(v[-1])
p()
p(f"### 1. Launch of /bin/true (compare.sh, one hyperfine run, {len(next(iter(L.values()), []))} runs a row)")
p()
p("| row | median ms | min | max | / floor | / crun | / bwrap | peak RSS KiB |")
p("|---|---:|---:|---:|---:|---:|---:|---:|")
for row in sorted(L, key=lambda r: st.median(L[r])):
    m = med(L, row)
    p(f"| {row} | {ms(m)} | {ms(min(L[row]) * 1e3)} | {ms(max(L[row]) * 1e3)} | {ratio(m, med(L, 'floor'))} "
      f"| {ratio(m, med(L, 'crun'))} | {ratio(m, med(L, 'bwrap'))} | {rss.get(row, 'n/a')} |")
rss15 = {}
for path in glob.glob(os.path.join(RAW, "rss15-*.txt")):
    v = [int(x) for x in read(path).split() if x.isdigit()]
    if v:
        rss15[os.path.basename(path)[6:-4]] = v
if rss15:
    p()
    p("Peak RSS, 15 launches a row (KiB; the target below uses the medians):")
    p()
    p("| row | median | min | max |")
    p("|---|---:|---:|---:|")
    for row in sorted(rss15):
        v = rss15[row]
        p(f"| {row} | {st.median(v):.0f} | {min(v)} | {max(v)} |")
chk = re.search(r"## check[^\n]*\n((?:   [^\n]*\n)*)", read(os.path.join(RAW, "compare.txt")))
p()
p("Check row (`nsboot run` on bundle-check: id, uid_map, / inside):")
p()
p("```")
p((chk.group(1).rstrip() if chk else "n/a (see raw/compare.txt)"))
p("```")

D = times("do-maps.json")
if D:
    p()
    p("`nsboot do` id maps (separate hyperfine run): default policy = 0 -> you plus your subordinate range "
      "via newuidmap; 1map = `--uid-map '0 UID 1' --gid-map '0 GID 1'`, bwrap's single map.")
    p()
    p("| row | median ms | min | max | / bwrap-do |")
    p("|---|---:|---:|---:|---:|")
    for row in sorted(D, key=lambda r: st.median(D[r])):
        p(f"| {row} | {ms(med(D, row))} | {ms(min(D[row]) * 1e3)} | {ms(max(D[row]) * 1e3)} "
          f"| {ratio(med(D, row), med(D, 'bwrap-do'))} |")

# 2. lifecycle
C = times("lifecycle.json")
p()
p("### 2. create + start + delete --force of a detached /bin/true (one `sh -c`, same bundle)")
p()
p("| row | median ms | min | max | / crun |")
p("|---|---:|---:|---:|---:|")
for row in ("nsboot", "crun"):
    if row in C:
        p(f"| {row} | {ms(med(C, row))} | {ms(min(C[row]) * 1e3)} | {ms(max(C[row]) * 1e3)} "
          f"| {ratio(med(C, row), med(C, 'crun'))} |")

# 3. throughput
T = times("throughput.json")
p()
p(f"### 3. Throughput: 100 sandboxes, 10 at a time (xargs -P 10), {len(next(iter(T.values()), []))} runs a row")
p()
p("| row | total wall ms | per sandbox ms | / crun | / bwrap |")
p("|---|---:|---:|---:|---:|")
for row in ("nsboot", "crun", "bwrap"):
    m = med(T, row)
    if m is not None:
        p(f"| {row} | {ms(m, 0)} | {ms(m / 100)} | {ratio(m, med(T, 'crun'))} | {ratio(m, med(T, 'bwrap'))} |")

# 4. mounts
M = {n: times(f"mounts-{n}.json") for n in (0, 10, 100, 1000)}
p()
p("### 4. Cost growth with bind mounts (read-only binds of a small host dir onto /mnt/N)")
p()
p("| mounts | nsboot ms | crun ms | nsboot / crun | nsboot us per mount | crun us per mount |")
p("|---:|---:|---:|---:|---:|---:|")
for n, t in M.items():
    a, b = med(t, "nsboot"), med(t, "crun")
    a0, b0 = med(M[0], "nsboot"), med(M[0], "crun")
    per = lambda x, x0: "" if n == 0 or x is None or x0 is None else f"{(x - x0) * 1e3 / n:.0f}"
    p(f"| {n} | {ms(a)} | {ms(b)} | {ratio(a, b)} | {per(a, a0)} | {per(b, b0)} |")
mc = read(os.path.join(RAW, "mounts-check.txt")).strip()
if mc:
    p()
    p("Mounts under /mnt seen inside with 1000: " + ", ".join(mc.splitlines()) + ".")

# 5. concurrency
p()
p("### 5. Concurrency: K launches at once (xargs -P K), wall time of the batch / K")
p()
p("| K | nsboot batch ms | nsboot per launch | crun per launch | bwrap per launch | harness per launch "
  "| nsboot / crun | nsboot / bwrap |")
p("|---:|---:|---:|---:|---:|---:|---:|---:|")
for k in (1, 10, 100):
    t = times(f"conc-{k}.json")
    n, c, b, h = (med(t, r) for r in ("nsboot", "crun", "bwrap", "harness"))
    per = lambda v: None if v is None else v / k
    p(f"| {k} | {ms(n)} | {ms(per(n))} | {ms(per(c))} | {ms(per(b))} | {ms(per(h))} "
      f"| {ratio(n, c)} | {ratio(n, b)} |")

# 6. boot phases
p()
p("### 6. nsboot boot phases (`nsboot --debug`, median us per phase)")
p()
p("Each figure is the time between one phase mark and the previous one (`elapsed_us` of the debug log); "
  "the exec of nsboot before its first mark and the wait for the application's exit and the clean-up "
  "after the last are not covered (compare total with the hyperfine medians). The logging itself costs "
  "a little.")
p()
PH = {}
for name in ("run", "run-subid", "run-m1000", "do", "do-1map"):
    runs = []
    for line in read(os.path.join(RAW, f"phases-{name}.txt")).splitlines():
        marks = re.findall(r'phase="([a-z]+)" elapsed_us=(\d+)', line)
        if marks:
            prev, d = 0, {}
            for ph, us in marks:
                d[ph] = int(us) - prev
                prev = int(us)
            d["total"] = prev
            runs.append(d)
    if runs:
        PH[name] = runs
order = []
for runs in PH.values():
    for d in runs:
        for ph in d:
            if ph not in order and ph != "total":
                order.append(ph)
order.append("total")
p("| phase | " + " | ".join(f"{k} ({len(v)} runs)" for k, v in PH.items()) + " |")
p("|---|" + "---:|" * len(PH))
for ph in order:
    cells = []
    for runs in PH.values():
        v = [d[ph] for d in runs if ph in d]
        cells.append(f"{st.median(v):.0f}" if v else "n/a")
    p(f"| {ph} | " + " | ".join(cells) + " |")

# targets
p()
p("### Targets (issue 6)")
p()
p("| target | nsboot | peer | ratio | limit | verdict |")
p("|---|---:|---:|---:|---:|---|")


def target(what, a, b, limit, unit="ms"):
    if a is None or b is None:
        p(f"| {what} | n/a | n/a | n/a | <= {limit:.2f} | not measured |")
        return
    r = a / b
    fmt = (lambda v: f"{v:.2f} ms") if unit == "ms" else (lambda v: f"{v:.0f} KiB")
    p(f"| {what} | {fmt(a)} | {fmt(b)} | {r:.2f} | <= {limit:.2f} | {'met' if r <= limit else 'NOT met'} |")


target("run vs bwrap (single map)", med(L, "nsboot"), med(L, "bwrap"), 1.0)
target("run vs crun (single map)", med(L, "nsboot"), med(L, "crun"), 0.35)
target("run vs crun, subordinate range (newuidmap)", med(L, "nsboot-subid"), med(L, "crun-subid"), 0.8)
target("do vs bwrap --ro-bind / /", med(L, "nsboot-do"), med(L, "bwrap-do"), 1.0)
if D:
    target("(info) do with a single map vs bwrap", med(D, "nsboot-do-1map"), med(D, "bwrap-do"), 1.0)
if "nsboot" in rss15 and "bwrap" in rss15:
    target("peak RSS vs bwrap (median of 15)", st.median(rss15["nsboot"]), st.median(rss15["bwrap"]), 1.0, unit="KiB")
else:
    target("peak RSS vs bwrap", rss.get("nsboot"), rss.get("bwrap"), 1.0, unit="KiB")
target("create+start+delete vs crun", med(C, "nsboot"), med(C, "crun"), 0.5)
target("100 sandboxes, 10 at a time, vs crun", med(T, "nsboot"), med(T, "crun"), 0.5)
