"""ops/runner.run(), the one main() of every module, with a fake
AnsibleModule: the missing-library checks, a backend's own errors (its
message, its details, no traceback), any other failure (the item named, a
traceback), warnings, and the diff with its headers only under --diff.
Then ops/outcome.ensure() alone, as the bpf_build action uses it: the same
result as a plain dict."""
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf
from ansible_collections.mizar.transit.plugins.module_utils.host import netlink
from ansible_collections.mizar.transit.plugins.module_utils.ops import bpf_build, endpoint, lab_host, map_state, outcome, runner
from ansible_collections.mizar.transit.plugins.module_utils.ops import drift_info, stage, steps, tenant_state, transit, transit_info
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError


class Ended(Exception):
    def __init__(self, how, result):
        super(Ended, self).__init__(how)
        self.how, self.result = how, result


class FakeModule:
    """What run() uses of an AnsibleModule."""

    def __init__(self, params, check_mode=False, diff=False):
        self.params, self.check_mode, self._diff = params, check_mode, diff
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    def exit_json(self, **result):
        raise Ended("exit", result)

    def fail_json(self, **result):
        raise Ended("fail", result)


def run(module, backend):
    with pytest.raises(Ended) as ended:
        runner.run(module, backend)
    return ended.value.how, ended.value.result


class Refused(BackendError):
    """A backend's own error."""


class Backend:
    """A backend whose ensure() does what the test says."""

    NEEDS = ()
    ERRORS = (Refused,)

    def __init__(self, outcome):
        self.outcome = outcome
        self.seen = []

    class Spec:
        headers = ("thing (before)", "thing (after)")

        def __init__(self, params):
            self.params = params

        @classmethod
        def from_params(cls, params):
            if params.get("bad"):
                raise Refused("thing t1: bad: not a good value")
            return cls(params)

    @staticmethod
    def context(params):
        return "thing %s" % params["name"]

    def ensure(self, spec, check_mode=False):
        self.seen.append(check_mode)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return dict(self.outcome)


DONE = {"changed": True, "actions": ["make t1"], "diff": {"before": "", "after": "t1\n"}, "warnings": ["careful"]}


def test_a_result_ends_the_module_with_its_warnings_and_no_diff_unless_asked():
    module = FakeModule({"name": "t1"}, check_mode=True)
    backend = Backend(DONE)
    assert run(module, backend) == ("exit", {"changed": True, "actions": ["make t1"]})
    assert module.warnings == ["careful"] and backend.seen == [True]


def test_the_diff_gets_the_backends_headers():
    how, result = run(FakeModule({"name": "t1"}, diff=True), Backend(DONE))
    assert result["diff"] == {"before": "", "after": "t1\n", "before_header": "thing (before)",
                              "after_header": "thing (after)"}


def test_a_backends_own_error_is_its_message_and_details_without_a_traceback():
    how, result = run(FakeModule({"name": "t1"}), Backend(Refused("thing t1: size: too big", {"log": ["a"]})))
    assert (how, result) == ("fail", {"msg": "thing t1: size: too big", "log": ["a"]})
    assert run(FakeModule({"name": "t1", "bad": True}), Backend(DONE)) == (
        "fail", {"msg": "thing t1: bad: not a good value"})


def test_the_backends_errors_share_one_base():
    for backend in (drift_info, endpoint, lab_host, map_state, stage, tenant_state, transit, transit_info):
        assert all(issubclass(cls, BackendError) for cls in backend.ERRORS), backend.__name__
    assert issubclass(steps.StepError, BackendError)
    e = transit.TransitError("interface: eth9 does not exist on this host")
    assert (str(e), e.details) == ("interface: eth9 does not exist on this host", {})
    e = transit.TransitError("loading transit.bpf.o: the verifier refused it", {"verifier_log": ["0: r1 = 0"]})
    assert e.details == {"verifier_log": ["0: r1 = 0"]}


