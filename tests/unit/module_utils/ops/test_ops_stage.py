"""The plans of the stage backend on recorded states: plan_slot(), one slot's, and plan(), the
module's (the single form, or a list of functions)."""
import copy
import os
import shutil

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.ops import stage

from states import ACL_RULES, OBJS, stage_list_spec, stage_list_state, stage_spec, stage_state, texts

ACL = os.path.join(OBJS, "functions", "acl.bpf.o")
INSTALL = "install acl_on_xdp_redirect from %s in stage on_xdp_redirect (slot 2)" % ACL


def test_a_fresh_slot_gets_its_rules_before_its_program():
    assert texts(stage.plan_slot(stage_spec(), stage_state("stage_fresh"))) == [
        "write the acl rules of on_xdp_redirect (first configuration)", INSTALL]


def test_a_converged_slot_gets_an_empty_plan():
    assert stage.plan_slot(stage_spec(), stage_state("stage_converged")) == []


def test_other_rules_are_exactly_one_step():
    other = {"rules": [dict(ACL_RULES["rules"][0], port=23)]}
    assert texts(stage.plan_slot(stage_spec(config=other), stage_state("stage_converged"))) == [
        "write the acl rules of on_xdp_redirect (changed)"]


def test_another_program_replaces_the_slots_and_keeps_the_maps_it_uses():
    st = stage_state("stage_converged")
    st["want"]["tag"] = "0123456789abcdef"
    assert texts(stage.plan_slot(stage_spec(), st)) == [
        "replace acl_on_xdp_redi (tag b41143fadfb61353) with acl_on_xdp_redirect from %s in stage on_xdp_redirect "
        "(slot 2)" % ACL]
    st["want"]["map_ids"] = st["want"]["map_ids"][:1]  # a program without the acl maps
    assert texts(stage.plan_slot(stage_spec(), st))[1:] == [
        "unpin map %s of the replaced program (no stage uses it any more)" % m
        for m in ("mzr_acl_active", "mzr_acl_sets", "mzr_acl_stats")]


def test_a_lost_program_pin_is_one_step():
    st = stage_state("stage_converged")
    st["slot"]["pinned"] = False
    assert texts(stage.plan_slot(stage_spec(), st)) == ["pin the program of stage on_xdp_redirect again (its pin was lost)"]


def test_absent_empties_the_slot_and_unpins_its_maps():
    assert texts(stage.plan_slot(stage_spec("absent"), stage_state("stage_converged"))) == [
        "remove acl_on_xdp_redi (tag b41143fadfb61353) from stage on_xdp_redirect (slot 2)"] + [
        "unpin map %s (no stage uses it any more)" % m for m in ("mzr_acl_active", "mzr_acl_sets", "mzr_acl_stats")]
    st = stage_state("stage_converged")
    st["in_use"] = [st["private"]["mzr_acl_sets"]]  # another slot's program uses one of them
    assert "unpin map mzr_acl_sets (no stage uses it any more)" not in texts(stage.plan_slot(stage_spec("absent"), st))


def test_without_a_datapath_absent_has_nothing_to_do_and_present_is_refused():
    assert stage.plan_slot(stage_spec("absent"), {"datapath": False}) == []
    with pytest.raises(stage.StageSlotError, match="^pin_dir: no datapath is loaded at /sys/fs/bpf/mzrec/pins"):
        stage.plan_slot(stage_spec(), {"datapath": False})


def test_rules_naming_an_unknown_vpc_are_refused_before_any_step():
    with pytest.raises(stage.StageSlotError, match=r"^config: acl: rules\[0\].vpc: no VPC named 'blue'"):
        stage.plan_slot(stage_spec(vpcs={"red": 200}), stage_state("stage_fresh"))


# ---------------------------------------------------------------- the list form (functions)

MAPS = ("mzr_acl_active", "mzr_acl_sets", "mzr_acl_stats")
REMOVE = "remove acl_on_xdp_redi (tag b41143fadfb61353) from stage on_xdp_redirect (slot 2)"


def acl_item(stage_name="on_xdp_redirect", **kw):
    item = dict(name="acl-blue", stage=stage_name, object=ACL, function="acl", config=ACL_RULES)
    item.update(kw)
    return item


