# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A packet traced hop by hop (playbooks/trace.yml, docs/trace.md), the
pure part: the frame a source endpoint sends, the headers of any frame in
words, and the walk from host to host over the rendering.

    state = start(model, renderings, "blue1", "10.0.2.10", proto="icmp")
    state["next"]          # {host, program, iface, pin_dir, frame}: run it there
    state = step(state, result, renderings)   # result: mizar.transit.trace_hop's
    ...                    # until state["done"]; state["verdict"] is the last line

model: the validated inventory (validate.check()). The walk runs the live
programs through the trace_hop module on each host; model_walk() follows
the same packet through model/forwarding.py instead, touching no host, and
compare() sets the two side by side. Nothing here imports the other layers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import struct

from ansible_collections.mizar.transit.plugins.module_utils.model.forwarding import ForwardingModel

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
PROTOCOL_NAMES = dict((v, k) for k, v in PROTOCOLS.items())
MODES = ("live", "model", "compare")
MAX_HOPS = 8
DEFAULT_SPORT = 49152
DEFAULT_DPORT = 80
TTL = 64
IP_ID = 0x6d7a
ICMP_ID = 0x6d7a
PAYLOAD = b"mizar.transit trace"
GENEVE_PORT = 6081
ETH_IP, ETH_ARP, ETH_GENEVE = 0x0800, 0x0806, 0x6558

# what a host did, by the counter its program counted (bpf/include/mzr_abi.h)
ROLES = {
    "agent_local": "local delivery", "decap": "local delivery", "bypass": "local delivery (bypass_decap)",
    "bounce": "bouncer", "divide": "divider", "to_divider": "to a divider", "to_peer": "to a peer VPC",
    "arp_reply": "ARP answer", "agent_pmtu": "ICMP fragmentation needed", "scaled": "scaled endpoint",
    "agent_encap": "to a bouncer",
}
# the path a hop took, when several counters moved (the agent as its own
# bouncer counts bounce and agent_encap): the first of these
PATH_ORDER = ("bounce", "divide", "to_divider", "to_peer", "arp_reply", "agent_pmtu", "agent_local", "decap",
              "bypass", "scaled", "agent_encap")


class TraceError(ValueError):
    """A trace that cannot start; the message names the field at fault."""


# ---------------------------------------------------------------- frames


