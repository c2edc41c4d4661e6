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

For a dict (or a list of dicts), checks across its options:
`mutually_exclusive: [[a, b]]` (at most one of them), `required_one_of:
[[a, b]]` (at least one of them); for a list, `unique: [a, b]` (no two
elements with the same values of these options, once normalized).

Types with units, normalized: `bitrate` (an integer of bits per second, or
a number with bit, kbit, mbit, gbit or tbit: "10mbit" gives 10000000) and
`duration` (a number with ns, us, ms or s: "0.5s" gives "500ms"); their
min and max are in the same terms. `endpoint` (an endpoint's name) and
`endpoint_ip` (an endpoint's address) are endpoints of the VPC named by the
sibling option `vpc`; `fills: ip` on an endpoint puts its address in the
sibling option `ip`; `hosted: true` wants an endpoint that lives on a
transit host (a simple endpoint with a `host`), the only kind a transit
host delivers to: not a scaled endpoint nor one behind a tunnel peer.

A user-space function (`kind: userspace` in mizar_functions) is a program
of plugins/module_utils/userspace/, <name>.py, with a sidecar <name>.yml
that says `kind: userspace` and has no stages: it runs on a bypass_decap
endpoint, not in a stage. Its config takes the same option types, and
`path` (an absolute file name).

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

# plugins/module_utils/model/ -> the collection's root
_COLLECTION = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))
FUNCTIONS_DIR = os.path.join(_COLLECTION, "bpf", "functions")
USERSPACE_DIR = os.path.join(_COLLECTION, "plugins", "module_utils", "userspace")
USERSPACE_SUFFIX = ".py"
SOURCE_SUFFIX = ".bpf.c"
SCHEMA_SUFFIX = ".yml"
USER_SOURCE_SUFFIX = ".c"
# A function's object: functions/<stem>.bpf.o in a host's objects directory
# (and in mizar.transit.bpf_build's dest)
OBJECT_SUFFIX = ".bpf.o"
OBJECT_SUBDIR = "functions"

TYPES = ("str", "int", "bool", "list", "dict", "cidr", "ipv4", "vpc", "host", "bitrate", "duration", "endpoint",
         "endpoint_ip", "path")
OPTION_KEYS = ("type", "required", "default", "choices", "min", "max", "max_items", "elements", "options",
               "requires", "description", "fills", "hosted", "unique", "required_one_of", "mutually_exclusive")
ENDPOINT_TYPES = ("endpoint", "endpoint_ip")
# units of the bitrate type: bits per second (tc's names; "bps" would be
# bytes per second there, so it is refused rather than guessed)
BIT_UNITS = {"bit": 1, "kbit": 10 ** 3, "mbit": 10 ** 6, "gbit": 10 ** 9, "tbit": 10 ** 12}
# units of the duration type, in nanoseconds, largest first
TIME_UNITS = (("s", 10 ** 9), ("ms", 10 ** 6), ("us", 10 ** 3), ("ns", 1))
SCHEMA_KEYS = ("name", "kind", "description", "stages", "config", "counters")
KINDS = ("xdp", "userspace")
COUNTERS_KEYS = ("map", "slots")
COUNTER_KEYS = ("name", "description")


class SchemaError(ValueError):
    """A sidecar schema that the registry cannot use (a bug of the collection)."""


def _number_unit(value, units, what, example):
    """(the number, the unit's factor) of "<number><unit>" with unit in units ({name: factor})."""
    text = str(value).strip().lower()
    num = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(num):]
    if not num or unit not in units:
        raise ValueError("%r is not a %s: write a number with one of the units %s (for example %s)"
                         % (value, what, ", ".join(units), example))
    try:
        number = float(num) if "." in num or "e" in num else int(num)
    except ValueError:
        raise ValueError("%r is not a %s: %r is not a number" % (value, what, num))
    return number, units[unit]


def parse_bitrate(value):
    """Bits per second of an integer or of "<number><unit>" (unit: bit, kbit,
    mbit, gbit, tbit, powers of 1000); ValueError says why not."""
    if isinstance(value, bool):
        raise ValueError("%r is not a bit rate" % (value,))
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError("%r is not a bit rate: give bits per second as an integer, or a string such as 10mbit"
                         % (value,))
    if value.strip().lower().endswith("bps"):
        raise ValueError("%r: bps units are not supported (in tc they mean bytes per second): write bits per "
                         "second with bit, kbit, mbit, gbit or tbit, such as 10mbit" % (value,))
    number, factor = _number_unit(value, BIT_UNITS, "bit rate", "10mbit")
    bits = number * factor
    if bits != int(bits):
        raise ValueError("%r is not a whole number of bits per second" % (value,))
    return int(bits)


