"""XDP attach/replace/detach/query on a real veth, by link and by netlink."""
import errno
import os

import pytest

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf, xdp

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink


@pytest.fixture
def progs(stage_obj, pin_dir):
    """Four distinct loaded XDP programs (the stage test object)."""
    obj = libbpf.BpfObject(stage_obj, pin_root=pin_dir)
    obj.load()
    yield dict((n, obj.program(n)) for n in ("stage_drop", "stage_pass", "stage_aborted", "stage_tx"))
    obj.close()


def test_attach_query_replace_detach_by_link(veth, progs, pin_dir):
    pin = os.path.join(pin_dir, "link_a0")
    a, b = progs["stage_drop"], progs["stage_pass"]

    assert xdp.query("a0", netns=veth) == {
        "ifindex": netlink.ifindex("a0", veth), "attached": False, "prog_id": 0, "prog_name": None,
        "tag": None, "mode": None, "via": None, "link_id": 0}

    res = xdp.attach("a0", a, "native", netns=veth, link_pin=pin)
    assert (res["changed"], res["action"], res["via"]) == (True, "attached", "link")
    q = xdp.query("a0", netns=veth, link_pin=pin)
    assert q["attached"] and q["mode"] == "native" and q["via"] == "link"
    assert q["prog_name"] == "stage_drop" and q["prog_id"] == a.info()["id"] and q["tag"] == a.info()["tag"]
    assert libbpf.pin_kind(pin) == "link"
    link_id = q["link_id"]
    assert link_id

    # by index works the same, and the same program again changes nothing
    res = xdp.attach(q["ifindex"], a, "native", netns=veth, link_pin=pin)
    assert (res["changed"], res["action"]) == (False, "unchanged")

    res = xdp.attach("a0", b, "native", netns=veth, link_pin=pin)
    assert (res["changed"], res["action"], res["via"]) == (True, "replaced", "link")
    q = xdp.query("a0", netns=veth, link_pin=pin)
    assert q["prog_id"] == b.info()["id"] and q["link_id"] == link_id, "replace must keep the link"

    # the replace is a compare-and-swap: a stale expectation is refused
    lfd = libbpf.obj_get(pin)
    try:
        with pytest.raises(libbpf.BpfError) as e:
            libbpf.link_update(lfd, progs["stage_tx"].fd, old_prog_fd=a.fd)
        assert e.value.errno == errno.EPERM
    finally:
        os.close(lfd)
    assert xdp.query("a0", netns=veth)["prog_id"] == b.info()["id"]

    # a link is found even without its pin path
    assert xdp.query("a0", netns=veth)["via"] == "link"

    res = xdp.detach("a0", netns=veth, link_pin=pin)
    assert (res["changed"], res["action"]) == (True, "detached")
    assert not xdp.query("a0", netns=veth)["attached"]
    assert not os.path.exists(pin)
    res = xdp.detach("a0", netns=veth, link_pin=pin)
    assert (res["changed"], res["action"]) == (False, "absent")


def test_mode_is_explicit_and_switch_is_reported(veth, progs, pin_dir):
    pin = os.path.join(pin_dir, "link_a0")
    a, b = progs["stage_drop"], progs["stage_pass"]
    xdp.attach("a0", a, "native", netns=veth, link_pin=pin)

    with pytest.raises(xdp.ModeMismatchError, match="native mode, generic was requested"):
        xdp.attach("a0", b, "generic", netns=veth, link_pin=pin)
    assert xdp.query("a0", netns=veth)["prog_id"] == a.info()["id"], "refused request changed nothing"

    res = xdp.attach("a0", b, "generic", netns=veth, link_pin=pin, switch_mode=True)
    assert (res["action"], res["changed"]) == ("switched", True)
    assert "detach + attach" in res["note"]
    q = xdp.query("a0", netns=veth, link_pin=pin)
    assert (q["mode"], q["prog_id"], q["via"]) == ("generic", b.info()["id"], "link")

    with pytest.raises(xdp.XdpError):
        xdp.attach("a0", b, "offload", netns=veth, link_pin=pin)
    xdp.detach("a0", netns=veth, link_pin=pin)


