"""The stage module's list form (ops/stage.py, `functions`) on real prog
arrays: a host's functions in one call, planned whole before any step,
exclusive emptying the slots the list leaves out, check mode predicting
the real run step for step."""
import os

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import stages
from ansible_collections.mizar.transit.plugins.module_utils.ops import stage

from .conftest import BPF_OUT

ACL_OBJ = os.path.join(BPF_OUT, "functions", "acl.bpf.o")
ACL_MAPS = ["mzr_acl_active", "mzr_acl_sets", "mzr_acl_stats"]
RULES = {"rules": [{"vpc": "blue", "src": "0.0.0.0/0", "dst": "10.0.1.0/24", "protocol": "tcp", "port": 22,
                    "action": "drop"}]}
VPCS = {"blue": 100}


def acl(stage_name="on_xdp_redirect", name="acl-blue", **kw):
    item = dict(name=name, stage=stage_name, object=ACL_OBJ, function="acl", config=RULES)
    item.update(kw)
    return item


def counting(stage_obj, stage_name="on_xdp_pass", name="count"):
    return dict(name=name, stage=stage_name, object=stage_obj, program="stage_count")


def spec(pin_dir, functions, exclusive=False, vpcs=None, state="present"):
    params = dict(functions=functions, exclusive=exclusive, vpcs=VPCS if vpcs is None else vpcs, pin_dir=pin_dir,
                  state=state, stage=None, object=None, program=None, function=None, config={})
    return stage.Spec.from_params(params)


def run(pin_dir, functions, check_mode=False, **kw):
    return stage.ensure(spec(pin_dir, functions, **kw), check_mode=check_mode)


def slots(pin_dir):
    return dict((s, p["name"]) for s, p in stages.Stages(pin_dir).list().items() if p)


def maps(pin_dir):
    return sorted(os.listdir(os.path.join(pin_dir, "maps")))


def install_text(obj, prog, stage_name):
    return "install %s from %s in stage %s (slot %d)" % (prog, obj, stage_name, stage.abi.STAGES[stage_name])


def test_two_functions_in_one_call_then_a_rerun_changes_nothing(datapath, stage_obj):
    fns = [acl(), counting(stage_obj)]
    want = ["write the acl rules of on_xdp_redirect (first configuration)",
            install_text(ACL_OBJ, "acl_on_xdp_redirect", "on_xdp_redirect"),
            install_text(stage_obj, "stage_count", "on_xdp_pass")]
    check = run(datapath.pin_dir, fns, check_mode=True)
    assert (check["changed"], check["actions"]) == (True, want)
    assert slots(datapath.pin_dir) == {} and not set(ACL_MAPS + ["mzt_stage_hits"]) & set(maps(datapath.pin_dir)), \
        "check mode changed the host"

    res = run(datapath.pin_dir, fns)
    assert (res["changed"], res["actions"]) == (True, check["actions"])
    assert slots(datapath.pin_dir) == {"on_xdp_redirect": "acl_on_xdp_redi", "on_xdp_pass": "stage_count"}
    assert set(ACL_MAPS + ["mzt_stage_hits"]) <= set(maps(datapath.pin_dir))
    r = res["stages"]["on_xdp_redirect"]
    assert (r["name"], r["changed"], r["config_changed"], r["config"]) == ("acl-blue", True, True, RULES)
    assert r["prog_id"] == stages.Stages(datapath.pin_dir).list()["on_xdp_redirect"]["prog_id"]
    assert r["tag"] == check["stages"]["on_xdp_redirect"]["tag"]
    assert res["stages"]["on_xdp_pass"]["program"] == "stage_count" and res["cleared"] == []
    assert sorted(res["stages"]) == ["on_xdp_pass", "on_xdp_redirect"]
    assert "on_xdp_tx: empty" in res["diff"]["before"] and "on_xdp_pass: stage_count" in res["diff"]["after"]

    again = run(datapath.pin_dir, fns)
    assert (again["changed"], again["actions"]) == (False, [])
    assert again["diff"]["before"] == again["diff"]["after"] == res["diff"]["after"]
    assert again["stages"]["on_xdp_redirect"]["config"] == RULES
    assert run(datapath.pin_dir, fns, check_mode=True)["actions"] == []


