# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry of shipped stage functions and the checking of their config.

A shipped function is bpf/functions/<name>.bpf.c. It may have a sidecar
bpf/functions/<name>.yml declaring where it may run and what its config
holds:

    name: acl
    description: ...
    stages: [on_xdp_redirect, on_xdp_tx]
    config:                     # option name -> option
      rules:
        type: list              # str int bool list dict cidr ipv4 vpc host
        elements: dict          # for lists: the type of each element
        max_items: 64           # for lists: at most this many elements
        required: true
        options: {...}          # for dicts (and lists of dicts): nested options
      port:
        type: int
        min: 1
        max: 65535
        default: ...            # filled in when absent
        choices: [...]
        requires: {protocol: [tcp, udp]}   # only allowed when a sibling has one of these values

A function with a sidecar but no source yet is known (its schema is the
contract its author implements). A function with a source and no sidecar
may run at any stage and takes its config as given, as do the user's own
sources (`program: path/to/fn.c`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from collections.abc import Mapping

from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.model.capacity import STAGES
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import suggest
from ansible_collections.mizar.transit.plugins.module_utils.model.pyyaml import HAS_YAML, yaml

# plugins/module_utils/model/ -> the collection's root
_COLLECTION = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))
FUNCTIONS_DIR = os.path.join(_COLLECTION, "bpf", "functions")
SOURCE_SUFFIX = ".bpf.c"
SCHEMA_SUFFIX = ".yml"
USER_SOURCE_SUFFIX = ".c"
# A function's object: functions/<stem>.bpf.o in a host's objects directory
# (and in mizar.transit.bpf_build's dest)
OBJECT_SUFFIX = ".bpf.o"
OBJECT_SUBDIR = "functions"

TYPES = ("str", "int", "bool", "list", "dict", "cidr", "ipv4", "vpc", "host")
OPTION_KEYS = ("type", "required", "default", "choices", "min", "max", "max_items", "elements", "options",
               "requires", "description")
SCHEMA_KEYS = ("name", "description", "stages", "config")


class SchemaError(ValueError):
    """A sidecar schema that the registry cannot use (a bug of the collection)."""


class FunctionSpec:
    """One shipped function: its stages and config options (None: unchecked)."""

    __slots__ = ("name", "description", "stages", "options", "source", "schema")

    def __init__(self, name, stages=STAGES, options=None, description="", source=None, schema=None):
        self.name = name
        self.description = description
        self.stages = tuple(stages)
        self.options = options
        self.source = source
        self.schema = schema


def is_user_source(program):
    """True when program names the user's own C source rather than a shipped function."""
    return isinstance(program, str) and program.endswith(USER_SOURCE_SUFFIX)


def stem(program):
    """The stem of a function's object: a shipped function's name as it is
    ('acl'), a source's file name without .bpf.c or .c ('/x/acl.bpf.c' and
    'fn/acl.c' give 'acl')."""
    base = program.rsplit("/", 1)[-1]
    for suffix in (SOURCE_SUFFIX, USER_SOURCE_SUFFIX):
        if base.endswith(suffix):
            return base[:-len(suffix)]
    return base


def object_name(program):
    """The object of a function's program, relative to an objects directory
    and without its suffix: 'functions/acl' (bpf_build's name for it)."""
    return "%s/%s" % (OBJECT_SUBDIR, stem(program))


def object_path(obj_dir, program):
    """Where a host with objects directory obj_dir keeps the function's
    object: '/var/lib/mizar/bpf/functions/acl.bpf.o'."""
    return "%s/%s%s" % (obj_dir, object_name(program), OBJECT_SUFFIX)


