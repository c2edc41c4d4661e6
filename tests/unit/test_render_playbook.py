"""playbooks/render.yml, run for real with ansible-playbook on the example
inventory, and compared with what playbooks/site.yml renders."""
import json
import os
import subprocess
import sys

import yaml

from ansible_collections.mizar.transit.plugins.filter.mizar import inventory_from_hostvars
from ansible_collections.mizar.transit.plugins.module_utils.model.render import render_inventory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
EXAMPLE = os.path.join(ROOT, "inventories", "example")
LAB = os.path.join(ROOT, "inventories", "lab")
PLAYBOOK = os.path.join(ROOT, "playbooks", "render.yml")
SITE = os.path.join(ROOT, "playbooks", "site.yml")


def _env(tmp_path):
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("ANSIBLE_"):
            del env[key]
    env.update(ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    return env


def _run(tmp_path, inventory, *extra, cwd=None, playbook=PLAYBOOK):
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", inventory, playbook] + list(extra),
                          cwd=str(cwd or tmp_path), env=_env(tmp_path), capture_output=True, text=True, timeout=300, check=False)


def _site_rendering(tmp_path, inventory):
    """What site.yml renders for every host: its render step alone (--tags
    render reaches no host when the inventory gives every underlay address),
    then a play that writes the rendering out."""
    out = tmp_path / "site-rendered.json"
    book = tmp_path / "site-render.yml"
    book.write_text(yaml.safe_dump([
        {"name": "The site playbook", "ansible.builtin.import_playbook": SITE},
        {"name": "Keep what it rendered", "hosts": "localhost", "gather_facts": False, "connection": "local",
         "tasks": [{"name": "Write the rendering", "tags": ["render"], "ansible.builtin.copy": {
             "content": "{{ hostvars[groups['mizar_hosts'][0]]['mizar_rendered'] | to_json }}",
             "dest": str(out), "mode": "0644"}}]},
    ], sort_keys=False))
    proc = _run(tmp_path, inventory, "--tags", "render", playbook=str(book))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(str(out)) as f:
        return json.load(f)


def _expected(tmp_path, inventory):
    out = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", inventory, "--list"], cwd=str(tmp_path),
                         env=_env(tmp_path), capture_output=True, text=True, timeout=300, check=True)
    data = json.loads(out.stdout)
    hosts = data["mizar_hosts"]["hosts"]
    return render_inventory(inventory_from_hostvars(data["_meta"]["hostvars"], hosts), offline=True)


def _read(directory):
    out = {}
    for fname in sorted(os.listdir(directory)):
        with open(os.path.join(directory, fname)) as f:
            text = f.read()
        assert text.startswith("# Rendered by mizar.transit (playbooks/render.yml) for %s;" % fname[:-4])
        out[fname[:-4]] = yaml.safe_load(text)
    return out