def _csum(data):
    """The Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mac(text):
    return bytes.fromhex(text.replace(":", ""))


def _ip(text):
    return ipaddress.IPv4Address(text).packed


def ipv4_frame(src_mac, dst_mac, src, dst, proto, sport=DEFAULT_SPORT, dport=DEFAULT_DPORT):
    """An Ethernet/IPv4 frame as a Linux endpoint sends it (DF set, TTL 64)
    with an ICMP echo request, a TCP SYN or a UDP datagram, every checksum
    right."""
    s, d = _ip(src), _ip(dst)
    number = PROTOCOLS[proto]
    if proto == "icmp":
        body = struct.pack("!BBHHH", 8, 0, 0, ICMP_ID, 1) + PAYLOAD
        l4 = body[:2] + struct.pack("!H", _csum(body)) + body[4:]
    else:
        if proto == "tcp":
            body = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
            at = 16
        else:
            body = struct.pack("!HHHH", sport, dport, 8 + len(PAYLOAD), 0) + PAYLOAD
            at = 6
        pseudo = s + d + struct.pack("!BBH", 0, number, len(body))
        csum = _csum(pseudo + body) or 0xFFFF
        l4 = body[:at] + struct.pack("!H", csum) + body[at + 2:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), IP_ID, 0x4000, TTL, number, 0, s, d)
    header = header[:10] + struct.pack("!H", _csum(header)) + header[12:]
    return _mac(dst_mac) + _mac(src_mac) + struct.pack("!H", ETH_IP) + header + l4


def arp_request(src_mac, src, target):
    """The ARP request an endpoint broadcasts for target."""
    return (b"\xff" * 6 + _mac(src_mac) + struct.pack("!HHHBBH", ETH_ARP, 1, ETH_IP, 6, 4, 1)
            + _mac(src_mac) + _ip(src) + b"\0" * 6 + _ip(target))


def _mac_text(b):
    return b.hex(":")


def _ip_text(b):
    return str(ipaddress.IPv4Address(b))


def _decode_l2(data):
    """{eth, ip|arp, icmp|tcp|udp, geneve, inner} of an Ethernet frame, as
    far as its bytes go; `cut` names the header that is cut short."""
    out = {}
    if len(data) < 14:
        out["cut"] = "eth"
        return out
    etype = struct.unpack("!H", data[12:14])[0]
    out["eth"] = {"dst": _mac_text(data[0:6]), "src": _mac_text(data[6:12]), "type": "0x%04x" % etype}
    body = data[14:]
    if etype == ETH_ARP:
        if len(body) < 28:
            out["cut"] = "arp"
            return out
        op = struct.unpack("!H", body[6:8])[0]
        out["arp"] = {"op": {1: "request", 2: "reply"}.get(op, str(op)), "sha": _mac_text(body[8:14]),
                      "spa": _ip_text(body[14:18]), "tha": _mac_text(body[18:24]), "tpa": _ip_text(body[24:28])}
        return out
    if etype != ETH_IP:
        return out
    if len(body) < 20:
        out["cut"] = "ip"
        return out
    ihl = (body[0] & 0x0F) * 4
    tos, total, ident, frag, ttl, proto = struct.unpack("!xBHHHBB", body[:10])
    out["ip"] = {"src": _ip_text(body[12:16]), "dst": _ip_text(body[16:20]), "proto": PROTOCOL_NAMES.get(proto, proto),
                 "ttl": ttl, "tos": tos, "len": total, "id": ident, "df": bool(frag & 0x4000),
                 "checksum_ok": ihl >= 20 and len(body) >= ihl and _csum(body[:ihl]) == 0}
    l4 = body[ihl:]
    if frag & 0x1FFF:
        return out
    if proto == 1 and len(l4) >= 4:
        out["icmp"] = {"type": l4[0], "code": l4[1]}
    elif proto == 6 and len(l4) >= 14:
        sport, dport = struct.unpack("!HH", l4[:4])
        out["tcp"] = {"sport": sport, "dport": dport, "flags": l4[13]}
    elif proto == 17 and len(l4) >= 8:
        sport, dport, length = struct.unpack("!HHH", l4[:6])
        out["udp"] = {"sport": sport, "dport": dport, "len": length}
        if dport == GENEVE_PORT and len(l4) >= 16:
            g = l4[8:]
            optlen = (g[0] & 0x3F) * 4
            out["geneve"] = {"version": g[0] >> 6, "o": bool(g[1] & 0x80), "c": bool(g[1] & 0x40),
                             "proto": "0x%04x" % struct.unpack("!H", g[2:4])[0],
                             "vni": int.from_bytes(g[4:7], "big"), "optlen": optlen}
            if struct.unpack("!H", g[2:4])[0] == ETH_GENEVE and len(g) >= 8 + optlen:
                out["inner"] = _decode_l2(g[8 + optlen:])
    return out


def decode(frame):
    """The headers of a frame (bytes or hex): outer Ethernet, IPv4 or ARP,
    ICMP, TCP or UDP, Geneve and the inner frame it carries, decoded as far
    as the bytes allow (a garbled frame decodes partly, never raises)."""
    if isinstance(frame, str):
        frame = bytes.fromhex(frame)
    return _decode_l2(bytes(frame))


_ICMP_TYPES = {0: "echo reply", 3: "unreachable", 8: "echo request", 11: "time exceeded"}
_TCP_FLAGS = ((0x02, "S"), (0x10, "."), (0x01, "F"), (0x04, "R"), (0x08, "P"))


def _words(d):
    """One layer of decode()'s result (without its Geneve payload) in words."""
    if "arp" in d:
        a = d["arp"]
        if a["op"] == "request":
            return "ARP who-has %s tell %s (%s)" % (a["tpa"], a["spa"], a["sha"])
        return "ARP %s is-at %s (to %s)" % (a["spa"], a["sha"], a["tpa"])
    if "ip" not in d:
        return "%s > %s type %s%s" % (d["eth"]["src"], d["eth"]["dst"], d["eth"]["type"], " (cut)" if d.get("cut") else "") \
            if "eth" in d else "(cut short)"
    ip = d["ip"]
    text = "%s > %s %s ttl %d" % (ip["src"], ip["dst"], ip["proto"], ip["ttl"])
    if "icmp" in d:
        text += " %s" % _ICMP_TYPES.get(d["icmp"]["type"], "type %d" % d["icmp"]["type"])
    elif "tcp" in d:
        flags = "".join(c for bit, c in _TCP_FLAGS if d["tcp"]["flags"] & bit)
        text += " %d > %d [%s]" % (d["tcp"]["sport"], d["tcp"]["dport"], flags)
    elif "udp" in d:
        text += " %d > %d" % (d["udp"]["sport"], d["udp"]["dport"])
    return "%s > %s %s" % (d["eth"]["src"], d["eth"]["dst"], text)


