# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PyYAML, when it is installed: the one place the model imports it.

    from ansible_collections.mizar.transit.plugins.module_utils.model.pyyaml import HAS_YAML, yaml

yaml is the module, or None where PyYAML is missing (HAS_YAML False); the
model's readers and writers of YAML (function schemas, renderings) check
HAS_YAML and say what they needed it for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

__all__ = ("HAS_YAML", "yaml")

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None
    HAS_YAML = False