def test_a_config_change_of_one_item_changes_only_that(datapath, stage_obj):
    run(datapath.pin_dir, [acl(), counting(stage_obj)])
    ids = dict((s, p["prog_id"]) for s, p in stages.Stages(datapath.pin_dir).list().items() if p)
    other = {"rules": [dict(RULES["rules"][0], port=23)]}
    fns = [acl(config=other), counting(stage_obj)]
    check = run(datapath.pin_dir, fns, check_mode=True)
    res = run(datapath.pin_dir, fns)
    assert res["actions"] == check["actions"] == ["write the acl rules of on_xdp_redirect (changed)"]
    assert res["stages"]["on_xdp_redirect"]["changed"] and not res["stages"]["on_xdp_pass"]["changed"]
    assert res["stages"]["on_xdp_redirect"]["config"] == other
    assert dict((s, p["prog_id"]) for s, p in stages.Stages(datapath.pin_dir).list().items() if p) == ids
    assert "port: 22" in res["diff"]["before"] and "port: 23" in res["diff"]["after"]


def test_exclusive_empties_what_the_list_leaves_out_and_its_private_maps(datapath, stage_obj):
    run(datapath.pin_dir, [acl(), counting(stage_obj)])
    fns = [acl()]
    kept = run(datapath.pin_dir, fns)
    assert (kept["changed"], kept["cleared"]) == (False, []), "without exclusive the other slot stays"
    assert slots(datapath.pin_dir) == {"on_xdp_redirect": "acl_on_xdp_redi", "on_xdp_pass": "stage_count"}

    check = run(datapath.pin_dir, fns, check_mode=True, exclusive=True)
    assert "mzt_stage_hits" in maps(datapath.pin_dir) and "on_xdp_pass" in slots(datapath.pin_dir)
    res = run(datapath.pin_dir, fns, exclusive=True)
    assert res["actions"] == check["actions"]
    assert res["actions"][0].startswith("remove stage_count (tag ") and res["actions"][0].endswith(
        ") from stage on_xdp_pass (slot 1)")
    assert res["actions"][1:] == ["unpin map mzt_stage_hits (no stage uses it any more)"]
    assert (res["cleared"], check["cleared"]) == (["on_xdp_pass"], ["on_xdp_pass"])
    cleared = res["stages"]["on_xdp_pass"]
    assert (cleared["name"], cleared["state"], cleared["removed_maps"]) == (None, "absent", ["mzt_stage_hits"])
    assert slots(datapath.pin_dir) == {"on_xdp_redirect": "acl_on_xdp_redi"}
    assert "mzt_stage_hits" not in maps(datapath.pin_dir) and set(ACL_MAPS) <= set(maps(datapath.pin_dir))
    assert not os.path.exists(stages.Layout(datapath.pin_dir).stage("on_xdp_pass"))
    again = run(datapath.pin_dir, fns, exclusive=True)
    assert (again["changed"], again["cleared"]) == (False, [])


def test_one_function_at_two_stages_writes_its_rules_once_and_its_maps_go_once(datapath):
    fns = [acl(), acl("on_xdp_tx", name="acl-tx")]
    check = run(datapath.pin_dir, fns, check_mode=True)
    res = run(datapath.pin_dir, fns)
    assert res["actions"] == check["actions"] == [
        "write the acl rules of on_xdp_redirect (first configuration)",
        install_text(ACL_OBJ, "acl_on_xdp_redirect", "on_xdp_redirect"),
        install_text(ACL_OBJ, "acl_on_xdp_tx", "on_xdp_tx")]
    assert [res["stages"][s]["config"] for s in ("on_xdp_redirect", "on_xdp_tx")] == [RULES, RULES]
    assert run(datapath.pin_dir, fns)["changed"] is False

    # the rules live in maps both stages share: removing one stage keeps them
    res = run(datapath.pin_dir, fns[1:], exclusive=True)
    assert res["cleared"] == ["on_xdp_redirect"] and res["stages"]["on_xdp_redirect"]["removed_maps"] == []
    assert set(ACL_MAPS) <= set(maps(datapath.pin_dir)) and res["stages"]["on_xdp_tx"]["config"] == RULES

    run(datapath.pin_dir, fns)
    check = run(datapath.pin_dir, [], check_mode=True, exclusive=True)
    res = run(datapath.pin_dir, [], exclusive=True)
    assert res["actions"] == check["actions"]
    assert [a.split(" (tag ")[0] for a in res["actions"][:2]] == ["remove acl_on_xdp_tx", "remove acl_on_xdp_redi"]
    assert res["actions"][2:] == ["unpin map %s (no stage uses it any more)" % m for m in ACL_MAPS]
    assert res["cleared"] == ["on_xdp_tx", "on_xdp_redirect"], "in slot order"
    assert res["stages"]["on_xdp_redirect"]["removed_maps"] == ACL_MAPS, "unpinned by the last slot that used them"
    assert res["stages"]["on_xdp_tx"]["removed_maps"] == []
    assert slots(datapath.pin_dir) == {} and not set(ACL_MAPS) & set(maps(datapath.pin_dir))


