"""ops/drift_info without a kernel: which parts are compared and in which
order, the first part with drift ending the comparison, a part that cannot
be read counted as drift with its reason, a missing library named, and a
value that is not a rendering refused. The parts' readers are replaced by
fakes (the real ones run in tests/integration/test_drift.py)."""
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.ops import drift_info, runner

RENDERED = {"host": "h1", "interface": {"name": "eth0", "pin_dir": "/sys/fs/bpf/mizar", "xdp_mode": "native"},
            "transit": {}, "local_endpoints": [], "maps": {}, "functions": [], "vnis": {}}


@pytest.fixture
def parts(monkeypatch):
    """Fake readers: found[part] is what each answers (a list of actions,
    or an exception to raise); asked records the order."""
    found, asked = dict((p, []) for p in drift_info.PARTS), []

    def reader(part):
        def read(spec, facts):
            asked.append(part)
            if isinstance(found[part], Exception):
                raise found[part]
            return found[part]
        return read
    monkeypatch.setattr(drift_info, "READERS", tuple((p, reader(p)) for p in drift_info.PARTS))
    monkeypatch.setattr(runner, "missing_library", lambda needs: None)
    return found, asked


def ensure():
    return drift_info.ensure(drift_info.Spec(RENDERED, {"transit.bpf.o": "00"}))


def test_in_sync_when_no_part_would_change_anything(parts):
    found, asked = parts
    res = ensure()
    assert res["in_sync"] and res["drift"] == {} and not res["changed"] and res["actions"] == []
    assert res["objects_differ"] is False
    assert asked == res["checked"] == ["transit", "endpoints", "maps", "stages", "userspace"]


def test_a_user_space_function_not_running_is_drift(parts):
    found, asked = parts
    found["userspace"] = ["start flows: flowlog in namespace logger"]
    res = ensure()
    assert not res["in_sync"] and res["drift"] == {"userspace": ["start flows: flowlog in namespace logger"]}


def test_the_first_part_with_drift_ends_the_comparison(parts):
    found, asked = parts
    found["endpoints"] = ["create endpoint g1"]
    found["stages"] = ["install acl"]
    res = ensure()
    assert not res["in_sync"] and res["drift"] == {"endpoints": ["create endpoint g1"]}
    assert asked == res["checked"] == ["transit", "endpoints"]


def test_a_part_that_cannot_be_read_is_drift_with_its_reason(parts):
    found, asked = parts
    found["maps"] = RuntimeError("interface 'mz1' does not exist on h1")
    res = ensure()
    assert not res["in_sync"]
    assert res["drift"] == {"maps": ["cannot be compared: interface 'mz1' does not exist on h1"]}


def test_a_missing_library_is_drift_not_a_failure(parts, monkeypatch):
    found, asked = parts
    missing = ("Failed to import the required Python library (pyroute2)", "no module")
    monkeypatch.setattr(runner, "missing_library", lambda needs: missing)
    res = ensure()
    assert not res["in_sync"] and asked == [] and res["checked"] == []
    assert res["drift"] == {"host": ["cannot be compared: Failed to import the required Python library (pyroute2)"]}


@pytest.mark.parametrize("rendered", [None, {}, dict((k, v) for k, v in RENDERED.items() if k != "maps")])
def test_a_value_that_is_not_a_rendering_is_refused(rendered):
    with pytest.raises(drift_info.DriftError, match="is not a host's rendering"):
        drift_info.Spec(rendered)


def test_objects_that_differ_are_said_apart(parts, monkeypatch):
    found, asked = parts

    def transit(spec, facts):
        facts["objects_differ"] = True
        return ["carry the build's objects to /var/lib/mizar/bpf: the host's differ from them"]
    monkeypatch.setattr(drift_info, "READERS", (("transit", transit),) + drift_info.READERS[1:])
    res = ensure()
    assert not res["in_sync"] and res["objects_differ"] and res["checked"] == ["transit"]
