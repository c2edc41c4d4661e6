# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bpf_build module's backend: build what is out of date, on the
controller, with the compiler side of bpf/build.py, and pack every object
into the archive the transit module carries to the hosts (bpf/objects.py).

The backend contract of ops/runner.py: read() finds the build's targets and
their input digests, the objects a previous build left that are stale or no
longer wanted, and whether the archive holds the objects as they are;
plan() makes the steps: compile, delete, record the stamp, pack.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.mizar.transit.plugins.module_utils.bpf import build, objects
from ansible_collections.mizar.transit.plugins.module_utils.ops import args
from ansible_collections.mizar.transit.plugins.module_utils.ops.steps import Step, carry_out

NEEDS = ()  # runs on the controller: neither pyroute2 nor libbpf
MODULE = args.module_args(dict(
    src=dict(type="path", required=True),
    dest=dict(type="path", required=True),
    sources=dict(type="list", elements="path", default=[]),
    cflags=dict(type="list", elements="str", default=[]),
    clang=dict(type="str", default="clang"),
))
ERRORS = (build.BuildError,)


def context(params):
    return "building %s into %s" % (params["src"], params["dest"])


class Spec:
    """A build: the bpf/ tree, where the objects go, the extra function
    sources, the extra flags, the compiler."""

    def __init__(self, src, dest, sources=(), cflags=(), clang="clang"):
        self.src = os.path.abspath(src) if src else src
        self.dest = os.path.abspath(dest) if dest else dest
        self.sources = list(sources)
        self.cflags = list(cflags)
        self.clang = clang
        self.stamp = os.path.join(self.dest or "", build.STAMP)
        self.archive = os.path.join(self.dest or "", objects.ARCHIVE)
        self.headers = ("%s (last build)" % self.stamp, "%s (this build)" % self.stamp)

    @classmethod
    def from_params(cls, params):
        return cls(params["src"], params["dest"], params["sources"], params["cflags"], params["clang"])


def read(spec):
    """{targets (build.Target, with their input digests), version (the
    compiler's), stamp (the last build's record), stale (the targets to
    compile), leftovers ([(name, path)] of objects nothing builds any
    more), built ({name: input digest} of the objects the stamp records
    that exist), stamped (the stamp file exists), packed (the archive holds
    the objects as they are)}. Raises BuildError naming the option at
    fault."""
    targets, version = build.plan_build(spec.src, spec.dest, spec.sources, spec.cflags, spec.clang)
    stamp = build.read_stamp(spec.dest)
    stale = build.stale(targets, stamp)
    names = [os.path.relpath(t.output, spec.dest) for t in targets]
    built = dict((n, d) for n, d in (stamp.get("objects") or {}).items()
                 if os.path.isfile(os.path.join(spec.dest, n + build.SUFFIX)))
    return {"targets": targets, "version": version, "stamp": stamp, "stale": stale, "built": built,
            "leftovers": build.leftovers(targets, stamp, spec.dest), "stamped": os.path.isfile(spec.stamp),
            "packed": not stale and objects.is_packed(spec.dest, names, spec.archive)}


def _compile(spec, targets):
    if not os.path.isdir(spec.dest):
        os.makedirs(spec.dest)
    build.compile_all(targets, spec.src, spec.clang, spec.cflags)


def plan(spec, st):
    """Compile what is stale, delete the objects nothing builds, record the
    inputs, pack the archive: each only when needed."""
    steps = []
    if st["stale"]:
        steps.append(Step("compile %s" % ", ".join(t.name + build.SUFFIX for t in st["stale"]), _compile, spec,
                          st["stale"]))
    steps += [Step("delete %s (nothing builds it any more)" % path, os.unlink, path) for _name, path in st["leftovers"]]
    if st["stale"] or st["leftovers"] or not st["stamped"]:
        steps.append(Step("record the inputs of every object in %s" % spec.stamp, build.write_stamp, spec.dest,
                          st["targets"], st["version"], spec.cflags))
    if not st["packed"]:
        names = [os.path.relpath(t.output, spec.dest) for t in st["targets"]]
        steps.append(Step("pack every object into %s" % spec.archive, objects.pack, spec.dest, names, spec.archive))
    return steps


def _lines(found, version, cflags):
    head = ["compiler: %s" % (version.splitlines()[0] if version else "unknown"),
            "cflags: %s" % " ".join(cflags)]
    return head + ["%s%s: inputs %s" % (name, build.SUFFIX, digest[:16]) for name, digest in sorted(found.items())]


def ensure(spec, check_mode=False):
    """Build what is out of date. Returns {changed, actions, objects: {name:
    path}, built: [names], removed: [names], stamp, archive, manifest, diff:
    {before, after}}.

    manifest is objects.manifest() of the archive as it stands once the
    build is done: {relative path: sha256} of its objects. In check mode
    that is the archive already there only when the build would leave it as
    it is; when it would compile or repack, the objects it would hold do not
    exist yet, and manifest is None rather than digests of anything else."""
    st = read(spec)
    steps = plan(spec, st)
    actions = carry_out(steps, check_mode=check_mode, error=build.BuildError)
    manifest = objects.manifest(spec.archive) if st["packed"] or not check_mode else None
    stamp, targets = st["stamp"], st["targets"]
    before = _lines(st["built"], stamp.get("clang", ""), stamp.get("cflags") or []) if stamp else []
    after = _lines(dict((t.name, t.digest) for t in targets), st["version"], list(build.BASE_CFLAGS) + spec.cflags)
    return {"changed": bool(steps), "actions": actions, "objects": dict((t.name, t.output) for t in targets),
            "built": [t.name for t in st["stale"]], "removed": [n for n, _p in st["leftovers"]],
            "stamp": spec.stamp, "archive": spec.archive, "manifest": manifest,
            "diff": {"before": "\n".join(before) + ("\n" if before else ""), "after": "\n".join(after) + "\n"}}
