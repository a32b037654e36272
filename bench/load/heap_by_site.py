#!/usr/bin/env python3
"""bench/load/heap_by_site.py - live heap by allocation site between two
moments of a heaptrack recording (BENCHMARKS.md "Memory per call").

Reads heaptrack_interpret's output (format v3, gzip), as written by
bench/load/heaptrack_wrap.sh, and replays it:

  heap_by_site.py FILE timeline           heap and RSS once a second (find the window)
  heap_by_site.py FILE diff T0_MS T1_MS   live heap at T1 minus at T0, grouped by the
                                          first hotline/rsipstack frame of each stack

Environment: CALLS (divide by; default 400), TOP (lines; default 45),
STACKS=N (print the first frames of the N largest groups).
"""
import collections
import gzip
import os
import re
import sys

path = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "timeline"
marks = [int(x) for x in sys.argv[3:5]] if mode == "diff" else []
strings = [""]
ips = [None]         # instruction pointer index -> function string indices, innermost first
traces = [(0, 0)]    # trace index -> (ip index, parent trace)
infos = []           # allocation info index -> (size, trace)
live = collections.Counter()
snap = {}
timeline = []
t = 0
with gzip.open(path, "rt", errors="replace") as f:
    for line in f:
        c = line[0]
        if c == "+":
            live[int(line[2:], 16)] += 1
        elif c == "-":
            live[int(line[2:], 16)] -= 1
        elif c == "a":
            size, trace = line[2:].split()
            infos.append((int(size, 16), int(trace, 16)))
        elif c == "t":
            ip, parent = line[2:].split()
            traces.append((int(ip, 16), int(parent, 16)))
        elif c == "i":
            rest = line[2:].split()[2:]
            frames = []
            while rest:
                frames.append(int(rest[0], 16))
                rest = rest[3:] if len(rest) >= 3 else []
            ips.append(frames)
        elif c == "s":
            parts = line[2:].rstrip("\n").split(" ", 1)
            strings.append(parts[1] if len(parts) > 1 else "")
        elif c == "c":
            t = int(line[2:], 16)
            for m in marks:
                if m not in snap and t >= m:
                    snap[m] = dict(live)
        elif c == "R" and mode == "timeline":
            if not timeline or t - timeline[-1][0] >= 1000:
                heap = sum(infos[i][0] * n for i, n in live.items() if n > 0)
                timeline.append((t, int(line[2:], 16) * 4, heap))

if mode == "timeline":
    for t, rss_kib, heap in timeline:
        print(f"{t / 1000:7.1f}s rss {rss_kib / 1024:7.1f} MiB heap {heap / 1048576:7.1f} MiB")
    sys.exit()


def frames_of(trace):
    out = []
    while trace:
        ip, parent = traces[trace]
        out.extend(strings[i] for i in ips[ip])
        trace = parent
    return out


before, after = (snap.get(m, dict(live)) for m in marks)
own = re.compile(r"hotline::|rsipstack::")
generic = re.compile(
    r"^(alloc::|core::|std::|<alloc|<core|<std|hashbrown|<hashbrown|dashmap|<dashmap|bytes::|<bytes|"
    r"tokio::|<tokio|__rust|<T as|_\$LT\$alloc|serde_json::|<serde|smallvec|rsip::|<rsip)"
)
calls = int(os.environ.get("CALLS", "400"))
groups = collections.Counter()
counts = collections.Counter()
example = {}
for i in set(before) | set(after):
    d = after.get(i, 0) - before.get(i, 0)
    if not d:
        continue
    frames = frames_of(infos[i][1])
    key = next((fn for fn in frames if own.search(fn) and not generic.search(fn)), None)
    if key is None:
        key = next((fn for fn in frames if not generic.search(fn)), frames[0] if frames else "?")
    key = re.sub(r"::h[0-9a-f]{16}$", "", key)
    groups[key] += d * infos[i][0]
    counts[key] += d
    example.setdefault(key, frames[:14])
print(f"total live growth {sum(groups.values()) / 1024:.0f} KiB, {sum(groups.values()) / calls:.0f} B per call")
for key, size in groups.most_common(int(os.environ.get("TOP", "45"))):
    print(f"{size / 1024:9.1f} KiB {size / calls:8.0f} B/call {counts[key] / calls:6.1f} allocs/call  {key[:150]}")
for key, _ in groups.most_common(int(os.environ.get("STACKS", "0"))):
    print("\n==", key[:150])
    print("\n".join("   " + fn[:160] for fn in example[key]))
