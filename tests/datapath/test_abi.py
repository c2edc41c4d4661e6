"""The Python codecs mirror the C map ABI: sizes and field offsets equal the
BTF of every compiled object, map definitions equal the capacities the
validator enforces, and enum values equal the header's."""
import ctypes
import os
import re

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf

from ansible_collections.mizar.transit.plugins.module_utils.model import capacity
from harness import BPF_OUT, require_bpf

HEADER = os.path.join(os.path.dirname(os.path.dirname(BPF_OUT)), "bpf", "include", "mzr_abi.h")
OBJS = ["transit.bpf.o", "agent.bpf.o"]


def _ctypes_layout(ct):
    out = []
    for name, ftype in ct._fields_:
        out.append((name, getattr(ct, name).offset, ctypes.sizeof(ftype)))
    return ctypes.sizeof(ct), out


def _btf_layout(desc):
    kind, dummy, size, members = desc
    assert kind == "struct"

    def width(d):
        return d[1] if d[0] == "int" else width(d[1]) * d[2] if d[0] == "array" else d[2]
    return size, [(m, off, width(d)) for m, off, d in members]


@pytest.mark.parametrize("obj", OBJS)
@pytest.mark.parametrize("codec", sorted(abi.C_NAMES, key=lambda c: abi.C_NAMES[c]),
                         ids=lambda c: abi.C_NAMES[c])
def test_codec_matches_btf(obj, codec):
    require_bpf()
    with libbpf.Btf.from_elf(os.path.join(BPF_OUT, obj)) as btf:
        desc = btf.describe(btf.find_struct(abi.C_NAMES[codec]))
    assert _ctypes_layout(codec) == _btf_layout(desc)


def test_map_definitions_match_codecs():
    require_bpf()
    with libbpf.BpfObject(os.path.join(BPF_OUT, "transit.bpf.o")) as obj:
        for name, codec in abi.TABLES.items():
            d = obj.map_def(codec.pin_name)
            assert d["type"] == libbpf.BPF_MAP_TYPE_ARRAY, name
            assert d["value_size"] == ctypes.sizeof(codec.ctype), name
            assert d["max_entries"] == codec.slots, name
        for pin, ctype, slots in ((abi.SUBSTRATE_MAP, abi.Host, capacity.HOST_SLOTS),
                                  (abi.IF_CFG_MAP, abi.IfCfg, 1)):
            d = obj.map_def(pin)
            assert (d["value_size"], d["max_entries"]) == (ctypes.sizeof(ctype), slots), pin
        assert obj.map_def(abi.STAGES_MAP)["max_entries"] == abi.STAGE_SLOTS == 2 * abi.CHAIN_MAX * len(abi.STAGES)
        assert obj.map_def(abi.STAGE_BANK_MAP)["max_entries"] == len(abi.STAGES)
        assert obj.map_def(abi.COUNTERS_MAP)["max_entries"] == abi.COUNTER_SLOTS


def _enum(name):
    text = open(HEADER).read()
    body = re.search(r"enum %s \{(.*?)\};" % name, text, re.S).group(1)
    return dict((k, int(v)) for k, v in re.findall(r"(MZR_\w+)\s*=\s*(\d+)", body))


def test_enums_match_header():
    counters = _enum("mzr_counter")
    names = dict(("MZR_C_" + k.upper(), v) for k, v in abi.COUNTERS.items())
    names.update(("MZR_D_" + k.upper(), v) for k, v in abi.DROP_REASONS.items())
    names["MZR_C_MAX"] = abi.COUNTER_SLOTS
    assert names == counters
    stages = _enum("mzr_stage")
    assert dict(("MZR_STAGE_" + k.upper(), v) for k, v in abi.STAGES.items()) == \
        dict((k, v) for k, v in stages.items() if k != "MZR_STAGE_MAX")
    assert dict(("MZR_EP_" + k.upper(), v) for k, v in abi.EP_TYPES.items()) == _enum("mzr_ep_type")
    text = open(HEADER).read()
    assert int(re.search(r"#define MZR_ABI_VERSION (\d+)", text).group(1)) == abi.ABI_VERSION
    for const in ("MAX_ENDPOINTS", "MAX_NETWORKS", "MAX_VPCS", "MAX_AGENTS", "MAX_HOPS", "MAX_BACKENDS",
                  "MAX_PLENS", "MAX_PEERS", "MAX_MEMBERS"):
        assert int(re.search(r"#define MZR_%s (\d+)" % const, text).group(1)) == getattr(capacity, const)


