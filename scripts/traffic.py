#!/usr/bin/env python
"""Real traffic between endpoint namespaces, for the lab demo and molecule.

    traffic.py serve  NETNS NAME [--port P]        # TCP+UDP servers answering NAME, in the background
    traffic.py stop   NETNS                        # stop them
    traffic.py probe  NETNS DST PROTO [--port P]   # one exchange; prints JSON, exits 0 when answered
    traffic.py stream NETNS DST SECONDS [--port P] # TCP stream of numbered records; prints JSON
    traffic.py flood  NETNS DST PPS SECONDS [--port P] # UDP at PPS for SECONDS; prints how many were answered
    traffic.py spread NETNS DST tcp|udp N [--exchanges K] # N connections (UDP: source ports), K requests each;
                                                   # prints who answered each, and whether each kept one
    traffic.py flowlog NETNS DST LOG COUNT [--size B] # COUNT datagrams of one flow to a flowlog endpoint;
                                                   # prints how many its log (LOG) counted
    traffic.py batch  CHECKS [--protos icmp,tcp,udp] # every check (JSON list of {"from": NETNS, "to": DST,
                                                   # ...}) over every protocol, all at once; prints the
                                                   # results, each with its check, as one JSON list

Every command enters NETNS itself (setns on its own process; only the
network namespace changes, so nothing else about the caller moves).
Probes are bounded in count and time and only ever address endpoint
namespaces this machine made. It needs only Python's standard library and
ping, so the VM lab copies it into its guests as it is.
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
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # linux/in.h
PKTINFO = struct.Struct("=i4s4s")  # struct in_pktinfo: ifindex, spec_dst, addr


def enter(netns):
    fd = os.open(os.path.join("/run/netns", netns), os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into %s" % netns)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ servers


def _serve_forever(name, port, ready_fd):
    """Answer every request on a TCP connection, and every UDP datagram
    (from the address it was sent to), with this endpoint's name; count the
    numbered records of stream connections."""
    import selectors
    sel = selectors.DefaultSelector()
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", port))
    tcp.listen(64)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    udp.bind(("0.0.0.0", port))
    stream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    stream.bind(("0.0.0.0", STREAM_PORT))
    stream.listen(8)
    sel.register(tcp, selectors.EVENT_READ, "tcp")
    sel.register(udp, selectors.EVENT_READ, "udp")
    sel.register(stream, selectors.EVENT_READ, "stream")
    os.write(ready_fd, b"1")  # every socket listens: the caller may return
    os.close(ready_fd)
    answer = name.encode()
    streams = {}
    while True:
        for key, dummy in sel.select():
            kind = key.data
            if kind == "tcp":
                conn, dummy = tcp.accept()
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, "chat")
            elif kind == "chat":
                # every request on the connection is answered, until the client closes it
                conn = key.fileobj
                try:
                    data = conn.recv(256)
                    if data:
                        conn.settimeout(2)
                        conn.sendall(answer)
                        conn.setblocking(False)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(conn)
                    conn.close()
            elif kind == "udp":
                # answered from the address it was sent to, as a UDP service
                # behind a VIP must (the VIP, on a backend's lo)
                dummy, ancillary, dummy_flags, peer = udp.recvmsg(2048, socket.CMSG_SPACE(PKTINFO.size))
                to = [PKTINFO.unpack(data)[2] for level, kind_, data in ancillary
                      if level == socket.IPPROTO_IP and kind_ == IP_PKTINFO and len(data) >= PKTINFO.size]
                info = [(socket.IPPROTO_IP, IP_PKTINFO, PKTINFO.pack(0, to[0], bytes(4)))] if to else []
                udp.sendmsg([answer], info, 0, peer)
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
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(ready_w)
        with open(os.path.join(RUN_DIR, args.netns + ".pid"), "w") as f:
            f.write(str(pid))
        import select
        ok = select.select([ready_r], [], [], 5)[0] and os.read(ready_r, 1) == b"1"
        os.close(ready_r)
        if not ok:
            print("server in %s did not start" % args.netns, file=sys.stderr)
            return 1
        return 0
    os.close(ready_r)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    enter(args.netns)
    _serve_forever(args.name, args.port, ready_w)
    os._exit(0)


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


def exchange(netns, dst, proto, port=DEFAULT_PORT, timeout=2.0):
    """One exchange from netns (entered by this process) with dst: a ping,
    or a TCP or UDP request answered by the server's name."""
    enter(netns)
    t0 = time.time()
    result = {"from": netns, "to": dst, "proto": proto, "ok": False, "reply": None}
    try:
        if proto == "icmp":
            r = subprocess.run(["ping", "-c", "1", "-W", str(max(1, int(timeout))), dst],
                               capture_output=True, text=True, check=False)
            result["ok"] = r.returncode == 0
        elif proto == "tcp":
            with socket.create_connection((dst, port), timeout=timeout) as s:
                s.sendall(b"hello")
                result["reply"] = s.recv(256).decode()
                result["ok"] = bool(result["reply"])
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(timeout / 3)
                for dummy in range(3):  # UDP may lose the first datagram to ARP
                    s.sendto(b"hello", (dst, port))
                    try:
                        result["reply"] = s.recv(256).decode()
                        result["ok"] = True
                        break
                    except socket.timeout:
                        continue
    except OSError as e:
        result["error"] = str(e)
    result["seconds"] = round(time.time() - t0, 3)
    return result


