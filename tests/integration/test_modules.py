"""The datapath modules through the real ansible-playbook, on the real kernel.

Each module: a first run changes, a second run changes nothing, check mode
on a changing input reports the change and makes none, --diff names what
changes, absent leaves nothing (no pins, no XDP, no namespace, no veth),
bad input fails with a message naming the field.

The modules run inside a "host": a network namespace entered by the
mizar.transit.netns connection, whose /sys/fs/bpf is its own directory of
the machine's bpffs (BPFFS_ROOT/<host>), so the default pin_dir
/sys/fs/bpf/mizar is per host. The last test carries a real ping between
two endpoints on two such hosts through a bouncer, everything set up by the
modules from the rendering of an inventory.

Needs root, bpffs, libbpf, pyroute2, clang: fails (never skips) without.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, loader, libbpf, objects, stages, xdp

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

from .modules_helpers import (BIN, ROOT, RUN, Ansible, cleanup, host_pins, leftovers, ping, quiet_veth,
                              task, xdp_on)

H0 = RUN + "h0"          # the host of the single-module tests
EP = RUN + "e0"          # an endpoint namespace on it
EP_IF = RUN + "v0"       # its host-side veth
ADOPT = RUN + "a0"       # an interface adopted as an endpoint
STAGE = "on_xdp_redirect"


@pytest.fixture(scope="module", autouse=True)
def ready():
    """Fail loudly when these tests cannot really run; clean up after all."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root (namespaces, XDP and bpffs need it)")
    if not os.path.ismount("/sys/fs/bpf"):
        problems.append("no bpffs at /sys/fs/bpf")
    if not netlink.HAS_PYROUTE2:
        problems.append("pyroute2 missing (scripts/bootstrap)")
    if shutil.which("clang") is None:
        problems.append("clang missing (scripts/bootstrap)")
    if problems:
        pytest.fail("module tests cannot run: " + "; ".join(problems), pytrace=False)
    cleanup()
    yield
    errors = cleanup()
    assert not errors, errors
    assert not leftovers()


@pytest.fixture(scope="module")
def ansible(tmp_path_factory):
    return Ansible(tmp_path_factory.mktemp("modules"))


def _bpf_copy(dest, edit=None):
    """A copy of the collection's bpf/ tree; edit(text) -> text rewrites its mzr_abi.h."""
    shutil.copytree(os.path.join(ROOT, "bpf"), dest)
    if edit is not None:
        hdr = os.path.join(dest, "include", "mzr_abi.h")
        with open(hdr) as f:
            text = f.read()
        new = edit(text)
        assert new != text, "the ABI edit found nothing to change in mzr_abi.h"
        with open(hdr, "w") as f:
            f.write(new)
    return dest


def _build(ansible, src, dest):
    play = ansible.play([task("bpf_build", {"src": src, "dest": dest}, register="b")])
    res = play["bpf_build"]
    assert res["status"] == "changed" and res["objects"]["transit"] == os.path.join(dest, "transit.bpf.o"), play
    return dest


@pytest.fixture(scope="module")
def objs(ansible, tmp_path_factory):
    """The datapath objects, built by mizar.transit.bpf_build."""
    base = tmp_path_factory.mktemp("objs")
    return _build(ansible, _bpf_copy(str(base / "bpf")), str(base / "out"))


@pytest.fixture(scope="module")
def upgrade_objs(ansible, tmp_path_factory):
    """Other code, same map layout: the Geneve port moves."""
    base = tmp_path_factory.mktemp("upgrade")
    src = _bpf_copy(str(base / "bpf"), lambda t: t.replace("MZR_GENEVE_PORT 6081", "MZR_GENEVE_PORT 6082"))
    return _build(ansible, src, str(base / "out"))


@pytest.fixture(scope="module")
def layout_objs(ansible, tmp_path_factory):
    """Another map layout: struct mzr_host gains a leading member."""
    base = tmp_path_factory.mktemp("layout")
    src = _bpf_copy(str(base / "bpf"),
                    lambda t: t.replace("struct mzr_host {\n", "struct mzr_host {\n\t__u32 mzm_extra;\n", 1))
    return _build(ansible, src, str(base / "out"))


@pytest.fixture
def host(ansible):
    """A fresh host: namespace H0 with eth0 <-> peer0 (up, IPv6 off); its
    pins, endpoint namespaces and the namespace itself go afterwards."""
    cleanup()
    netlink.netns_add(H0)
    quiet_veth(H0, "eth0", "peer0", mac="02:00:00:00:0a:01")
    inventory = ansible.netns_inventory("host", {H0: {}})
    yield inventory
    errors = cleanup()
    assert not errors, errors


KEYWORDS = ("name", "check_mode", "diff", "ignore_errors", "loop", "register")


def _transit(objs, **extra):
    """A transit task: extra holds module options and task keywords."""
    keywords = dict((k, extra.pop(k)) for k in KEYWORDS if k in extra)
    return task("transit", dict({"interface": "eth0", "obj_dir": objs}, **extra), **keywords)


def _pin_dir_gone():
    return not os.path.exists(host_pins(H0))


# ---------------------------------------------------------------- bpf_build


FN_SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_maps.h"

SEC("xdp")
int myfn_on_xdp_tx(struct xdp_md *ctx)
{
    return XDP_TX;
}

char _license[] SEC("license") = "GPL";
"""


def test_bpf_build_compiles_once_then_nothing(ansible, tmp_path):
    src = _bpf_copy(str(tmp_path / "bpf"))
    fn = tmp_path / "fns" / "myfn.c"
    fn.parent.mkdir()
    fn.write_text(FN_SOURCE)
    dest = str(tmp_path / "out")
    args = {"src": src, "dest": dest, "sources": [str(fn)]}
    play = ansible.play([task("bpf_build", args, name="first"), task("bpf_build", args, name="second")])
    first, second = play["first"], play["second"]
    assert first["status"] == "changed", play
    assert sorted(first["built"]) == ["agent", "functions/acl", "functions/myfn", "functions/ratelimit",
                                      "functions/scaled", "pass", "transit"]
    assert first["objects"]["functions/myfn"] == os.path.join(dest, "functions", "myfn.bpf.o")
    assert os.path.isfile(first["objects"]["functions/myfn"]) and os.path.isfile(first["stamp"])
    assert second["status"] == "ok" and second["built"] == [], play
    with libbpf.BpfObject(first["objects"]["functions/myfn"]) as o:
        assert "myfn_on_xdp_tx" in o.program_names() and "mzr_endpoints" in o.map_names()

    # a header changes: check mode names every object and builds none of them
    mtimes = dict((n, os.stat(p).st_mtime_ns) for n, p in first["objects"].items())
    with open(os.path.join(src, "include", "mzr_abi.h"), "a") as f:
        f.write("/* touched by test_modules */\n")
    play = ansible.play([task("bpf_build", args, name="check", check_mode=True, diff=True)])
    check = play["check"]
    assert check["status"] == "changed" and len(check["built"]) == 7, play
    assert dict((n, os.stat(p).st_mtime_ns) for n, p in first["objects"].items()) == mtimes
    assert "transit.bpf.o: inputs" in check["diff"]["after"] and "transit.bpf.o: inputs" in play.stdout

    # the extra source leaves: rebuilt for the header, its object removed
    args = {"src": src, "dest": dest}
    play = ansible.play([task("bpf_build", args, name="again")])
    assert play["again"]["status"] == "changed" and play["again"]["removed"] == ["functions/myfn"], play
    assert not os.path.exists(os.path.join(dest, "functions", "myfn.bpf.o"))


def test_bpf_build_bad_input_names_the_field(ansible, tmp_path):
    src = _bpf_copy(str(tmp_path / "bpf"))
    broken = tmp_path / "broken.c"
    broken.write_text("int broken(void) { return nope; }\n")
    dest = str(tmp_path / "out")
    play = ansible.play([
        task("bpf_build", {"src": src, "dest": dest, "sources": [str(tmp_path / "missing.c")]}, name="missing",
             ignore_errors=True),
        task("bpf_build", {"src": str(tmp_path / "nothere"), "dest": dest}, name="nosrc", ignore_errors=True),
        task("bpf_build", {"src": src, "dest": dest, "sources": [str(broken)]}, name="broken", ignore_errors=True),
        task("bpf_build", {"src": src, "dest": dest, "clang": "/nonexistent/clang"}, name="noclang",
             ignore_errors=True),
    ])
    assert play["missing"]["status"] == "failed" and "sources[0]" in play["missing"]["msg"], play
    assert play["nosrc"]["msg"].startswith("src:"), play
    assert "broken.c" in play["broken"]["msg"] and "nope" in play["broken"]["msg"], play
    assert not os.path.exists(os.path.join(dest, "functions", "broken.bpf.o"))
    assert not os.path.exists(os.path.join(dest, "transit.bpf.o")), "a failed build left objects"
    assert play["noclang"]["msg"].startswith("clang:"), play


def _files(top):
    """{relative path: (bytes, mtime_ns)} of every file under top."""
    out = {}
    for dirpath, _dirs, files in os.walk(top):
        for f in files:
            path = os.path.join(dirpath, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, top)] = (fh.read(), os.stat(path).st_mtime_ns)
    return out


def test_bpf_build_returns_the_archives_manifest_and_never_one_it_would_replace(ansible, tmp_path):
    """The action: a build, then a re-run that changes nothing, both with
    the manifest of the archive they leave; check mode on a stale build
    says what would change, writes nothing and claims no digests (null);
    --diff prints the inputs under the stamp's headers."""
    src = _bpf_copy(str(tmp_path / "bpf"))
    dest = str(tmp_path / "out")
    archive = os.path.join(dest, "objects.tar")
    stamp = os.path.join(dest, ".mizar-build.json")
    args = {"src": src, "dest": dest}
    play = ansible.play([task("bpf_build", args, name="build"), task("bpf_build", args, name="again"),
                         task("bpf_build", args, name="current", check_mode=True)])
    build, again, current = play["build"], play["again"], play["current"]
    assert build["status"] == "changed" and again["status"] == "ok" and again["actions"] == [], play
    assert sorted(build["manifest"]) == ["agent.bpf.o", "functions/acl.bpf.o", "functions/ratelimit.bpf.o",
                                         "functions/scaled.bpf.o", "pass.bpf.o", "transit.bpf.o"]
    assert build["manifest"] == again["manifest"] == current["manifest"] == objects.manifest(archive)
    assert current["status"] == "ok", play
    assert "invocation" not in build, "a module ran: its result carries its invocation, the action's does not"

    with open(os.path.join(src, "transit.bpf.c"), "a") as f:
        f.write("/* touched by test_modules */\n")
    before = _files(dest)
    play = ansible.play([task("bpf_build", args, name="check", check_mode=True, diff=True)])
    check = play["check"]
    assert check["status"] == "changed" and check["manifest"] is None, play
    assert any(a.startswith("compile ") for a in check["actions"]) and check["archive"] == archive
    assert _files(dest) == before, "check mode wrote into dest"
    assert "--- before: %s (last build)" % stamp in play.stdout, play
    assert "+++ after: %s (this build)" % stamp in play.stdout, play
    assert check["diff"]["before_header"] == "%s (last build)" % stamp

    play = ansible.play([task("bpf_build", args, name="rebuild", diff=True)])
    rebuild = play["rebuild"]
    assert rebuild["status"] == "changed" and rebuild["manifest"] == objects.manifest(archive), play
    assert rebuild["manifest"]["transit.bpf.o"] != build["manifest"]["transit.bpf.o"]
    assert rebuild["manifest"]["pass.bpf.o"] == build["manifest"]["pass.bpf.o"]
    assert "+++ after: %s (this build)" % stamp in play.stdout, play


