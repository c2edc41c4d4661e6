"""The double-buffered configurations of the shipped functions (bpf/fnconfig.py)
on real maps: a change waits for the programs running (an RCU grace period)
before it writes the set the previous flip retired, since a packet that read
the active index before that flip may still be reading that set. At the
moment of the wait nothing is written yet; a configuration that does not
change, and check mode, do not wait."""
import os

import pytest

from harness import BPF_OUT
from ansible_collections.mizar.transit.plugins.module_utils.bpf import fnconfig, libbpf

VNIS = {"blue": 100, "red": 200}
# function: (its object, the maps a change writes, the empty configuration, one, another one)
CONFIGS = {
    "acl": ("acl.bpf.o", ("mzr_acl_sets", "mzr_acl_active"), {"rules": []},
            {"rules": [{"vpc": "blue", "dst": "10.0.0.7/32", "protocol": "tcp", "port": 22, "action": "drop"}]},
            {"rules": [{"vpc": "red", "dst": "10.0.0.0/24", "protocol": "any", "action": "drop"}]}),
    "ratelimit": ("ratelimit.bpf.o", ("mzr_rl_sets", "mzr_rl_active", "mzr_rl_shared"), {"limits": []},
                  {"limits": [{"vpc": "red", "pps": 10, "burst": "1ms"}]},
                  {"limits": [{"vpc": "blue", "ip": "10.0.0.7", "pps": 100, "burst": "1ms"},
                              {"vpc": "red", "bps": 8000, "burst": "1ms"}]}),
}


def snapshot(pin_dir, names):
    """Every entry of the maps names, as bytes."""
    out = {}
    for name in names:
        with libbpf.Map.from_pin(os.path.join(pin_dir, name)) as m:
            out[name] = sorted(m.items())
    return out


@pytest.mark.parametrize("function", sorted(CONFIGS))
def test_a_change_waits_for_the_running_programs_before_it_writes(dp, monkeypatch, function):
    obj_name, maps, empty, one, other = CONFIGS[function]
    obj = libbpf.BpfObject(os.path.join(BPF_OUT, "functions", obj_name), pin_root=dp.pin_dir).load()
    c = fnconfig.configurator(function)
    try:
        c.converge(dp.pin_dir, one, VNIS)
        c.converge(dp.pin_dir, other, VNIS)  # the set of `one` is the retired one now
        waits = []
        real = libbpf.wait_for_programs

        def recording():
            waits.append(snapshot(dp.pin_dir, maps))
            real()

        monkeypatch.setattr(libbpf, "wait_for_programs", recording)
        assert c.converge(dp.pin_dir, other, VNIS)[0] is False and waits == [], "no change: no wait"
        assert c.converge(dp.pin_dir, one, VNIS, check_mode=True)[0] is True and waits == [], "check mode: no wait"
        before = snapshot(dp.pin_dir, maps)
        assert c.converge(dp.pin_dir, one, VNIS)[0] is True
        assert waits == [before], "one wait, before anything was written"
        assert snapshot(dp.pin_dir, maps) != before and c.current(dp.pin_dir) == c.encode(one, VNIS)
        assert c.converge(dp.pin_dir, other, VNIS)[0] is True and len(waits) == 2, "each change waits"
    finally:
        c.converge(dp.pin_dir, empty, VNIS)
        obj.close()
