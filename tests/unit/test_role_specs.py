"""The roles and playbooks carry no model value of their own: the defaults
of the host settings, the stage names and the XDP modes live in
plugins/module_utils/model (defaults.py, capacity.py), and the roles read
them from the rendering. A choices list that must stay literal in an
argument spec is the Python tuple, in its order."""
import glob
import os

import yaml

from ansible_collections.mizar.transit.plugins.module_utils.model import defaults
from ansible_collections.mizar.transit.plugins.module_utils.model.capacity import STAGES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = sorted(glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")))
ANSIBLE_FILES = sorted(glob.glob(os.path.join(ROOT, "roles", "**", "*.yml"), recursive=True)
                       + glob.glob(os.path.join(ROOT, "playbooks", "**", "*.yml"), recursive=True))


def _choices(options, where):
    for name, opt in (options or {}).items():
        if opt.get("choices") is not None:
            yield "%s.%s" % (where, name), opt["choices"]
        yield from _choices(opt.get("options"), "%s.%s" % (where, name))


def test_literal_choices_are_the_python_tuples():
    checked = []
    for path in SPECS:
        with open(path) as f:
            specs = yaml.safe_load(f)["argument_specs"]
        for entry, spec in specs.items():
            for where, choices in _choices(spec.get("options"), "%s:%s" % (os.path.relpath(path, ROOT), entry)):
                for values in (defaults.XDP_MODES, STAGES):
                    if set(choices) & set(values):
                        assert tuple(choices) == values, where
                        checked.append(where)
    assert checked == ["roles/lab/meta/argument_specs.yml:main.mizar_lab_xdp_mode"]


def test_no_role_or_playbook_repeats_a_default_or_a_stage():
    assert len(ANSIBLE_FILES) > 10
    for path in ANSIBLE_FILES:
        with open(path) as f:
            text = f.read()
        for value in (defaults.DEFAULT_PIN_DIR, defaults.DEFAULT_BPF_DIR) + STAGES:
            assert value not in text, "%s repeats %s" % (os.path.relpath(path, ROOT), value)