def test_bpf_build_refuses_bad_arguments_with_the_modules_words(ansible, tmp_path):
    """The action checks the task's arguments against the module's own spec
    (unknown options refused in check mode too) and fails, building
    nothing, with the message the module gives."""
    src = _bpf_copy(str(tmp_path / "bpf"))
    dest = str(tmp_path / "out")
    play = ansible.play([
        task("bpf_build", {"src": src, "dest": dest, "optimise": True}, name="unknown", check_mode=True,
             ignore_errors=True),
        task("bpf_build", {"src": src}, name="nodest", ignore_errors=True),
        task("bpf_build", {"src": src, "dest": dest, "sources": {"fn": "x.c"}}, name="badtype", ignore_errors=True),
        task("bpf_build", {"src": str(tmp_path), "dest": dest}, name="notree", ignore_errors=True),
    ])
    unknown = play["unknown"]
    assert unknown["status"] == "failed", play
    assert unknown["msg"].startswith("Unsupported parameters for (mizar.transit.bpf_build) module: optimise."), play
    assert "Supported parameters include: cflags, clang, dest, sources, src" in unknown["msg"]
    assert play["nodest"]["status"] == "failed" and play["nodest"]["msg"] == "missing required arguments: dest", play
    assert play["badtype"]["status"] == "failed" and "'sources'" in play["badtype"]["msg"], play
    notree = play["notree"]
    assert notree["status"] == "failed", play
    assert notree["msg"] == "src: %s has no include/ directory; is it a bpf/ tree like the collection's?" % tmp_path
    assert not os.path.exists(dest), "a refused build wrote into dest"


def test_bpf_build_runs_on_the_controller_whatever_the_tasks_host(ansible, host, tmp_path):
    """On a lab host (a network namespace entered by the netns connection),
    with and without delegate_to: the compiler is started by ansible-playbook
    itself (no module process between them), in the controller's network
    namespace, and both tasks see the same build."""
    src = _bpf_copy(str(tmp_path / "bpf"))
    dest = str(tmp_path / "out")
    log = tmp_path / "clang.log"
    clang = tmp_path / "clang"
    clang.write_text('#!/bin/sh\necho "$(readlink /proc/self/ns/net) $(tr \'\\0\' \' \' < /proc/$PPID/cmdline)" >> %s\n'
                     'exec %s "$@"\n' % (log, shutil.which("clang")))
    clang.chmod(0o755)
    args = {"src": src, "dest": dest, "clang": str(clang)}
    play = ansible.play([task("bpf_build", args, name="here"),
                         task("bpf_build", args, name="delegated", delegate_to="localhost")],
                        hosts=H0, inventory=host)
    here, delegated = play["here"], play["delegated"]
    assert here["status"] == "changed" and delegated["status"] == "ok", play
    assert here["manifest"] == delegated["manifest"] == objects.manifest(os.path.join(dest, "objects.tar"))
    calls = log.read_text().splitlines()
    assert len(calls) == 1 + len(here["built"]) + 1, calls  # --version, each object, --version
    host_netns = "net:[%d]" % os.stat(os.path.join("/run/netns", H0)).st_ino
    assert set(c.split(" ", 1)[0] for c in calls) == {os.readlink("/proc/self/ns/net")} != {host_netns}, calls
    assert all("ansible-playbook" in c.split(" ", 1)[1] for c in calls), calls


# ---------------------------------------------------------------- transit


def test_transit_first_run_second_run_and_honest_check_mode(ansible, host, objs):
    play = ansible.play([_transit(objs, name="check", check_mode=True, diff=True)], hosts=H0, inventory=host)
    check = play["check"]
    assert check["status"] == "changed" and any("attach the transit program" in a for a in check["actions"]), play
    assert _pin_dir_gone() and xdp_on("eth0", H0) is None, "check mode changed something"
    assert "eth0: no XDP program" in check["diff"]["before"] and "mzr_transit" in check["diff"]["after"]

    # then a mode switch, in check mode: reported with its consequence, not done
    play = ansible.play([_transit(objs, name="first"), _transit(objs, name="second"),
                         _transit(objs, name="switch", mode="generic", switch_mode=True, check_mode=True, diff=True)],
                        hosts=H0, inventory=host)
    first, second = play["first"], play["second"]
    assert first["status"] == "changed", play
    assert second["status"] == "ok" and second["actions"] == [], play
    assert xdp_on("eth0", H0) == ("mzr_transit", "native")
    assert first["prog_id"] == second["prog_id"] and second["attached_via"] == "link"
    assert (second["tag"], second["mode"], second["upgraded"], second["migrated"]) == (
        check["tag"], "native", False, False), "check mode predicted the tag"
    assert os.path.isdir(os.path.join(host_pins(H0), "maps")) and second["map_ids"]

    switch = play["switch"]
    assert switch["status"] == "changed" and "detach, then attach" in " ".join(switch["actions"]), play
    assert "generic mode" in switch["diff"]["after"] and "native mode" in switch["diff"]["before"]
    assert "generic mode" in play.stdout
    assert xdp_on("eth0", H0) == ("mzr_transit", "native")


def test_transit_refuses_a_silent_mode_change_and_bad_input(ansible, host, objs, tmp_path):
    empty = str(tmp_path / "empty")
    os.mkdir(empty)
    play = ansible.play([
        _transit(objs, name="load"),
        _transit(objs, name="generic", mode="generic", ignore_errors=True),
        _transit(objs, name="nonic", interface=RUN + "x9", ignore_errors=True),
        _transit(empty, name="noobj", ignore_errors=True),
        _transit(objs, name="badmode", mode="turbo", ignore_errors=True),
        _transit(objs, name="switch", mode="generic", switch_mode=True),
    ], hosts=H0, inventory=host)
    assert play["load"]["status"] == "changed", play
    assert play["generic"]["status"] == "failed" and play["generic"]["msg"].startswith("mode:"), play
    assert "switch_mode" in play["generic"]["msg"]
    assert play["nonic"]["msg"].startswith("interface:") and RUN + "x9" in play["nonic"]["msg"], play
    assert play["noobj"]["msg"].startswith("obj_dir:") and "transit.bpf.o" in play["noobj"]["msg"], play
    assert "mode" in play["badmode"]["msg"] and "turbo" in play["badmode"]["msg"], play
    # the refusals changed nothing: the switch found the program still in native mode
    assert play["switch"]["status"] == "changed" and play["switch"]["mode"] == "generic", play
    assert play["switch"]["actions"][0].startswith("switch eth0 from native to generic mode")
    assert xdp_on("eth0", H0) == ("mzr_transit", "generic")