def at_tx(name):
    """A recorded redirect slot's state, as the tx slot would hold it."""
    st = stage_state(name)
    st["want"]["name"] = "acl_on_xdp_tx"
    if st["slot"]:
        st["slot"]["name"], st["slot"]["slot"] = "acl_on_xdp_tx", 0
    return st


def test_a_list_of_one_plans_as_the_single_form():
    assert texts(stage.plan(stage_list_spec([acl_item()]), stage_list_state(on_xdp_redirect="stage_fresh"))) == \
        texts(stage.plan_slot(stage_spec(), stage_state("stage_fresh")))
    assert stage.plan(stage_list_spec([acl_item()]), stage_list_state(on_xdp_redirect="stage_converged")) == []


def test_one_function_at_two_stages_writes_its_rules_once():
    spec = stage_list_spec([acl_item(), acl_item("on_xdp_tx", name="acl-tx")])
    state = stage_list_state(on_xdp_redirect="stage_fresh", on_xdp_tx=at_tx("stage_fresh"))
    assert texts(stage.plan(spec, state)) == [
        "write the acl rules of on_xdp_redirect (first configuration)", INSTALL,
        "install acl_on_xdp_tx from %s in stage on_xdp_tx (slot 0)" % ACL]


def test_exclusive_empties_an_unclaimed_slot_and_keeps_the_maps_a_claimed_one_uses():
    state = stage_list_state(on_xdp_tx=at_tx("stage_converged"), on_xdp_redirect="stage_converged")
    assert stage.plan(stage_list_spec([acl_item()]), state) == [], "without exclusive, the other slot stays"
    plans = stage.slot_plans(stage_list_spec([acl_item()], exclusive=True), state)
    assert [(p.spec.stage, p.cleared, texts(p.steps)) for p in plans] == [
        ("on_xdp_redirect", False, []),
        ("on_xdp_tx", True, ["remove acl_on_xdp_tx (tag b41143fadfb61353) from stage on_xdp_tx (slot 0)"])]
    assert plans[1].spec.label == "stage on_xdp_tx (not in functions)"


def test_exclusive_with_nothing_listed_unpins_each_shared_map_once_after_the_last_slot():
    state = stage_list_state(on_xdp_tx=at_tx("stage_converged"), on_xdp_redirect="stage_converged")
    assert texts(stage.plan(stage_list_spec([], exclusive=True), state)) == [
        "remove acl_on_xdp_tx (tag b41143fadfb61353) from stage on_xdp_tx (slot 0)", REMOVE] + [
        "unpin map %s (no stage uses it any more)" % m for m in MAPS]


def test_a_slot_emptied_in_the_same_plan_does_not_keep_maps_in_use():
    st = stage_state("stage_converged")
    st["in_use"] = sorted(st["private"].values())  # what the tx slot's program uses now, which the plan removes
    state = stage_list_state(on_xdp_tx=at_tx("stage_converged"), on_xdp_redirect=st)
    spec = stage_list_spec([acl_item(state="absent"), dict(stage="on_xdp_tx", state="absent")])
    assert texts(stage.plan(spec, state))[2:] == ["unpin map %s (no stage uses it any more)" % m for m in MAPS]


