#!/usr/bin/python3
"""One round of one workload of the RPC benchmark, for Debian's python3-libvirt,
doing the same work as rpc-bench.ts on ONE connection: sequentially, then with
THREADS threads sharing the connection (libvirt's remote driver lets threads
have calls in flight together). Prints one JSON line per measurement.

  /usr/bin/python3 scripts/bench/rpc_bench.py URI libVersion|lookupInfo [N] [WARMUP] [THREADS]
"""
import json
import sys
import threading
import time

import libvirt

args = sys.argv[1:] + ["test+unix:///default", "libVersion", "10000", "5000", "4"][len(sys.argv) - 1 :]
uri, workload, N, WARMUP, THREADS = args[0], args[1], int(args[2]), int(args[3]), int(args[4])

# lookupInfo is two RPCs (lookup by name, then get info) counted as one operation.
WORKLOADS = {
    "libVersion": lambda c: c.getLibVersion(),
    "lookupInfo": lambda c: c.lookupByName("test").info(),
}


def measure(op, count, threads=1):
    """Runs count operations split over threads; returns wall and CPU seconds."""
    def lane(k):
        for _ in range(k):
            op()

    workers = [threading.Thread(target=lane, args=(count // threads,)) for _ in range(threads)]
    t0, cpu0 = time.perf_counter(), time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - t0, time.process_time() - cpu0


fn = WORKLOADS[workload]
conn = libvirt.open(uri)
try:
    op = lambda: fn(conn)  # noqa: E731
    measure(op, WARMUP)
    for mode, threads in (("sequential", 1), (f"threads{THREADS}", THREADS)):
        n = N // threads * threads
        seconds, cpu_seconds = measure(op, n, threads)
        result = {"client": "python", "uri": uri, "workload": workload, "mode": mode,
                  "window": threads, "n": n, "seconds": seconds, "cpuSeconds": cpu_seconds}
        print(json.dumps({**result, "rate": n / seconds}), flush=True)
finally:
    conn.close()