def test_transit_carries_the_objects_archive_to_the_host(ansible, host, objs, upgrade_objs, tmp_path):
    """archive: one transfer makes obj_dir hold exactly the archive's objects;
    a second run writes nothing; check mode says what would change and
    leaves obj_dir alone; a stray object is removed."""
    obj_dir = str(tmp_path / "host-objs")
    archive = os.path.join(objs, "objects.tar")
    play = ansible.play([_transit(obj_dir, name="first", archive=archive),
                         _transit(obj_dir, name="second", archive=archive)], hosts=H0, inventory=host)
    first, second = play["first"], play["second"]
    assert first["status"] == "changed", play
    assert first["objects"]["added"] == ["agent.bpf.o", "functions/acl.bpf.o", "functions/ratelimit.bpf.o",
                                         "functions/scaled.bpf.o", "pass.bpf.o", "transit.bpf.o"]
    assert second["status"] == "ok" and second["objects"] == {"added": [], "updated": [], "removed": []}, play
    assert (first["archive_transferred"], second["archive_transferred"]) == (True, False), play
    for name in first["objects"]["added"]:
        with open(os.path.join(obj_dir, name), "rb") as a, open(os.path.join(objs, name), "rb") as b:
            assert a.read() == b.read(), name
    with open(os.path.join(obj_dir, "functions", "old.bpf.o"), "wb") as f:
        f.write(b"stale")
    newer = os.path.join(upgrade_objs, "objects.tar")
    play = ansible.play([_transit(obj_dir, name="check", archive=newer, check_mode=True, diff=True)],
                        hosts=H0, inventory=host)
    check = play["check"]
    assert check["status"] == "changed" and check["archive_transferred"] is True, play
    assert "transit.bpf.o" in check["objects"]["updated"] and check["objects"]["removed"] == ["functions/old.bpf.o"]
    assert any(a.startswith("replace the transit program") for a in check["actions"]), check["actions"]
    with open(os.path.join(obj_dir, "transit.bpf.o"), "rb") as a, open(os.path.join(objs, "transit.bpf.o"), "rb") as b:
        assert a.read() == b.read(), "check mode wrote an object"
    assert os.path.exists(os.path.join(obj_dir, "functions", "old.bpf.o"))
    play = ansible.play([_transit(obj_dir, name="upgrade", archive=newer)], hosts=H0, inventory=host)
    assert play["upgrade"]["status"] == "changed" and play["upgrade"]["upgraded"], play
    assert not os.path.exists(os.path.join(obj_dir, "functions", "old.bpf.o"))


def test_transit_sends_the_archive_only_when_the_host_lacks_its_objects(ansible, host, objs, tmp_path):
    """The action asks with the archive's manifest first: a host whose
    obj_dir holds exactly the archive's objects gets no transfer; one whose
    files were changed behind its back (the files are hashed, no stamp is
    trusted) gets the archive and its objects back."""
    obj_dir = str(tmp_path / "host-objs")
    archive = os.path.join(objs, "objects.tar")
    runs = [_transit(obj_dir, name="run%d" % i, archive=archive) for i in (1, 2, 3)]
    play = ansible.play(runs, hosts=H0, inventory=host)
    assert [play["run%d" % i]["archive_transferred"] for i in (1, 2, 3)] == [True, False, False], play
    assert [play["run%d" % i]["status"] for i in (1, 2, 3)] == ["changed", "ok", "ok"], play

    with open(os.path.join(obj_dir, "pass.bpf.o"), "r+b") as f:  # same name and size, other bytes
        data = f.read()
        f.seek(0)
        f.write(bytes(len(data)))
    play = ansible.play([_transit(obj_dir, name="check", archive=archive, check_mode=True)], hosts=H0, inventory=host)
    check = play["check"]
    assert check["archive_transferred"] and check["objects"]["updated"] == ["pass.bpf.o"], play
    with open(os.path.join(obj_dir, "pass.bpf.o"), "rb") as f:
        assert f.read() == bytes(len(data)), "check mode wrote an object"
    play = ansible.play([_transit(obj_dir, name="repair", archive=archive),
                         _transit(obj_dir, name="again", archive=archive)], hosts=H0, inventory=host)
    repair, again = play["repair"], play["again"]
    assert repair["status"] == "changed" and repair["archive_transferred"], play
    assert repair["objects"] == {"added": [], "updated": ["pass.bpf.o"], "removed": []}
    assert repair["actions"][0] == "write the objects pass.bpf.o to %s" % obj_dir
    with open(os.path.join(obj_dir, "pass.bpf.o"), "rb") as a, open(os.path.join(objs, "pass.bpf.o"), "rb") as b:
        assert a.read() == b.read()
    assert again["status"] == "ok" and again["archive_transferred"] is False, play


def test_transit_with_transfer_always_carries_the_archive_without_asking(ansible, host, objs, tmp_path):
    """transfer: always (a host known to lack the objects) carries the archive
    at once; a host that already holds them still has nothing written and
    reports no change."""
    obj_dir = str(tmp_path / "host-objs")
    archive = os.path.join(objs, "objects.tar")
    play = ansible.play([_transit(obj_dir, name="first", archive=archive, transfer="always"),
                         _transit(obj_dir, name="again", archive=archive, transfer="always"),
                         _transit(obj_dir, name="asked", archive=archive)], hosts=H0, inventory=host)
    first, again, asked = play["first"], play["again"], play["asked"]
    assert first["status"] == "changed" and first["archive_transferred"], play
    assert first["objects"]["added"] == ["agent.bpf.o", "functions/acl.bpf.o", "functions/ratelimit.bpf.o",
                                         "functions/scaled.bpf.o", "pass.bpf.o", "transit.bpf.o"]
    assert again["status"] == "ok" and again["archive_transferred"] and again["actions"] == [], play
    assert again["objects"] == {"added": [], "updated": [], "removed": []}, play
    assert asked["status"] == "ok" and asked["archive_transferred"] is False, play


def test_transit_on_a_nic_without_native_xdp_says_so_and_attaches_nothing(ansible, host, objs):
    """A bridge has no native XDP, like many real drivers: the refusal names
    the NIC and the way out, and the NIC is left as it was."""
    netlink.bridge_add("br9", netns=H0)
    play = ansible.play([_transit(objs, name="native", interface="br9", ignore_errors=True)],
                        hosts=H0, inventory=host)
    res = play["native"]
    assert res["status"] == "failed", play
    assert res["msg"] == ("attaching the transit program to br9: br9 (driver unknown) has no native XDP "
                          "support: the kernel refused a native attach; nothing was attached. Use generic mode "
                          "for this NIC (mizar_xdp_mode: generic), or a driver with native XDP"), res["msg"]
    assert xdp_on("br9", H0) is None and xdp_on("eth0", H0) is None


def test_site_touches_no_host_when_one_is_unreachable(ansible, host, tmp_path):
    """One host of the inventory cannot be reached over SSH: site.yml says
    which, and stops before the other gets anything."""
    here = {"mizar_interface": "eth0", "mizar_underlay_ip": "192.168.99.1", "mizar_underlay_mac": "02:00:00:00:0a:01",
            "mizar_manage_packages": False, "mizar_bpf_dir": str(tmp_path / "objs")}
    gone = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_user": "nobody",
            "mizar_interface": "eth0", "mizar_underlay_ip": "192.168.99.2", "mizar_underlay_mac": "02:00:00:00:0a:02"}
    inventory = ansible.netns_inventory("unreachable", {H0: here, RUN + "gone": gone})
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", inventory, "mizar.transit.site"],
                          cwd=ansible.workdir, env=dict(ansible.env, MZM_RESULTS=str(tmp_path / "r.jsonl")),
                          capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert re.search(r"fatal: \[%sgone\]: UNREACHABLE! .*port 9: Connection refused" % RUN, out), out
    # the comparison with the renderings is the first contact with the hosts:
    # the play ends there, before any role
    assert re.search(r"%sh0 +: ok=\d+ +changed=0 +unreachable=0 +failed=0" % RUN, out), out
    assert "TASK [Compare every host with its rendering and the build]" in out, out
    assert "TASK [Attach the transit program]" not in out, "the play went on: " + out
    assert xdp_on("eth0", H0) is None and _pin_dir_gone() and not os.path.exists(here["mizar_bpf_dir"])


def _link_of(iface, netns):
    q = xdp.query(iface, netns=netns)
    return q["link_id"], q["prog_id"]


