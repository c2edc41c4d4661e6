"""The counters through the real ansible-playbook: transit_info on a host
(a namespace) after real frames sent to its NIC, and the transit role's
metrics tasks writing them for node_exporter, the file read back with
prometheus_client's parser. A re-run reports nothing changed; --check writes
nothing; a bad mizar_prometheus_textfile stops the site playbook's
validation naming the host and the setting.

Needs root, bpffs, libbpf, pyroute2, clang: fails (never skips) without
(the fixtures of test_modules)."""
import os
import socket
import subprocess
import time

from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, pinned, stages

from packets import geneve_bad_version, plain_udp

from .modules_helpers import BIN, ROOT, host_pins, task
from . import test_modules
from .test_modules import H0, STAGE, _stage, _transit

# the fixtures of test_modules: the ansible-playbook runner, a fresh host, the objects, the checks and cleanup
ansible, host, objs, ready = test_modules.ansible, test_modules.host, test_modules.objs, test_modules.ready

ROLE = {"name": "metrics", "ansible.builtin.include_role": {"name": "mizar.transit.transit", "tasks_from": "metrics"}}
HOST_IP = "192.168.77.1"  # H0's substrate address, in its if_cfg
READ, WRITE = "Read the datapath's counters", "Write the counters for node_exporter's textfile collector"


def _send(frames):
    """frames, each sent once from peer0 to eth0 of H0, where the transit program runs."""
    def send():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        try:
            s.bind(("peer0", 0))
            for f in frames:
                s.send(f)
        finally:
            s.close()
    nsenter.run_in_netns(H0, send)


def _wait_counted(total):
    """The counters once the transit program has seen `total` frames (XDP on a
    veth runs in the receiver's NAPI, after send() returned)."""
    layout = stages.Layout(host_pins(H0))
    deadline = time.monotonic() + 5
    while True:
        c = pinned.counters(layout)
        if sum(c[v] for v in abi.VERDICTS) >= total or time.monotonic() > deadline:
            return c
        time.sleep(0.05)


def _families(path):
    with open(path) as f:
        text = f.read()
    return dict((fam.name, fam) for fam in text_string_to_metric_families(text))


def _values(fam, *labels):
    return dict((tuple(s.labels[k] for k in labels), s.value) for s in fam.samples)


def test_counters_in_transit_info_and_the_textfile(ansible, host, objs, tmp_path):
    textfile = str(tmp_path / "mizar.prom")
    rendered = {"host": H0, "interface": {"name": "eth0", "ip": HOST_IP, "mac": "02:00:00:00:0a:01"}, "maps": {}}
    play = ansible.play([_transit(objs, name="load"), task("map_state", {"rendered": rendered}, name="maps"),
                         task("stage", _stage(objs), name="acl")], hosts=H0, inventory=host)
    assert play.rc == 0, play
    # the host's own traffic passes; Geneve from no transit host is dropped
    _send([plain_udp()] * 3 + [geneve_bad_version(HOST_IP)] * 2)
    counted = _wait_counted(5)
    assert (counted["pass"], counted["drop"]) == (3, 2), counted

    role_vars = {"transit_rendered": {"interface": {"pin_dir": "/sys/fs/bpf/mizar"}},
                 "mizar_prometheus_textfile": textfile}
    play = ansible.play([task("transit_info", {}, name="info"), dict(ROLE, vars=role_vars)], hosts=H0,
                        inventory=host)
    assert play.rc == 0 and play.changed_tasks() == [], play
    info = play["info"]
    assert info["verdicts"] == {"aborted": 0, "drop": 2, "pass": 3, "tx": 0, "redirect": 0}
    assert info["paths"]["transit"]["decap"] == 0 and set(info["paths"]["agent"].values()) == {0}
    assert info["drop_reasons"] == dict((r, 2 if r == "untrusted_src" else 0) for r in abi.DROP_REASONS)
    assert info["drops"] == {"untrusted_src": 2}
    # the action gave the module the shipped functions' declarations: the
    # ACL, installed, reports its own counters by name; ratelimit is not here
    assert info["functions"] == {"acl": {"counters": {"seen": 0, "dropped": 0}, "stages": [STAGE]}}
    assert play[READ]["status"] == "ok" and play[WRITE]["status"] == "ok", play

    fams = _families(textfile)
    assert oct(os.stat(textfile).st_mode & 0o777) == "0o644"
    assert fams["mizar_transit_up"].type == "gauge" and _values(fams["mizar_transit_up"], "host") == {(H0,): 1.0}
    verdicts = fams["mizar_transit_verdict_packets"]
    assert verdicts.type == "counter" and verdicts.documentation.startswith("Packets per XDP verdict")
    assert _values(verdicts, "host", "verdict") == dict(((H0, v), float(n)) for v, n in info["verdicts"].items())
    drops = _values(fams["mizar_transit_drop_packets"], "reason")
    assert drops == dict(((r,), 2.0 if r == "untrusted_src" else 0.0) for r in abi.DROP_REASONS)
    assert _values(fams["mizar_transit_function_packets"], "function", "counter") == {
        ("acl", "seen"): 0.0, ("acl", "dropped"): 0.0}
    assert _values(fams["mizar_transit_function_stage_info"], "function", "stage") == {("acl", STAGE): 1.0}
    assert _values(fams["mizar_transit_path_packets"], "program", "path")[("transit", "decap")] == 0.0

    # more packets: the next run writes the new snapshot, and still reports no change
    _send([plain_udp()])
    _wait_counted(6)
    play = ansible.play([dict(ROLE, vars=role_vars)], hosts=H0, inventory=host)
    assert play.rc == 0 and play.changed_tasks() == [], play
    assert _values(_families(textfile)["mizar_transit_verdict_packets"], "verdict")[("pass",)] == 4.0

    # --check reads, and writes nothing
    os.unlink(textfile)
    play = ansible.play([dict(ROLE, vars=role_vars)], hosts=H0, inventory=host, extra=["--check"])
    assert play.rc == 0 and play.changed_tasks() == [] and not os.path.exists(textfile), play
    assert play[READ]["verdicts"]["pass"] == 4

    # without the setting, nothing is read or written
    play = ansible.play([dict(ROLE, vars={"transit_rendered": role_vars["transit_rendered"]})], hosts=H0,
                        inventory=host)
    assert play.rc == 0 and play[READ]["status"] == "skipped" and play[WRITE]["status"] == "skipped", play


def test_a_bad_textfile_stops_the_site_playbook_before_any_host(ansible, host):
    inventory = ansible.netns_inventory("badtext", {H0: {"mizar_interface": "eth0",
                                                         "mizar_prometheus_textfile": "metrics.txt"}})
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", inventory,
                           os.path.join(ROOT, "playbooks", "site.yml")], cwd=ansible.workdir, env=ansible.env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0
    assert "hostvars[%s].mizar_prometheus_textfile: the file for node_exporter's textfile collector must be an " \
        "absolute path of a file named *.prom" % H0 in proc.stdout, proc.stdout[-3000:]
    assert not os.path.exists(os.path.join(host_pins(H0), "maps")), "no host was touched"
