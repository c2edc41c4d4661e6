"""The documentation of the datapath modules agrees with their argument_spec
(what ansible-test's validate-modules checks most): every option documented
with the same type, default, choices, required flag and elements, nothing
undocumented, EXAMPLES and RETURN valid YAML. Also: bpf_build's flags are
the Makefile's."""
import importlib
import os
import re

import pytest
import yaml

from ansible_collections.mizar.transit.plugins.module_utils.bpf import build
from ansible_collections.mizar.transit.plugins.module_utils.model import functions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ["bpf_build", "transit", "endpoint", "stage", "transit_info"]


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


@pytest.mark.parametrize("name", MODULES)
def test_docs_match_the_argument_spec(name, monkeypatch):
    mod, kwargs = argument_spec(name, monkeypatch)
    docs = yaml.safe_load(mod.DOCUMENTATION)
    assert docs["module"] == name
    assert docs["short_description"] and docs["description"] and docs["author"]
    assert set(docs["attributes"]) >= {"check_mode", "diff_mode"}
    assert kwargs.get("supports_check_mode") is True
    assert compare("", kwargs["argument_spec"], docs["options"]) == []
    for key, _value, needed in kwargs.get("required_if", []):
        assert key in docs["options"] and set(needed) <= set(docs["options"])


@pytest.mark.parametrize("name", MODULES)
def test_examples_and_return_are_yaml(name):
    mod = importlib.import_module("ansible_collections.mizar.transit.plugins.modules.%s" % name)
    examples = yaml.safe_load(mod.EXAMPLES)
    assert isinstance(examples, list) and any("mizar.transit.%s" % name in task for task in examples)
    ret = yaml.safe_load(mod.RETURN)
    for key, value in ret.items():
        assert value.get("description") and value.get("returned") and value.get("type"), key


def test_the_build_flags_are_the_makefiles():
    with open(os.path.join(ROOT, "bpf", "Makefile")) as f:
        m = re.search(r"^CFLAGS\s*:=\s*(.*)$", f.read(), re.M)
    flags = [w for w in m.group(1).split() if not w.startswith("-I")]
    assert flags == list(build.BASE_CFLAGS)


def test_build_names_and_sources(tmp_path):
    assert functions.stem("/x/acl.bpf.c") == "acl" and functions.stem("my.fn.c") == "my.fn"
    src = tmp_path / "bpf"
    (src / "include").mkdir(parents=True)
    (src / "functions").mkdir()
    (src / "a.bpf.c").write_text("int x;\n")
    (src / "functions" / "f.bpf.c").write_text("int y;\n")
    (src / "notes.c").write_text("")  # an input, not a target
    assert build.tree_sources(str(src)) == ["a.bpf.c", "functions/f.bpf.c"]
    assert build.tree_inputs(str(src)) == ["a.bpf.c", "notes.c", "functions/f.bpf.c"]
    other = tmp_path / "f.c"
    other.write_text("int z;\n")
    with pytest.raises(build.BuildError, match=r"sources\[0\].*functions/f.bpf.o"):
        build.plan_build(str(src), str(tmp_path / "out"), sources=[str(other)])
    with pytest.raises(build.BuildError, match=r"sources\[0\].*not a C source"):
        build.plan_build(str(src), str(tmp_path / "out"), sources=["x.txt"])
    with pytest.raises(build.BuildError, match=r"cflags\[1\]"):
        build.plan_build(str(src), str(tmp_path / "out"), cflags=["-DA", ""])
    with pytest.raises(build.BuildError, match=r"^clang: cannot run"):
        build.plan_build(str(src), str(tmp_path / "out"), clang="/nonexistent/clang")