def test_transit_upgrade_replaces_the_program_through_the_link(ansible, host, objs, upgrade_objs):
    play = ansible.play([_transit(objs, name="load")], hosts=H0, inventory=host)
    old = play["load"]
    link_before, prog_before = _link_of("eth0", H0)

    play = ansible.play([_transit(upgrade_objs, name="check", check_mode=True, diff=True)], hosts=H0,
                        inventory=host)
    check = play["check"]
    assert check["status"] == "changed" and check["upgraded"] is True, play
    assert any(a.startswith("replace the transit program") for a in check["actions"])
    assert _link_of("eth0", H0) == (link_before, prog_before), "check mode changed the program"

    play = ansible.play([_transit(upgrade_objs, name="upgrade"), _transit(upgrade_objs, name="again")],
                        hosts=H0, inventory=host)
    up = play["upgrade"]
    assert up["status"] == "changed" and (up["upgraded"], up["migrated"]) == (True, False), play
    assert up["tag"] == check["tag"] != old["tag"]
    assert up["map_ids"] == old["map_ids"], "the maps stay"
    link_after, prog_after = _link_of("eth0", H0)
    assert link_after == link_before and prog_after != prog_before, "replaced through the same link"
    assert play["again"]["status"] == "ok", play


def test_transit_migrates_maps_and_reloads_stages(ansible, host, objs, layout_objs):
    acl = {"rules": [{"vpc": "blue", "src": "0.0.0.0/0", "dst": "10.0.0.3/32", "protocol": "icmp",
                      "action": "drop"}]}
    stage_args = {"stage": STAGE, "object": os.path.join(objs, "functions", "acl.bpf.o"), "function": "acl",
                  "config": acl, "vpcs": {"blue": 1000}}
    play = ansible.play([_transit(objs, name="load"), task("stage", stage_args, name="acl")], hosts=H0,
                        inventory=host)
    assert play["acl"]["status"] == "changed", play
    old_ids = play["load"]["map_ids"]

    new_stage = [{"stage": STAGE, "object": os.path.join(layout_objs, "functions", "acl.bpf.o")}]
    play = ansible.play([
        _transit(layout_objs, name="nostages", ignore_errors=True),
        _transit(layout_objs, name="check", stages=new_stage, check_mode=True),
        _transit(layout_objs, name="migrate", stages=new_stage),
        _transit(layout_objs, name="again", stages=new_stage),
        task("stage", dict(stage_args, object=new_stage[0]["object"]), name="acl"),
    ], hosts=H0, inventory=host)
    assert play["nostages"]["status"] == "failed" and STAGE in play["nostages"]["msg"], play
    assert "stages" in play["nostages"]["msg"]
    assert play["check"]["status"] == "changed" and play["check"]["migrated"] is True, play
    mig = play["migrate"]
    assert mig["status"] == "changed" and (mig["migrated"], mig["upgraded"]) == (True, True), play
    assert not set(mig["map_ids"]) & set(old_ids), "new maps"
    assert play["again"]["status"] == "ok", play
    acl_after = play["acl"]
    assert acl_after["status"] == "ok" and acl_after["config"] == dict(acl, rules=[dict(acl["rules"][0])]), \
        "the stage was reloaded and its rules moved along"
    assert xdp_on("eth0", H0) == ("mzr_transit", "native")


def test_transit_absent_removes_everything(ansible, host, objs):
    ep = {"name": "blue/web/ep0", "iface": EP_IF, "netns": EP, "ip": "10.0.0.2", "prefixlen": 24,
          "mac": "02:00:00:00:00:02", "gateway": "10.0.0.1"}
    play = ansible.play([_transit(objs, name="load"), task("endpoint", ep, name="ep")], hosts=H0, inventory=host)
    assert play["ep"]["status"] == "changed", play
    absent = {"interface": "eth0", "state": "absent"}
    play = ansible.play([task("transit", absent, name="check", check_mode=True, diff=True)], hosts=H0,
                        inventory=host)
    check = play["check"]
    assert check["status"] == "changed", play
    assert sorted(a for a in check["actions"] if a.startswith("detach")) == sorted([
        "detach the agent program from %s" % EP_IF, "detach the pass program from eth0 in netns %s" % EP,
        "detach the transit program from eth0"])
    assert "eth0: no XDP program" in check["diff"]["after"]
    assert xdp_on("eth0", H0) and not _pin_dir_gone(), "check mode changed something"

    play = ansible.play([task("transit", absent, name="absent"), task("transit", absent, name="again")],
                        hosts=H0, inventory=host)
    assert play["absent"]["status"] == "changed" and play["again"]["status"] == "ok", play
    assert _pin_dir_gone()
    assert xdp_on("eth0", H0) is None and xdp_on(EP_IF, H0) is None and xdp_on("eth0", EP) is None


def test_transit_mounts_a_missing_bpffs(ansible, objs):
    """In a private mount and network namespace without a bpffs, the module
    mounts one and attaches; both vanish with the namespaces."""
    script = ("umount /sys/fs/bpf && ip link add %sm0 type veth peer name %sm1 && ip link set %sm0 up && "
              "ip link set %sm1 up && \"$@\"; rc=$?; echo FS=$(stat -f -c %%T /sys/fs/bpf); "
              "ip -d link show %sm0 | grep -o 'prog/xdp id [0-9]*'; exit $rc") % ((RUN,) * 5)
    wrap = ["unshare", "--mount", "--propagation", "private", "--net", "--", "sh", "-c", script, "sh"]
    args = {"interface": RUN + "m0", "obj_dir": objs}
    play = ansible.play([task("transit", args, name="check", check_mode=True), task("transit", args, name="mount")],
                        wrap=wrap)
    assert play["check"]["actions"][0] == "mount a bpffs on /sys/fs/bpf", play
    res = play["mount"]
    assert res["status"] == "changed" and res["actions"][0] == "mount a bpffs on /sys/fs/bpf", play
    assert "FS=bpf_fs" in play.stdout and "prog/xdp id %d" % res["prog_id"] in play.stdout, play


# ---------------------------------------------------------------- endpoint


def _ep(**extra):
    args = {"name": "blue/web/ep0", "iface": EP_IF, "netns": EP, "ip": "10.0.0.2", "prefixlen": 24,
            "mac": "02:00:00:00:00:02", "gateway": "10.0.0.1"}
    args.update(extra)
    return dict((k, v) for k, v in args.items() if v is not None)


def _ep_state():
    inner = netlink.link("eth0", EP)
    host_end = netlink.link(EP_IF, H0)
    return {"addrs": sorted(netlink.addrs("eth0", EP)), "mac": inner["mac"], "mtu": inner["mtu"], "up": inner["up"],
            "route": _default_gw(EP), "tx_csum": netlink.tx_checksum_enabled("eth0", EP),
            "host_mtu": host_end["mtu"], "pass": xdp_on("eth0", EP), "agent": xdp_on(EP_IF, H0)}


def _default_gw(ns):
    return next((r["gateway"] for r in netlink.routes(ns) if r["dst_len"] == 0), None)


WANT = {"addrs": ["10.0.0.2/24"], "mac": "02:00:00:00:00:02", "mtu": 1450, "up": True, "route": "10.0.0.1",
        "tx_csum": False, "host_mtu": 1450, "pass": ("mzr_pass", "native"), "agent": ("mzr_agent", "native")}


