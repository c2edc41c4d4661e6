# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One hop of a trace (playbooks/trace.yml, docs/trace.md): a frame run
through the program a host has attached, live, with BPF_PROG_TEST_RUN.

    res = ensure(Spec.from_params(dict(frame="02a1...", program="agent", iface="mza1614fd936",
                                       pin_dir="/sys/fs/bpf/mizar")))
    res["verdict"], res["frame_out"], res["counted"], res["stage"], res["functions"], res["target"]

The program is the one the interface's XDP link runs (the agent of an
endpoint's host-side veth, or the transit program of the substrate NIC),
by id: it runs with its real maps and its stage table, so the stage
functions run too. It runs with the interface as its ingress (the agent
finds its endpoint by it).

What it did is read from the datapath's own counters: the run happens on
one CPU (the thread is pinned to it), and that CPU's slots of mzr_counters
before and after give the verdict the pipeline counted, its path and its
drop reason by name (`counted`). The per-CPU mzr_stage_ctx of that CPU then
says how far the stage's chain went: which function let the packet go on,
which returned a verdict of its own. A trace therefore adds, per hop, what
that packet adds: one verdict, one path or drop reason, and what the stage
functions count (acl: seen, dropped). A run that finds more than one
verdict counted (real traffic on the same CPU meanwhile) is run again, up
to RUNS times; `runs` says how many it took.

An XDP_REDIRECT under BPF_PROG_TEST_RUN is only a verdict: `target` is the
interface the pipeline redirected to (the stage context's, or the
substrate NIC for a plain encapsulation, which enters no stage).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf, pinned, stages
from ansible_collections.mizar.transit.plugins.module_utils.host import netlink
from ansible_collections.mizar.transit.plugins.module_utils.model import trace
from ansible_collections.mizar.transit.plugins.module_utils.ops import args, outcome
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError
from ansible_collections.mizar.transit.plugins.module_utils.ops.runner import LIBBPF, PYROUTE2

NEEDS = (PYROUTE2, LIBBPF)
PROGRAMS = ("agent", "transit")
MODULE = args.module_args(dict(
    pin_dir=args.pin_dir(),
    frame=dict(type="str", required=True),
    program=dict(type="str", required=True, choices=list(PROGRAMS)),
    iface=dict(type="str"),
))
RUNS = 5
VERDICTS = ("aborted", "drop", "pass", "tx", "redirect")
FORWARDING = ("bounce", "divide", "to_divider", "to_peer")
MIN_FRAME, MAX_FRAME = 14, 9216


class TraceHopError(BackendError):
    """The hop cannot run; says which host part and field."""


ERRORS = (TraceHopError,)


class Spec:
    """The frame (bytes) and the program to run it through."""

    headers = None

    def __init__(self, pin_dir, frame, program, iface=None):
        self.pin_dir = pin_dir
        self.layout = stages.Layout(pin_dir)
        self.frame = frame
        self.program = program
        self.iface = iface

    @classmethod
    def from_params(cls, params):
        text = "".join((params["frame"] or "").split()).replace(":", "")
        try:
            frame = bytes.fromhex(text)
        except ValueError:
            raise TraceHopError("frame: not hexadecimal bytes (%s...)" % text[:32])
        if not MIN_FRAME <= len(frame) <= MAX_FRAME:
            raise TraceHopError("frame: %d bytes; a frame has %d to %d" % (len(frame), MIN_FRAME, MAX_FRAME))
        if params["program"] == "agent" and not params.get("iface"):
            raise TraceHopError("iface: the agent runs on an endpoint's interface: name it")
        return cls(params["pin_dir"], frame, params["program"], params.get("iface"))


def context(params):
    return "tracing a frame through the %s program of %s" % (params.get("program"), params.get("pin_dir"))


def _attachment(spec):
    """The XDP link of spec's program and interface. The agent and transit
    programs are attached in the host's own namespace (only pass programs
    go into endpoint namespaces), which is where this runs."""
    if not os.path.isdir(spec.layout.maps):
        raise TraceHopError("no datapath loaded at %s: no %s program runs here" % (spec.pin_dir, spec.program))
    found = [a for a in pinned.attachments(spec.layout) if a["role"] == spec.program and a["ifindex"]
             and (spec.iface is None or a["iface"] == spec.iface)]
    if not found:
        raise TraceHopError("no %s program attached%s (datapath at %s)" % (
            spec.program, " to %s" % spec.iface if spec.iface else "", spec.pin_dir))
    return found[0]


def _cpu_counters(counters, cpu):
    """{slot: count} of one CPU's slots of mzr_counters."""
    return dict((struct.unpack("<I", k)[0], int.from_bytes(v[cpu], "little")) for k, v in counters.items())


def _added(before, after):
    """{counter or drop reason: how much it grew} between two snapshots."""
    out = {}
    for names in (abi.COUNTERS, abi.DROP_REASONS):
        for name, slot in names.items():
            grew = after.get(slot, 0) - before.get(slot, 0)
            if grew:
                out[name] = grew
    return out


