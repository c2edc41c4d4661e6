"""Load the datapath objects into a private pin directory, program a world's
map state, and run packets through a program with BPF_PROG_TEST_RUN."""
import os
import shutil
import uuid

import machine

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf, tables

BPF_OUT = machine.BPF_OUT
OBJECTS = {"transit": "transit.bpf.o", "agent": "agent.bpf.o", "pass": "pass.bpf.o"}


def require_bpf():
    """Fail loudly (never skip) when the machine cannot run these tests."""
    machine.require("datapath tests")


class Harness:
    """All datapath programs of one simulated host, sharing its pinned maps
    (the objects of obj_dir, by default the build's)."""

    def __init__(self, obj_dir=BPF_OUT):
        require_bpf()
        self.obj_dir = obj_dir
        self.pin_dir = "/sys/fs/bpf/mzr-test-%s" % uuid.uuid4().hex[:12]
        os.makedirs(self.pin_dir)
        self.objects = {}
        self.programs = {}
        try:
            self._load()
        except Exception:
            for o in self.objects.values():
                o.close()
            shutil.rmtree(self.pin_dir, ignore_errors=True)
            raise

    def _load(self):
        for name, obj in OBJECTS.items():
            o = libbpf.BpfObject(os.path.join(self.obj_dir, obj), pin_root=self.pin_dir).load()
            self.objects[name] = o
            self.programs[name] = o.program(o.program_names()[0])
        self.maps = tables.Maps(self.pin_dir)
        self.counters_map = self.maps[abi.COUNTERS_MAP]
        self.stages = libbpf.Map.from_pin(os.path.join(self.pin_dir, abi.STAGES_MAP))
        self.world = None

    def close(self):
        self.maps.close()
        self.stages.close()
        for o in self.objects.values():
            o.close()
        shutil.rmtree(self.pin_dir, ignore_errors=True)

    def load_world(self, world):
        """Converge the maps to a world's entries."""
        if self.world is world:
            return
        tables.converge(self.pin_dir, world)
        self.world = world

    def counters(self):
        per_slot = dict((int.from_bytes(k, "little"), v) for k, v in self.counters_map.items())
        return abi.sum_counters(per_slot)

    def set_stage(self, stage, program):
        slot = abi.STAGES[stage].to_bytes(4, "little")
        if program is None:
            self.stages.delete(slot)
        else:
            self.stages.update(slot, program.fd.to_bytes(4, "little"))

    def run(self, program, packet, ingress=0):
        return self.programs[program].test_run(packet, ingress_ifindex=ingress)

    def run_fixture(self, f):
        """Run one fixture; returns (verdict, output bytes, counter deltas)."""
        from fixtures import WORLDS  # the table lives beside the tests
        self.load_world(WORLDS[f.world])
        before = self.counters()
        r = self.run(f.program, f.packet, f.ingress)
        after = self.counters()
        deltas = dict((k, after[k] - before[k]) for k in after if after[k] != before[k])
        return r.retval, r.data, deltas


def assert_codec_matches_btf(obj_path, c_name, codec):
    """A function's ctypes codec has the size and field offsets of its C struct
    c_name in the BTF of the object obj_path."""
    import ctypes
    with libbpf.Btf.from_elf(obj_path) as btf:
        desc = btf.describe(btf.find_struct(c_name))
    assert desc[2] == ctypes.sizeof(codec)
    assert [(m, off) for m, off, dummy in desc[3]] == [(n, getattr(codec, n).offset) for n, dummy in codec._fields_]