def test_a_refused_item_is_named_and_nothing_is_applied(datapath, stage_obj):
    with pytest.raises(stage.StageSlotError) as e:
        spec(datapath.pin_dir, [acl(name="acl"), acl()])
    assert str(e.value) == ("function acl-blue (functions[1]): program: acl_on_xdp_redirect from %s is in the chain of "
                            "stage on_xdp_redirect already, as function acl (functions[0]); a chain runs a program "
                            "once" % ACL_OBJ)
    with pytest.raises(stage.StageSlotError, match=r"^function count \(functions\[1\]\): program: .* has no program "
                                                   r"'nope'"):
        spec(datapath.pin_dir, [acl(), dict(counting(stage_obj), program="nope")])
    with pytest.raises(stage.StageSlotError, match=r"^functions\[0\]: object is required with state=present"):
        spec(datapath.pin_dir, [dict(stage="on_xdp_tx")])
    with pytest.raises(stage.StageSlotError, match=r"^function acl-tx \(functions\[1\]\): config: differs from the "
                                                   r"config of function acl-blue \(functions\[0\]\), which runs acl"):
        spec(datapath.pin_dir, [acl(), acl("on_xdp_tx", name="acl-tx", config={"rules": []})])

    # refused while planning, after an item that could be done: nothing is done
    with pytest.raises(stage.StageSlotError, match=r"^function acl-blue \(functions\[1\]\): config: acl: "
                                                   r"rules\[0\]\.vpc: no VPC named 'blue'"):
        run(datapath.pin_dir, [counting(stage_obj), acl()], vpcs={"red": 200})
    assert slots(datapath.pin_dir) == {} and "mzt_stage_hits" not in maps(datapath.pin_dir)


def test_a_function_that_never_goes_on_runs_last_or_not_at_all(datapath, stage_obj):
    """read() tells from the loaded program whether it calls
    mzr_stage_next() (it uses the stage table): the shipped functions do,
    stage_count (returns XDP_DROP) does not. Placed before another function
    it is refused, in check mode too, and nothing is applied; last, it runs."""
    rl = os.path.join(BPF_OUT, "functions", "ratelimit.bpf.o")
    fns = [acl(), dict(name="rl", stage="on_xdp_redirect", object=rl, function="ratelimit", config={"limits": []}),
           counting(stage_obj, "on_xdp_redirect")]
    state = stage.read(spec(datapath.pin_dir, fns))
    assert [i["goes_on"] for i in state["items"]] == [True, True, False]

    starved = [counting(stage_obj, "on_xdp_redirect"), acl()]
    for check_mode in (True, False):
        with pytest.raises(stage.StageSlotError) as e:
            run(datapath.pin_dir, starved, check_mode=check_mode)
        assert str(e.value) == (
            "function count (functions[0]): program: stage_count from %s never lets a packet go on (it does not call "
            "mzr_stage_next(): it does not use the stage table mzr_stages), so function acl-blue (functions[1]) after "
            "it in the chain of stage on_xdp_redirect would never see a packet; put it last in its stage" % stage_obj)
    assert slots(datapath.pin_dir) == {} and not set(ACL_MAPS) & set(maps(datapath.pin_dir)), "nothing was applied"

    res = run(datapath.pin_dir, [acl(), counting(stage_obj, "on_xdp_redirect")])
    assert res["changed"]
    assert [p["name"] for p in stages.Stages(datapath.pin_dir).list()["on_xdp_redirect"]["chain"]] == [
        "acl_on_xdp_redi", "stage_count"]


def test_without_a_datapath_absent_is_nothing_to_do_and_present_is_refused(pin_dir, stage_obj):
    res = run(pin_dir, [dict(stage="on_xdp_tx", name="gone")], state="absent", exclusive=True)
    assert (res["changed"], res["actions"], res["cleared"]) == (False, [], [])
    with pytest.raises(stage.StageSlotError, match=r"^function count \(functions\[0\]\): pin_dir: no datapath"):
        run(pin_dir, [counting(stage_obj)])
