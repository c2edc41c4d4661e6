"""The documentation of the modules agrees with their argument_spec (what
ansible-test's validate-modules checks most): every option documented with
the same type, default, choices, required flag and elements, nothing
undocumented, EXAMPLES and RETURN valid YAML. The documentation is read as
ansible-doc resolves it, with the doc fragments (mizar.transit.common)
merged in, so the shared options' docs and their shared argument spec
(ops/args.py) cannot drift apart."""
import importlib
import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ["bpf_build", "diagram", "transit", "endpoint", "stage", "transit_info", "map_state", "tenant_state", "drift_info", "lab_host",
           "trace_hop", "userspace_function"]


class _Captured(Exception):
    def __init__(self, kwargs):
        super().__init__("captured")
        self.kwargs = kwargs


def argument_spec(name, monkeypatch):
    mod = importlib.import_module("ansible_collections.mizar.transit.plugins.modules.%s" % name)

    def fake(**kwargs):
        raise _Captured(kwargs)

    monkeypatch.setattr(mod, "AnsibleModule", fake)
    with pytest.raises(_Captured) as exc:
        mod.main()
    return mod, exc.value.kwargs


def compare(path, spec, docs):
    problems = []
    for opt in sorted(set(spec) | set(docs)):
        if opt not in docs:
            problems.append("%s%s: in argument_spec, not documented" % (path, opt))
            continue
        if opt not in spec:
            problems.append("%s%s: documented, not in argument_spec" % (path, opt))
            continue
        s, d = spec[opt], docs[opt]
        if not d.get("description"):
            problems.append("%s%s: no description" % (path, opt))
        for key, dflt in (("type", "str"), ("required", False), ("default", None), ("choices", None),
                          ("elements", None)):
            if s.get(key, dflt) != d.get(key, dflt):
                problems.append("%s%s: %s is %r in argument_spec, %r in the docs" % (
                    path, opt, key, s.get(key, dflt), d.get(key, dflt)))
        if s.get("options") or d.get("suboptions"):
            problems += compare("%s%s.", s.get("options") or {}, d.get("suboptions") or {})
    return problems


@pytest.fixture(scope="module")
def resolved_docs():
    """{module: its documentation as ansible-doc gives it, fragments merged}."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "-t", "module", "-j"] +
                          ["mizar.transit.%s" % m for m in MODULES], env=env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return dict((k.rsplit(".", 1)[1], v["doc"]) for k, v in json.loads(proc.stdout).items())


@pytest.mark.parametrize("name", MODULES)
def test_docs_match_the_argument_spec(name, monkeypatch, resolved_docs):
    mod, kwargs = argument_spec(name, monkeypatch)
    docs = resolved_docs[name]
    assert docs["module"] == name
    assert docs["short_description"] and docs["description"] and docs["author"]
    assert set(docs["attributes"]) >= {"check_mode", "diff_mode"}
    assert kwargs.get("supports_check_mode") is True
    assert compare("", kwargs["argument_spec"], docs["options"]) == []
    for rule in kwargs.get("required_if", []):  # (key, value, needed[, any of them])
        key, needed = rule[0], rule[2]
        assert key in docs["options"] and set(needed) <= set(docs["options"])


@pytest.mark.parametrize("name", MODULES)
def test_examples_and_return_are_yaml(name):
    mod = importlib.import_module("ansible_collections.mizar.transit.plugins.modules.%s" % name)
    examples = yaml.safe_load(mod.EXAMPLES)
    assert isinstance(examples, list) and any("mizar.transit.%s" % name in task for task in examples)
    ret = yaml.safe_load(mod.RETURN)
    for key, value in ret.items():
        assert value.get("description") and value.get("returned") and value.get("type"), key