def parse_duration(value):
    """Nanoseconds of "<number><unit>" (unit: ns, us, ms, s); ValueError says why not."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("%r is not a duration: write a number with a unit, ns, us, ms or s (such as 10ms)"
                         % (value,))
    number, factor = _number_unit(value, dict(TIME_UNITS), "duration", "10ms")
    ns = number * factor
    if ns != int(ns):
        raise ValueError("%r is not a whole number of nanoseconds" % (value,))
    return int(ns)


def duration_text(ns):
    """A duration in nanoseconds as its canonical text: the largest unit
    that divides it ("10ms", "1500us")."""
    for unit, factor in TIME_UNITS:
        if ns % factor == 0:
            return "%d%s" % (ns // factor, unit)
    return "%dns" % ns


class FunctionSpec:
    """One shipped function: its kind, stages and config options (None:
    unchecked)."""

    __slots__ = ("name", "kind", "description", "stages", "options", "source", "schema", "counters")

    def __init__(self, name, stages=STAGES, options=None, description="", source=None, schema=None, counters=None,
                 kind="xdp"):
        self.name = name
        self.kind = kind
        self.description = description
        self.stages = tuple(stages)
        self.options = options
        self.source = source
        self.schema = schema
        # {map, slots: [{name, description}]}: the per-CPU __u64 array the
        # function counts in, slot i named slots[i]; None: it declares none
        self.counters = counters


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
    def load(cls, directory=FUNCTIONS_DIR, userspace_dir=None):
        """Read directory: every <name>.bpf.c and every <name>.yml sidecar;
        and userspace_dir, when given: every <name>.yml of kind userspace
        beside its <name>.py."""
        specs = {}
        if userspace_dir is not None:
            for fname in _listdir(userspace_dir):
                if fname.endswith(SCHEMA_SUFFIX):
                    name = fname[:-len(SCHEMA_SUFFIX)]
                    spec = load_schema(os.path.join(userspace_dir, fname), name)
                    if spec.kind != "userspace":
                        raise SchemaError("%s: a program of %s is of kind userspace" % (fname, userspace_dir))
                    program = os.path.join(userspace_dir, name + USERSPACE_SUFFIX)
                    spec.source = program if os.path.exists(program) else None
                    specs[name] = spec
        files = _listdir(directory)
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

    def names(self, kind="xdp"):
        return sorted(n for n, spec in self.specs.items() if spec.kind == kind)

    def counter_maps(self):
        """{function: {map, counters: [slot names]}} of every function that
        declares counters: what mizar.transit.transit_info reads on a host
        (its function_counters)."""
        return dict((name, {"map": spec.counters["map"], "counters": [c["name"] for c in spec.counters["slots"]]})
                    for name, spec in sorted(self.specs.items()) if spec.counters)


def _listdir(directory):
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


_DEFAULT = {}


def default_registry():
    """The registry of this collection's bpf/functions and user-space
    functions, read once."""
    if "registry" not in _DEFAULT:
        _DEFAULT["registry"] = Registry.load(FUNCTIONS_DIR, USERSPACE_DIR)
    return _DEFAULT["registry"]


# ---------------------------------------------------------------- schemas


def load_schema(path, name):
    # PyYAML is imported where a schema is read, on the controller: the modules, which import this file
    # for the functions' parameters, never read one
    from ansible_collections.mizar.transit.plugins.module_utils.model.pyyaml import HAS_YAML, yaml
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
    _known_keys(doc, SCHEMA_KEYS, where)
    if doc.get("name", name) != name:
        raise SchemaError("%s: name %r does not match the file name %r" % (where, doc.get("name"), name))
    kind = doc.get("kind", "xdp")
    if kind not in KINDS:
        raise SchemaError("%s: kind must be one of %s" % (where, ", ".join(KINDS)))
    if kind == "userspace":
        if "stages" in doc:
            raise SchemaError("%s: a userspace function runs on an endpoint and has no stages" % where)
        stages = []
    else:
        stages = doc.get("stages", list(STAGES))
        if not isinstance(stages, list) or not stages or any(s not in STAGES for s in stages):
            raise SchemaError("%s: stages must be a non-empty list of %s" % (where, ", ".join(STAGES)))
    options = _parse_options(doc.get("config") or {}, where + ": config")
    counters = _parse_counters(doc["counters"], where + ": counters") if doc.get("counters") is not None else None
    return FunctionSpec(name, stages, options, doc.get("description", ""), schema=where, counters=counters,
                        kind=kind)


def is_counter_name(text):
    """A counter's or a counters map's name: lower-case letters, digits and
    underscores, starting with a letter (a Prometheus label value and a
    bpffs pin name alike)."""
    if not isinstance(text, str) or not "a" <= text[:1] <= "z":
        return False
    return all(ch.isdigit() or ch == "_" or "a" <= ch <= "z" for ch in text)


def _known_keys(doc, keys, where):
    """SchemaError for the first key of doc (a mapping) that is not one of keys."""
    for key in doc:
        if key not in keys:
            raise SchemaError("%s: unknown key %r%s" % (where, key, suggest(key, keys)))


def _schema_mapping(doc, keys, what, where):
    """SchemaError unless doc is a mapping of some of keys."""
    if not isinstance(doc, Mapping):
        raise SchemaError("%s: %s is a mapping with the keys %s" % (where, what, ", ".join(keys)))
    _known_keys(doc, keys, where)


def _parse_counters(doc, where):
    """The `counters` of a schema: {map: the name the function pins a
    per-CPU array of __u64 under, slots: [{name, description}], slot i
    counting what slots[i] names}."""
    _schema_mapping(doc, COUNTERS_KEYS, "counters", where)
    if not is_counter_name(doc.get("map")):
        raise SchemaError("%s.map: the name of the map the function pins, such as mzr_acl_stats" % where)
    slots = doc.get("slots")
    if not isinstance(slots, list) or not slots:
        raise SchemaError("%s.slots: a non-empty list of counters, {name, description}, in slot order" % where)
    seen = set()
    for i, slot in enumerate(slots):
        here = "%s.slots[%d]" % (where, i)
        _schema_mapping(slot, COUNTER_KEYS, "a counter", here)
        if not is_counter_name(slot.get("name")):
            raise SchemaError("%s.name: lower-case letters, digits and underscores, starting with a letter" % here)
        if slot["name"] in seen:
            raise SchemaError("%s.name: %r names an earlier slot too" % (here, slot["name"]))
        seen.add(slot["name"])
    return {"map": doc["map"], "slots": [dict(slot) for slot in slots]}


def _parse_options(options, where):
    if not isinstance(options, Mapping):
        raise SchemaError("%s: options are a mapping of option name to option" % where)
    for oname, opt in options.items():
        here = "%s.%s" % (where, oname)
        if not isinstance(opt, Mapping):
            raise SchemaError("%s: an option is a mapping" % here)
        _known_keys(opt, OPTION_KEYS, here)
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
        kind = opt["type"] if opt["type"] != "list" else opt.get("elements", "str")
        if kind in ENDPOINT_TYPES and (options.get("vpc") or {}).get("type") != "vpc":
            raise SchemaError("%s: an %s needs a sibling option vpc of type vpc" % (here, kind))
        if opt.get("fills") is not None and (kind != "endpoint" or opt["fills"] not in options):
            raise SchemaError("%s: fills is for an endpoint, naming a sibling option" % here)
        if "hosted" in opt and (kind not in ENDPOINT_TYPES or not isinstance(opt["hosted"], bool)):
            raise SchemaError("%s: hosted is true or false, for an endpoint or endpoint_ip" % here)
        if kind == "duration":
            for key in ("min", "max", "default"):
                if key in opt:
                    try:
                        parse_duration(opt[key])
                    except ValueError as e:
                        raise SchemaError("%s.%s: %s" % (here, key, e))
        _parse_groups(opt, here)
    return options


def _parse_groups(opt, here):
    """The checks across a dict's options: they must name its options."""
    names = opt.get("options") or {}
    groups = list(opt.get("required_one_of") or []) + list(opt.get("mutually_exclusive") or [])
    if "unique" in opt:
        if opt.get("type") != "list":
            raise SchemaError("%s: unique is for a list" % here)
        groups.append(opt["unique"])
    for group in groups:
        if not isinstance(group, list) or not group or any(n not in names for n in group):
            raise SchemaError("%s: %r must be a list of the options %s" % (here, group, ", ".join(sorted(names))))


