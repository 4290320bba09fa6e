"""The calls a start/destroy job makes, made directly with python3-libvirt:
create() then destroy() of one domain, N times; prints each call's time in
milliseconds as JSON."""
import json
import sys
import time

import libvirt

uri, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
conn = libvirt.open(uri)
dom = conn.lookupByName(name)

for _ in range(10):  # warm up
    dom.create()
    dom.destroy()

create, destroy = [], []
for _ in range(n):
    t0 = time.perf_counter()
    dom.create()
    create.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    dom.destroy()
    destroy.append((time.perf_counter() - t0) * 1000)

print(json.dumps({"create": create, "destroy": destroy}))
