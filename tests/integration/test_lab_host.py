"""plugins/module_utils/lab.py (the logic of mizar.transit.lab_host) on the
real kernel, called directly: plan and state, idempotence, honest check
mode, repairs, ownership of the XDP program, absent and the bpffs views."""
import ctypes
import os

import pytest

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf, xdp

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

from ansible_collections.mizar.transit.plugins.module_utils.ops import lab_host as lab

from .conftest import PASS_OBJ, RUN, bpffs_rmtree, remove_lab_host

BRIDGE = RUN + "lb"
ROOT = "/sys/fs/bpf/%s-lh" % RUN


@pytest.fixture
def hosts():
    """Names for lab hosts (RUN + "l1", ...); removes them all afterwards."""
    made = []

    def name(i):
        host = "%sl%d" % (RUN, i)
        made.append(host)
        return host

    yield name
    errors = []
    for host in made:
        errors += remove_lab_host(host, bpffs_root=ROOT)
    for br in (BRIDGE, RUN + "nb"):
        try:
            netlink.link_del(br)
        except netlink.NetlinkError as e:
            errors.append(str(e))
    bpffs_rmtree(ROOT)
    assert not errors, errors


def spec(host, state="present", **kw):
    args = dict(address="192.168.78.%s/24" % host[-1], bridge=BRIDGE, xdp_object=PASS_OBJ, bpffs_root=ROOT)
    args.update(kw)
    if state == "absent":
        args.pop("address")
        args.pop("xdp_object")
    return lab.Spec(host, state=state, **args)


def _libbpf():
    """Our own handle on libbpf, for the two calls the collection's binding
    has no use for (declared here, not on its shared handle)."""
    lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    lib.bpf_prog_load.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                                  ctypes.c_size_t, ctypes.c_void_p]
    lib.bpf_map_create.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_uint32,
                                   ctypes.c_uint32, ctypes.c_void_p]
    return lib


def load_xdp(name, insns):
    """A raw XDP program (list of 8-byte instructions) loaded under name; its fd."""
    code = b"".join(insns)
    buf = ctypes.create_string_buffer(code, len(code))
    fd = _libbpf().bpf_prog_load(6, name.encode(), b"GPL", ctypes.cast(buf, ctypes.c_void_p), len(insns),
                                 None)  # 6: BPF_PROG_TYPE_XDP
    assert fd >= 0, os.strerror(-fd)
    return fd


R0_2 = bytes.fromhex("b700000002000000")      # r0 = 2 (XDP_PASS)
R0_1 = bytes.fromhex("b700000001000000")      # r0 = 1
R0_ADD_1 = bytes.fromhex("0700000001000000")  # r0 += 1
EXIT = bytes.fromhex("9500000000000000")


def test_port_names_are_short_stable_and_distinct():
    names = [lab.port_name("mzh%d" % i) for i in range(200)]
    assert len(set(names)) == 200
    assert all(n.startswith("ml-") and len(n) == 13 for n in names)
    assert lab.port_name("mzh1") == lab.port_name("mzh1")
    assert lab.port_name("a-very-long-lab-host-name-indeed").startswith("ml-")


@pytest.mark.parametrize("kw, message", [
    (dict(address=None), "address is required"),
    (dict(address="192.168.78.1"), "address is required"),
    (dict(address="192.168.78.300/24"), "address"),
    (dict(xdp_object=None), "xdp_object is required"),
    (dict(xdp_object="/nonexistent/pass.bpf.o"), "does not exist"),
    (dict(interface="much-too-long-name"), "interface"),
    (dict(bridge=lab.port_name("x")), "different names"),
    (dict(mac="01:00:00:00:00:01"), "multicast"),
])
def test_bad_specs_are_refused(kw, message):
    args = dict(address="192.168.78.1/24", xdp_object=PASS_OBJ, bridge="b", port=None)
    args.update(kw)
    if "bridge" in kw:
        args["port"] = kw["bridge"]
    with pytest.raises(lab.LabError, match=message):
        lab.Spec("x", **args)


def test_check_mode_plans_everything_and_does_nothing(hosts):
    h = hosts(1)
    res = lab.ensure(spec(h), check_mode=True)
    assert res["changed"]
    assert res["changes"][0] == "create network namespace %s" % h
    assert "add address 192.168.78.1/24 to eth0 in %s" % h in res["changes"]
    assert not nsenter.netns_exists(h) and netlink.link(BRIDGE) is None and netlink.link(lab.port_name(h)) is None
    assert res["diff"]["before"]["netns"] is None and res["diff"]["after"]["netns"] == h


def test_present_then_present_again_is_a_no_op(hosts):
    h = hosts(1)
    first = lab.ensure(spec(h))
    assert first["changed"] and first["netns"] == h and first["xdp"]["prog_name"] == "mzr_pass"
    assert first["diff"]["after"] == lab.desired(spec(h), lab.read(spec(h)))
    again = lab.ensure(spec(h))
    assert not again["changed"] and again["changes"] == []
    assert again["diff"]["before"] == again["diff"]["after"]
    assert again["xdp"]["prog_id"] == first["xdp"]["prog_id"], "the program was reattached"
    assert not lab.ensure(spec(h), check_mode=True)["changed"]