def test_list_errors_name_the_item(tmp_path):
    copies = []
    for i in range(9):
        copies.append(str(tmp_path / ("f%d.bpf.o" % i)))
        shutil.copy(ACL, copies[-1])
    with pytest.raises(stage.StageSlotError, match=r"^function b \(functions\[1\]\): program: acl_on_xdp_redirect from "
                                                   r".*acl.bpf.o is in the chain of stage on_xdp_redirect already, as "
                                                   r"function acl-blue \(functions\[0\]\); a chain runs a program "
                                                   r"once$"):
        stage_list_spec([acl_item(), acl_item(name="b")])
    with pytest.raises(stage.StageSlotError, match=r"^function f8 \(functions\[8\]\): stage: on_xdp_redirect would run "
                                                   r"9 functions; a stage's chain holds 8 at most$"):
        stage_list_spec([acl_item(name="f%d" % i, object=copies[i], program="acl_on_xdp_redirect") for i in range(9)])
    with pytest.raises(stage.StageSlotError, match=r"^functions\[0\]: program: .* has no program 'nope'"):
        stage_list_spec([acl_item(name=None, program="nope")])
    with pytest.raises(stage.StageSlotError, match=r"^vpcs\.red: 'x' is not a VNI"):
        stage_list_spec([acl_item()], vpcs={"red": "x"})
    with pytest.raises(stage.StageSlotError, match=r"^function acl-blue \(functions\[0\]\): config: acl: "
                                                   r"rules\[0\]\.vpc: no VPC named 'blue'"):
        stage.plan(stage_list_spec([acl_item()], vpcs={"red": 200}), stage_list_state(on_xdp_redirect="stage_fresh"))
    with pytest.raises(stage.StageSlotError, match=r"^function acl-blue \(functions\[0\]\): pin_dir: no datapath"):
        stage.plan(stage_list_spec([acl_item()]), {"datapath": False})
    assert stage.plan(stage_list_spec([acl_item(state="absent")], exclusive=True), {"datapath": False}) == []


def test_a_rendering_gives_the_list_its_functions_and_vnis():
    """`rendered`: a host's rendering as the site playbook makes it; only a
    shipped function names the function whose rules are written."""
    acl = os.path.join(OBJS, "functions", "acl.bpf.o")
    rendered = {"vnis": {"blue": 100, "red": 200}, "functions": [
        {"name": "acl-blue", "stage": "on_xdp_redirect", "object": acl, "program": "acl", "shipped": True,
         "config": ACL_RULES},
        {"name": "mine", "stage": "on_xdp_tx", "object": acl, "program": "acl.c", "shipped": False, "config": {}}]}
    spec = stage.Spec.from_params(dict(rendered=rendered, exclusive=True, pin_dir="/sys/fs/bpf/mzrec/pins",
                                       state="present", functions=None, vpcs={}, stage=None, object=None,
                                       program=None, function=None, config={}))
    assert [(i.name, i.stage, i.object, i.function) for i in spec.items] == [
        ("acl-blue", "on_xdp_redirect", acl, "acl"), ("mine", "on_xdp_tx", acl, None)]
    assert spec.items[0].config == ACL_RULES and spec.vpcs == {"blue": 100, "red": 200}
    assert spec.exclusive and not spec.single


# ---------------------------------------------------------------- chains: several functions in one stage


def _chain_state(chain, fresh=False):
    """A host whose on_xdp_redirect runs chain (recorded programs, by
    name), and the items' states of the ACL's two programs, in that order."""
    converged = stage_state("stage_fresh" if fresh else "stage_converged")
    tx = dict(copy.deepcopy(converged["want"]), name="acl_on_xdp_tx", tag="0123456789abcdef")
    progs = {"acl_on_xdp_redi": converged["slot"], "acl_on_xdp_tx": dict(copy.deepcopy(converged["slot"]) if
                                                                         converged["slot"] else {}, **tx)}
    st = dict(copy.deepcopy(converged), chain=[progs[n] for n in chain])
    st["slot"] = st["chain"][0] if st["chain"] else None
    state = stage_list_state(on_xdp_redirect=st)
    state["items"] = [converged, dict(converged, want=tx)]
    return state


def test_two_functions_in_one_stage_are_one_chain_swapped_in_one_step():
    spec = stage_list_spec([acl_item(), acl_item(name="acl-tx-prog", program="acl_on_xdp_tx")])
    assert texts(stage.plan(spec, _chain_state([], fresh=True))) == [
        "write the acl rules of on_xdp_redirect (first configuration)",
        "install the chain acl_on_xdp_redirect from {0} -> acl_on_xdp_tx from {0} in stage on_xdp_redirect "
        "(slot 2)".format(ACL)], "the rules once, then the whole chain"
    assert texts(stage.plan(spec, _chain_state(["acl_on_xdp_redi"]))) == [
        "replace acl_on_xdp_redi (tag b41143fadfb61353) with the chain acl_on_xdp_redirect from {0} -> "
        "acl_on_xdp_tx from {0} in stage on_xdp_redirect (slot 2)".format(ACL)]
    assert stage.plan(spec, _chain_state(["acl_on_xdp_redi", "acl_on_xdp_tx"])) == [], "the same chain: no step"
    assert texts(stage.plan(spec, _chain_state(["acl_on_xdp_tx", "acl_on_xdp_redi"]))) == [
        "replace acl_on_xdp_tx (tag 0123456789abcdef) -> acl_on_xdp_redi (tag b41143fadfb61353) with the chain "
        "acl_on_xdp_redirect from {0} -> acl_on_xdp_tx from {0} in stage on_xdp_redirect (slot 2)".format(ACL)], \
        "the order is part of the chain"


