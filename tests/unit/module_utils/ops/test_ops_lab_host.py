"""plan() of the lab_host backend on recorded states."""
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.ops import lab_host

from states import lab_spec, state, texts

PORT = lab_host.port_name("mzrecl")


def test_a_fresh_machine_gets_every_step_in_order():
    assert texts(lab_host.plan(lab_spec(), state("lab_host_fresh"))) == [
        "create network namespace mzrecl",
        "create bridge mzrecbr",
        "disable IPv6 on mzrecbr",
        "create veth %s <-> eth0 in mzrecl" % PORT,
        "disable IPv6 on %s" % PORT,
        "disable IPv6 on eth0 in mzrecl",
        "make %s a port of mzrecbr" % PORT,
        "attach XDP program mzr_pass (native) to %s" % PORT,
        "set %s up" % PORT,
        "set eth0 in mzrecl up",
        "set lo in mzrecl up",
        "add address 192.168.79.1/24 to eth0 in mzrecl",
    ]


def test_a_converged_host_gets_an_empty_plan():
    assert lab_host.plan(lab_spec(), state("lab_host_converged")) == []


@pytest.mark.parametrize("edit, step", [
    (lambda st: st["port"].update(master=None), "make %s a port of mzrecbr" % PORT),
    (lambda st: st["interface"].update(up=False), "set eth0 in mzrecl up"),
    (lambda st: st["bridge"].update(up=False), "set bridge mzrecbr up"),
    (lambda st: st.update(lo_up=False), "set lo in mzrecl up"),
    (lambda st: st["interface"].update(addresses=["192.168.79.1/24", "192.168.79.9/24"]),
     "remove address 192.168.79.9/24 from eth0 in mzrecl"),
    (lambda st: st["xdp"].update(tag="0000000000000000"),
     "replace XDP program mzr_pass (native, tag 0000000000000000) on %s with mzr_pass (native, tag d4f8542f2b42fac5)"
     % PORT),
])
def test_one_drifted_attribute_gives_exactly_its_step(edit, step):
    st = state("lab_host_converged")
    edit(st)
    assert texts(lab_host.plan(lab_spec(), st)) == [step]


def test_a_given_mac_is_one_step_and_a_foreign_program_is_refused():
    assert texts(lab_host.plan(lab_spec(mac="02:00:c0:a8:4f:01"), state("lab_host_converged"))) == [
        "set the MAC of eth0 in mzrecl to 02:00:c0:a8:4f:01"]
    st = state("lab_host_converged")
    st["xdp"]["prog_name"] = "foreign"
    with pytest.raises(lab_host.LabError, match="runs XDP program foreign"):
        lab_host.plan(lab_spec(), st)


def test_absent_removes_the_host_and_its_bridge_then_nothing():
    assert texts(lab_host.plan(lab_spec("absent"), state("lab_host_converged"))) == [
        "delete veth %s (and eth0 in mzrecl)" % PORT, "delete network namespace mzrecl",
        "delete bridge mzrecbr (no ports left)"]
    assert lab_host.plan(lab_spec("absent"), state("lab_host_fresh")) == []
