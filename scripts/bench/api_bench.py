"""The listing the gateway serves, done directly with python3-libvirt: list
every domain, sort by name, read the info of the first 100. Sequential, for
SECONDS; prints listings per second and the p50/p99 latency of one listing
(milliseconds) as JSON."""
import json
import sys
import time

import libvirt

uri, seconds = sys.argv[1], float(sys.argv[2])
# The same daemon socket the gateway uses for this URI, read-only as the api role.
conn = libvirt.openReadOnly(uri)


def listing():
    doms = sorted(conn.listAllDomains(0), key=lambda d: d.name())
    return [(d.name(), d.UUIDString(), d.info()) for d in doms[:100]]


for _ in range(20):  # warm up
    listing()

latencies = []
end = time.perf_counter() + seconds
while time.perf_counter() < end:
    t0 = time.perf_counter()
    listing()
    latencies.append((time.perf_counter() - t0) * 1000)

latencies.sort()
print(json.dumps({
    "rps": len(latencies) / seconds,
    "mean": sum(latencies) / len(latencies),
    "p50": latencies[len(latencies) // 2],
    "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
}))