class Registry:
    """The shipped functions, by name."""

    def __init__(self, specs=None):
        self.specs = dict(specs or {})

    @classmethod
    def load(cls, directory=FUNCTIONS_DIR):
        """Read directory: every <name>.bpf.c and every <name>.yml sidecar."""
        specs = {}
        try:
            files = sorted(os.listdir(directory))
        except OSError:
            files = []
        for fname in files:
            full = os.path.join(directory, fname)
            if fname.endswith(SOURCE_SUFFIX):
                name = stem(fname)
                specs.setdefault(name, FunctionSpec(name)).source = full
        for fname in files:
            if fname.endswith(SCHEMA_SUFFIX):
                name = fname[:-len(SCHEMA_SUFFIX)]
                spec = load_schema(os.path.join(directory, fname), name)
                old = specs.get(name)
                spec.source = old.source if old else None
                specs[name] = spec
        return cls(specs)

    def get(self, name):
        return self.specs.get(name)

    def names(self):
        return sorted(self.specs)


_DEFAULT = {}


def default_registry():
    """The registry of this collection's bpf/functions, read once."""
    if "registry" not in _DEFAULT:
        _DEFAULT["registry"] = Registry.load(FUNCTIONS_DIR)
    return _DEFAULT["registry"]


# ---------------------------------------------------------------- schemas


def load_schema(path, name):
    if not HAS_YAML:
        raise SchemaError("PyYAML is required to read the function schema %s" % path)
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise SchemaError("cannot read function schema %s: %s" % (path, e))
    return parse_schema(doc, name, path)


def parse_schema(doc, name, where="<schema>"):
    """A sidecar document -> FunctionSpec; SchemaError names what is wrong."""
    if not isinstance(doc, Mapping):
        raise SchemaError("%s: a function schema is a mapping" % where)
    for key in doc:
        if key not in SCHEMA_KEYS:
            raise SchemaError("%s: unknown key %r%s" % (where, key, suggest(key, SCHEMA_KEYS)))
    if doc.get("name", name) != name:
        raise SchemaError("%s: name %r does not match the file name %r" % (where, doc.get("name"), name))
    stages = doc.get("stages", list(STAGES))
    if not isinstance(stages, list) or not stages or any(s not in STAGES for s in stages):
        raise SchemaError("%s: stages must be a non-empty list of %s" % (where, ", ".join(STAGES)))
    options = _parse_options(doc.get("config") or {}, where + ": config")
    return FunctionSpec(name, stages, options, doc.get("description", ""), schema=where)


def _parse_options(options, where):
    if not isinstance(options, Mapping):
        raise SchemaError("%s: options are a mapping of option name to option" % where)
    for oname, opt in options.items():
        here = "%s.%s" % (where, oname)
        if not isinstance(opt, Mapping):
            raise SchemaError("%s: an option is a mapping" % here)
        for key in opt:
            if key not in OPTION_KEYS:
                raise SchemaError("%s: unknown key %r%s" % (here, key, suggest(key, OPTION_KEYS)))
        if opt.get("type") not in TYPES:
            raise SchemaError("%s: type must be one of %s" % (here, ", ".join(TYPES)))
        if opt.get("type") == "list" and (opt.get("elements", "str") not in TYPES or opt.get("elements") == "list"):
            raise SchemaError("%s: elements must be one of %s (lists do not nest)"
                              % (here, ", ".join(t for t in TYPES if t != "list")))
        if "options" in opt:
            _parse_options(opt["options"], here)
        for other in (opt.get("requires") or {}):
            if other not in options:
                raise SchemaError("%s: requires names %r, which is not a sibling option" % (here, other))
    return options


# ---------------------------------------------------------------- config checking


class ConfigContext:
    """What config values may refer to: VPC names, transit host names."""

    __slots__ = ("vpcs", "hosts")

    def __init__(self, vpcs=(), hosts=()):
        self.vpcs = frozenset(vpcs)
        self.hosts = frozenset(hosts)


_BAD = object()


def check_config(config, spec, path, errors, context):
    """Check config against spec's options; return it normalized (defaults
    filled, CIDRs canonical), or None when it has errors. A spec without
    options takes the config as given."""
    if spec is None or spec.options is None:
        return config
    before = len(errors)
    value = _check_options(config, spec.options, path, errors, context)
    return None if len(errors) > before else value