def test_endpoint_netns_lifecycle_with_drift(ansible, host, objs):
    play = ansible.play([_transit(objs, name="load"),
                         task("endpoint", _ep(), name="check", check_mode=True, diff=True)], hosts=H0, inventory=host)
    check = play["check"]
    assert check["status"] == "changed", play
    assert "create network namespace %s" % EP in check["actions"]
    assert "XDP on eth0 in %s: mzr_pass (native)" % EP in check["diff"]["after"]
    assert not nsenter.netns_exists(EP) and netlink.link(EP_IF, H0) is None, "check mode changed something"

    play = ansible.play([task("endpoint", _ep(), name="first"), task("endpoint", _ep(), name="second")],
                        hosts=H0, inventory=host)
    assert play["first"]["status"] == "changed" and play["second"]["status"] == "ok", play
    assert play["second"]["actions"] == [] and play["second"]["ifindex"] == netlink.link(EP_IF, H0)["index"]
    assert _ep_state() == WANT

    # drift: a stray address, another MAC and route, offload back on
    netlink.addr_add("eth0", "10.9.9.9/24", netns=EP)
    netlink.link_set("eth0", netns=EP, mac="02:00:00:00:00:99")
    netlink.route_add("default", gateway="10.9.9.1", iface="eth0", netns=EP)
    netlink.tx_checksum("eth0", True, netns=EP)
    drifted = _ep_state()
    play = ansible.play([task("endpoint", _ep(), name="check", check_mode=True, diff=True)], hosts=H0, inventory=host)
    check = play["check"]
    assert check["status"] == "changed", play
    assert sorted(check["actions"]) == sorted([
        "set the MAC of eth0 in %s to 02:00:00:00:00:02" % EP, "remove address 10.9.9.9/24 from eth0 in %s" % EP,
        "replace the default route in %s via 10.0.0.1 dev eth0 (was via 10.9.9.1)" % EP,
        "turn transmit checksum offload off on eth0 in %s" % EP])
    assert "10.9.9.9/24" in check["diff"]["before"] and "10.9.9.9/24" not in check["diff"]["after"]
    assert "10.9.9.9" in play.stdout
    assert _ep_state() == drifted, "check mode changed something"
    play = ansible.play([task("endpoint", _ep(), name="fix"), task("endpoint", _ep(), name="again")], hosts=H0,
                        inventory=host)
    assert play["fix"]["status"] == "changed" and play["again"]["status"] == "ok", play
    assert _ep_state() == WANT

    # a lost pass program is put back; then, in check mode only, a new
    # address and the endpoint's removal are named and not carried out
    xdp.link_detach_pinned(os.path.join(host_pins(H0), "links", loader.link_name("eth0", EP)))
    absent = {"name": "blue/web/ep0", "iface": EP_IF, "netns": EP, "state": "absent"}
    play = ansible.play([task("endpoint", _ep(), name="repair"),
                         task("endpoint", _ep(ip="10.0.0.7"), name="move", check_mode=True, diff=True),
                         task("endpoint", absent, name="check", check_mode=True, diff=True)],
                        hosts=H0, inventory=host)
    assert play["repair"]["actions"] == ["attach mzr_pass (native mode) to eth0 in %s" % EP], play
    assert play["move"]["status"] == "changed" and "10.0.0.7/24" in play["move"]["diff"]["after"], play
    assert play["check"]["status"] == "changed" and "netns %s: absent" % EP in play["check"]["diff"]["after"], play
    assert _ep_state() == WANT, "check mode changed something"
    play = ansible.play([task("endpoint", absent, name="absent"), task("endpoint", absent, name="again")],
                        hosts=H0, inventory=host)
    assert play["absent"]["status"] == "changed" and play["again"]["status"] == "ok", play
    assert not nsenter.netns_exists(EP) and netlink.link(EP_IF, H0) is None
    assert os.listdir(os.path.join(host_pins(H0), "links")) == [loader.link_name("eth0")], "only transit's link"


def test_endpoint_adopts_an_interface_and_leaves_it(ansible, host, objs):
    quiet_veth(H0, ADOPT, RUN + "a1")
    args = {"name": "blue/db/db0", "iface": ADOPT}
    play = ansible.play([_transit(objs, name="load"), task("endpoint", args, name="check", check_mode=True),
                         task("endpoint", args, name="first"), task("endpoint", args, name="second")],
                        hosts=H0, inventory=host)
    assert play["check"]["actions"] == ["attach mzr_agent (native mode) to %s" % ADOPT], play
    assert play["first"]["status"] == "changed" and play["second"]["status"] == "ok", play
    assert play["first"]["netns"] is None and xdp_on(ADOPT, H0) == ("mzr_agent", "native")
    absent = dict(args, state="absent")
    play = ansible.play([task("endpoint", absent, name="absent"), task("endpoint", absent, name="again")],
                        hosts=H0, inventory=host)
    assert play["absent"]["actions"] == ["detach mzr_agent from %s" % ADOPT], play
    assert play["again"]["status"] == "ok", play
    assert xdp_on(ADOPT, H0) is None and netlink.link(ADOPT, H0) is not None, "adopted: detached, kept"


def test_endpoint_bad_input_names_the_field(ansible, host, objs):
    play = ansible.play([
        task("endpoint", _ep(), name="noload", ignore_errors=True),
        _transit(objs, name="load"),
        task("endpoint", _ep(mac="01:00:00:00:00:01"), name="mac", ignore_errors=True),
        task("endpoint", _ep(ip="10.0.0.256"), name="ip", ignore_errors=True),
        task("endpoint", _ep(gateway="10.1.0.1"), name="gateway", ignore_errors=True),
        task("endpoint", dict(_ep(), ip=None, prefixlen=None), name="noip", ignore_errors=True),
        task("endpoint", _ep(iface="x" * 16), name="iface", ignore_errors=True),
        task("endpoint", {"name": "blue/db/db9", "iface": RUN + "zz"}, name="noadopt", ignore_errors=True),
        task("endpoint", _ep(iface="eth0"), name="notveth", ignore_errors=True),
        task("endpoint", _ep(iface="eth0", state="absent"), name="notmine", ignore_errors=True),
    ], hosts=H0, inventory=host)
    assert "pin_dir:" in play["noload"]["msg"] and "mizar.transit.transit" in play["noload"]["msg"], play
    for name, field in (("mac", "mac"), ("ip", "ip"), ("gateway", "gateway"), ("noip", "ip"), ("iface", "iface"),
                        ("noadopt", "iface"), ("notveth", "iface"), ("notmine", "iface")):
        res = play[name]
        assert res["status"] == "failed", (name, play)
        assert res["msg"].startswith("endpoint blue/"), (name, res["msg"])
        assert ": %s: " % field in res["msg"], (name, res["msg"])
    assert not nsenter.netns_exists(EP), "a failed endpoint made its namespace"
    assert xdp_on("eth0", H0) == ("mzr_transit", "native"), "another veth was taken for the endpoint's"


EP5, EP5_IF = RUN + "e5", RUN + "v5"


def test_endpoint_list_in_one_call_and_exclusive(ansible, host, objs):
    """A host's endpoints in one call: all planned before any is made (a bad
    item fails the task naming it, and nothing is made), per-endpoint
    results, one diff; unlisted reports what the datapath serves beyond the
    list, exclusive removes it, in check mode only says so."""
    two = [_ep(), _ep(name="blue/web/ep5", iface=EP5_IF, netns=EP5, ip="10.0.0.5", mac="02:00:00:00:00:05")]
    bad = [two[0], dict(two[1], mac="01:00:00:00:00:05")]
    listed = {"endpoints": two, "substrate_interface": "eth0"}
    play = ansible.play([_transit(objs, name="load"),
                         task("endpoint", {"endpoints": bad}, name="bad", ignore_errors=True)], hosts=H0, inventory=host)
    bad = play["bad"]
    assert bad["status"] == "failed" and bad["msg"].startswith("endpoint blue/web/ep5 (endpoints[1]): mac: "), play
    assert not nsenter.netns_exists(EP) and not nsenter.netns_exists(EP5), "a failed list made an endpoint"
    play = ansible.play([task("endpoint", listed, name="check", check_mode=True, diff=True),
                         task("endpoint", listed, name="first"), task("endpoint", listed, name="second")],
                        hosts=H0, inventory=host)
    check, first, second = play["check"], play["first"], play["second"]
    assert check["status"] == "changed" and check["actions"][0] == "blue/web/ep0: create network namespace %s" % EP
    assert "endpoint blue/web/ep5:" in check["diff"]["after"] and "blue/web/ep5: create network namespace %s" % EP5 \
        in check["actions"], play
    assert first["status"] == "changed" and first["actions"] == check["actions"], "check mode predicted the run"
    assert [(e["name"], e["changed"], e["netns"]) for e in first["endpoints"]] == [
        ("blue/web/ep0", True, EP), ("blue/web/ep5", True, EP5)]
    assert first["endpoints"][1]["ifindex"] == netlink.link(EP5_IF, H0)["index"] and first["unlisted"] == []
    assert second["status"] == "ok" and second["actions"] == [] and not any(e["changed"] for e in second["endpoints"])
    assert _ep_state() == WANT and xdp_on(EP5_IF, H0) == ("mzr_agent", "native")

    one = {"endpoints": two[:1], "substrate_interface": "eth0"}
    gone = {"endpoints": "{{ report.unlisted }}", "state": "absent"}  # what the tenants role does
    play = ansible.play([task("endpoint", one, name="report", register="report"),
                         task("endpoint", gone, name="gone", check_mode=True),
                         task("endpoint", dict(one, exclusive=True), name="check", check_mode=True),
                         task("endpoint", dict(one, exclusive=True), name="prune"),
                         task("endpoint", dict(one, exclusive=True), name="again")], hosts=H0, inventory=host)
    report, check, prune = play["report"], play["check"], play["prune"]
    assert report["status"] == "ok" and report["unlisted"] == [{"name": EP5_IF, "iface": EP5_IF, "netns": EP5}], play
    assert play["gone"]["status"] == "changed" and play["gone"]["actions"] == check["actions"], play
    assert check["status"] == "changed" and check["actions"] == prune["actions"] == [
        "%s: detach mzr_pass from eth0 in %s" % (EP5_IF, EP5), "%s: detach mzr_agent from %s" % (EP5_IF, EP5_IF),
        "%s: delete veth %s (and eth0 in %s)" % (EP5_IF, EP5_IF, EP5), "%s: delete network namespace %s" % (EP5_IF, EP5)]
    assert prune["status"] == "changed" and play["again"]["status"] == "ok" and play["again"]["unlisted"] == [], play
    assert not nsenter.netns_exists(EP5) and netlink.link(EP5_IF, H0) is None and _ep_state() == WANT

    # what teardown.yml does, one call per host: the listed endpoints go, and with exclusive every other one
    # the datapath serves (ep5, made again here: no longer in the list)
    down = {"endpoints": two[:1], "exclusive": True, "state": "absent"}
    play = ansible.play([task("endpoint", listed, name="both"), task("endpoint", down, name="down"),
                         task("endpoint", down, name="again")], hosts=H0, inventory=host)
    removal = ["detach mzr_pass from eth0 in %s", "detach mzr_agent from %s", "delete veth %s (and eth0 in %s)",
               "delete network namespace %s"]
    assert play["both"]["status"] == "changed" and play["down"]["status"] == "changed", play
    assert play["down"]["actions"] == (
        ["blue/web/ep0: " + t % a for t, a in zip(removal, (EP, EP_IF, (EP_IF, EP), EP))]
        + ["%s: " % EP5_IF + t % a for t, a in zip(removal, (EP5, EP5_IF, (EP5_IF, EP5), EP5))]), play
    assert play["again"]["status"] == "ok" and play["again"]["actions"] == [], play
    for ns, iface in ((EP, EP_IF), (EP5, EP5_IF)):
        assert not nsenter.netns_exists(ns) and netlink.link(iface, H0) is None
    assert ansible.play([task("endpoint", one, name="back")], hosts=H0, inventory=host)["back"]["status"] == "changed"
    assert _ep_state() == WANT