def test_any_other_failure_names_the_item_and_keeps_the_traceback():
    how, result = run(FakeModule({"name": "t1"}), Backend(KeyError("slot")))
    assert how == "fail" and result["msg"] == "thing t1: 'slot'"
    assert "Traceback" in result["exception"] and "KeyError" in result["exception"]


def test_a_missing_pyroute2_fails_before_the_backend_runs(monkeypatch):
    monkeypatch.setattr(netlink, "HAS_PYROUTE2", False)
    monkeypatch.setattr(netlink, "PYROUTE2_IMPORT_ERROR", ImportError("No module named 'pyroute2'"))
    backend = Backend(DONE)
    backend.NEEDS = (runner.PYROUTE2, runner.LIBBPF)
    how, result = run(FakeModule({"name": "t1"}), backend)
    assert how == "fail" and netlink.PYROUTE2_REQUIREMENT in result["msg"] and backend.seen == []
    assert result["exception"] == "No module named 'pyroute2'"


def test_a_missing_libbpf_fails_before_the_backend_runs(monkeypatch):
    def no_libbpf():
        raise libbpf.BpfError("loading libbpf.so.1 (install the libbpf1 package: libbpf 1.0 or newer)", 2)

    monkeypatch.setattr(libbpf, "lib", no_libbpf)
    backend = Backend(DONE)
    backend.NEEDS = (runner.LIBBPF,)
    how, result = run(FakeModule({"name": "t1"}), backend)
    assert how == "fail" and "libbpf.so.1" in result["msg"] and backend.seen == []
    backend.NEEDS = ()  # a controller-side backend does not care
    assert run(FakeModule({"name": "t1"}), backend)[0] == "exit"


def test_real_backends_refuse_bad_input_naming_the_item_and_field(tmp_path):
    params = dict(name="blue/web/ep9", iface="mzx0", netns="blue-ep9", ip="10.0.0.9", prefixlen=24,
                  mac="01:00:00:00:00:09", gateway=None, mtu=None, bypass_decap=False, state="present",
                  endpoints=None, exclusive=False, substrate_interface=None, mode="native", pin_dir="/sys/fs/bpf/x")
    how, result = run(FakeModule(params), endpoint)
    assert how == "fail" and result["msg"].startswith("endpoint blue/web/ep9: mac: ") and "exception" not in result
    items = [dict(params, name="blue/web/ep%d" % i, iface="mzx%d" % i, netns="blue-ep%d" % i, mac="02:00:00:00:00:0%d" % i)
             for i in (1, 2)]
    items[1]["ip"] = "10.0.0.300"
    how, result = run(FakeModule(dict(params, endpoints=items)), endpoint)
    assert how == "fail" and result["msg"].startswith("endpoint blue/web/ep2 (endpoints[1]): ip: ")
    how, result = run(FakeModule(dict(src=str(tmp_path / "none"), dest=str(tmp_path / "out"), sources=[], cflags=[],
                                      clang="clang")), bpf_build)
    assert how == "fail" and result["msg"].startswith("src: ") and "exception" not in result


def test_outcome_is_the_result_a_module_would_end_with_as_a_dict():
    backend = Backend(dict(DONE, warnings=("careful",)))
    assert outcome.ensure(backend, {"name": "t1"}, check_mode=True) == {
        "changed": True, "actions": ["make t1"], "warnings": ["careful"]}
    assert backend.seen == [True]
    result = outcome.ensure(Backend(dict(DONE, warnings=[])), {"name": "t1"}, diff=True)
    assert "warnings" not in result and result["diff"]["before_header"] == "thing (before)"


def test_outcome_of_a_failure_is_a_failed_result():
    assert outcome.ensure(Backend(Refused("thing t1: size: too big", {"log": ["a"]})), {"name": "t1"}) == {
        "failed": True, "msg": "thing t1: size: too big", "log": ["a"]}
    result = outcome.ensure(Backend(KeyError("slot")), {"name": "t1"})
    assert result["failed"] is True and result["msg"] == "thing t1: 'slot'" and "KeyError" in result["exception"]