def _check_options(mapping, options, path, errors, ctx):
    if not isinstance(mapping, Mapping):
        errors.add(path, "must be a mapping with the keys %s" % ", ".join(sorted(options)))
        return _BAD
    out = {}
    for key in mapping:
        if key not in options:
            errors.add("%s.%s" % (path, key), "unknown setting %r%s; the allowed settings are: %s"
                       % (key, suggest(key, options), ", ".join(sorted(options))))
    for oname in sorted(options):
        opt = options[oname]
        here = "%s.%s" % (path, oname)
        if mapping.get(oname) is None:
            if opt.get("required"):
                errors.add(here, "%s is required%s" % (oname, _describe(opt)))
            elif "default" in opt:
                out[oname] = opt["default"]
            continue
        value = _check_value(mapping[oname], opt.get("type"), opt, here, errors, ctx)
        if value is not _BAD:
            out[oname] = value
    for oname in sorted(options):
        requires = options[oname].get("requires") or {}
        if oname in out and oname in mapping:
            for other, allowed in sorted(requires.items()):
                if mapping.get(other) is not None and other not in out:
                    continue  # the sibling is wrong itself, and reported
                if out.get(other) not in allowed:
                    errors.add("%s.%s" % (path, oname), "%s applies only when %s is %s, not %r: remove %s or "
                               "change %s" % (oname, other, " or ".join(map(str, allowed)), out.get(other),
                                              oname, other))
    return out


def _describe(opt):
    return ": %s" % opt["description"] if opt.get("description") else ""


def _check_value(value, kind, opt, path, errors, ctx):
    if kind == "str":
        if not isinstance(value, str):
            errors.add(path, "must be a string, not %r" % (value,))
            return _BAD
        value = str(value)
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            errors.add(path, "must be an integer, not %r" % (value,))
            return _BAD
        value = int(value)
        if "min" in opt and value < opt["min"] or "max" in opt and value > opt["max"]:
            errors.add(path, "%d is out of range: use %s to %s" % (value, opt.get("min", "-"), opt.get("max", "-")))
            return _BAD
    elif kind == "bool":
        if not isinstance(value, bool):
            errors.add(path, "must be true or false, not %r" % (value,))
            return _BAD
    elif kind == "cidr":
        try:
            value = addr.cidr_text(*addr.parse_cidr(value))
        except ValueError as e:
            errors.add(path, str(e))
            return _BAD
    elif kind == "ipv4":
        try:
            addr.parse_ipv4(value)
            value = str(value)
        except ValueError as e:
            errors.add(path, str(e))
            return _BAD
    elif kind == "vpc":
        if value not in ctx.vpcs:
            errors.add(path, "no VPC named %r in mizar_vpcs%s" % (value, suggest(value, ctx.vpcs)))
            return _BAD
        value = str(value)
    elif kind == "host":
        if value not in ctx.hosts:
            errors.add(path, "host %r is not in group mizar_hosts%s" % (value, suggest(value, ctx.hosts)))
            return _BAD
        value = str(value)
    elif kind == "dict":
        if "options" in opt:
            return _check_options(value, opt["options"], path, errors, ctx)
        if not isinstance(value, Mapping):
            errors.add(path, "must be a mapping, not %r" % (value,))
            return _BAD
        value = dict(value)
    elif kind == "list":
        if not isinstance(value, (list, tuple)):
            errors.add(path, "must be a list, not %r" % (value,))
            return _BAD
        if "max_items" in opt and len(value) > opt["max_items"]:
            errors.add(path, "%d items, more than the %d the function holds: list at most %d"
                       % (len(value), opt["max_items"], opt["max_items"]))
            return _BAD
        elements = opt.get("elements", "str")
        items = []
        for i, item in enumerate(value):
            checked = _check_value(item, elements, opt, "%s[%d]" % (path, i), errors, ctx)
            if checked is not _BAD:
                items.append(checked)
        return items
    if "choices" in opt and value not in opt["choices"]:
        choices = [str(c) for c in opt["choices"]]
        errors.add(path, "%r is not one of %s%s" % (value, ", ".join(choices), suggest(value, choices)))
        return _BAD
    return value