def test_foreign_program_is_never_replaced_silently(veth, progs, pin_dir):
    pin = os.path.join(pin_dir, "link_a0")
    foreign, mine = progs["stage_aborted"], progs["stage_pass"]
    idx = netlink.ifindex("a0", veth)
    nsenter.run_in_netns(veth, libbpf.xdp_attach, idx, foreign.fd, libbpf.XDP_FLAGS_DRV_MODE)

    with pytest.raises(xdp.ForeignProgramError, match="stage_aborted"):
        xdp.attach("a0", mine, "native", netns=veth, link_pin=pin)
    with pytest.raises(xdp.ForeignProgramError):
        xdp.detach("a0", netns=veth, link_pin=pin)
    q = xdp.query("a0", netns=veth)
    assert (q["prog_id"], q["via"]) == (foreign.info()["id"], "netlink")

    # told to, it takes over
    res = xdp.attach("a0", mine, "native", netns=veth, link_pin=pin, takeover=True)
    assert res["action"] == "replaced" and "foreign" in res["note"]
    assert xdp.query("a0", netns=veth, link_pin=pin)["prog_id"] == mine.info()["id"]
    xdp.detach("a0", netns=veth, link_pin=pin)


def test_netlink_attachments_replace_with_expected_fd(veth, progs):
    a, b, c = progs["stage_drop"], progs["stage_pass"], progs["stage_tx"]
    ours = [p.info()["id"] for p in (a, b, c)]
    res = xdp.attach("a0", a, "native", netns=veth, via="netlink", ours=ours)
    assert (res["action"], res["via"]) == ("attached", "netlink")
    q = xdp.query("a0", netns=veth)
    assert (q["via"], q["link_id"], q["mode"]) == ("netlink", 0, "native")

    # a second plain attach is refused by the kernel (UPDATE_IF_NOEXIST) ...
    idx = q["ifindex"]
    with pytest.raises(libbpf.BpfError):
        nsenter.run_in_netns(veth, xdp._netlink_set, idx, b.fd, libbpf.XDP_FLAGS_DRV_MODE)
    # ... and so is a replace expecting the wrong program (IFLA_XDP_EXPECTED_FD)
    with pytest.raises(libbpf.BpfError) as e:
        nsenter.run_in_netns(veth, xdp._netlink_set, idx, b.fd, libbpf.XDP_FLAGS_DRV_MODE, c.fd)
    assert e.value.errno == errno.EEXIST
    assert xdp.query("a0", netns=veth)["prog_id"] == a.info()["id"]

    res = xdp.attach("a0", b, "native", netns=veth, ours=ours)
    assert (res["action"], res["via"]) == ("replaced", "netlink")
    assert xdp.query("a0", netns=veth)["prog_id"] == b.info()["id"]

    res = xdp.detach("a0", netns=veth, ours=ours)
    assert res["action"] == "detached"
    assert not xdp.query("a0", netns=veth)["attached"]


def test_missing_interface(veth, progs, pin_dir):
    with pytest.raises(xdp.NoInterfaceError, match="no interface nope"):
        xdp.attach("nope", progs["stage_drop"], "native", netns=veth)
    pin = os.path.join(pin_dir, "link_a1")
    xdp.attach("a1", progs["stage_drop"], "native", netns=veth, link_pin=pin)
    netlink.link_del("a1", netns=veth)
    res = xdp.detach("a1", netns=veth, link_pin=pin)
    assert res["action"] == "absent" and res["changed"] and not os.path.exists(pin)


def test_an_identical_program_is_unchanged(veth, stage_obj, pin_dir):
    """The same object loaded again (new program, same tag, same maps) is a
    no-op; the same code on other maps is a real replacement."""
    pin = os.path.join(pin_dir, "link_a0")
    first = libbpf.BpfObject(stage_obj, pin_root=pin_dir).load()
    again = libbpf.BpfObject(stage_obj, pin_root=pin_dir).load()
    other_maps = os.path.join(pin_dir, "other")
    os.mkdir(other_maps)
    elsewhere = libbpf.BpfObject(stage_obj, pin_root=other_maps).load()
    try:
        a, b, c = (o.program("stage_count") for o in (first, again, elsewhere))
        assert a.info()["id"] != b.info()["id"] and a.info()["tag"] == b.info()["tag"] == c.info()["tag"]
        xdp.attach("a0", a, "native", netns=veth, link_pin=pin)
        res = xdp.attach("a0", b, "native", netns=veth, link_pin=pin)
        assert (res["changed"], res["action"]) == (False, "unchanged")
        assert xdp.query("a0", netns=veth)["prog_id"] == a.info()["id"]
        res = xdp.attach("a0", c, "native", netns=veth, link_pin=pin)
        assert (res["changed"], res["action"]) == (True, "replaced")
        assert xdp.query("a0", netns=veth)["prog_id"] == c.info()["id"]
        xdp.detach("a0", netns=veth, link_pin=pin)
    finally:
        for o in (first, again, elsewhere):
            o.close()
