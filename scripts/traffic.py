#!/usr/bin/env python
"""Real traffic between endpoint namespaces, for the lab demo and molecule.

    traffic.py serve  NETNS NAME [--port P]        # TCP+UDP servers answering NAME, in the background
    traffic.py stop   NETNS                        # stop them
    traffic.py probe  NETNS DST PROTO [--port P]   # one exchange; prints JSON, exits 0 when answered
    traffic.py stream NETNS DST SECONDS [--port P] # TCP stream of numbered records; prints JSON

Every command enters NETNS itself (setns on its own process; only the
network namespace changes, so nothing else about the caller moves).
Probes are bounded in count and time and only ever address endpoint
namespaces this machine made.
"""
import argparse
import ctypes
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
RUN_DIR = "/run/mizar-traffic"
DEFAULT_PORT = 7777
STREAM_PORT = 7778
RECORD = struct.Struct("!Q")


def enter(netns):
    fd = os.open(os.path.join("/run/netns", netns), os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into %s" % netns)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ servers


def _serve_forever(name, port):
    """Answer every TCP connection and UDP datagram with this endpoint's
    name; count the numbered records of stream connections."""
    import selectors
    sel = selectors.DefaultSelector()
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", port))
    tcp.listen(64)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))
    stream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    stream.bind(("0.0.0.0", STREAM_PORT))
    stream.listen(8)
    sel.register(tcp, selectors.EVENT_READ, "tcp")
    sel.register(udp, selectors.EVENT_READ, "udp")
    sel.register(stream, selectors.EVENT_READ, "stream")
    answer = name.encode()
    streams = {}
    while True:
        for key, dummy in sel.select():
            kind = key.data
            if kind == "tcp":
                conn, dummy = tcp.accept()
                conn.settimeout(2)
                try:
                    conn.recv(256)
                    conn.sendall(answer)
                except OSError:
                    pass
                conn.close()
            elif kind == "udp":
                dummy, peer = udp.recvfrom(2048)
                udp.sendto(answer, peer)
            elif kind == "stream":
                conn, dummy = stream.accept()
                conn.setblocking(False)
                streams[conn] = {"buf": b"", "next": 0, "bad": 0}
                sel.register(conn, selectors.EVENT_READ, "record")
            else:
                conn = key.fileobj
                st = streams[conn]
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    # report: how many records arrived, in order
                    try:
                        conn.setblocking(True)
                        conn.sendall(json.dumps({"received": st["next"], "out_of_order": st["bad"]}).encode())
                    except OSError:
                        pass
                    sel.unregister(conn)
                    conn.close()
                    del streams[conn]
                    continue
                st["buf"] += data
                n = len(st["buf"]) // RECORD.size
                for i in range(n):
                    (seq,) = RECORD.unpack_from(st["buf"], i * RECORD.size)
                    if seq != st["next"]:
                        st["bad"] += 1
                    st["next"] = seq + 1
                st["buf"] = st["buf"][n * RECORD.size:]


def serve(args):
    os.makedirs(RUN_DIR, exist_ok=True)
    stop(args)
    pid = os.fork()
    if pid:
        with open(os.path.join(RUN_DIR, args.netns + ".pid"), "w") as f:
            f.write(str(pid))
        deadline = time.time() + 5
        while time.time() < deadline:  # wait until it listens
            if _listening(args.netns, args.port):
                return 0
            time.sleep(0.05)
        print("server in %s did not start" % args.netns, file=sys.stderr)
        return 1
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    enter(args.netns)
    _serve_forever(args.name, args.port)
    os._exit(0)


def _listening(netns, port):
    out = subprocess.run(["ip", "netns", "exec", netns, "ss", "-ltn", "sport = :%d" % port],
                         capture_output=True, text=True, check=False).stdout
    return ":%d" % port in out


def stop(args):
    path = os.path.join(RUN_DIR, args.netns + ".pid")
    try:
        with open(path) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass
    try:
        os.unlink(path)
    except OSError:
        pass
    return 0


# ------------------------------------------------------------------ clients


def probe(args):
    enter(args.netns)
    t0 = time.time()
    result = {"from": args.netns, "to": args.dst, "proto": args.proto, "ok": False, "reply": None}
    try:
        if args.proto == "icmp":
            r = subprocess.run(["ping", "-c", "1", "-W", str(max(1, int(args.timeout))), args.dst],
                               capture_output=True, text=True, check=False)
            result["ok"] = r.returncode == 0
        elif args.proto == "tcp":
            with socket.create_connection((args.dst, args.port), timeout=args.timeout) as s:
                s.sendall(b"hello")
                result["reply"] = s.recv(256).decode()
                result["ok"] = bool(result["reply"])
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(args.timeout / 3)
                for dummy in range(3):  # UDP may lose the first datagram to ARP
                    s.sendto(b"hello", (args.dst, args.port))
                    try:
                        result["reply"] = s.recv(256).decode()
                        result["ok"] = True
                        break
                    except socket.timeout:
                        continue
    except OSError as e:
        result["error"] = str(e)
    result["seconds"] = round(time.time() - t0, 3)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def stream(args):
    """Send numbered records for a while; the server says how many arrived
    and whether any came out of order. A connection that breaks fails."""
    enter(args.netns)
    result = {"from": args.netns, "to": args.dst, "sent": 0, "ok": False}
    try:
        s = socket.create_connection((args.dst, STREAM_PORT), timeout=5)
        s.settimeout(10)
        end = time.time() + args.seconds
        seq = 0
        while time.time() < end:
            s.sendall(b"".join(RECORD.pack(seq + i) for i in range(64)))
            seq += 64
            time.sleep(0.002)
        s.shutdown(socket.SHUT_WR)
        report = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            report += chunk
        s.close()
        result.update(json.loads(report.decode()))
        result["sent"] = seq
        result["ok"] = result["received"] == seq and result["out_of_order"] == 0
    except (OSError, ValueError) as e:
        result["error"] = str(e)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve")
    p.add_argument("netns")
    p.add_argument("name")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p = sub.add_parser("stop")
    p.add_argument("netns")
    p = sub.add_parser("probe")
    p.add_argument("netns")
    p.add_argument("dst")
    p.add_argument("proto", choices=["icmp", "tcp", "udp"])
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--timeout", type=float, default=2.0)
    p = sub.add_parser("stream")
    p.add_argument("netns")
    p.add_argument("dst")
    p.add_argument("seconds", type=float)
    args = ap.parse_args()
    return {"serve": serve, "stop": stop, "probe": probe, "stream": stream}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