# ---------------------------------------------------------------- config checking


class ConfigContext:
    """What config values may refer to: VPC names, transit host names, the
    endpoints of each VPC ({VPC name: {endpoint name: IP}}), and in each VPC
    the addresses that are no endpoint on a transit host ({VPC name: {IP:
    (endpoint name or None, what it is instead)}}: scaled endpoints,
    endpoints behind tunnel peers, gateways), which `hosted` options refuse."""

    __slots__ = ("vpcs", "hosts", "endpoints", "unhosted")

    def __init__(self, vpcs=(), hosts=(), endpoints=None, unhosted=None):
        self.vpcs = frozenset(vpcs)
        self.hosts = frozenset(hosts)
        self.endpoints = dict(endpoints or {})
        self.unhosted = dict(unhosted or {})


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
    # endpoints last: they are endpoints of the VPC their sibling names
    for oname in sorted(options, key=lambda o: (options[o].get("type") in ENDPOINT_TYPES, o)):
        opt = options[oname]
        here = "%s.%s" % (path, oname)
        if opt.get("type") in ENDPOINT_TYPES:
            if mapping.get(oname) is not None and "vpc" in out:
                _check_endpoint(mapping[oname], opt, out, here, errors, ctx)
            continue
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


def _check_endpoint(value, opt, out, path, errors, ctx):
    """An endpoint (by name, or by address) of the VPC out["vpc"]; a name's
    address goes to the option its schema fills."""
    vpc = out.get("vpc")
    names = ctx.endpoints.get(vpc, {})
    unhosted = ctx.unhosted.get(vpc, {})
    if opt["type"] == "endpoint":
        if value not in names:
            others = sorted(v for v, eps in ctx.endpoints.items() if value in eps and v != vpc)
            where = ": it is an endpoint of %s" % ", ".join(others) if others else suggest(value, names)
            errors.add(path, "no endpoint named %r in VPC %s%s" % (value, vpc, where))
            return
        ip = names[value]
    else:
        try:
            ip = addr.ip_text(addr.parse_ipv4(value))
        except ValueError as e:
            errors.add(path, str(e))
            return
        if ip not in names.values():
            what = " (it is %s)" % unhosted[ip][1] if ip in unhosted else ""
            errors.add(path, "%s is the address of no endpoint of VPC %s%s: name one of its endpoints' addresses"
                       % (ip, vpc, what))
            return
    if opt.get("hosted") and ip in unhosted:
        name, what = unhosted[ip]
        shown = value if opt["type"] == "endpoint" else "%s (endpoint %s)" % (ip, name)
        errors.add(path, "%s is %s, which no transit host delivers to, so this function never sees its packets: "
                   "name an endpoint that lives on a transit host (one with a host)" % (shown, what))
        return
    if opt["type"] == "endpoint":
        out[path.rsplit(".", 1)[1]] = str(value)
        if opt.get("fills"):
            out[opt["fills"]] = ip
        return
    out[path.rsplit(".", 1)[1]] = ip


