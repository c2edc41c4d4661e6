#!/usr/bin/env python
"""The flowlog user-space function's cost per frame, on one core.

    .venv/bin/python bench/flowlog.py            # a table
    .venv/bin/python bench/flowlog.py --json     # one JSON object

What is timed is what the function does with each frame it reads: the
checks (parse_tunnel), the flow's counters and the delivery call
(Flowlog.handle), with the delivery socket replaced by a no-op, so the
figure is the function's own work, without the kernel's socket costs
(one recvfrom and one send per frame on top, each a few microseconds).
Frames, all through the same Flowlog: a 64-byte and a full-size (1450-byte
inner IPv4) UDP packet, one with a Geneve option, 256 flows round robin,
and two hostile frames (another VNI, a bad outer checksum), dropped.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build"))

from ansible_collections.mizar.transit.plugins.module_utils.userspace import flowlog as fl  # noqa: E402

VNI, EP_IP, EP_MAC, PEER_IP = 100, "10.0.1.20", "02:aa:00:00:00:01", "10.0.1.10"


class NullOut:
    def send(self, data):
        return len(data)


def function():
    f = fl.Flowlog({"name": "bench", "vni": VNI, "ip": EP_IP, "mac": EP_MAC, "log": os.devnull, "flush": 1,
                    "host_iface": "none"})
    f.out = NullOut()
    return f


def udp_frame(size, sport=40000, options=(), vni=VNI):
    payload = b"x" * (size - 28)
    inner = fl.ethernet(EP_MAC, "02:aa:00:00:00:02", fl.ETH_P_IP,
                        fl.ipv4(PEER_IP, EP_IP, 17, fl.udp(sport, 7000, payload, PEER_IP, EP_IP)))
    return fl.tunnel_frame(inner, vni, "192.168.50.1", "192.168.50.2", "02:00:00:00:00:01", "02:00:00:00:00:02",
                           options=options)


def cases():
    bad_csum = bytearray(udp_frame(64))
    bad_csum[24:26] = b"\xde\xad"
    return [
        ("udp 64 B", [udp_frame(64)]),
        ("udp 1450 B (full size)", [udp_frame(1450)]),
        ("udp 64 B, one Geneve option", [udp_frame(64, options=[(0x0102, 3, b"\0\0\0\x2a")])]),
        ("udp 64 B, 256 flows", [udp_frame(64, sport=40000 + i) for i in range(256)]),
        ("dropped: another VNI", [udp_frame(64, vni=VNI + 1)]),
        ("dropped: outer checksum", [bytes(bad_csum)]),
    ]


def measure(frames, n):
    f = function()
    handle = f.handle
    count = len(frames)
    for i in range(min(n, 1000)):  # warm up
        handle(frames[i % count], fl.PACKET_OTHERHOST, 0.0)
    start = time.perf_counter()
    for i in range(n):
        handle(frames[i % count], fl.PACKET_OTHERHOST, 0.0)
    elapsed = time.perf_counter() - start
    return {"ns_per_frame": round(elapsed / n * 1e9), "pps": round(n / elapsed)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--frames", type=int, default=200000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = [dict(case=name, **measure(frames, args.frames)) for name, frames in cases()]
    out = {"python": sys.version.split()[0], "frames": args.frames, "results": results}
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print("flowlog, one core, Python %s, %d frames a case" % (out["python"], args.frames))
    print("%-32s %12s %12s" % ("frame", "ns/frame", "frames/s"))
    for r in results:
        print("%-32s %12d %12d" % (r["case"], r["ns_per_frame"], r["pps"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
