# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BPF objects travel to a host as one archive (objects.tar, written by
mizar.transit.bpf_build): one transfer per run instead of one task per file.
This side compares the archive with the host's object directory and makes
the directory hold exactly the archive's objects."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import uuid

ARCHIVE = "objects.tar"
SUFFIX = ".bpf.o"


class ObjectsError(Exception):
    pass


def _members(tar):
    """{relative path: TarInfo} of the archive's objects; anything else in it
    (a link, a device, a path that climbs out) is an error."""
    out = {}
    for m in tar.getmembers():
        if m.isdir():
            continue
        name = os.path.normpath(m.name)
        if not m.isfile() or name.startswith("..") or os.path.isabs(name) or not name.endswith(SUFFIX):
            raise ObjectsError("%s is not a BPF object an archive of objects may hold" % m.name)
        out[name] = m
    return out


def _digest(data):
    return hashlib.sha256(data).hexdigest()


def _have(obj_dir):
    """{relative path: sha256} of the objects under obj_dir."""
    out = {}
    for top, dummy, files in os.walk(obj_dir):
        for f in files:
            if f.endswith(SUFFIX):
                path = os.path.join(top, f)
                with open(path, "rb") as fh:
                    out[os.path.relpath(path, obj_dir)] = _digest(fh.read())
    return out


def install(archive, obj_dir, check_mode=False):
    """Make obj_dir hold exactly the archive's objects. Returns
    {changed, added, updated, removed, diff, staged} where staged is a
    directory holding the archive's objects to read from: obj_dir itself,
    or in check mode a temporary copy (the caller removes it with
    discard())."""
    try:
        tar = tarfile.open(archive)
    except (tarfile.TarError, IOError, OSError) as e:
        raise ObjectsError("reading %s: %s" % (archive, e))
    with tar:
        members = _members(tar)
        want = {}
        for name, m in members.items():
            want[name] = tar.extractfile(m).read()
    have = _have(obj_dir) if os.path.isdir(obj_dir) else {}
    added = sorted(n for n in want if n not in have)
    updated = sorted(n for n in want if n in have and have[n] != _digest(want[n]))
    removed = sorted(n for n in have if n not in want)
    changed = bool(added or updated or removed)
    target = obj_dir
    if changed and check_mode:
        target = tempfile.mkdtemp(prefix="mizar-objects-")
    if changed:
        for name in (added + updated) if target == obj_dir else sorted(want):
            _write(os.path.join(target, name), want[name])
        if target == obj_dir:
            for name in removed:
                os.unlink(os.path.join(obj_dir, name))
    before = "".join("%s %s\n" % (n, have[n][:16]) for n in sorted(have))
    after = "".join("%s %s\n" % (n, _digest(want[n])[:16]) for n in sorted(want))
    return {"changed": changed, "added": added, "updated": updated, "removed": removed,
            "diff": {"before": before, "after": after}, "staged": target}


def discard(result, obj_dir):
    """Remove a check-mode copy made by install()."""
    if result["staged"] != obj_dir:
        shutil.rmtree(result["staged"], ignore_errors=True)


REMOVING = ".removing-"  # infix of a directory being removed (remove())


def remove(obj_dir, check_mode=False):
    """Remove obj_dir and everything under it; True when this call removed
    it (or, in check mode, would).

    Hosts that share a file system (lab hosts are namespaces of one
    machine) may run this on the same directory at the same moment. The
    directory is first renamed to a name of this call's own, in the same
    parent: exactly one rename succeeds, and that caller alone removes the
    tree and reports it; the others find the directory gone, which is what
    they wanted, and report nothing. A tree left half-removed by a killed
    earlier run (parent/.<name>.removing-<pid>-*, its process gone) goes too."""
    path = os.path.abspath(obj_dir).rstrip(os.sep) or os.sep
    parent, name = os.path.split(path)
    prefix = "." + name + REMOVING
    try:
        leftovers = [os.path.join(parent, f) for f in os.listdir(parent)
                     if f.startswith(prefix) and not _alive(f[len(prefix):].partition("-")[0])]
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
        return False
    exists = os.path.lexists(path)
    if check_mode:
        return exists or bool(leftovers)
    removed = False
    if exists:
        if os.path.islink(path) or not os.path.isdir(path):
            removed = _gone(os.unlink, path)
        else:
            doomed = os.path.join(parent, "%s%d-%s" % (prefix, os.getpid(), uuid.uuid4().hex[:12]))
            try:
                os.rename(path, doomed)
            except OSError as e:
                if e.errno == errno.ENOENT:  # another host's remove() got there first
                    pass
                elif e.errno in (errno.EBUSY, errno.EXDEV):  # a mount point: empty it where it is
                    removed = _rmtree_tolerant(path, keep_top=True)
                else:
                    raise
            else:
                leftovers.append(doomed)
                removed = True
    for d in leftovers:
        removed = _rmtree_tolerant(d) or removed
    return removed


def _alive(pid):
    """Whether the process of a removal in progress still runs (then the
    tree is its to remove)."""
    try:
        os.kill(int(pid), 0)
    except ValueError:
        return False
    except OSError as e:
        return e.errno == errno.EPERM
    return True


def _gone(fn, path):
    """fn(path); False when path was already gone."""
    try:
        fn(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
        return False
    return True


def _rmtree_tolerant(path, keep_top=False):
    """shutil.rmtree that lets others remove parts of the tree meanwhile.
    True when it removed anything."""
    did = []

    def onerror(fn, p, exc_info):
        e = exc_info[1]
        if isinstance(e, OSError) and e.errno == errno.ENOENT:
            return
        raise e

    if not os.path.lexists(path):
        return False
    if keep_top:
        for f in os.listdir(path):
            p = os.path.join(path, f)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, onerror=onerror)
            else:
                _gone(os.unlink, p)
            did.append(p)
        return bool(did)
    shutil.rmtree(path, onerror=onerror)
    return True


def _write(path, data):
    """Write a file whole or not at all (a reader never sees half an object)."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o755)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def pack(src_dir, names, archive):
    """Write the archive of src_dir's objects names (relative paths),
    byte-identical for identical objects (sorted, no times, no owners); leave
    an archive that already has those bytes untouched. Returns whether it
    was written."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(archive) or ".", prefix=".tmp-")
    os.close(fd)
    try:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for name in sorted(names):
                info = tarfile.TarInfo(name)
                with open(os.path.join(src_dir, name), "rb") as f:
                    data = f.read()
                info.size = len(data)
                info.mode = 0o644
                info.mtime = 0
                tar.addfile(info, io.BytesIO(data))
        with open(tmp, "rb") as f:
            new = f.read()
        try:
            with open(archive, "rb") as f:
                if f.read() == new:
                    return False
        except (IOError, OSError):
            pass
        os.rename(tmp, archive)
        return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