def test_a_given_mac_is_set_and_kept(hosts):
    h = hosts(1)
    lab.ensure(spec(h, mac="02:00:c0:a8:4e:01"))
    assert netlink.link("eth0", h)["mac"] == "02:00:c0:a8:4e:01"
    res = lab.ensure(spec(h, mac="02:00:c0:a8:4e:02"))
    assert res["changes"] == ["set the MAC of eth0 in %s to 02:00:c0:a8:4e:02" % h]
    assert not lab.ensure(spec(h, mac="02:00:c0:a8:4e:02"))["changed"]


def test_a_broken_host_is_repaired(hosts):
    h = hosts(1)
    lab.ensure(spec(h))
    netlink.link_set("eth0", netns=h, up=False)
    netlink.link_set(lab.port_name(h), nomaster=True)
    netlink.addr_add("eth0", "192.168.78.200/24", netns=h)
    res = lab.ensure(spec(h))
    assert sorted(res["changes"]) == sorted([
        "make %s a port of %s" % (lab.port_name(h), BRIDGE),
        "set eth0 in %s up" % h,
        "remove address 192.168.78.200/24 from eth0 in %s" % h,
    ])
    assert not lab.ensure(spec(h))["changed"]


def test_unpaired_veth_ends_are_replaced(hosts):
    h = hosts(1)
    lab.ensure(spec(h))
    netlink.link_del("eth0", netns=h)  # takes the port with it
    netlink.veth_add("eth0", "stray", netns=h)  # an eth0 that is not the lab's
    res = lab.ensure(spec(h))
    assert res["changes"][0].startswith("delete the unpaired veth ends")
    assert "create veth %s <-> eth0 in %s" % (lab.port_name(h), h) in res["changes"]
    assert netlink.link("stray", h) is None
    assert not lab.ensure(spec(h))["changed"]


def test_an_older_pass_program_is_replaced_and_a_foreign_one_refused(hosts):
    h = hosts(1)
    lab.ensure(spec(h))
    port = lab.port_name(h)
    before = xdp.query(port)
    older = load_xdp("mzr_pass", [R0_1, R0_ADD_1, EXIT])  # same name, other code
    try:
        xdp.attach(port, older, "native", via="netlink", ours=[before["prog_id"]])
    finally:
        os.close(older)
    res = lab.ensure(spec(h))
    assert len(res["changes"]) == 1 and res["changes"][0].startswith("replace XDP program mzr_pass")
    assert xdp.query(port)["tag"] == lab.program_tag(spec(h))

    foreign = load_xdp("foreign", [R0_2, EXIT])
    try:
        xdp.attach(port, foreign, "native", via="netlink", ours=[xdp.query(port)["prog_id"]])
    finally:
        os.close(foreign)
    with pytest.raises(lab.LabError, match="runs XDP program foreign"):
        lab.ensure(spec(h))
    assert xdp.query(port)["prog_name"] == "foreign", "a foreign program was touched"


def test_a_non_bridge_is_not_taken_for_the_bridge(hosts):
    h = hosts(1)
    netlink.veth_add(RUN + "nb", RUN + "nc")
    with pytest.raises(lab.LabError, match="is not a bridge"):
        lab.ensure(spec(h, bridge=RUN + "nb"))
    assert not nsenter.netns_exists(h)


def test_absent_keeps_the_bridge_while_other_hosts_use_it(hosts):
    h1, h2 = hosts(1), hosts(2)
    lab.ensure(spec(h1))
    lab.ensure(spec(h2))
    res = lab.ensure(spec(h1, "absent"))
    assert res["changes"] == ["delete veth %s (and eth0 in %s)" % (lab.port_name(h1), h1),
                              "delete network namespace %s" % h1]
    assert netlink.link(BRIDGE) is not None
    check = lab.ensure(spec(h2, "absent"), check_mode=True)
    assert "delete bridge %s (no ports left)" % BRIDGE in check["changes"]
    assert nsenter.netns_exists(h2) and netlink.link(BRIDGE) is not None, "check mode removed something"
    lab.ensure(spec(h2, "absent"))
    assert netlink.link(BRIDGE) is None and not nsenter.netns_exists(h2)
    assert not lab.ensure(spec(h2, "absent"))["changed"]


def _pin_map(path):
    fd = _libbpf().bpf_map_create(2, b"mzlabprobe", 4, 4, 1, None)  # 2: BPF_MAP_TYPE_ARRAY
    assert fd >= 0, os.strerror(-fd)
    try:
        libbpf.obj_pin(fd, path)
    finally:
        os.close(fd)


def test_absent_removes_an_empty_view_and_leaves_pins_unless_purged(hosts):
    h1, h2 = hosts(1), hosts(2)
    for h in (h1, h2):
        lab.ensure(spec(h))
        os.makedirs(os.path.join(ROOT, h, "mizar"))  # what the netns connection and site.yml make
    _pin_map(os.path.join(ROOT, h1, "mizar", "probe"))
    os.rmdir(os.path.join(ROOT, h2, "mizar"))

    res = lab.ensure(spec(h1, "absent"))
    assert any("holds mizar" in w for w in res["warnings"]), res["warnings"]
    assert os.path.exists(os.path.join(ROOT, h1, "mizar", "probe"))
    res = lab.ensure(spec(h2, "absent"))
    assert "remove bpffs view %s" % os.path.join(ROOT, h2) in res["changes"]
    assert sorted(os.listdir(ROOT)) == [h1]

    res = lab.ensure(spec(h1, "absent", bpffs_purge=True))
    assert res["changes"][0].startswith("remove bpffs view %s with its 1 entry" % os.path.join(ROOT, h1))
    assert res["changes"][-1] == "remove %s (empty)" % ROOT
    assert not os.path.exists(ROOT)
