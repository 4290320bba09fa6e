"""The call a block-commit job makes, made directly with python3-libvirt: an
active commit of vda into its backing image, timed, then aborted; N times.
Prints each blockCommit() time in milliseconds as JSON."""
import json
import sys
import time

import libvirt

name, n = sys.argv[1], int(sys.argv[2])
conn = libvirt.open('qemu:///system')
dom = conn.lookupByName(name)


def wait_gone():
    while dom.blockJobInfo('vda', 0):
        time.sleep(0.01)


times = []
for _ in range(n):
    t0 = time.perf_counter()
    dom.blockCommit('vda', None, None, 0, libvirt.VIR_DOMAIN_BLOCK_COMMIT_ACTIVE)
    times.append((time.perf_counter() - t0) * 1000)
    dom.blockJobAbort('vda', 0)
    wait_gone()

print(json.dumps(times))
