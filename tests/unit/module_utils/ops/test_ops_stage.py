"""plan() of the stage backend on recorded states."""
import os

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.ops import stage

from states import ACL_RULES, OBJS, stage_spec, stage_state, texts

ACL = os.path.join(OBJS, "functions", "acl.bpf.o")
INSTALL = "install acl_on_xdp_redirect from %s in stage on_xdp_redirect (slot 2)" % ACL


def test_a_fresh_slot_gets_its_rules_before_its_program():
    assert texts(stage.plan(stage_spec(), stage_state("stage_fresh"))) == [
        "write the acl rules of on_xdp_redirect (first configuration)", INSTALL]


def test_a_converged_slot_gets_an_empty_plan():
    assert stage.plan(stage_spec(), stage_state("stage_converged")) == []


def test_other_rules_are_exactly_one_step():
    other = {"rules": [dict(ACL_RULES["rules"][0], port=23)]}
    assert texts(stage.plan(stage_spec(config=other), stage_state("stage_converged"))) == [
        "write the acl rules of on_xdp_redirect (changed)"]


def test_another_program_replaces_the_slots_and_keeps_the_maps_it_uses():
    st = stage_state("stage_converged")
    st["want"]["tag"] = "0123456789abcdef"
    assert texts(stage.plan(stage_spec(), st)) == [
        "replace acl_on_xdp_redi (tag b41143fadfb61353) with acl_on_xdp_redirect from %s in stage on_xdp_redirect "
        "(slot 2)" % ACL]
    st["want"]["map_ids"] = st["want"]["map_ids"][:1]  # a program without the acl maps
    assert texts(stage.plan(stage_spec(), st))[1:] == [
        "unpin map %s of the replaced program (no stage uses it any more)" % m
        for m in ("mzr_acl_active", "mzr_acl_sets", "mzr_acl_stats")]


def test_a_lost_program_pin_is_one_step():
    st = stage_state("stage_converged")
    st["slot"]["pinned"] = False
    assert texts(stage.plan(stage_spec(), st)) == ["pin the program of stage on_xdp_redirect again (its pin was lost)"]


def test_absent_empties_the_slot_and_unpins_its_maps():
    assert texts(stage.plan(stage_spec("absent"), stage_state("stage_converged"))) == [
        "remove acl_on_xdp_redi (tag b41143fadfb61353) from stage on_xdp_redirect (slot 2)"] + [
        "unpin map %s (no stage uses it any more)" % m for m in ("mzr_acl_active", "mzr_acl_sets", "mzr_acl_stats")]
    st = stage_state("stage_converged")
    st["in_use"] = [st["private"]["mzr_acl_sets"]]  # another slot's program uses one of them
    assert "unpin map mzr_acl_sets (no stage uses it any more)" not in texts(stage.plan(stage_spec("absent"), st))


def test_without_a_datapath_absent_has_nothing_to_do_and_present_is_refused():
    assert stage.plan(stage_spec("absent"), {"datapath": False}) == []
    with pytest.raises(stage.StageSlotError, match="^pin_dir: no datapath is loaded at /sys/fs/bpf/mzrec/pins"):
        stage.plan(stage_spec(), {"datapath": False})


def test_rules_naming_an_unknown_vpc_are_refused_before_any_step():
    with pytest.raises(stage.StageSlotError, match=r"^config: acl: rules\[0\].vpc: no VPC named 'blue'"):
        stage.plan(stage_spec(vpcs={"red": 200}), stage_state("stage_fresh"))
