"""ops/tenant_state without a kernel: the order of its two backends' work
(endpoints made before the maps are written, unlisted endpoints removed
only after the maps forgot them, and only with scope all), pending, check
mode's placeholder interfaces, the combined diff, and a value that is not a
rendering refused. ops/endpoint and ops/map_state are replaced by fakes
that record their calls (the real ones run in
tests/integration/test_modules.py)."""
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.ops import endpoint, map_state, tenant_state

EP = {"name": "blue/web/b1", "iface": "mzb1", "netns": "b1", "ip": "10.0.1.10", "prefixlen": 24,
      "mac": "02:00:00:00:01:0a", "gateway": "10.0.1.1", "bypass_decap": False}
RENDERED = {"host": "h1", "interface": {"name": "eth0", "pin_dir": "/sys/fs/bpf/mizar", "xdp_mode": "native"},
            "local_endpoints": [EP, dict(EP, name="blue/web/b2", iface="mzb2", netns="b2", ip="10.0.1.11",
                                         mac="02:00:00:00:01:0b")],
            "maps": {}}
UNLISTED = [{"name": "mzold", "iface": "mzold", "netns": "old1"}]


@pytest.fixture
def calls(monkeypatch):
    """Fakes of the two backends; said["unlisted"] and said["pending"] set
    what they report, log what was asked, in order."""
    said = {"unlisted": [], "pending": False, "log": []}

    def ep_ensure(spec, check_mode=False):
        states = set(e.state for e in spec.endpoints)
        said["log"].append(("endpoints", states.pop(), [e.iface for e in spec.endpoints], check_mode))
        return {"changed": True, "actions": ["%s: made" % e.name for e in spec.endpoints], "endpoints": [],
                "unlisted": said["unlisted"], "diff": {"before": "%s\n" % spec.endpoints[0].iface, "after": "x\n"}}

    def maps_ensure(spec, check_mode=False, planned=None):
        said["log"].append(("maps", spec.scope, planned, check_mode))
        return {"changed": True, "actions": ["publish: write 1 slot of mzr_endpoints"], "changes": [],
                "counts": {}, "writes": 1, "pending": said["pending"], "diff": {"before": "", "after": "e1\n"}}

    monkeypatch.setattr(endpoint, "ensure", ep_ensure)
    monkeypatch.setattr(map_state, "ensure", maps_ensure)
    return said


def run(scope, check_mode=False):
    return tenant_state.ensure(tenant_state.Spec(RENDERED, None, scope), check_mode=check_mode)


def test_endpoints_first_then_the_maps_of_the_scope(calls):
    res = run("add")
    assert calls["log"] == [("endpoints", "present", ["mzb1", "mzb2"], False), ("maps", "add", None, False)]
    assert res["changed"] and not res["pending"]
    assert res["actions"] == ["blue/web/b1: made", "blue/web/b2: made", "publish: write 1 slot of mzr_endpoints"]


def test_unlisted_endpoints_wait_for_scope_all_and_go_after_the_maps(calls):
    calls["unlisted"] = UNLISTED
    for scope in ("add", "update"):
        calls["log"] = []
        res = run(scope)
        assert res["pending"] and res["unlisted"] == UNLISTED and len(calls["log"]) == 2, scope
    calls["log"] = []
    res = run("all")
    assert [c[:2] for c in calls["log"]] == [("endpoints", "present"), ("maps", "all"), ("endpoints", "absent")]
    assert calls["log"][2][2] == ["mzold"] and not res["pending"]
    assert res["actions"][-1] == "mzold: made"
    assert res["diff"]["before"] == "endpoints:\n  mzb1\nunlisted endpoints:\n  mzold\n"
    assert res["diff"]["after"] == "endpoints:\n  x\nmaps:\n  e1\nunlisted endpoints:\n  x\n"


def test_pending_map_work_is_pending(calls):
    calls["pending"] = True
    assert run("add")["pending"]


def test_check_mode_plans_the_maps_against_placeholders_for_the_endpoints(calls):
    run("all", check_mode=True)
    maps = calls["log"][1]
    assert maps[3] and maps[2] == {"mzb1": tenant_state.PLANNED_IFINDEX, "mzb2": tenant_state.PLANNED_IFINDEX + 1}


def test_with_planned_keeps_the_hosts_own_indexes():
    st = {"links": {"eth0": 2, "mzb1": 7}, "mtus": {"eth0": 1500}, "snapshot": None}
    out = map_state.with_planned(st, {"mzb1": 0x7fff0000, "mzb2": 0x7fff0001})
    assert out["links"] == {"eth0": 2, "mzb1": 7, "mzb2": 0x7fff0001} and st["links"] == {"eth0": 2, "mzb1": 7}


@pytest.mark.parametrize("rendered", [None, {}, dict((k, v) for k, v in RENDERED.items() if k != "local_endpoints")])
def test_a_value_that_is_not_a_rendering_is_refused(rendered):
    with pytest.raises(tenant_state.TenantStateError, match="is not a host's rendering"):
        tenant_state.Spec(rendered)


def test_a_bad_endpoint_is_refused_naming_it():
    bad = dict(RENDERED, local_endpoints=[dict(EP, mac="01:00:00:00:00:01")])
    with pytest.raises(endpoint.EndpointError, match=r"^endpoint blue/web/b1 \(endpoints\[0\]\): mac: "):
        tenant_state.Spec(bad)