def test_a_function_that_never_goes_on_is_refused_before_another_and_allowed_last():
    """A program that does not call mzr_stage_next() ends its chain for
    every packet: the function after it would never run. Refused before
    any step, naming the item, the program and the function it would
    starve; the same function last in its stage is fine."""
    state = _chain_state([], fresh=True)
    state["items"][0] = dict(state["items"][0], goes_on=False)
    spec = stage_list_spec([acl_item(name="ends"), acl_item(name="after", program="acl_on_xdp_tx")])
    with pytest.raises(stage.StageSlotError) as e:
        stage.plan(spec, state)
    assert str(e.value) == (
        "function ends (functions[0]): program: acl_on_xdp_redirect from %s never lets a packet go on (it does not "
        "call mzr_stage_next(): it does not use the stage table mzr_stages), so function after (functions[1]) after "
        "it in the chain of stage on_xdp_redirect would never see a packet; put it last in its stage" % ACL)
    state["items"] = state["items"][::-1]
    spec = stage_list_spec([acl_item(name="after", program="acl_on_xdp_tx"), acl_item(name="ends")])
    assert texts(stage.plan(spec, state))[-1].startswith("install the chain acl_on_xdp_tx from %s -> " % ACL)
    one = _chain_state([], fresh=True)
    one["items"] = [dict(one["items"][0], goes_on=False)]
    assert len(stage.plan(stage_list_spec([acl_item(name="ends")]), one)) == 2, "alone in its stage: its rules, itself"


def test_goes_on_is_the_use_of_the_stage_table():
    assert stage.goes_on({"map_ids": [3, 7, 9]}, 7)
    assert not stage.goes_on({"map_ids": [3, 9]}, 7)
    assert not stage.goes_on({"map_ids": [3, 9]}, None), "no stage table pinned: nothing goes on"


def test_a_chain_is_emptied_in_one_step_and_a_lost_pin_repinned():
    state = _chain_state(["acl_on_xdp_redi", "acl_on_xdp_tx"])
    plans = stage.slot_plans(stage_list_spec([], exclusive=True), state)
    assert [(p.stage, p.cleared, texts(p.steps)) for p in plans] == [("on_xdp_redirect", True, [
        "remove the chain acl_on_xdp_redi (tag b41143fadfb61353) -> acl_on_xdp_tx (tag 0123456789abcdef) from stage "
        "on_xdp_redirect (slot 2)"] + ["unpin map %s (no stage uses it any more)" % m for m in MAPS])]
    state["slots"]["on_xdp_redirect"]["chain"][1]["pinned"] = False
    spec = stage_list_spec([acl_item(), acl_item(name="acl-tx-prog", program="acl_on_xdp_tx")])
    assert texts(stage.plan(spec, state)) == ["pin the programs of stage on_xdp_redirect again (a pin was lost)"]


def test_slots_an_interrupted_swap_left_are_emptied_and_only_those():
    state = _chain_state(["acl_on_xdp_redi", "acl_on_xdp_tx"])
    state["slots"]["on_xdp_redirect"]["stale"] = [42, 47]
    spec = stage_list_spec([acl_item(), acl_item(name="acl-tx-prog", program="acl_on_xdp_tx")])
    assert texts(stage.plan(spec, state)) == [
        "empty 2 unreachable slots of stage on_xdp_redirect (left by an interrupted swap)"]
    state["slots"]["on_xdp_redirect"]["chain"] = state["slots"]["on_xdp_redirect"]["chain"][:1]
    assert len(stage.plan(spec, state)) == 1, "a swap empties them anyway: no step of its own"
