# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BPF objects travel to a host as one archive (objects.tar, written by
mizar.transit.bpf_build): one transfer per run instead of one task per file,
and none when the host holds them already. The controller sends first the
archive's manifest (each object's SHA-256); the host compares it with the
files of its object directory, and only when they differ is the archive
carried over, to make the directory hold exactly the archive's objects."""
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


def read_archive(archive):
    """{relative path: bytes} of the archive's objects."""
    try:
        tar = tarfile.open(archive)
    except (tarfile.TarError, IOError, OSError) as e:
        raise ObjectsError("reading %s: %s" % (archive, e))
    with tar:
        return dict((name, tar.extractfile(m).read()) for name, m in _members(tar).items())


def manifest(archive):
    """{relative path: sha256} of the archive's objects: what a host's
    object directory must hold, and nothing else, to need no copy of it."""
    return digests_of(read_archive(archive))


def digests_of(objects):
    """{relative path: sha256} of {relative path: bytes}."""
    return dict((name, _digest(data)) for name, data in objects.items())


def digests(obj_dir):
    """{relative path: sha256} of the objects under obj_dir, read from the
    files themselves ({} when it does not exist)."""
    out = {}
    for top, dummy, files in os.walk(obj_dir):
        for f in files:
            if f.endswith(SUFFIX):
                path = os.path.join(top, f)
                with open(path, "rb") as fh:
                    out[os.path.relpath(path, obj_dir)] = _digest(fh.read())
    return out


def difference(want, have):
    """{added, updated, removed}: the relative paths to write and to delete
    so that a directory holding have ({path: sha256}) holds exactly want."""
    return {"added": sorted(n for n in want if n not in have),
            "updated": sorted(n for n in want if n in have and have[n] != want[n]),
            "removed": sorted(n for n in have if n not in want)}


def listing(found):
    """Text lines for a diff: each object and the start of its digest."""
    return "".join("%s %s\n" % (n, found[n][:16]) for n in sorted(found))


def write(obj_dir, objects):
    """Write objects ({relative path: bytes}) under obj_dir, each whole."""
    for name in sorted(objects):
        write_whole(os.path.join(obj_dir, name), objects[name])


def delete(obj_dir, names):
    """Delete the objects names (relative paths) from obj_dir."""
    for name in names:
        _gone(os.unlink, os.path.join(obj_dir, name))


def staged(objects):
    """A temporary directory holding objects ({relative path: bytes}), to
    load from before they are installed; remove it with discard()."""
    target = tempfile.mkdtemp(prefix="mizar-objects-")
    write(target, objects)
    return target


def discard(path):
    """Remove a directory made by staged()."""
    shutil.rmtree(path, ignore_errors=True)


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


def write_whole(path, data):
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


def packed(src_dir, names):
    """The bytes of the archive of src_dir's objects names (relative paths):
    byte-identical for identical objects (sorted, no times, no owners)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(names):
            info = tarfile.TarInfo(name)
            with open(os.path.join(src_dir, name), "rb") as f:
                data = f.read()
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def is_packed(src_dir, names, archive):
    """Whether archive holds exactly packed(src_dir, names)."""
    try:
        with open(archive, "rb") as f:
            return f.read() == packed(src_dir, names)
    except (IOError, OSError):
        return False


def pack(src_dir, names, archive):
    """Write the archive of src_dir's objects names (packed()), whole; leave
    an archive that already has those bytes untouched. Returns whether it
    was written."""
    if is_packed(src_dir, names, archive):
        return False
    write_whole(archive, packed(src_dir, names))
    return True