def test_endpoint_mtu_follows_the_substrate_nic(ansible, host, objs):
    """The MTU is the substrate NIC's less 50 (the NIC's for bypass_decap),
    follows a change of the NIC's, and an explicit one above it fails."""
    nic = {"substrate_interface": "eth0"}
    # 3000, not 9000: native XDP on a veth takes frames of one page at most (no multi-buffer programs)
    netlink.link_set("eth0", netns=H0, mtu=3000)
    play = ansible.play([_transit(objs, name="load"), task("endpoint", _ep(**nic), name="first"),
                         task("endpoint", _ep(**nic), name="again")], hosts=H0, inventory=host)
    assert play["first"]["status"] == "changed" and play["first"]["mtu"] == 2950, str(play)
    assert play["again"]["status"] == "ok" and play["again"]["actions"] == [], play
    assert _ep_state() == dict(WANT, mtu=2950, host_mtu=2950)

    netlink.link_set("eth0", netns=H0, mtu=1400)
    play = ansible.play([task("endpoint", _ep(**nic), name="check", check_mode=True, diff=True),
                         task("endpoint", _ep(**nic), name="follow"), task("endpoint", _ep(**nic), name="again"),
                         task("endpoint", _ep(bypass_decap=True, **nic), name="bypass"),
                         task("endpoint", _ep(mtu=1351, **nic), name="toobig", ignore_errors=True),
                         task("endpoint", _ep(mtu=1300, **nic), name="explicit"),
                         task("endpoint", _ep(substrate_interface=RUN + "zz"), name="nonic", ignore_errors=True)],
                        hosts=H0, inventory=host)
    assert "eth0 in %s: mac 02:00:00:00:00:02, mtu 1350" % EP in play["check"]["diff"]["after"], play
    assert sorted(play["follow"]["actions"]) == sorted([
        "set the MTU of eth0 in %s to 1350" % EP, "set the MTU of %s to 1350" % EP_IF]), play
    assert play["again"]["status"] == "ok", play
    assert play["bypass"]["mtu"] == 1400 and play["bypass"]["status"] == "changed", play
    res = play["toobig"]
    assert res["status"] == "failed" and res["msg"] == (
        "endpoint blue/web/ep0: mtu: 1351 is above 1350, the most that fits the substrate NIC eth0 (MTU 1400) "
        "after 50 bytes of Geneve encapsulation; lower it, or leave mtu out to derive it"), play
    assert play["explicit"]["mtu"] == 1300, play
    assert play["nonic"]["status"] == "failed" and ": substrate_interface: %szz does not exist" % RUN in \
        play["nonic"]["msg"], play
    assert _ep_state() == dict(WANT, mtu=1300, host_mtu=1300)


# ---------------------------------------------------------------- stage


ACL = {"rules": [{"vpc": "blue", "src": "0.0.0.0/0", "dst": "10.0.0.3/32", "protocol": "icmp", "action": "drop"}]}


def _stage(objs, **extra):
    args = {"stage": STAGE, "object": os.path.join(objs, "functions", "acl.bpf.o"), "function": "acl",
            "config": ACL, "vpcs": {"blue": 1000}}
    args.update(extra)
    return args


def _slot():
    return stages.Stages(host_pins(H0)).list()[STAGE]


def test_stage_lifecycle(ansible, host, objs):
    play = ansible.play([_transit(objs, name="load"),
                         task("stage", _stage(objs), name="check", check_mode=True, diff=True)],
                        hosts=H0, inventory=host)
    check = play["check"]
    assert check["status"] == "changed" and check["config_changed"] is True, play
    assert check["actions"][0].startswith("write the acl rules") and check["actions"][1].startswith("install")
    assert "dst: 10.0.0.3/32" in check["diff"]["after"] and "empty" in check["diff"]["before"]
    assert _slot() is None and not os.path.exists(os.path.join(host_pins(H0), "maps", "mzr_acl_sets"))

    play = ansible.play([task("stage", _stage(objs), name="first"), task("stage", _stage(objs), name="second")],
                        hosts=H0, inventory=host)
    first, second = play["first"], play["second"]
    assert first["status"] == "changed" and second["status"] == "ok", play
    assert first["program"] == "acl_on_xdp_redirect" and first["tag"] == check["tag"]
    assert second["prog_id"] == first["prog_id"] == _slot()["prog_id"] and second["config"] == ACL
    assert os.path.exists(os.path.join(host_pins(H0), "progs", "stage_" + STAGE))

    other = {"rules": [dict(ACL["rules"][0], dst="10.0.0.4/32")]}
    play = ansible.play([task("stage", _stage(objs, config=other), name="check", check_mode=True, diff=True)],
                        hosts=H0, inventory=host)
    check = play["check"]
    assert check["status"] == "changed" and check["actions"] == ["write the acl rules of %s (changed)" % STAGE], play
    assert "10.0.0.3/32" in check["diff"]["before"] and "10.0.0.4/32" in check["diff"]["after"]
    assert "10.0.0.4/32" in play.stdout
    absent = {"stage": STAGE, "state": "absent"}
    play = ansible.play([task("stage", _stage(objs), name="same"),
                         task("stage", _stage(objs, config=other), name="rules"),
                         task("stage", absent, name="check", check_mode=True),
                         task("stage", absent, name="absent"), task("stage", absent, name="again")],
                        hosts=H0, inventory=host)
    assert play["same"]["status"] == "ok" and play["same"]["config"] == ACL, "check mode wrote the rules"
    assert play["rules"]["status"] == "changed" and play["rules"]["prog_id"] == first["prog_id"], play
    assert play["check"]["status"] == "changed" and play["absent"]["status"] == "changed", play
    assert play["check"]["actions"] == play["absent"]["actions"], "check mode removed something"
    assert play["again"]["status"] == "ok", play
    assert sorted(play["absent"]["removed_maps"]) == ["mzr_acl_active", "mzr_acl_sets", "mzr_acl_stats"]
    maps = os.listdir(os.path.join(host_pins(H0), "maps"))
    assert _slot() is None and not [m for m in maps if m.startswith("mzr_acl")]
    assert not os.path.exists(os.path.join(host_pins(H0), "progs", "stage_" + STAGE))
    assert abi.STAGES_MAP in maps


def test_stage_bad_input_names_the_field(ansible, host, objs):
    play = ansible.play([
        task("stage", {"stage": STAGE, "state": "absent"}, name="nothing"),
        task("stage", _stage(objs), name="noload", ignore_errors=True),
        _transit(objs, name="load"),
        task("stage", _stage(objs, program="nope"), name="program", ignore_errors=True),
        task("stage", _stage(objs, vpcs={"green": 7}), name="vpc", ignore_errors=True),
        task("stage", _stage(objs, object="/nonexistent.bpf.o"), name="object", ignore_errors=True),
        task("stage", _stage(objs, stage="on_xdp_nowhere"), name="stage", ignore_errors=True),
        task("stage", _stage(objs, function="nofn"), name="function", ignore_errors=True),
    ], hosts=H0, inventory=host)
    assert play["nothing"]["status"] == "ok", "absent without a datapath is not an error"
    assert "pin_dir:" in play["noload"]["msg"], play
    assert "program:" in play["program"]["msg"] and "acl_on_xdp_tx" in play["program"]["msg"], play
    assert "config:" in play["vpc"]["msg"] and "blue" in play["vpc"]["msg"], play
    assert "object:" in play["object"]["msg"], play
    assert "stage" in play["stage"]["msg"] and "on_xdp_nowhere" in play["stage"]["msg"], play
    assert "function:" in play["function"]["msg"], play
    assert _slot() is None, "a failed stage run installed something"