def probe(args):
    result = exchange(args.netns, args.dst, args.proto, args.port, args.timeout)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def batch(args):
    """Every check over every protocol at once, each probe in a child of its
    own (entering a namespace is per process); prints the results in order,
    each carrying the check it answers."""
    wanted = [dict(check, proto=proto) for check in json.loads(args.checks) for proto in args.protos.split(",")]
    children = []
    for item in wanted:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                out = exchange(item["from"], item["to"], item["proto"], item.get("port", DEFAULT_PORT))
            except Exception as e:  # a namespace that is not there, say
                out = {"from": item["from"], "to": item["to"], "proto": item["proto"], "ok": False,
                       "reply": None, "error": str(e)}
            out["check"] = item
            os.write(w, json.dumps(out).encode())
            os._exit(0)
        os.close(w)
        children.append((pid, r))
    results = []
    for pid, r in children:
        data = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        results.append(json.loads(data.decode()))
    print(json.dumps(results))
    return 0


def _tcp_exchanges(dst, port, exchanges):
    """One TCP connection to dst, `exchanges` requests on it: (its source
    port, the peer it was connected to, the answers)."""
    with socket.create_connection((dst, port), timeout=3) as s:
        replies = []
        for dummy in range(exchanges):
            s.sendall(b"hello")
            replies.append(s.recv(256).decode())
        return s.getsockname()[1], s.getpeername()[0], replies