def summary(headers):
    """decode()'s result as one line: the outer headers, then the Geneve
    VNI and the inner frame."""
    if "geneve" not in headers:
        return _words(headers)
    g = headers["geneve"]
    inner = headers.get("inner")
    return "%s | geneve vni %d | %s" % (_words(headers), g["vni"], _words(inner) if inner else "(inner frame cut)")


# ---------------------------------------------------------------- the start


def _find_endpoint(renderings, src):
    """(host, local endpoint entry) of the endpoint named src: its full name
    (vpc/network/name) or its name, if only one endpoint has it."""
    found = []
    for host, r in sorted(renderings.items()):
        for ep in r.get("local_endpoints") or []:
            if ep["name"] == src or ep["name"].rsplit("/", 1)[-1] == src:
                found.append((host, ep))
    if not found:
        raise TraceError("src: %r is no endpoint of any transit host (name it as in the inventory, "
                         "e.g. blue1 or blue/web/blue1)" % (src,))
    if len(found) > 1:
        raise TraceError("src: %r names %d endpoints (%s): give its full name"
                         % (src, len(found), ", ".join(sorted(ep["name"] for _h, ep in found))))
    return found[0]


def _endpoint_mac(renderings, vni, ip):
    """The MAC of the endpoint (or gateway) (vni, ip) in any host's
    rendering, or None: what ARP gives the sender."""
    for r in renderings.values():
        for e in r["maps"]["endpoints"]:
            if e["vni"] == vni and e["ip"] == ip:
                return e["mac"]
    return None


def _port(value, field):
    if value is None or value == "":
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise TraceError("%s: %r is not a port number" % (field, value))
    if not 0 < port < 65536:
        raise TraceError("%s: %d is not a port number (1 to 65535)" % (field, port))
    return port


def request(model, renderings, src, dst, proto="icmp", sport=None, dport=None, mode="live", max_hops=MAX_HOPS):
    """The trace's input checked against the inventory (model, from
    validate.check()) and renderings: {src (full name), host, endpoint,
    vpc, dst, proto, sport, dport, mode, max_hops, kind (ipv4 or arp), via
    (how the sender addresses the frame), frame (hex)}. Raises TraceError
    naming the field."""
    if mode not in MODES:
        raise TraceError("mode: %r is not one of %s" % (mode, ", ".join(MODES)))
    if proto not in PROTOCOLS:
        raise TraceError("proto: %r is not a protocol the trace sends (%s)" % (proto, ", ".join(sorted(PROTOCOLS))))
    sport, dport = _port(sport, "sport"), _port(dport, "dport")
    if proto == "icmp" and (sport or dport):
        raise TraceError("sport, dport: ICMP has no ports (proto=tcp or proto=udp)")
    try:
        max_hops = int(max_hops)
    except (TypeError, ValueError):
        raise TraceError("max_hops: %r is not a number" % (max_hops,))
    if not 0 < max_hops <= 64:
        raise TraceError("max_hops: %d is not between 1 and 64" % max_hops)
    host, ep = _find_endpoint(renderings, str(src))
    try:
        addr = ipaddress.IPv4Address(str(dst))
    except ValueError:
        raise TraceError("dst: %r is not an IPv4 address" % (dst,))
    vpc = next(v for v in model.vpcs if v.vni == ep["vni"])
    peers = [p for peering in model.peerings for p in (peering.vpcs or []) if vpc in (peering.vpcs or [])
             and p is not vpc]
    inside = [v for v in [vpc] + peers if addr in ipaddress.IPv4Network(v.cidr, strict=False)]
    if not inside:
        raise TraceError("dst: %s is outside VPC %s (%s) of %s%s" % (
            addr, vpc.name, vpc.cidr, ep["name"], "".join(" and outside peered VPC %s (%s)" % (p.name, p.cidr)
                                                          for p in peers)))
    dst = str(addr)
    own_net = ipaddress.IPv4Network("%s/%d" % (ep["ip"], ep["prefixlen"]), strict=False)
    sport = sport or DEFAULT_SPORT
    dport = dport or DEFAULT_DPORT
    if addr in own_net:
        mac = _endpoint_mac(renderings, ep["vni"], dst)
        via = "neighbour" if mac else "arp"
    else:
        mac, via = _endpoint_mac(renderings, ep["vni"], ep["gateway"]), "gateway"
    if via == "arp":
        frame = arp_request(ep["mac"], ep["ip"], dst)
    else:
        frame = ipv4_frame(ep["mac"], mac, ep["ip"], dst, proto, sport, dport)
    return {"src": ep["name"], "host": host, "endpoint": dict(ep), "vpc": vpc.name, "dst": dst, "proto": proto,
            "sport": sport if proto != "icmp" else None, "dport": dport if proto != "icmp" else None,
            "mode": mode, "max_hops": max_hops, "kind": "arp" if via == "arp" else "ipv4", "via": via,
            "frame": frame.hex()}