def test_stage_list_form(ansible, host, objs):
    """A host's functions in one call: one function at two stages, then
    fewer, then none, with exclusive emptying what the list leaves out."""
    obj = os.path.join(objs, "functions", "acl.bpf.o")
    fns = [{"name": "acl-blue", "stage": STAGE, "object": obj, "function": "acl", "config": ACL},
           {"name": "acl-tx", "stage": "on_xdp_tx", "object": obj, "function": "acl", "config": ACL}]
    args = {"functions": fns, "vpcs": {"blue": 1000}, "exclusive": True}
    play = ansible.play([_transit(objs, name="load"),
                         task("stage", args, name="check", check_mode=True, diff=True),
                         task("stage", args, name="first"), task("stage", args, name="again"),
                         task("stage", dict(args, functions=fns[1:]), name="one"),
                         task("stage", dict(args, functions=[]), name="none"),
                         task("stage", dict(args, stage=STAGE), name="both", ignore_errors=True),
                         task("stage", dict(args, functions=[fns[0], dict(fns[1], stage=STAGE)]), name="twice",
                              ignore_errors=True)], hosts=H0, inventory=host)
    check, first = play["check"], play["first"]
    assert check["status"] == first["status"] == "changed" and check["actions"] == first["actions"], play
    assert first["actions"][0] == "write the acl rules of %s (first configuration)" % STAGE and len(first["actions"]) == 3
    assert "on_xdp_tx: empty" in check["diff"]["before"] and "dst: 10.0.0.3/32" in check["diff"]["after"]
    assert sorted(first["stages"]) == ["on_xdp_redirect", "on_xdp_tx"] and first["cleared"] == []
    assert first["stages"][STAGE]["config"] == ACL == first["stages"]["on_xdp_tx"]["config"]
    assert play["again"]["status"] == "ok" and play["again"]["actions"] == [], play
    one = play["one"]
    assert one["status"] == "changed" and one["cleared"] == [STAGE] and len(one["actions"]) == 1, play
    assert one["stages"][STAGE]["removed_maps"] == [], "the maps acl-tx uses stay"
    none = play["none"]
    assert none["cleared"] == ["on_xdp_tx"] and sorted(none["stages"]["on_xdp_tx"]["removed_maps"]) == [
        "mzr_acl_active", "mzr_acl_sets", "mzr_acl_stats"], play
    assert play["both"]["status"] == "failed" and "mutually exclusive" in play["both"]["msg"], play
    assert play["twice"]["status"] == "failed" and play["twice"]["msg"] == (
        "function acl-tx (functions[1]): program: acl_on_xdp_redirect from %s is in the chain of stage %s already, "
        "as function acl-blue (functions[0]); a chain runs a program once" % (obj, STAGE)), play
    assert all(v is None for v in stages.Stages(host_pins(H0)).list().values())


def test_stage_list_form_chains_two_functions_in_one_stage(ansible, host, objs):
    """Two functions in one stage: one chain, in the list's order, installed
    in one step; check mode and the diff show it in order; the same chain
    again is a no-op, another order is a change, and exclusive empties it."""
    obj = os.path.join(objs, "functions", "acl.bpf.o")
    fns = [{"name": "acl-blue", "stage": STAGE, "object": obj, "function": "acl", "config": ACL},
           {"name": "acl-tx-prog", "stage": STAGE, "object": obj, "program": "acl_on_xdp_tx", "function": "acl",
            "config": ACL}]
    args = {"functions": fns, "vpcs": {"blue": 1000}, "exclusive": True}
    play = ansible.play([_transit(objs, name="load"),
                         task("stage", args, name="check", check_mode=True, diff=True),
                         task("stage", args, name="first", diff=True), task("stage", args, name="again"),
                         task("stage", dict(args, functions=fns[::-1]), name="swapped"),
                         task("stage", dict(args, functions=[]), name="none")], hosts=H0, inventory=host)
    check, first = play["check"], play["first"]
    chain = "install the chain acl_on_xdp_redirect from {0} -> acl_on_xdp_tx from {0} in stage {1} (slot 2)".format(
        obj, STAGE)
    assert check["status"] == first["status"] == "changed" and check["actions"] == first["actions"] == [
        "write the acl rules of %s (first configuration)" % STAGE, chain], play
    assert "%s: empty" % STAGE in check["diff"]["before"]
    assert re.search(r"%s: acl_on_xdp_redi \(tag \w+\) -> acl_on_xdp_tx \(tag \w+\)" % STAGE,
                     check["diff"]["after"]), check["diff"]
    assert check["diff"]["after"] == first["diff"]["after"], "check mode predicted the chain"
    r = first["stages"][STAGE]
    assert [(c["name"], c["program"]) for c in r["chain"]] == [
        ("acl-blue", "acl_on_xdp_redirect"), ("acl-tx-prog", "acl_on_xdp_tx")]
    assert [c["prog_id"] for c in play["again"]["stages"][STAGE]["chain"]] == [c["prog_id"] for c in r["chain"]]
    assert None not in [c["prog_id"] for c in r["chain"]]
    assert play["again"]["status"] == "ok" and play["again"]["actions"] == [], play
    swapped = play["swapped"]
    assert swapped["status"] == "changed" and len(swapped["actions"]) == 1, play
    assert swapped["actions"][0].startswith("replace acl_on_xdp_redi (tag ")
    assert [c["name"] for c in swapped["stages"][STAGE]["chain"]] == ["acl-tx-prog", "acl-blue"]
    assert play["none"]["cleared"] == [STAGE] and play["none"]["actions"][0].startswith("remove the chain "), play
    assert all(v is None for v in stages.Stages(host_pins(H0)).list().values())
    assert not [f for f in os.listdir(os.path.join(host_pins(H0), "progs")) if f.startswith("stage_")]


# ---------------------------------------------------------------- transit_info


def test_transit_info_reports_programs_endpoints_and_counters(ansible, host, objs):
    play = ansible.play([task("transit_info", {}, name="empty"), _transit(objs, name="load"),
                         task("endpoint", _ep(), name="ep"),
                         task("transit_info", {}, name="info"),
                         task("transit_info", {}, name="check", check_mode=True)], hosts=H0, inventory=host)
    assert play["empty"]["status"] == "ok" and play["empty"]["loaded"] is False, play
    info = play["info"]
    assert info["status"] == "ok" and info["loaded"] is True, play
    assert info["transit"]["iface"] == "eth0" and info["transit"]["prog_id"] == play["load"]["prog_id"]
    assert info["programs"]["transit"]["tag"] == play["load"]["tag"]
    assert [(e["iface"], e["netns"], e["mode"]) for e in info["endpoints"]] == [(EP_IF, EP, "native")]
    assert sorted((a["role"], a["iface"], a["netns"]) for a in info["attachments"]) == [
        ("agent", EP_IF, None), ("pass", "eth0", EP), ("transit", "eth0", None)]
    assert set(abi.COUNTERS) <= set(info["counters"]) and info["stages"][STAGE] is None
    assert info["maps"]["mzr_endpoints"]["entries"] == 0
    assert play["check"]["status"] == "ok" and play["check"]["endpoints"] == info["endpoints"]


# ---------------------------------------------------------------- end to end


HOSTS = {RUN + "h1": ("192.168.151.1", "02:00:c0:a8:97:01"), RUN + "h2": ("192.168.151.2", "02:00:c0:a8:97:02")}
WIRE = RUN + "w"


@pytest.fixture
def two_hosts(ansible, objs):
    """Two hosts (namespaces) whose eth0 plug into a bridge in a wire
    namespace; the bridge ports run the pass program (the transit program
    sends with XDP_TX into the veth). An inventory with one VPC, one network
    bounced by h2, an endpoint on each host."""
    cleanup()
    h1, h2 = sorted(HOSTS)
    for i, (h, (ip, mac)) in enumerate(sorted(HOSTS.items())):
        netlink.bridge_veth(h, "eth0", WIRE, "br0", "p%d" % i, ip="%s/24" % ip, mac=mac)
    with libbpf.BpfObject(os.path.join(objs, "pass.bpf.o")) as o:
        o.load()
        for i in range(len(HOSTS)):
            xdp.attach("p%d" % i, o.program("mzr_pass"), "native", netns=WIRE, via="netlink")
    endpoints = [{"name": "ep1", "ip": "10.0.0.2", "host": h1, "netns": RUN + "e1"},
                 {"name": "ep2", "ip": "10.0.0.3", "host": h2, "netns": RUN + "e2"}]
    vpcs = [{"name": "blue", "vni": 1000, "cidr": "10.0.0.0/16",
             "networks": [{"name": "web", "cidr": "10.0.0.0/24", "bouncers": [h2], "endpoints": endpoints}]}]
    hosts = dict((h, {"mizar_interface": "eth0", "mizar_underlay_ip": ip, "mizar_underlay_mac": mac})
                 for h, (ip, mac) in HOSTS.items())
    inventory = ansible.netns_inventory("two", hosts, all_vars={"mizar_vpcs": vpcs, "mizar_objs": objs})
    yield inventory
    errors = cleanup()
    assert not errors, errors


