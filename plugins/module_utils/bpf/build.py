# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Building the BPF objects of a bpf/ tree (and users' function sources):
the compiler side of the bpf_build module, whose backend is ops/bpf_build.py.

    targets, version = plan_build(src, dest, sources=[...], cflags=[...], clang="clang")
    compile_all(stale(targets, read_stamp(dest)), src, clang, cflags)

The tree is laid out like the collection's bpf/: *.bpf.c at its top, shared
headers in include/, network functions in functions/*.bpf.c. Objects land in
dest with the same relative paths (dest/transit.bpf.o,
dest/functions/acl.bpf.o); an extra source /x/y/myfn.c (or myfn.bpf.c)
becomes dest/functions/myfn.bpf.o, compiled with the tree's include
directory so that it can include mzr_maps.h and reuse the datapath's maps.

The compiler command mirrors bpf/Makefile (BASE_CFLAGS, run from src with
-Iinclude), followed by the caller's extra flags.

A stamp file in dest records, per object, a digest of everything its bytes
depend on: every .c and .h under src, the object's own source (and the .h
files beside an extra source), the flags and the compiler's `--version`
text. An object is rebuilt only when its digest changed or the file is
missing, so a second run with the same inputs compiles nothing. Objects are
compiled in parallel under temporary names and renamed in place only once
all of them compiled, so a failed build leaves dest as it was. Objects a
previous run built that are no longer wanted (a function removed from the
tree or from the sources) are removed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import subprocess

from ansible_collections.mizar.transit.plugins.module_utils.model.functions import OBJECT_SUFFIX as SUFFIX, object_name

STAMP = ".mizar-build.json"
STAMP_VERSION = 1
# bpf/Makefile's CFLAGS, minus the include directories (added per build)
BASE_CFLAGS = ("-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror")


class BuildError(Exception):
    """The objects cannot be built as asked; says which input is at fault."""


def arch_include():
    """The multiarch include directory (asm/ headers), as the Makefile uses."""
    return "/usr/include/%s-linux-gnu" % os.uname().machine


class Target:
    """One object to build: name ('transit', 'functions/acl'), the source,
    the output path, and the digest of its inputs."""

    __slots__ = ("name", "source", "output", "digest")

    def __init__(self, name, source, output):
        self.name = name
        self.source = source
        self.output = output
        self.digest = None


def tree_sources(src):
    """Relative paths of the tree's sources that become objects: top-level
    *.bpf.c and functions/*.bpf.c (as the Makefile's SRCS)."""
    out = []
    for sub in ("", "functions"):
        d = os.path.join(src, sub)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if f.endswith(".bpf.c") and os.path.isfile(os.path.join(d, f)):
                out.append(os.path.join(sub, f) if sub else f)
    return out


def tree_inputs(src):
    """Every .c and .h under src (relative paths, sorted): what any object
    of the tree may depend on."""
    out = []
    for dirpath, dirs, files in os.walk(src):
        dirs.sort()
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                out.append(os.path.relpath(os.path.join(dirpath, f), src))
    return out


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def compiler_version(clang):
    """`clang --version` output: a different compiler may emit other code."""
    try:
        res = subprocess.run([clang, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, check=False)
    except OSError as e:
        raise BuildError("clang: cannot run %s: %s (install clang, or set clang to its path)" % (clang, e.strerror))
    if res.returncode != 0:
        raise BuildError("clang: %s --version failed (exit %d): %s" % (clang, res.returncode, res.stdout.strip()))
    return res.stdout.strip()


def command(clang, cflags, source, output):
    """The compiler command for one object, run with cwd=src."""
    return [clang] + list(BASE_CFLAGS) + ["-Iinclude", "-I" + arch_include()] + list(cflags) + \
        ["-c", source, "-o", output]


def plan_build(src, dest, sources=(), cflags=(), clang="clang"):
    """The targets of a build, with their input digests. Raises BuildError
    naming the option and item at fault."""
    if not src or not os.path.isdir(src):
        raise BuildError("src: %s is not a directory (a bpf/ tree with include/ and *.bpf.c)" % src)
    if not os.path.isdir(os.path.join(src, "include")):
        raise BuildError("src: %s has no include/ directory; is it a bpf/ tree like the collection's?" % src)
    if not dest:
        raise BuildError("dest: an output directory is required")
    for i, flag in enumerate(cflags):
        if not isinstance(flag, str) or not flag:
            raise BuildError("cflags[%d]: %r is not a compiler flag" % (i, flag))
    version = compiler_version(clang)
    src = os.path.abspath(src)
    dest = os.path.abspath(dest)

    h = hashlib.sha256()
    h.update(json.dumps({"version": STAMP_VERSION, "clang": version, "base": list(BASE_CFLAGS),
                         "arch": arch_include(), "cflags": list(cflags)}, sort_keys=True).encode())
    for rel in tree_inputs(src):
        h.update(("\0%s\0%s" % (rel, _file_digest(os.path.join(src, rel)))).encode())
    common = h.hexdigest()

    targets = []
    for rel in tree_sources(src):
        name = rel[:-len(".bpf.c")]
        targets.append(Target(name, rel, os.path.join(dest, name + SUFFIX)))
    if not targets:
        raise BuildError("src: %s holds no *.bpf.c sources" % src)
    taken = dict((t.name, "%s/%s" % (src, t.source)) for t in targets)
    for i, path in enumerate(sources):
        if not isinstance(path, str) or not path.endswith(".c"):
            raise BuildError("sources[%d]: %r is not a C source (a path ending in .c)" % (i, path))
        if not os.path.isfile(path):
            raise BuildError("sources[%d]: %s does not exist" % (i, path))
        name = object_name(path)
        if name in taken:
            raise BuildError("sources[%d]: %s would build %s%s, which %s already builds; rename the source" % (
                i, path, name, SUFFIX, taken[name]))
        taken[name] = path
        targets.append(Target(name, os.path.abspath(path), os.path.join(dest, name + SUFFIX)))
    for t in targets:
        d = hashlib.sha256(common.encode())
        d.update(("\0%s\0%s" % (t.name, _file_digest(os.path.join(src, t.source)))).encode())
        if os.path.isabs(t.source):  # an extra source: the headers beside it too
            here = os.path.dirname(t.source)
            for f in sorted(os.listdir(here)):
                if f.endswith(".h") and os.path.isfile(os.path.join(here, f)):
                    d.update(("\0%s\0%s" % (f, _file_digest(os.path.join(here, f)))).encode())
        t.digest = d.hexdigest()
    return targets, version


def read_stamp(dest):
    """{"objects": {name: digest}, ...} of the last build into dest, or {}."""
    try:
        with open(os.path.join(dest, STAMP)) as f:
            data = json.load(f)
    except (IOError, OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != STAMP_VERSION:
        return {}
    return data


def stale(targets, stamp):
    """The targets whose object is missing or was built from other inputs."""
    built = stamp.get("objects") or {}
    return [t for t in targets if built.get(t.name) != t.digest or not os.path.isfile(t.output)]


def leftovers(targets, stamp, dest):
    """Objects the last build made that this one does not want."""
    wanted = set(t.name for t in targets)
    out = []
    for name in sorted(stamp.get("objects") or {}):
        path = os.path.join(dest, name + SUFFIX)
        if name not in wanted and os.path.isfile(path):
            out.append((name, path))
    return out


def compile_all(targets, src, clang, cflags, jobs=None):
    """Compile the targets, up to `jobs` at once (default: the CPUs), each
    into a temporary file. Only when every one succeeded are they renamed
    in place, so dest never mixes objects built from different inputs (they
    share the map ABI). A failure raises BuildError with the compiler's
    output, and leaves dest as it was."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    pending = list(targets)
    running, done, failed = [], [], []
    try:
        while pending or running:
            while pending and len(running) < jobs:
                t = pending.pop(0)
                d = os.path.dirname(t.output)
                if not os.path.isdir(d):
                    os.makedirs(d)
                tmp = "%s.tmp%d" % (t.output, os.getpid())
                cmd = command(clang, cflags, t.source, tmp)
                proc = subprocess.Popen(cmd, cwd=src, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        universal_newlines=True)
                running.append((t, tmp, cmd, proc))
            t, tmp, cmd, proc = running.pop(0)
            out = proc.communicate()[0]
            (failed if proc.returncode else done).append((t, tmp, cmd, proc.returncode, out))
    finally:
        for _t, _tmp, _cmd, proc in running:  # only after an exception of our own
            proc.kill()
            proc.wait()
    if failed:
        for _t, tmp, _cmd, _rc, _out in done + failed:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise BuildError("\n".join("compiling %s (%s) failed with exit %d:\n%s\ncommand: %s" % (
            t.source if os.path.isabs(t.source) else os.path.join(src, t.source), t.name, rc, out.strip(),
            " ".join(cmd)) for t, _tmp, cmd, rc, out in failed))
    for t, tmp, _cmd, _rc, _out in done:
        os.rename(tmp, t.output)


def write_stamp(dest, targets, version, cflags):
    data = {"version": STAMP_VERSION, "clang": version.splitlines()[0] if version else "",
            "cflags": list(BASE_CFLAGS) + list(cflags),
            "objects": dict((t.name, t.digest) for t in targets)}
    path = os.path.join(dest, STAMP)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.rename(tmp, path)
    return path