def _stage_of(program, counted, out_ip, own_ip):
    """The stage the pipeline entered last, by what it counted (the table
    in docs/architecture.md, "Stages"), or None: an agent's plain
    encapsulation to a remote bouncer enters none."""
    if counted.get("drop"):
        return "on_xdp_drop"
    if counted.get("scaled"):  # a scaled endpoint's stage: its function sent the packet on itself
        return "on_xdp_scaled_ep"
    if counted.get("pass"):
        return "on_xdp_pass"
    if counted.get("tx"):
        return "on_xdp_tx"
    if not counted.get("redirect"):
        return None
    if program == "agent" and counted.get("agent_encap"):
        if any(counted.get(p) for p in FORWARDING):
            return "on_xdp_tx"
        return "on_xdp_redirect" if out_ip == own_ip else None
    return "on_xdp_redirect"


def _functions(chain, reached, verdict, sc_verdict):
    """What each function of a chain did, from the chain position the stage
    context reached (the next slot mzr_stage_next() would have taken)."""
    out = []
    n = len(chain)
    all_passed = reached > n or (n == abi.CHAIN_MAX and reached == n and verdict == sc_verdict)
    for pos, fn in enumerate(chain):
        if all_passed or pos < reached - 1:
            decision = "passed"
        elif pos == reached - 1:
            decision = "returned %s" % (VERDICTS[verdict] if verdict < len(VERDICTS) else verdict)
        else:
            decision = "not run"
        out.append({"pos": pos, "program": fn["name"], "prog_id": fn["prog_id"], "decision": decision})
    return out


def _run_once(prog, spec, ifindex, cpu):
    with libbpf.Map.from_pin(spec.layout.map(abi.COUNTERS_MAP)) as m:
        before = _cpu_counters(dict(m.items()), cpu)
        res = prog.test_run(spec.frame, ingress_ifindex=ifindex)
        after = _cpu_counters(dict(m.items()), cpu)
    with libbpf.Map.from_pin(spec.layout.map(abi.STAGE_CTX_MAP)) as m:
        sc = abi.StageCtx.from_buffer_copy(m.lookup(struct.pack("<I", 0))[cpu])
    return res, _added(before, after), sc


def read(spec):
    """Run the frame once through the live program and say what it did."""
    att = _attachment(spec)
    with libbpf.Map.from_pin(spec.layout.map(abi.IF_CFG_MAP)) as m:
        cfg = abi.decode_if_cfg(m.lookup(struct.pack("<I", 0)))
    prog = libbpf.Program(libbpf.prog_fd_by_id(att["prog_id"]), name=spec.program, owned=True)
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        for runs in range(1, RUNS + 1):
            res, counted, sc = _run_once(prog, spec, att["ifindex"], cpu)
            if sum(counted.get(v, 0) for v in VERDICTS) == 1:
                break
    finally:
        os.sched_setaffinity(0, allowed)
        prog.close()
    out = trace.decode(res.data)
    stage = _stage_of(spec.program, counted, out.get("ip", {}).get("dst"), cfg["ip"])
    functions, target = [], None
    if stage is not None and sc.next % len(abi.STAGES) == abi.STAGES[stage]:
        chain = (stages.Stages(spec.pin_dir).list().get(stage) or {}).get("chain") or []
        reached = sc.next % abi.STAGE_BANK_SLOTS // len(abi.STAGES)
        functions = _functions(chain, reached, res.retval, sc.verdict)
        if res.retval == abi.COUNTERS["redirect"]:
            target = sc.ifindex
    if res.retval == abi.COUNTERS["redirect"] and target is None and stage is None:
        target = cfg["ifindex"]  # a plain encapsulation, out of the NIC
    link = netlink.link(target) if target else None
    reasons = [k for k in counted if k in abi.DROP_REASONS]
    noisy = sum(counted.get(v, 0) for v in VERDICTS) != 1
    return {
        "warnings": ["other packets were counted on CPU %d during each of %d runs: counted, the path and the drop "
                     "reason may include theirs" % (cpu, runs)] if noisy else [],
        "program": spec.program, "iface": att["iface"], "ifindex": att["ifindex"], "prog_id": att["prog_id"],
        "retval": res.retval,
        "verdict": VERDICTS[res.retval] if res.retval < len(VERDICTS) else str(res.retval),
        "frame_out": res.data.hex(), "counted": counted, "drop_reason": reasons[0] if reasons else None,
        "stage": stage, "functions": functions,
        "target": {"ifindex": target, "iface": link["ifname"] if link else None} if target else None,
        "headers_in": trace.decode(spec.frame), "headers_out": out, "leaves": trace.summary(out),
        "cpu": cpu, "runs": runs,
    }


def plan(spec, state):
    """A trace changes no state (beyond the counters it adds, said above)."""
    return []


def ensure(spec, check_mode=False):
    """The module's result: read(), unchanged; the same in check mode."""
    try:
        hop = read(spec)
    except (libbpf.BpfError, netlink.NetlinkError, stages.StageError, OSError) as e:
        raise TraceHopError("running the %s program at %s: %s" % (spec.program, spec.pin_dir, e))
    return outcome.unchanged(hop, "%s on %s: %s\n" % (spec.program, hop["iface"], hop["verdict"]))