def start(model, renderings, src, dst, proto="icmp", sport=None, dport=None, mode="live", max_hops=MAX_HOPS):
    """The walk's first state: the request, its first hop (the agent of the
    source endpoint's interface on its host), and, for modes model and
    compare, the model's walk."""
    req = request(model, renderings, src, dst, proto, sport, dport, mode, max_hops)
    state = {"request": req, "hops": [], "done": False, "outcome": None, "verdict": None, "model": None,
             "compare": None,
             "next": {"host": req["host"], "program": "agent", "iface": req["endpoint"]["iface"],
                      "pin_dir": renderings[req["host"]]["interface"]["pin_dir"], "frame": req["frame"]}}
    if mode in ("model", "compare"):
        state["model"] = model_walk(renderings, req)
    if mode == "model":
        state.update(done=True, next=None, outcome=state["model"]["outcome"], verdict=state["model"]["verdict"])
    return state


# ---------------------------------------------------------------- the walk


def path_of(counted):
    """The path a hop took, from the counters its run added ({name: n}):
    the first of PATH_ORDER, or None."""
    return next((p for p in PATH_ORDER if counted.get(p)), None)


def _role(program, path, out_headers, own_ip):
    if path == "agent_encap" and out_headers.get("ip", {}).get("dst") == own_ip:
        return "local delivery (bypass_decap)"
    role = ROLES.get(path, path or "")
    if program == "agent" and path in ("bounce", "divide", "to_divider", "to_peer"):
        return "%s (the agent, on the bouncer's own host)" % role
    return role


def _function_names(rendering, stage):
    """The inventory names of the functions of a host's stage, in chain order."""
    return [f["name"] for f in rendering.get("functions") or [] if f.get("stage") == stage]


def _hop(state, result, renderings):
    """One hop's record from the trace_hop module's result."""
    nxt = state["next"]
    r = renderings[nxt["host"]]
    out = decode(result["frame_out"]) if result.get("frame_out") else {}
    path = path_of(result.get("counted") or {})
    verdict = result["verdict"]
    names = _function_names(r, result.get("stage"))
    functions = []
    for i, f in enumerate(result.get("functions") or []):
        functions.append(dict(f, function=names[i] if i < len(names) else f.get("program")))
    hop = {"n": len(state["hops"]) + 1, "host": nxt["host"], "program": nxt["program"], "iface": nxt["iface"],
           "verdict": verdict, "drop_reason": result.get("drop_reason"), "path": path,
           "role": "drop" if verdict in ("drop", "aborted") else ("passed to the host" if verdict == "pass" else
                                                                  _role(nxt["program"], path, out, r["interface"]["ip"])),
           "stage": result.get("stage"), "functions": functions, "target": result.get("target"),
           "counted": result.get("counted") or {}, "prog_id": result.get("prog_id"),
           "frame_in": nxt["frame"], "frame_out": result.get("frame_out"), "headers_out": out,
           "leaves": summary(out) if out else None}
    decider = next((f for f in functions if f.get("decision") not in ("passed", "not run")), None)
    if decider and verdict in ("drop", "aborted"):
        hop["drop_reason"] = hop["drop_reason"] or "function %s" % decider["function"]
        hop["dropped_by"] = decider["function"]
    return hop