def test_constants_match_header():
    text = open(HEADER).read()

    def define(name):
        m = re.search(r"#define MZR_%s \(?(\d+)(?: << (\d+))?" % name, text)
        return int(m.group(1)) << int(m.group(2) or 0)
    for name in ("EP_SLOTS", "NET_SLOTS", "VPC_SLOTS", "AGENT_SLOTS", "HOST_SLOTS", "PROBES",
                 "PEER_SLOTS", "MEMBER_SLOTS"):
        assert define(name) == getattr(capacity, name), name
    assert int(re.search(r"#define MZR_TAG_DEAD (0x[0-9a-fA-F]+)U", text).group(1), 16) == abi.TAG_DEAD
    assert capacity.MAX_SUBSTRATE == capacity.HOST_SLOTS - 1
    for slots, limit in ((capacity.EP_SLOTS, capacity.MAX_ENDPOINTS), (capacity.NET_SLOTS, capacity.MAX_NETWORKS),
                         (capacity.VPC_SLOTS, capacity.MAX_VPCS), (capacity.AGENT_SLOTS, capacity.MAX_AGENTS),
                         (capacity.PEER_SLOTS, capacity.MAX_PEERS), (capacity.MEMBER_SLOTS, capacity.MAX_MEMBERS)):
        assert slots >= 4 * limit  # load factor at most 1/4 keeps probe runs short


SAMPLES = {
    "endpoints": {"vni": 7, "ip": "10.0.0.9", "type": "simple", "host_ip": "192.168.0.1", "ifindex": 0,
                  "mac": "02:aa:bb:cc:dd:ee", "bypass_decap": True, "backends": []},
    "networks": {"vni": 16777215, "cidr": "10.1.2.0/23", "bouncers": ["192.168.0.1", "192.168.0.2"],
                 "local_bouncer": False},
    "vpcs": {"vni": 1, "dividers": ["192.168.0.1"], "local_divider": True, "plens": [24, 16],
             "peer_plens": [16, 12]},
    "peers": {"vni": 100, "cidr": "10.2.0.0/16", "peer_vni": 200, "dividers": ["192.168.0.2", "192.168.0.1"],
              "src_cidr": "10.1.0.0/16"},
    "agents": {"ifindex": 12, "vni": 5, "ip": "10.0.0.4", "mac": "02:00:00:00:00:44",
               "bouncers": ["192.168.0.%d" % (i % 2 + 1) for i in range(128)]},
    "members": {"vni": 100, "vip": "10.0.0.9", "ip": "10.0.0.250"},
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_codec_roundtrip(name):
    slots = {"192.168.0.1": 1, "192.168.0.2": 2}
    ips = dict((v, k) for k, v in slots.items())
    codec = abi.TABLES[name]
    raw = codec.encode(SAMPLES[name], slots.__getitem__)
    assert len(raw) == ctypes.sizeof(codec.ctype)
    assert codec.decode(raw, ips.get) == SAMPLES[name]
    assert codec.key(codec.decode(raw, ips.get)) == codec.key(SAMPLES[name])


def test_hashes_match_datapath_examples():
    # the bouncer a divider picks in the fixture table is computed with these
    assert abi.pick(["a", "b"], "10.3.1.9", "10.3.0.77") in ("a", "b")
    assert abi.flow_hash("10.0.0.1", "10.0.0.2") == abi.flow_hash("10.0.0.2", "10.0.0.1")
