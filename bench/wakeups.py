#!/usr/bin/env python3
"""Who woke whom among one process's threads, from `perf sched`.

usage:
  perf sched record -o run.data -- build/release/bench/sdk_bench --long-steps 0
  perf sched script -i run.data -F comm,tid,event,trace > run.script
  bench/wakeups.py run.script sdk_bench

Counts the sched_waking events whose target is a thread of the process first
seen forking as COMM (perf sched records the whole machine), by the waker's
thread name and the target's; a waker outside the process (an interrupt,
another process) is counted as "(outside)". The counts do not depend on the
machine's load the way timings do, so they compare two builds run minutes
apart (docs/performance.md, "SDK").
"""
import collections
import re
import signal
import sys

FORK = re.compile(r"\s*(\S+)\s+\d+\s+sched:sched_process_fork:\s+comm=\S+ pid=(\d+) "
                  r"child_comm=\S+ child_pid=(\d+)")
WAKING = re.compile(r"\s*(\S+)\s+(\d+)\s+sched:sched_waking:\s+comm=(\S+) pid=(\d+)")


def threads_of(lines, comm):
    tids = set()
    for line in lines:
        m = FORK.match(line)
        if not m:
            continue
        forker, parent, child = m.groups()
        if not tids and forker == comm:
            tids.add(parent)
        if parent in tids:
            tids.add(child)
    return tids


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # piped into head
    if len(sys.argv) != 3:
        sys.exit("usage: wakeups.py PERF_SCHED_SCRIPT PROCESS_COMM")
    lines = open(sys.argv[1]).read().splitlines()
    tids = threads_of(lines, sys.argv[2])
    if not tids:
        sys.exit(f"no process named {sys.argv[2]} forks in {sys.argv[1]}")
    pairs = collections.Counter()
    for line in lines:
        m = WAKING.match(line)
        if not m or m.group(4) not in tids:
            continue
        waker = m.group(1) if m.group(2) in tids else "(outside)"
        pairs[(waker, m.group(3))] += 1
    for (waker, target), n in pairs.most_common(24):
        print(f"{n:8d}  {waker} -> {target}")
    print(f"{sum(pairs.values()):8d}  all wake-ups of the process's {len(tids)} threads")


if __name__ == "__main__":
    main()