def _check_groups(mapping, opt, path, errors):
    """mutually_exclusive and required_one_of of a dict's options."""
    for group in opt.get("mutually_exclusive") or []:
        given = [n for n in group if mapping.get(n) is not None]
        if len(given) > 1:
            errors.add("%s.%s" % (path, given[1]), "%s and %s exclude each other: give one of them"
                       % (given[0], given[1]))
    for group in opt.get("required_one_of") or []:
        if all(mapping.get(n) is None for n in group):
            errors.add(path, "needs %s: give at least one of them" % " or ".join(group))


def _check_unique(items, opt, path, errors):
    """No two elements of a list alike in the options of `unique`."""
    seen = {}
    for i, item in items:
        key = tuple(item.get(n) for n in opt["unique"])
        if key in seen:
            errors.add("%s[%d]" % (path, i), "the same %s as %s[%d]: list each one once" % (
                " and ".join("%s %s" % (n, "(none)" if v is None else v) for n, v in zip(opt["unique"], key)),
                path, seen[key]))
        else:
            seen[key] = i


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
    elif kind == "path":
        if not isinstance(value, str) or not value.startswith("/") or value.endswith("/") or "\0" in value:
            errors.add(path, "must be the absolute path of a file, not %r" % (value,))
            return _BAD
        value = os.path.normpath(value)
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
    elif kind in ("bitrate", "duration"):  # numbers with units; min and max in the same terms
        parse, unit = (parse_bitrate, " bits per second") if kind == "bitrate" else (parse_duration, "")
        try:
            number = parse(value)
        except ValueError as e:
            errors.add(path, str(e))
            return _BAD
        if "min" in opt and number < parse(opt["min"]) or "max" in opt and number > parse(opt["max"]):
            errors.add(path, "%s is out of range: use %s to %s%s" % (value, opt.get("min", "-"), opt.get("max", "-"),
                                                                     unit))
            return _BAD
        value = number if kind == "bitrate" else duration_text(number)
    elif kind == "dict":
        if "options" in opt:
            checked = _check_options(value, opt["options"], path, errors, ctx)
            if checked is not _BAD:
                _check_groups(value, opt, path, errors)
            return checked
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
        clean = []  # (index, item) of the items without errors: the ones unique compares
        for i, item in enumerate(value):
            before = len(errors)
            checked = _check_value(item, elements, opt, "%s[%d]" % (path, i), errors, ctx)
            if checked is not _BAD:
                items.append(checked)
                if len(errors) == before:
                    clean.append((i, checked))
        if opt.get("unique"):
            _check_unique(clean, opt, path, errors)
        return items
    if "choices" in opt and value not in opt["choices"]:
        choices = [str(c) for c in opt["choices"]]
        errors.add(path, "%r is not one of %s%s" % (value, ", ".join(choices), suggest(value, choices)))
        return _BAD
    return value