SITE = [
    {"name": "render", "ansible.builtin.set_fact": {
        "rendered": "{{ hostvars | mizar.transit.render(groups['mizar_hosts']) }}"}, "run_once": True},
    task("transit", {"interface": "eth0", "obj_dir": "{{ mizar_objs }}"}, name="transit"),
    task("endpoint", {"name": "{{ item.name }}", "iface": "{{ item.iface }}", "netns": "{{ item.netns }}",
                      "ip": "{{ item.ip }}", "prefixlen": "{{ item.prefixlen }}", "mac": "{{ item.mac }}",
                      "gateway": "{{ item.gateway }}", "bypass_decap": "{{ item.bypass_decap }}",
                      "substrate_interface": "{{ rendered[inventory_hostname].interface.name }}"}, name="endpoints",
         loop="{{ rendered[inventory_hostname].local_endpoints }}"),
    task("map_state", {"rendered": "{{ rendered[inventory_hostname] }}"}, name="maps"),
]


def _if_cfg_mtu(h):
    with loader.Loader(host_pins(h), None).map(abi.IF_CFG_MAP) as m:
        return abi.decode_if_cfg(m.lookup(bytes(4)))["mtu"]


def test_end_to_end_a_ping_through_a_bouncer(ansible, two_hosts, objs):
    h1, h2 = sorted(HOSTS)
    play = ansible.play(SITE, hosts="mizar_hosts", inventory=two_hosts)
    assert play.rc == 0, play
    assert sorted(play.changed_tasks()) == sorted((h, t) for h in HOSTS for t in ("transit", "endpoints", "maps"))
    assert ping(RUN + "e1", "10.0.0.3") == (3, 3)
    assert ping(RUN + "e2", "10.0.0.2") == (3, 3)

    play = ansible.play(SITE + [task("transit_info", {}, name="info")], hosts="mizar_hosts", inventory=two_hosts)
    assert play.rc == 0 and play.changed_tasks() == [], play
    info = dict((r["host"], r["result"]) for r in play.results("info"))
    assert info[h2]["counters"]["bounce"] + info[h2]["counters"]["agent_encap"] > 0
    assert info[h1]["counters"]["decap"] > 0 and info[h2]["counters"]["decap"] > 0
    ep1 = info[h1]["endpoints"][0]
    assert (ep1["netns"], ep1["vni"], ep1["ip"]) == (RUN + "e1", 1000, "10.0.0.2")

    # the NIC's MTU: in if_cfg (the agent's path MTU) and the endpoint's; a change shows on the next run
    assert [_if_cfg_mtu(h) for h in (h1, h2)] == [1500, 1500]
    netlink.link_set("eth0", netns=h1, mtu=1400)
    play = ansible.play(SITE, hosts="mizar_hosts", inventory=two_hosts)
    assert play.rc == 0 and sorted(play.changed_tasks()) == [(h1, "endpoints"), (h1, "maps")], play
    assert _if_cfg_mtu(h1) == 1400 and netlink.link("eth0", RUN + "e1")["mtu"] == 1350
    assert ansible.play(SITE, hosts="mizar_hosts", inventory=two_hosts).changed_tasks() == []
    assert ping(RUN + "e1", "10.0.0.3") == (3, 3)

    # a stage function on the bouncer's host with real traffic: ICMP to ep2 dropped, then allowed again
    acl = {"stage": STAGE, "object": os.path.join(objs, "functions", "acl.bpf.o"), "function": "acl",
           "config": ACL, "vpcs": {"blue": 1000}}
    play = ansible.play([task("stage", acl, name="acl")], hosts=h2, inventory=two_hosts)
    assert play["acl"]["status"] == "changed", play
    assert ping(RUN + "e1", "10.0.0.3", count=2, timeout=1) == (2, 0)
    play = ansible.play([task("stage", {"stage": STAGE, "state": "absent"}, name="noacl")], hosts=h2,
                        inventory=two_hosts)
    assert play["noacl"]["status"] == "changed", play
    assert ping(RUN + "e1", "10.0.0.3") == (3, 3)

    # teardown through the modules leaves nothing of the overlay
    down = [task("endpoint", {"name": "{{ item.name }}", "iface": "{{ item.iface }}", "netns": "{{ item.netns }}",
                              "state": "absent"}, name="endpoints",
                 loop="{{ rendered[inventory_hostname].local_endpoints }}"),
            task("transit", {"interface": "eth0", "state": "absent"}, name="transit")]
    play = ansible.play(SITE[:1] + down, hosts="mizar_hosts", inventory=two_hosts)
    assert play.rc == 0, play
    for h in HOSTS:
        assert not os.path.exists(host_pins(h)) and xdp_on("eth0", h) is None
    assert not [n for n in nsenter.netns_list() if n in (RUN + "e1", RUN + "e2")]


def _tenants(scope, name, **keywords):
    return task("tenant_state", {"rendered": "{{ rendered[inventory_hostname] }}", "scope": scope}, name=name,
                **keywords)


def test_tenant_state_one_call_per_host_and_make_before_break(ansible, two_hosts, objs, tmp_path):
    """The tenants role's module: a new host's endpoints and entries in one
    call (scope add, nothing pending), predicted exactly by check mode
    (entries of endpoints still to be made planned against placeholders,
    named by their interface); an endpoint leaving the inventory goes in
    the three steps, its host's entries forgotten before its endpoint."""
    h1, h2 = sorted(HOSTS)
    play = ansible.play(SITE[:2] + [_tenants("add", "check", check_mode=True, diff=True), _tenants("add", "add"),
                                    _tenants("all", "again")], hosts="mizar_hosts", inventory=two_hosts)
    assert play.rc == 0, play
    for h in HOSTS:
        check, add, again = (play.results(t, h)[0] for t in ("check", "add", "again"))
        iface = add["result"]["endpoints"][0]["iface"]
        assert check["status"] == add["status"] == "changed" and again["status"] == "ok", play
        assert check["result"]["actions"] == add["result"]["actions"], "check mode predicted the run"
        assert check["result"]["changes"] == add["result"]["changes"] and add["result"]["writes"] > 0
        assert "local on %s" % iface in check["result"]["diff"]["after"], check["result"]["diff"]
        assert check["result"]["diff"]["after"].startswith("endpoints:\n")
        assert not add["result"]["pending"] and add["result"]["unlisted"] == [] and again["result"]["actions"] == []
        assert add["result"]["endpoints"][0]["ifindex"] == netlink.link(iface, h)["index"]
    assert ping(RUN + "e1", "10.0.0.3") == (3, 3)

    # ep2 leaves the inventory: the role's three steps (--check first: nothing done)
    gone = tmp_path / "gone.json"
    vpcs = [{"name": "blue", "vni": 1000, "cidr": "10.0.0.0/16",
             "networks": [{"name": "web", "cidr": "10.0.0.0/24", "bouncers": [h2],
                           "endpoints": [{"name": "ep1", "ip": "10.0.0.2", "host": h1, "netns": RUN + "e1"}]}]}]
    gone.write_text(json.dumps({"mizar_vpcs": vpcs}))
    steps = [_tenants("add", "add", register="made"),
             _tenants("update", "update", register="updated", when="made.pending"),
             _tenants("all", "all", when="updated.pending | default(false)")]
    check = ansible.play(SITE[:1] + steps, hosts="mizar_hosts", inventory=two_hosts,
                         extra=("-e", "@%s" % gone, "--check"))
    assert check.rc == 0 and nsenter.netns_exists(RUN + "e2"), check
    play = ansible.play(SITE[:1] + steps, hosts="mizar_hosts", inventory=two_hosts,
                        extra=("-e", "@%s" % gone, "--diff"))
    assert play.rc == 0, play
    add, last = play.results("add", h2)[0]["result"], play.results("all", h2)[0]["result"]
    assert add["pending"] and [u["netns"] for u in add["unlisted"]] == [RUN + "e2"], add
    assert [a for a in add["actions"] if "network namespace" in a] == [], "add removed an endpoint"
    removal = [i for i, a in enumerate(last["actions"]) if a.endswith("delete network namespace %s" % (RUN + "e2"))]
    writes = [i for i, a in enumerate(last["actions"]) if " slot" in a]
    assert removal and writes and max(writes) < removal[0], last["actions"]
    assert last["diff"]["before"].startswith("maps:\n") and "\nunlisted endpoints:\n" in last["diff"]["before"]
    assert play.results("add", h2)[0]["status"] == "ok" and add["actions"] == [], "add had nothing to do on h2"
    assert play.results("all", h2)[0]["status"] == "changed", play
    assert check.results("all", h2)[0]["result"]["actions"] == last["actions"], "check mode predicted the run"
    assert not nsenter.netns_exists(RUN + "e2")
    again = ansible.play(SITE[:1] + steps, hosts="mizar_hosts", inventory=two_hosts, extra=("-e", "@%s" % gone))
    assert again.rc == 0 and again.changed_tasks() == [], again
    assert ping(RUN + "e1", "10.0.0.3", count=1, timeout=1) == (1, 0)
