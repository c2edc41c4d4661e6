"""The Python codecs mirror the C map ABI: sizes and field offsets equal the
BTF of every compiled object, map definitions equal the capacities the
validator enforces, and enum values equal the header's."""
import ctypes
import os
import re

import pytest

from ansible_collections.mizar.transit.plugins.module_utils import abi, capacity, libbpf
from harness import BPF_OUT, require_bpf

HEADER = os.path.join(os.path.dirname(os.path.dirname(BPF_OUT)), "bpf", "include", "mzr_abi.h")
OBJS = ["transit.bpf.o", "agent.bpf.o"]


def _ctypes_layout(ct):
    out = []
    for name, ftype in ct._fields_:
        out.append((name, getattr(ct, name).offset, ctypes.sizeof(ftype)))
    return ctypes.sizeof(ct), out


def _btf_layout(desc):
    kind, _, size, members = desc
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


def test_map_definitions_match_specs():
    require_bpf()
    with libbpf.BpfObject(os.path.join(BPF_OUT, "transit.bpf.o")) as obj:
        for name, spec in abi.SPECS.items():
            d = obj.map_def(spec.pin_name)
            assert d["key_size"] == ctypes.sizeof(spec.key_type), name
            assert d["value_size"] == ctypes.sizeof(spec.value_type), name
            if name in capacity.MAP_CAPACITY:
                assert d["max_entries"] == capacity.MAP_CAPACITY[name], name
        assert obj.map_def(abi.STAGES_MAP)["max_entries"] == len(abi.STAGES)
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
    for const in ("MAX_ENDPOINTS", "MAX_NETWORKS", "MAX_VPCS", "MAX_SUBSTRATE", "MAX_AGENTS", "MAX_HOPS",
                  "MAX_BACKENDS"):
        assert int(re.search(r"#define MZR_%s (\d+)" % const, text).group(1)) == getattr(capacity, const)


@pytest.mark.parametrize("name", sorted(abi.SPECS))
def test_codec_roundtrip(name):
    samples = {
        "if_cfg": {"ip": "192.168.0.3", "mac": "02:00:00:00:00:03", "ifindex": 2, "flags": 0},
        "endpoints": {"vni": 7, "ip": "10.0.0.9", "type": "scaled", "host_ip": None, "ifindex": 0,
                      "mac": "02:aa:bb:cc:dd:ee", "bypass_decap": True, "backends": ["10.0.0.1", "10.0.0.2"]},
        "networks": {"vni": 16777215, "cidr": "10.1.2.0/23", "bouncers": ["192.168.0.1", "192.168.0.2"]},
        "vpcs": {"vni": 1, "dividers": ["192.168.0.9"], "local_divider": True},
        "substrate": {"ip": "192.168.0.1", "mac": "02:00:00:00:00:01"},
        "agents": {"ifindex": 12, "vni": 5, "ip": "10.0.0.4", "mac": "02:00:00:00:00:44",
                   "bouncers": ["192.168.0.%d" % i for i in range(1, 129)]},
    }
    spec = abi.SPECS[name]
    assert spec.decode(*spec.encode(samples[name])) == samples[name]
