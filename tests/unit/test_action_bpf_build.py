"""The bpf_build action (plugins/action/bpf_build.py) with a stand-in task
and backend: the task's arguments are checked and completed as the module
does, check mode and --diff reach the backend, its errors and any other
failure become failed results. Through the real ansible-playbook:
tests/integration/test_modules.py."""
import os
from types import SimpleNamespace

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.mizar.transit.plugins.action import bpf_build as action
from ansible_collections.mizar.transit.plugins.module_utils.bpf import build
from ansible_collections.mizar.transit.plugins.module_utils.ops import bpf_build

RESULT = {"changed": True, "actions": ["compile transit.bpf.o"], "manifest": None,
          "diff": {"before": "", "after": "transit.bpf.o: inputs 0123\n"}}


def run(args, check_mode=False, diff=False):
    task = SimpleNamespace(args=args, check_mode=check_mode, diff=diff, async_val=0, action="bpf_build",
                           resolved_action="mizar.transit.bpf_build")
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir=None))
    plugin = action.ActionModule(task, connection, play_context=None, loader=None, templar=None)
    return plugin.run(task_vars={})


@pytest.fixture
def ensured(monkeypatch):
    """The backend's ensure() records its calls, then raises the error a
    test put in errors, or returns RESULT."""
    fake = SimpleNamespace(calls=[], errors=[])

    def ensure(spec, check_mode=False):
        fake.calls.append((spec, check_mode))
        for error in fake.errors:
            raise error
        return dict(RESULT)

    monkeypatch.setattr(bpf_build, "ensure", ensure)
    return fake


def test_the_arguments_reach_the_backend_checked_and_completed(ensured, monkeypatch):
    monkeypatch.setenv("HOME", "/home/ops")
    result = run({"src": "/srv/bpf", "dest": "~/.cache/bpf", "cflags": "-DA=1"}, check_mode=True)
    assert result == {"changed": True, "actions": ["compile transit.bpf.o"], "manifest": None}
    (spec, check_mode), = ensured.calls
    assert check_mode is True and (spec.src, spec.dest) == ("/srv/bpf", "/home/ops/.cache/bpf")
    assert (spec.sources, spec.cflags, spec.clang) == ([], ["-DA=1"], "clang")


def test_diff_comes_with_the_stamps_headers_only_when_asked(ensured):
    assert "diff" not in run({"src": "/srv/bpf", "dest": "/out"})
    result = run({"src": "/srv/bpf", "dest": "/out"}, diff=True)
    assert result["diff"] == dict(RESULT["diff"], before_header="/out/.mizar-build.json (last build)",
                                  after_header="/out/.mizar-build.json (this build)")
    assert [c[1] for c in ensured.calls] == [False, False]


def test_a_refused_build_fails_with_the_backends_message(ensured):
    ensured.errors.append(build.BuildError("sources[0]: /x/f.c does not exist"))
    assert run({"src": "/srv/bpf", "dest": "/out", "sources": ["/x/f.c"]}) == {
        "failed": True, "msg": "sources[0]: /x/f.c does not exist"}


def test_any_other_failure_names_the_build_and_keeps_the_traceback(ensured):
    ensured.errors.append(OSError(28, os.strerror(28)))
    result = run({"src": "/srv/bpf", "dest": "/out"})
    assert result["failed"] is True
    assert result["msg"] == "building /srv/bpf into /out: [Errno 28] %s" % os.strerror(28)
    assert "Traceback" in result["exception"] and "OSError" in result["exception"]


@pytest.mark.parametrize("args, message", [
    ({"src": "/srv/bpf", "dest": "/out", "jobs": 4},
     "Unsupported parameters for (mizar.transit.bpf_build) module: jobs. "
     "Supported parameters include: cflags, clang, dest, sources, src."),
    ({"src": "/srv/bpf"}, "missing required arguments: dest"),
])
def test_bad_arguments_are_refused_before_the_backend_runs_in_check_mode_too(ensured, args, message):
    with pytest.raises(AnsibleActionFail) as e:
        run(args, check_mode=True)
    assert e.value.message == message and ensured.calls == []