def _udp_exchanges(dst, port, exchanges):
    """`exchanges` datagrams to dst from one socket (one source port): (the
    source port, the addresses the answers came from, the answers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        s.settimeout(1)
        replies, peers = [], set()
        for dummy in range(exchanges):
            for attempt in range(3):  # the first may be lost to ARP
                s.sendto(b"hello", (dst, port))
                try:
                    data, peer = s.recvfrom(256)
                except socket.timeout:
                    continue
                replies.append(data.decode())
                peers.add(peer[0])
                break
            else:
                replies.append(None)
        return s.getsockname()[1], ",".join(sorted(peers)), replies


def spread(args):
    """Several connections (TCP) or flows (UDP, each from a source port of
    its own) to dst, each carrying several requests. Prints which endpoint
    answered each, how many each endpoint got, whether every connection
    kept one endpoint (sticky) and whether every answer came from dst
    itself (from_dst: direct server return from a VIP); exits 0 when every
    request was answered."""
    enter(args.netns)
    one = _tcp_exchanges if args.proto == "tcp" else _udp_exchanges
    result = {"from": args.netns, "to": args.dst, "proto": args.proto, "connections": []}
    for dummy in range(args.connections):
        try:
            sport, peer, replies = one(args.dst, args.port, args.exchanges)
        except OSError as e:
            sport, peer, replies = None, None, [None] * args.exchanges
            result["error"] = str(e)
        result["connections"].append({"sport": sport, "peer": peer, "replies": replies})
    conns = result["connections"]
    result["answered"] = all(None not in c["replies"] and "" not in c["replies"] for c in conns)
    result["sticky"] = all(len(set(c["replies"])) == 1 for c in conns)
    result["from_dst"] = all(c["peer"] == args.dst for c in conns)
    result["by_endpoint"] = {}
    for c in conns:
        if c["replies"][0]:
            result["by_endpoint"][c["replies"][0]] = result["by_endpoint"].get(c["replies"][0], 0) + 1
    print(json.dumps(result))
    return 0 if result["answered"] else 1


def _logged(log, key):
    """The packets and bytes of the last record of flow `key` (proto, src,
    dst, sport, dport) in a flowlog log: (0, 0) when it has none."""
    last = (0, 0, None)
    try:
        with open(log) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if r.get("type") == "flow" and (r["proto"], r["src"], r["dst"], r["sport"], r["dport"]) == key:
                    last = (r["packets"], r["bytes"], r)
    except OSError:
        pass
    return last


def flowlog(args):
    """`count` UDP datagrams of `size` bytes from one source port to dst,
    an endpoint running the flowlog function, each answered by the server
    there; then the function's log, read until its record of the flow
    grows by what was sent (or `wait` seconds pass). Prints what was sent,
    answered and logged (the growth in packets and bytes, with the flow's
    VNI and outer source); exits 0 when the log has every packet."""
    enter(args.netns)
    result = {"from": args.netns, "to": args.dst, "sent": 0, "answered": 0}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((args.dst, args.port))
        src, sport = s.getsockname()
        key = ("udp", src, args.dst, sport, args.port)
        before = _logged(args.log, key)
        s.settimeout(1)
        payload = b"f" * args.size
        for dummy in range(args.count):
            s.send(payload)
            result["sent"] += 1
            try:
                s.recv(256)
                result["answered"] += 1
            except OSError:
                pass
    result.update(src=src, sport=sport, dport=args.port, bytes_sent=args.count * (20 + 8 + args.size))
    end = time.time() + args.wait
    while True:
        after = _logged(args.log, key)
        if after[0] - before[0] >= result["sent"] or time.time() > end:
            break
        time.sleep(0.2)
    result["logged"], result["logged_bytes"] = after[0] - before[0], after[1] - before[1]
    record = after[2] or {}
    result["vni"], result["outer_src"] = record.get("vni"), record.get("outer_src")
    print(json.dumps(result))
    return 0 if result["logged"] == result["sent"] else 1


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


def flood(args):
    """UDP datagrams to the server at dst, paced at pps for seconds; every
    one the server gets it answers. Prints {sent, answered, seconds} (the
    seconds the sending took); exits 0 when something was answered."""
    enter(args.netns)
    result = {"from": args.netns, "to": args.dst, "pps": args.pps, "sent": 0, "answered": 0}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.connect((args.dst, args.port))
        s.setblocking(False)
        total = int(args.pps * args.seconds)
        t0 = time.monotonic()

        def drain():
            while True:
                try:
                    s.recv(256)
                except (BlockingIOError, ConnectionRefusedError):
                    return
                result["answered"] += 1

        while result["sent"] < total:
            due = t0 + result["sent"] / args.pps
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            try:
                s.send(b"flood")
                result["sent"] += 1
            except (BlockingIOError, ConnectionRefusedError):
                pass
            drain()
        result["seconds"] = round(time.monotonic() - t0, 3)
        end = time.monotonic() + 1.0  # the last answers
        while time.monotonic() < end:
            time.sleep(0.05)
            drain()
    print(json.dumps(result))
    return 0 if result["answered"] else 1


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
    p = sub.add_parser("flood")
    p.add_argument("netns")
    p.add_argument("dst")
    p.add_argument("pps", type=float)
    p.add_argument("seconds", type=float)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p = sub.add_parser("spread")
    p.add_argument("netns")
    p.add_argument("dst")
    p.add_argument("proto", choices=["tcp", "udp"])
    p.add_argument("connections", type=int)
    p.add_argument("--exchanges", type=int, default=4)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p = sub.add_parser("flowlog")
    p.add_argument("netns")
    p.add_argument("dst")
    p.add_argument("log")
    p.add_argument("count", type=int)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--wait", type=float, default=5.0)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p = sub.add_parser("batch")
    p.add_argument("checks", help="JSON list of {from, to}")
    p.add_argument("--protos", default="icmp,tcp,udp")
    args = ap.parse_args()
    return {"serve": serve, "stop": stop, "probe": probe, "stream": stream, "flood": flood,
            "batch": batch, "spread": spread, "flowlog": flowlog}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