def test_renders_the_example_inventory(tmp_path):
    proc = _run(tmp_path, EXAMPLE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = _read(tmp_path / "rendered")  # the default: ./rendered
    assert sorted(files) == ["node1", "node2", "node3", "node4"]
    assert files == _expected(tmp_path, EXAMPLE)
    node4 = files["node4"]
    assert node4["interface"] == {"name": "ens4", "ip": "192.168.50.14", "mac": "02:00:c0:a8:32:0e",
                                  "xdp_mode": "generic", "pin_dir": "/sys/fs/bpf/mizar"}
    assert [f["name"] for f in node4["functions"]] == ["db-no-ssh", "web-lb"]
    assert node4["local_endpoints"][0]["iface"] == "tap-db1"
    node3 = files["node3"]
    assert node3["maps"]["vpcs"] == [{"vni": 100, "name": "blue", "dividers": ["192.168.50.13", "192.168.50.14"],
                                      "local_divider": True}]
    assert [n["name"] for n in node3["maps"]["networks"]] == ["blue/web", "blue/db"]
    node1 = files["node1"]
    assert sorted(e["name"] for e in node1["local_endpoints"]) == ["blue/web/web1", "green/apps/app1"]
    assert [a["vni"] for a in node1["maps"]["agents"] if a["ip"] == "10.1.1.10"] in ([100, 200], [200, 100])
    assert "changed=0" not in proc.stdout  # files were written

    # a second run changes nothing, and a stale rendering of a removed host goes away
    (tmp_path / "rendered" / "node9.yml").write_text("# Rendered by mizar.transit (playbooks/render.yml) for node9;\n")
    (tmp_path / "rendered" / "notes.yml").write_text("mine: true\n")
    proc = _run(tmp_path, EXAMPLE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "changed=1 " in proc.stdout
    assert sorted(os.listdir(tmp_path / "rendered")) == ["node1.yml", "node2.yml", "node3.yml", "node4.yml",
                                                         "notes.yml"]


def test_offline_null_and_output_dir(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {
        "children": {"mizar_hosts": {"hosts": {
            "a": {"mizar_interface": "eth0", "mizar_underlay_ip": "192.168.9.1"},
            "b": {"mizar_interface": "eth0", "mizar_underlay_ip": "192.168.9.2", "mizar_underlay_mac": "02:00:00:00:09:02"},
        }}},
        "vars": {"mizar_vpcs": [{"name": "v", "vni": 7, "cidr": "10.7.0.0/24", "networks": [
            {"name": "n", "cidr": "10.7.0.0/24", "bouncers": ["b"], "endpoints": [
                {"name": "e", "ip": "10.7.0.9", "host": "a", "netns": "e"}]}]}]},
    }}))
    out = tmp_path / "out"
    proc = _run(tmp_path, str(inv), "-e", "mizar_render_dir=%s" % out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = _read(out)
    assert files == _expected(tmp_path, str(inv))
    assert files["a"]["interface"]["mac"] is None
    assert files["b"]["maps"]["substrate"] == [{"ip": "192.168.9.1", "mac": None, "name": "a"}]


def test_invalid_inventory_fails_with_all_messages(tmp_path):
    inv = tmp_path / "bad.yml"
    inv.write_text(yaml.safe_dump({"all": {
        "children": {"mizar_hosts": {"hosts": {"a": {"mizar_interface": "eth0", "mizar_xdp_mode": "turbo"}}}},
        "vars": {"mizar_vpcs": [{"name": "v", "vni": 0, "cidr": "10.7.0.0/24", "networks": [
            {"name": "n", "cidr": "10.7.0.0/24", "bouncers": ["z"]}]}]},
    }}))
    proc = _run(tmp_path, str(inv), "-e", "mizar_render_dir=%s" % (tmp_path / "out"))
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "3 error(s) in the mizar inventory; nothing was rendered" in text
    assert "hostvars[a].mizar_xdp_mode: XDP mode 'turbo' is not one of native, generic" in text
    assert "mizar_vpcs[0].networks[0].bouncers[0]: bouncer 'z' is not a host of group mizar_hosts" in text
    assert "mizar_vpcs[0].vni: vni 0 is out of range" in text
    assert not (tmp_path / "out").exists()


def _render_both_ways(tmp_path, inventory):
    """(render.yml's files, site.yml's rendering), from another directory than the inventory's."""
    proc = _run(tmp_path, inventory, "-e", "mizar_render_dir=%s" % (tmp_path / "out"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return _read(tmp_path / "out"), _site_rendering(tmp_path, inventory)


def test_site_and_render_playbooks_render_the_example_and_the_lab_alike(tmp_path):
    # both inventories give every underlay address, so offline (render.yml) changes nothing
    for inventory in (EXAMPLE, LAB):
        here = tmp_path / os.path.basename(inventory)
        here.mkdir()
        files, site = _render_both_ways(here, inventory)
        assert files == site, inventory
    lab = site
    assert sorted(lab) == ["mzh1", "mzh2", "mzh3"]
    assert lab["mzh3"]["transit"]["obj_dir"] == "/var/lib/mizar-mzh3"  # templated per host
    assert lab["mzh3"]["transit"]["stages"] == [  # acl-blue, then ratelimit-red: one chain; web-lb on every host
        {"stage": "on_xdp_redirect", "object": "/var/lib/mizar-mzh3/functions/acl.bpf.o"},
        {"stage": "on_xdp_redirect", "object": "/var/lib/mizar-mzh3/functions/ratelimit.bpf.o"},
        {"stage": "on_xdp_scaled_ep", "object": "/var/lib/mizar-mzh3/functions/scaled.bpf.o"}]
    # mzh1 runs only web-lb, which the rendering configures from the VIPs it holds
    assert lab["mzh1"]["transit"]["stages"] == [
        {"stage": "on_xdp_scaled_ep", "object": "/var/lib/mizar-mzh1/functions/scaled.bpf.o"}]
    assert [f["name"] for f in lab["mzh1"]["functions"]] == ["web-lb"]


def test_site_and_render_playbooks_root_relative_sources_alike(tmp_path):
    """A relative function source is rooted in the inventory directory (of
    the first transit host), not where ansible-playbook runs; hosts: null
    runs a function on every host."""
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"mizar_hosts": {"hosts": {
        "a": {"mizar_underlay_ip": "192.168.9.1", "mizar_underlay_mac": "02:00:00:00:09:01"},
        "b": {"mizar_underlay_ip": "192.168.9.2", "mizar_underlay_mac": "02:00:00:00:09:02",
              "mizar_bpf_dir": "/srv/mizar-{{ inventory_hostname }}", "mizar_xdp_switch_mode": True},
    }}}}}))
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump({
        "mizar_interface": "eth0",
        "mizar_vpcs": [{"name": "v", "vni": 7, "cidr": "10.7.0.0/24", "networks": [
            {"name": "n", "cidr": "10.7.0.0/24", "bouncers": ["b"], "endpoints": [
                {"name": "e", "ip": "10.7.0.9", "host": "a", "netns": "e"}]}]}],
        "mizar_functions": [
            {"name": "mine", "stage": "on_xdp_pass", "program": "fns/mine.c", "hosts": None},
            {"name": "guard", "stage": "on_xdp_redirect", "program": "acl", "hosts": ["a"], "config": {"rules": [
                {"vpc": "v", "dst": "10.7.0.9/32", "protocol": "icmp", "action": "drop"}]}},
        ],
    }))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    files, site = _render_both_ways(elsewhere, str(inv))
    assert files == site
    source = str(inv / "fns" / "mine.c")
    assert site["a"]["transit"] == {"obj_dir": "/var/lib/mizar/bpf", "switch_mode": False, "sources": [source],
                                    "stages": [{"stage": "on_xdp_pass", "object": "/var/lib/mizar/bpf/functions/mine.bpf.o"},
                                               {"stage": "on_xdp_redirect",
                                                "object": "/var/lib/mizar/bpf/functions/acl.bpf.o"}]}
    assert site["b"]["transit"] == {"obj_dir": "/srv/mizar-b", "switch_mode": True, "sources": [source],
                                    "stages": [{"stage": "on_xdp_pass", "object": "/srv/mizar-b/functions/mine.bpf.o"}]}
    assert [(f["program"], f["shipped"]) for f in site["a"]["functions"]] == [(source, False), ("acl", True)]
    assert site["a"]["vnis"] == site["b"]["vnis"] == {"v": 7}