def _host_by_ip(renderings, ip):
    return next((h for h, r in renderings.items() if r["interface"]["ip"] == ip), None)


def _peer_by_ip(rendering, ip):
    return next((s["name"] for s in rendering["maps"]["substrate"] if s["ip"] == ip), None)


def _finish(state, outcome, verdict):
    state.update(done=True, next=None, outcome=outcome, verdict=verdict)
    if state.get("model") is not None:
        state["compare"] = compare(state["hops"], state["model"], outcome)
    return state


def step(state, result, renderings):
    """The state after the hop state["next"] ran and returned result (the
    trace_hop module's): the hop recorded, then either the next hop (the
    transit program of the host the output's outer destination names) or
    the end, with its outcome and its verdict line."""
    state = dict(state, hops=list(state["hops"]))
    hop = _hop(state, result, renderings)
    state["hops"].append(hop)
    host, req = hop["host"], state["request"]
    r = renderings[host]
    if hop["verdict"] in ("drop", "aborted"):
        by = "function %s (%s)" % (hop["dropped_by"], hop["stage"]) if hop.get("dropped_by") else \
            "the %s program: %s" % (hop["program"], hop["drop_reason"] or "no reason counted")
        return _finish(state, "dropped", "%s -> %s: dropped at %s (hop %d) by %s" % (
            req["src"], req["dst"], host, hop["n"], by))
    if hop["verdict"] == "pass":
        return _finish(state, "passed", "%s -> %s: passed to the host stack of %s (hop %d): not Geneve to it" % (
            req["src"], req["dst"], host, hop["n"]))
    target = (hop.get("target") or {}).get("iface")
    local = next((e for e in r.get("local_endpoints") or [] if e["iface"] and e["iface"] == target), None)
    if hop["verdict"] == "redirect" and local is not None:
        hop["delivered_to"] = local["name"]
        return _finish(state, "delivered", "%s -> %s: delivered to %s on %s (hop %d)" % (
            req["src"], req["dst"], local["name"], host, hop["n"]))
    if hop["program"] == "agent" and hop["verdict"] == "tx":
        return _finish(state, "answered", "%s -> %s: answered by the agent on %s (%s), back to %s" % (
            req["src"], req["dst"], host, hop["role"], req["src"]))
    if hop["verdict"] == "redirect" and target != r["interface"]["name"]:
        return _finish(state, "redirected", "%s -> %s: redirected at %s to interface %s, no endpoint of it" % (
            req["src"], req["dst"], host, target))
    dst_ip = hop["headers_out"].get("ip", {}).get("dst")
    nxt = _host_by_ip(renderings, dst_ip)
    if nxt is None:
        peer = _peer_by_ip(r, dst_ip)
        what = "tunnel peer %s (%s)" % (peer, dst_ip) if peer else "%s, no transit host" % dst_ip
        return _finish(state, "left", "%s -> %s: leaves %s for %s: the trace ends there" % (
            req["src"], req["dst"], host, what))
    if len(state["hops"]) >= req["max_hops"]:
        return _finish(state, "hop_limit", "%s -> %s: still travelling after %d hops (max_hops), next %s" % (
            req["src"], req["dst"], len(state["hops"]), nxt))
    state["next"] = {"host": nxt, "program": "transit", "iface": renderings[nxt]["interface"]["name"],
                     "pin_dir": renderings[nxt]["interface"]["pin_dir"], "frame": hop["frame_out"]}
    return state


def lines(state):
    """The walk for people: one line per hop, then the verdict."""
    req = state["request"]
    how = {"gateway": "to its gateway", "neighbour": "to its neighbour",
           "arp": "an ARP request: no endpoint has the address in its network"}[req["via"]]
    out = ["%s on %s -> %s, %s: %s" % (req["src"], req["host"], req["dst"], how, summary(decode(req["frame"])))]
    for hop in state["hops"]:
        dropped = hop["verdict"] in ("drop", "aborted")
        out.append("hop %d %s (%s on %s): %s%s" % (
            hop["n"], hop["host"], hop["program"], hop["iface"],
            "dropped" if dropped else "%s, %s" % (hop["role"], hop["verdict"]),
            ", reason %s" % hop["drop_reason"] if hop.get("drop_reason") else ""))
        if hop.get("stage"):
            fns = ", ".join("%s %s" % (f["function"], f["decision"]) for f in hop["functions"]) or "no function"
            out.append("    stage %s: %s" % (hop["stage"], fns))
        if hop.get("target") and hop["verdict"] == "redirect":
            out.append("    to interface %s%s" % (hop["target"].get("iface"),
                                                  " (%s)" % hop["delivered_to"] if hop.get("delivered_to") else ""))
        if hop.get("leaves") and hop["verdict"] not in ("drop", "aborted", "pass"):
            out.append("    leaves: %s" % hop["leaves"])
    for c in (state.get("compare") or {}).get("hops") or []:
        if not c["agree"]:
            out.append("    DIFFERS at hop %d: live %s, model %s" % (c["n"], c["live"], c["model"]))
    if state.get("compare") is not None:
        out.append("compare: %s" % ("live and model agree" if state["compare"]["agree"]
                                    else "live and model DISAGREE"))
    if state.get("model") is not None and not state["hops"]:
        for s in state["model"]["hops"]:
            out.append("model hop %d %s: %s%s" % (s["n"], s["host"], s["role"],
                                                  ", reason %s" % s["drop_reason"] if s.get("drop_reason") else ""))
    out.append(state["verdict"] or "(not finished)")
    return out


# ---------------------------------------------------------------- model and compare


def model_walk(renderings, req):
    """The request's packet through model/forwarding.py: {hops: [{n, host,
    path, role, drop_reason}], outcome, delivered_to, drop_reason,
    verdict}. The model follows IPv4 only and runs no stage function."""
    res = ForwardingModel(renderings).send(req["src"], req["dst"])
    hops = [{"n": i + 1, "host": s["host"], "path": s["path"], "drop_reason": s["drop_reason"],
             "role": "drop" if s["path"] == "drop" else ROLES.get(s["path"], s["path"])}
            for i, s in enumerate(res.steps)]
    if res.delivered_to:
        outcome = "delivered"
        verdict = "%s -> %s: delivered to %s (model, %d hops)" % (req["src"], req["dst"], res.delivered_to, len(hops))
    else:
        outcome = "dropped"
        verdict = "%s -> %s: dropped at %s (model, hop %d): %s" % (
            req["src"], req["dst"], res.path[-1], len(hops), res.drop_reason)
    return {"hops": hops, "outcome": outcome, "delivered_to": res.delivered_to, "drop_reason": res.drop_reason,
            "verdict": verdict}


def _said(host, path, reason):
    return "%s %s" % (host, "drop %s" % reason if path == "drop" else path)


def compare(live_hops, model, live_outcome):
    """Each hop of the live walk against the model's: {agree, hops: [{n,
    agree, live, model}], outcome: {live, model}}. A hop agrees when both
    name the same host and the same path (or drop reason). A drop by a stage
    function disagrees with the model, which runs none: that is said."""
    rows = []
    for i in range(max(len(live_hops), len(model["hops"]))):
        lh = live_hops[i] if i < len(live_hops) else None
        mh = model["hops"][i] if i < len(model["hops"]) else None
        live = model_side = "-"
        if lh is not None:
            dropped = lh["verdict"] in ("drop", "aborted")
            live = _said(lh["host"], "drop" if dropped else lh["path"], lh.get("drop_reason"))
        if mh is not None:
            model_side = _said(mh["host"], mh["path"], mh["drop_reason"])
        row = {"n": i + 1, "agree": live == model_side, "live": live, "model": model_side}
        if lh is not None and lh.get("dropped_by"):
            row["note"] = "a stage function decided; the model runs none"
        rows.append(row)
    agree = all(r["agree"] for r in rows) and live_outcome == model["outcome"]
    return {"agree": agree, "hops": rows, "outcome": {"live": live_outcome, "model": model["outcome"]}}
