# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A thin ctypes binding of the system libbpf (libbpf.so.1).

Objects, programs, maps (single and batch operations), pinning, bpf_link,
BPF_PROG_TEST_RUN and BTF, and nothing else. Errors raise BpfError with the
failing operation, errno and, for loads, libbpf's own log.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import ctypes.util
import errno as errno_mod
import mmap
import os
import threading

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PROG_ARRAY = 3
BPF_MAP_TYPE_PERCPU_HASH = 5
BPF_MAP_TYPE_PERCPU_ARRAY = 6
BPF_MAP_TYPE_LPM_TRIE = 11
BPF_MAP_TYPE_ARRAY_OF_MAPS = 12

BPF_XDP = 37  # enum bpf_attach_type
BPF_F_REPLACE = 1 << 2
BPF_F_MMAPABLE = 1 << 10

BTF_KIND_INT = 1
BTF_KIND_ARRAY = 3
BTF_KIND_STRUCT = 4
BTF_KIND_TYPEDEF = 8
BTF_KIND_VOLATILE = 9
BTF_KIND_CONST = 10

_PERCPU_TYPES = (BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, 10, 21)


class BpfError(Exception):
    """A libbpf or bpf() failure: op names the operation, errno the cause."""

    def __init__(self, op, err, log="", msg=None):
        self.op = op
        self.errno = abs(err) if err else 0
        self.log = log
        if msg is None:
            msg = "%s failed: %s" % (op, os.strerror(self.errno) if self.errno else "unknown error")
            if log:
                msg += "\n" + log.strip()
        super(BpfError, self).__init__(msg)


class VerifierRejection(BpfError):
    """The kernel's verifier refused a program. The message is one line that
    names the host, its kernel, the object, the program and the verifier's
    own reason; the whole log stays in .log."""

    def __init__(self, path, err, log):
        self.path = path
        self.program, self.reason, self.insn = verifier_reason(log)
        uname = os.uname()
        what = "program %s of %s" % (self.program, path) if self.program else path
        msg = "the Linux %s verifier on %s rejected %s: %s" % (uname.release, uname.nodename, what, self.reason)
        if self.insn:
            msg += " (at: %s)" % self.insn
        super(VerifierRejection, self).__init__("loading %s" % path, err, log, msg=msg)


def verifier_reason(log):
    """(program, reason, source line) from a libbpf load log: the program
    libbpf says failed, the verifier's last message before its statistics,
    and the last source line it quoted. Missing parts are None; a log with
    no verifier output gives the last libbpf line as the reason."""
    lines = [ln.rstrip() for ln in log.splitlines() if ln.strip()]
    program = reason = insn = None
    for ln in lines:
        if ln.startswith("libbpf: prog '") and "failed to load" in ln:
            program = ln.split("'")[1]
    marks = [i for i, ln in enumerate(lines) if "-- BEGIN PROG LOAD LOG --" in ln or ln == "-- END PROG LOAD LOG --"]
    if len(marks) >= 2:
        start, end = marks[0], marks[1]
        body = lines[start + 1:end]
        for i in range(len(body) - 1, -1, -1):
            ln = body[i]
            if ln.startswith("processed ") or ln.startswith("verification time") or ln.startswith("stack depth"):
                continue
            reason = ln
            body = body[:i]
            break
        for ln in reversed(body):
            if ln.startswith("; "):
                insn = ln[2:].strip()
                break
    if reason is None:
        rest = [ln for ln in lines if not ln.startswith("libbpf: map") and "pinned map" not in ln]
        reason = rest[-1] if rest else "no reason given"
    return program, reason, insn


# ---------------------------------------------------------------- structs


class _ObjectOpenOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("object_name", ctypes.c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", ctypes.c_char_p),
        ("_attach_prog_fd", ctypes.c_uint32),
        ("kconfig", ctypes.c_char_p),
        ("btf_custom_path", ctypes.c_char_p),
        ("kernel_log_buf", ctypes.c_char_p),
        ("kernel_log_size", ctypes.c_size_t),
        ("kernel_log_level", ctypes.c_uint32),
    ]


class _TestRunOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class _BatchOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("elem_flags", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


class _MapCreateOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("btf_fd", ctypes.c_uint32),
        ("btf_key_type_id", ctypes.c_uint32),
        ("btf_value_type_id", ctypes.c_uint32),
        ("btf_vmlinux_value_type_id", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("map_extra", ctypes.c_uint64),
        ("numa_node", ctypes.c_uint32),
        ("map_ifindex", ctypes.c_uint32),
    ]


class _LinkCreateOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("flags", ctypes.c_uint32),
        ("iter_info", ctypes.c_void_p),
        ("iter_info_len", ctypes.c_uint32),
        ("target_btf_id", ctypes.c_uint32),
        ("_union", ctypes.c_uint8 * 32),
    ]


class _LinkUpdateOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("flags", ctypes.c_uint32), ("old_prog_fd", ctypes.c_uint32)]


class _XdpQueryOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("prog_id", ctypes.c_uint32),
        ("drv_prog_id", ctypes.c_uint32),
        ("hw_prog_id", ctypes.c_uint32),
        ("skb_prog_id", ctypes.c_uint32),
        ("attach_mode", ctypes.c_uint8),
    ]


class _XdpAttachOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("old_prog_fd", ctypes.c_int)]


class _BtfType(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32), ("size_or_type", ctypes.c_uint32)]


class _BtfMember(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("type", ctypes.c_uint32), ("offset", ctypes.c_uint32)]


class _BtfArray(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("index_type", ctypes.c_uint32), ("nelems", ctypes.c_uint32)]


# ---------------------------------------------------------------- library

_LOG = threading.local()
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_lib = None
_libc = None
_print_cb = None


def _sig(lib, name, restype, argtypes):
    try:
        fn = getattr(lib, name)
    except AttributeError:
        raise BpfError("the system libbpf.so.1 has no %s: mizar.transit needs libbpf 1.0 or newer "
                       "(Debian 12's libbpf1 1.1 works)" % name, errno_mod.ENOSYS)
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


_LOG_BUF = ctypes.create_string_buffer(1 << 22)  # a verifier log arrives as one message


def _collect_log(level, fmt, args):
    buf = _LOG_BUF
    _libc.vsnprintf(buf, len(buf), fmt, ctypes.c_void_p(args))
    lines = getattr(_LOG, "lines", None)
    if lines is not None and len(lines) < 2000:
        lines.append(buf.value.decode("utf-8", "replace"))
    return 0


def lib():
    """The loaded libbpf.so.1 with the prototypes this module uses."""
    global _lib, _libc, _print_cb
    if _lib is not None:
        return _lib
    try:
        handle = ctypes.CDLL("libbpf.so.1", use_errno=True)
    except OSError:
        raise BpfError("loading libbpf.so.1 (install the libbpf1 package: libbpf 1.0 or newer)", errno_mod.ENOENT)
    _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    _libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    vp, i, u32, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_char_p
    _sig(handle, "libbpf_set_print", vp, [_PRINT_FN])
    _sig(handle, "bpf_object__open_file", vp, [cp, ctypes.POINTER(_ObjectOpenOpts)])
    _sig(handle, "bpf_object__load", i, [vp])
    _sig(handle, "bpf_object__close", None, [vp])
    _sig(handle, "bpf_object__find_program_by_name", vp, [vp, cp])
    _sig(handle, "bpf_object__find_map_by_name", vp, [vp, cp])
    _sig(handle, "bpf_object__next_map", vp, [vp, vp])
    _sig(handle, "bpf_object__next_program", vp, [vp, vp])
    _sig(handle, "bpf_object__btf", vp, [vp])
    _sig(handle, "bpf_program__fd", i, [vp])
    _sig(handle, "bpf_program__name", cp, [vp])
    _sig(handle, "bpf_map__fd", i, [vp])
    _sig(handle, "bpf_map__name", cp, [vp])
    _sig(handle, "bpf_map__set_pin_path", i, [vp, cp])
    _sig(handle, "bpf_map__pin_path", cp, [vp])
    _sig(handle, "bpf_map__reuse_fd", i, [vp, i])
    _sig(handle, "bpf_map__btf_key_type_id", u32, [vp])
    _sig(handle, "bpf_map__btf_value_type_id", u32, [vp])
    _sig(handle, "bpf_map__max_entries", u32, [vp])
    _sig(handle, "bpf_map__key_size", u32, [vp])
    _sig(handle, "bpf_map__value_size", u32, [vp])
    _sig(handle, "bpf_map__type", i, [vp])
    _sig(handle, "bpf_obj_pin", i, [i, cp])
    _sig(handle, "bpf_obj_get", i, [cp])
    _sig(handle, "bpf_obj_get_info_by_fd", i, [i, vp, ctypes.POINTER(u32)])
    _sig(handle, "bpf_map_lookup_elem", i, [i, vp, vp])
    _sig(handle, "bpf_map_update_elem", i, [i, vp, vp, ctypes.c_uint64])
    _sig(handle, "bpf_map_delete_elem", i, [i, vp])
    _sig(handle, "bpf_map_get_next_key", i, [i, vp, vp])
    _sig(handle, "bpf_map_update_batch", i, [i, vp, vp, ctypes.POINTER(u32), ctypes.POINTER(_BatchOpts)])
    _sig(handle, "bpf_map_lookup_batch", i, [i, vp, vp, vp, vp, ctypes.POINTER(u32), ctypes.POINTER(_BatchOpts)])
    _sig(handle, "bpf_map_get_fd_by_id", i, [u32])
    _sig(handle, "bpf_prog_get_fd_by_id", i, [u32])
    _sig(handle, "bpf_link_get_fd_by_id", i, [u32])
    _sig(handle, "bpf_prog_test_run_opts", i, [i, ctypes.POINTER(_TestRunOpts)])
    _sig(handle, "bpf_map_create", i, [i, cp, u32, u32, u32, ctypes.POINTER(_MapCreateOpts)])
    _sig(handle, "bpf_link_create", i, [i, i, ctypes.c_int, ctypes.POINTER(_LinkCreateOpts)])
    _sig(handle, "bpf_link_update", i, [i, i, ctypes.POINTER(_LinkUpdateOpts)])
    _sig(handle, "bpf_link_detach", i, [i])
    _sig(handle, "bpf_xdp_query", i, [i, i, ctypes.POINTER(_XdpQueryOpts)])
    _sig(handle, "bpf_xdp_attach", i, [i, i, u32, ctypes.POINTER(_XdpAttachOpts)])
    _sig(handle, "bpf_xdp_detach", i, [i, u32, ctypes.POINTER(_XdpAttachOpts)])
    _sig(handle, "libbpf_num_possible_cpus", i, [])
    _sig(handle, "libbpf_version_string", cp, [])
    _sig(handle, "btf__parse", vp, [cp, vp])
    _sig(handle, "btf__load_from_kernel_by_id", vp, [u32])
    _sig(handle, "btf__free", None, [vp])
    _sig(handle, "btf__find_by_name_kind", i, [vp, cp, u32])
    _sig(handle, "btf__type_by_id", ctypes.POINTER(_BtfType), [vp, u32])
    _sig(handle, "btf__name_by_offset", cp, [vp, u32])
    _sig(handle, "btf__resolve_size", ctypes.c_long, [vp, u32])
    _sig(handle, "btf__resolve_type", i, [vp, u32])
    _print_cb = _PRINT_FN(_collect_log)
    handle.libbpf_set_print(_print_cb)
    _lib = handle
    return _lib


def version():
    """The libbpf version, e.g. "v1.1" (its relocations shape the programs)."""
    return lib().libbpf_version_string().decode()


def _check(op, ret):
    if ret < 0:
        raise BpfError(op, ret)
    return ret


def _errno_check(op, ptr):
    if not ptr:
        raise BpfError(op, ctypes.get_errno() or errno_mod.EINVAL, _take_log())
    return ptr


def _start_log():
    _LOG.lines = []


def _take_log():
    lines = getattr(_LOG, "lines", None) or []
    _LOG.lines = None
    return "".join(lines)


def possible_cpus():
    return _check("libbpf_num_possible_cpus", lib().libbpf_num_possible_cpus())


# ---------------------------------------------------------------- fds, pins, info


class Fd:
    """An owned file descriptor, closed once."""

    def __init__(self, fd):
        self.fd = fd

    def close(self):
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)
        self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


def obj_get(path):
    """An fd for the pinned object at path."""
    return _check("bpf_obj_get(%s)" % path, lib().bpf_obj_get(path.encode()))


def obj_pin(fd, path):
    _check("bpf_obj_pin(%s)" % path, lib().bpf_obj_pin(fd, path.encode()))


def unpin(path):
    """Remove a pin; absent is fine. Returns True when something was removed."""
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def _info(fd, size):
    buf = ctypes.create_string_buffer(size)
    ln = ctypes.c_uint32(size)
    _check("bpf_obj_get_info_by_fd", lib().bpf_obj_get_info_by_fd(fd, buf, ctypes.byref(ln)))
    return buf.raw


def _u32(raw, off):
    return int.from_bytes(raw[off:off + 4], "little")


def map_info(fd):
    """type, id, key_size, value_size, max_entries, flags, name, btf ids of a map fd."""
    raw = _info(fd, 96)
    return {
        "type": _u32(raw, 0),
        "id": _u32(raw, 4),
        "key_size": _u32(raw, 8),
        "value_size": _u32(raw, 12),
        "max_entries": _u32(raw, 16),
        "map_flags": _u32(raw, 20),
        "name": raw[24:40].split(b"\0", 1)[0].decode(),
        "btf_id": _u32(raw, 64),
        "btf_key_type_id": _u32(raw, 68),
        "btf_value_type_id": _u32(raw, 72),
    }


def prog_info(fd):
    """type, id, tag (hex), name and btf_id of a program fd."""
    raw = _info(fd, 232)
    return {
        "type": _u32(raw, 0),
        "id": _u32(raw, 4),
        "tag": raw[8:16].hex(),
        "name": raw[64:80].split(b"\0", 1)[0].decode(),
        "btf_id": _u32(raw, 128),
    }


def link_info(fd):
    """type, id, prog_id and (for XDP links) ifindex of a link fd."""
    raw = _info(fd, 64)
    return {"type": _u32(raw, 0), "id": _u32(raw, 4), "prog_id": _u32(raw, 8), "ifindex": _u32(raw, 16)}


def prog_fd_by_id(prog_id):
    return _check("bpf_prog_get_fd_by_id(%d)" % prog_id, lib().bpf_prog_get_fd_by_id(prog_id))


def map_fd_by_id(map_id):
    return _check("bpf_map_get_fd_by_id(%d)" % map_id, lib().bpf_map_get_fd_by_id(map_id))


# ---------------------------------------------------------------- maps


class Map:
    """A BPF map by fd: raw bytes in, raw bytes out. Codecs live in abi.py."""

    def __init__(self, fd, name=None, owned=False):
        self.fd = fd
        self._owned = owned
        info = map_info(fd)
        self.info = info
        self.name = name or info["name"]
        self.type = info["type"]
        self.key_size = info["key_size"]
        self.value_size = info["value_size"]
        self.max_entries = info["max_entries"]
        self.percpu = self.type in _PERCPU_TYPES
        self.ncpus = possible_cpus() if self.percpu else 1
        # per-CPU values come as one 8-byte-aligned slot per possible CPU
        self.slot = (self.value_size + 7) & ~7 if self.percpu else self.value_size
        self.value_buf_size = self.slot * self.ncpus

    @classmethod
    def from_pin(cls, path):
        return cls(obj_get(path), owned=True)

    def close(self):
        if self._owned and self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def pin(self, path):
        obj_pin(self.fd, path)

    def _key(self, key):
        if len(key) != self.key_size:
            raise ValueError("%s: key is %d bytes, map wants %d" % (self.name, len(key), self.key_size))
        return ctypes.create_string_buffer(bytes(key), self.key_size)

    def lookup(self, key):
        """The value bytes (per-CPU: a list of them), or None."""
        kb = self._key(key)
        vb = ctypes.create_string_buffer(self.value_buf_size)
        ret = lib().bpf_map_lookup_elem(self.fd, kb, vb)
        if ret == -errno_mod.ENOENT:
            return None
        _check("lookup in %s" % self.name, ret)
        return self._split(vb.raw)

    def _split(self, raw):
        if not self.percpu:
            return raw[:self.value_size]
        return [raw[i * self.slot:i * self.slot + self.value_size] for i in range(self.ncpus)]

    def update(self, key, value, flags=BPF_ANY):
        if self.percpu:
            raise ValueError("%s: per-CPU maps are read-only here" % self.name)
        if len(value) != self.value_size:
            raise ValueError("%s: value is %d bytes, map wants %d" % (self.name, len(value), self.value_size))
        kb = self._key(key)
        vb = ctypes.create_string_buffer(bytes(value), self.value_size)
        _check("update of %s" % self.name, lib().bpf_map_update_elem(self.fd, kb, vb, flags))

    def delete(self, key):
        """Delete key; returns False when it was absent."""
        ret = lib().bpf_map_delete_elem(self.fd, self._key(key))
        if ret == -errno_mod.ENOENT:
            return False
        _check("delete from %s" % self.name, ret)
        return True

    def keys(self):
        """Every key, by get_next_key (works for every map type)."""
        out = []
        prev = None
        nk = ctypes.create_string_buffer(self.key_size)
        while True:
            ret = lib().bpf_map_get_next_key(self.fd, prev, nk)
            if ret == -errno_mod.ENOENT:
                return out
            _check("get_next_key in %s" % self.name, ret)
            out.append(nk.raw)
            prev = ctypes.create_string_buffer(nk.raw, self.key_size)

    def update_batch(self, items, flags=BPF_ANY):
        """Write (key, value) pairs: one bpf() call per chunk where the map
        supports batches, one per element otherwise. Returns the count."""
        items = list(items)
        if not items:
            return 0
        if self.percpu:
            raise ValueError("%s: per-CPU maps are read-only here" % self.name)
        for k, v in items:
            if len(k) != self.key_size or len(v) != self.value_size:
                raise ValueError("%s: entry of wrong size" % self.name)
        return self.update_batch_blobs(b"".join(k for k, dummy in items), b"".join(v for dummy, v in items), flags)

    def update_batch_blobs(self, keys, vals, flags=BPF_ANY):
        """update_batch() of keys and values given as concatenated bytes."""
        n = len(keys) // self.key_size if self.key_size else 0
        if not n or len(keys) != n * self.key_size or len(vals) != n * self.value_size:
            if not keys and not vals:
                return 0
            raise ValueError("%s: entries of wrong size" % self.name)
        if self.percpu:
            raise ValueError("%s: per-CPU maps are read-only here" % self.name)
        kb = ctypes.create_string_buffer(keys, len(keys))
        vb = ctypes.create_string_buffer(vals, len(vals))
        count = ctypes.c_uint32(n)
        opts = _BatchOpts(ctypes.sizeof(_BatchOpts), flags, 0)
        ret = lib().bpf_map_update_batch(self.fd, kb, vb, ctypes.byref(count), ctypes.byref(opts))
        if ret == 0:
            return n
        if ret not in (-errno_mod.EINVAL, -errno_mod.ENOTSUP, -524) or count.value:
            raise BpfError("batch update of %s (%d of %d written)" % (self.name, count.value, n), ret)
        ks, vs = self.key_size, self.value_size
        for i in range(n):  # no batch support for this map type
            self.update(keys[i * ks:(i + 1) * ks], vals[i * vs:(i + 1) * vs], flags)
        return n

    def items(self):
        """Every (key, value) pair: lookup_batch where supported, else key walk."""
        if self.type in (BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_ARRAY,
                         BPF_MAP_TYPE_PERCPU_ARRAY):
            try:
                return self._items_batch()
            except BpfError as e:
                if e.errno not in (errno_mod.EINVAL, errno_mod.ENOTSUP, 524):
                    raise
        out = []
        for k in self.keys():
            v = self.lookup(k)
            if v is not None:
                out.append((k, v))
        return out

    def _items_batch(self):
        chunk = max(1, min(self.max_entries, 4096))
        kb = ctypes.create_string_buffer(self.key_size * chunk)
        vb = ctypes.create_string_buffer(self.value_buf_size * chunk)
        token = max(self.key_size, 8)
        in_b = ctypes.create_string_buffer(token)
        out_b = ctypes.create_string_buffer(token)
        opts = _BatchOpts(ctypes.sizeof(_BatchOpts), 0, 0)
        out = []
        first = True
        while True:
            count = ctypes.c_uint32(chunk)
            ret = lib().bpf_map_lookup_batch(self.fd, None if first else in_b, out_b, kb, vb,
                                             ctypes.byref(count), ctypes.byref(opts))
            if ret < 0 and ret != -errno_mod.ENOENT:
                raise BpfError("batch lookup in %s" % self.name, ret)
            kr, vr = kb.raw, vb.raw
            for i in range(count.value):
                k = kr[i * self.key_size:(i + 1) * self.key_size]
                v = self._split(vr[i * self.value_buf_size:(i + 1) * self.value_buf_size])
                out.append((k, v))
            if ret == -errno_mod.ENOENT:
                return out
            ctypes.memmove(in_b, out_b, token)
            first = False


# ---------------------------------------------------------------- programs


class TestRun:
    """Result of one BPF_PROG_TEST_RUN."""

    def __init__(self, retval, data, duration_ns):
        self.retval = retval
        self.data = data
        self.duration_ns = duration_ns


class Program:
    """A loaded program by fd."""

    def __init__(self, fd, name=None, owned=False):
        self.fd = fd
        self._owned = owned
        self.name = name

    @classmethod
    def from_pin(cls, path):
        return cls(obj_get(path), owned=True)

    def close(self):
        if self._owned and self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def info(self):
        return prog_info(self.fd)

    def pin(self, path):
        obj_pin(self.fd, path)

    def test_run(self, data, repeat=1, out_size=None, ingress_ifindex=0):
        """Run the program on data (BPF_PROG_TEST_RUN). repeat > 1 re-runs it on
        the packet it already rewrote: callers measuring a rewriting path
        must run once per restored packet instead. ingress_ifindex (an XDP
        context field) must name an existing interface of this netns."""
        data = bytes(data)
        ctx = None
        if ingress_ifindex:
            # struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
            ctx = ctypes.create_string_buffer(b"".join(
                int(v).to_bytes(4, "little") for v in (0, len(data), 0, ingress_ifindex, 0, 0)), 24)
        size_out = out_size or len(data) + 512
        din = ctypes.create_string_buffer(data, len(data))
        dout = ctypes.create_string_buffer(size_out)
        opts = _TestRunOpts()
        opts.sz = ctypes.sizeof(_TestRunOpts)
        opts.data_in = ctypes.cast(din, ctypes.c_void_p)
        opts.data_out = ctypes.cast(dout, ctypes.c_void_p)
        opts.data_size_in = len(data)
        opts.data_size_out = size_out
        opts.repeat = repeat
        if ctx is not None:
            opts.ctx_in = ctypes.cast(ctx, ctypes.c_void_p)
            opts.ctx_size_in = len(ctx)
        _check("test run of %s" % (self.name or "program"), lib().bpf_prog_test_run_opts(self.fd, ctypes.byref(opts)))
        return TestRun(opts.retval, dout.raw[:opts.data_size_out], opts.duration)


# ---------------------------------------------------------------- objects


class BpfObject:
    """An ELF object opened by libbpf. Maps declared with pinning by name are
    reused from, or pinned to, pin_root."""

    def __init__(self, path, pin_root=None):
        self.path = path
        self._pin_root = ctypes.c_char_p(pin_root.encode()) if pin_root else None
        opts = _ObjectOpenOpts()
        opts.sz = ctypes.sizeof(_ObjectOpenOpts)
        opts.pin_root_path = self._pin_root
        _start_log()
        self._obj = _errno_check("opening %s" % path, lib().bpf_object__open_file(path.encode(), ctypes.byref(opts)))
        _take_log()
        self.loaded = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._obj:
            lib().bpf_object__close(self._obj)
            self._obj = None

    def _map_ptr(self, name):
        ptr = lib().bpf_object__find_map_by_name(self._obj, name.encode())
        if not ptr:
            raise BpfError("%s has no map %s" % (self.path, name), errno_mod.ENOENT)
        return ptr

    def map_names(self):
        names = []
        ptr = lib().bpf_object__next_map(self._obj, None)
        while ptr:
            name = lib().bpf_map__name(ptr).decode()
            if not name.startswith("."):  # .rodata, .bss and friends
                names.append(name)
            ptr = lib().bpf_object__next_map(self._obj, ptr)
        return names

    def program_names(self):
        names = []
        ptr = lib().bpf_object__next_program(self._obj, None)
        while ptr:
            names.append(lib().bpf_program__name(ptr).decode())
            ptr = lib().bpf_object__next_program(self._obj, ptr)
        return names

    def set_pin_path(self, map_name, path):
        """Before load: pin (or reuse) this map at path; None: neither."""
        p = path.encode() if path else None
        _check("set pin path of %s" % map_name, lib().bpf_map__set_pin_path(self._map_ptr(map_name), p))

    def pin_path(self, map_name):
        p = lib().bpf_map__pin_path(self._map_ptr(map_name))
        return p.decode() if p else None

    def reuse_fd(self, map_name, fd):
        """Before load: use an existing map for this one."""
        _check("reuse fd for %s" % map_name, lib().bpf_map__reuse_fd(self._map_ptr(map_name), fd))

    def map_btf_ids(self, map_name):
        ptr = self._map_ptr(map_name)
        return lib().bpf_map__btf_key_type_id(ptr), lib().bpf_map__btf_value_type_id(ptr)

    def map_def(self, map_name):
        ptr = self._map_ptr(map_name)
        return {
            "type": lib().bpf_map__type(ptr),
            "key_size": lib().bpf_map__key_size(ptr),
            "value_size": lib().bpf_map__value_size(ptr),
            "max_entries": lib().bpf_map__max_entries(ptr),
        }

    def load(self):
        _start_log()
        ret = lib().bpf_object__load(self._obj)
        log = _take_log()
        if ret < 0:
            if "-- BEGIN PROG LOAD LOG --" in log:  # the verifier's own words
                raise VerifierRejection(self.path, ret, log)
            raise BpfError("loading %s" % self.path, ret, log)
        self.loaded = True
        return self

    def program(self, name):
        ptr = lib().bpf_object__find_program_by_name(self._obj, name.encode())
        if not ptr:
            raise BpfError("%s has no program %s" % (self.path, name), errno_mod.ENOENT)
        return Program(_check("fd of %s" % name, lib().bpf_program__fd(ptr)), name)

    def map(self, name):
        return Map(_check("fd of %s" % name, lib().bpf_map__fd(self._map_ptr(name))), name)


# ---------------------------------------------------------------- BTF


class Btf:
    """Read-only view of BTF: from an ELF file or a kernel BTF id."""

    def __init__(self, handle):
        self._btf = handle

    @classmethod
    def from_elf(cls, path):
        return cls(_errno_check("reading BTF of %s" % path, lib().btf__parse(path.encode(), None)))

    @classmethod
    def from_kernel(cls, btf_id):
        return cls(_errno_check("loading kernel BTF %d" % btf_id, lib().btf__load_from_kernel_by_id(btf_id)))

    def close(self):
        if self._btf:
            lib().btf__free(self._btf)
            self._btf = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def find_struct(self, name):
        tid = lib().btf__find_by_name_kind(self._btf, name.encode(), BTF_KIND_STRUCT)
        if tid < 0:
            raise BpfError("BTF struct %s" % name, tid)
        return tid

    def _type(self, tid):
        return lib().btf__type_by_id(self._btf, tid).contents

    def name(self, tid):
        return lib().btf__name_by_offset(self._btf, self._type(tid).name_off).decode()

    def size(self, tid):
        return _check("BTF size of %d" % tid, lib().btf__resolve_size(self._btf, tid))

    def _strip(self, tid):
        """Skip typedefs and qualifiers."""
        while True:
            t = self._type(tid)
            kind = (t.info >> 24) & 0x1f
            if kind in (BTF_KIND_TYPEDEF, BTF_KIND_VOLATILE, BTF_KIND_CONST):
                tid = t.size_or_type
                continue
            return tid, t, kind

    def describe(self, tid):
        """A comparable description of a type: ("int", size), ("array", elem, n)
        or ("struct", name, size, ((member, byte offset, description), ...))."""
        tid, t, kind = self._strip(tid)
        if kind == BTF_KIND_STRUCT:
            vlen = t.info & 0xffff
            base = ctypes.addressof(t) + ctypes.sizeof(_BtfType)
            members = []
            for i in range(vlen):
                m = _BtfMember.from_address(base + i * ctypes.sizeof(_BtfMember))
                mname = lib().btf__name_by_offset(self._btf, m.name_off).decode()
                members.append((mname, (m.offset & 0xffffff) // 8, self.describe(m.type)))
            return ("struct", lib().btf__name_by_offset(self._btf, t.name_off).decode(), t.size_or_type,
                    tuple(members))
        if kind == BTF_KIND_ARRAY:
            a = _BtfArray.from_address(ctypes.addressof(t) + ctypes.sizeof(_BtfType))
            return ("array", self.describe(a.type), a.nelems)
        return ("int", self.size(tid))


# ---------------------------------------------------------------- XDP, links, introspection
#
# Used by xdp.py, stages.py and loader.py. These functions act in the
# network namespace of the calling thread (ifindexes are per namespace): run
# them through nsenter.run_in_netns() to act in another one.

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_FLAGS_REPLACE = 1 << 4

# enum of bpf_xdp_query's attach_mode (XDP_ATTACHED_*)
XDP_ATTACHED_NONE = 0
XDP_ATTACHED_DRV = 1
XDP_ATTACHED_SKB = 2
XDP_ATTACHED_HW = 3
XDP_ATTACHED_MULTI = 4

BPF_LINK_TYPE_XDP = 6

_EXTRA_SIGS = {
    "bpf_link_get_next_id": (ctypes.c_int, [ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)]),
    "bpf_prog_get_next_id": (ctypes.c_int, [ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)]),
    "bpf_map__map_flags": (ctypes.c_uint32, [ctypes.c_void_p]),
}


def _fn(name):
    """A libbpf function whose prototype lib() does not declare."""
    fn = getattr(lib(), name)
    if name in _EXTRA_SIGS and fn.restype is not _EXTRA_SIGS[name][0]:
        fn.restype, fn.argtypes = _EXTRA_SIGS[name]
    return fn


def map_create(map_type, name, key_size, value_size, max_entries, inner_map_fd=None):
    """A new, unpinned map; returns its fd (the caller closes it)."""
    opts = _MapCreateOpts()
    opts.sz = ctypes.sizeof(_MapCreateOpts)
    if inner_map_fd is not None:
        opts.inner_map_fd = inner_map_fd
    fd = lib().bpf_map_create(map_type, name.encode(), key_size, value_size, max_entries, ctypes.byref(opts))
    return _check("bpf_map_create(%s)" % name, fd)


def wait_for_programs():
    """Return once every BPF program running when this was called has
    finished (an RCU grace period). The kernel waits so on every update of a
    map-in-map (maybe_wait_bpf_programs(), since Linux 4.20), so that user
    space knows no program still uses the old value: one update of a
    throwaway map-in-map is the wait."""
    inner = map_create(BPF_MAP_TYPE_ARRAY, "mzr_quiesce_in", 4, 4, 1)
    try:
        with Map(map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "mzr_quiesce", 4, 4, 1, inner_map_fd=inner),
                 owned=True) as outer:
            outer.update(bytes(4), inner.to_bytes(4, "little"))
    finally:
        os.close(inner)


def xdp_link_create(prog_fd, ifindex, flags):
    """A bpf_link attaching prog_fd as XDP on ifindex; flags carries the mode
    (XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE). Returns the link fd."""
    opts = _LinkCreateOpts()
    opts.sz = ctypes.sizeof(_LinkCreateOpts)
    opts.flags = flags
    return _check("bpf_link_create(XDP, ifindex %d)" % ifindex,
                  lib().bpf_link_create(prog_fd, ifindex, BPF_XDP, ctypes.byref(opts)))


def link_update(link_fd, prog_fd, old_prog_fd=None):
    """Point a link at prog_fd in one step. With old_prog_fd the kernel checks
    (BPF_F_REPLACE) that the link still runs that program, else EPERM."""
    opts = _LinkUpdateOpts()
    opts.sz = ctypes.sizeof(_LinkUpdateOpts)
    if old_prog_fd is not None:
        opts.flags = BPF_F_REPLACE
        opts.old_prog_fd = old_prog_fd
    _check("bpf_link_update", lib().bpf_link_update(link_fd, prog_fd, ctypes.byref(opts)))


def link_detach(link_fd):
    """Detach a link from its hook; the (now defunct) link object lives on
    while fds or pins hold it."""
    _check("bpf_link_detach", lib().bpf_link_detach(link_fd))


def xdp_query(ifindex):
    """What XDP runs on ifindex: prog ids per mode and the attach mode."""
    opts = _XdpQueryOpts()
    opts.sz = ctypes.sizeof(_XdpQueryOpts)
    _check("bpf_xdp_query(ifindex %d)" % ifindex, lib().bpf_xdp_query(ifindex, 0, ctypes.byref(opts)))
    return {
        "prog_id": opts.prog_id,
        "drv_prog_id": opts.drv_prog_id,
        "skb_prog_id": opts.skb_prog_id,
        "hw_prog_id": opts.hw_prog_id,
        "attach_mode": opts.attach_mode,
    }


def xdp_attach(ifindex, prog_fd, flags, old_prog_fd=None):
    """Netlink XDP attach (no link). With old_prog_fd: XDP_FLAGS_REPLACE, the
    kernel refuses (EEXIST) unless that program is the one attached."""
    opts = _XdpAttachOpts()
    opts.sz = ctypes.sizeof(_XdpAttachOpts)
    if old_prog_fd is not None:
        flags |= XDP_FLAGS_REPLACE
        opts.old_prog_fd = old_prog_fd
    _check("bpf_xdp_attach(ifindex %d)" % ifindex, lib().bpf_xdp_attach(ifindex, prog_fd, flags, ctypes.byref(opts)))


def xdp_detach(ifindex, flags, old_prog_fd=None):
    """Netlink XDP detach, guarded by old_prog_fd like xdp_attach."""
    opts = _XdpAttachOpts()
    opts.sz = ctypes.sizeof(_XdpAttachOpts)
    if old_prog_fd is not None:
        flags |= XDP_FLAGS_REPLACE
        opts.old_prog_fd = old_prog_fd
    _check("bpf_xdp_detach(ifindex %d)" % ifindex, lib().bpf_xdp_detach(ifindex, flags, ctypes.byref(opts)))


def link_ids():
    """Ids of every bpf_link in the system."""
    out = []
    cur = ctypes.c_uint32(0)
    nxt = ctypes.c_uint32(0)
    while True:
        ret = _fn("bpf_link_get_next_id")(cur.value, ctypes.byref(nxt))
        if ret == -errno_mod.ENOENT:
            return out
        _check("bpf_link_get_next_id", ret)
        out.append(nxt.value)
        cur.value = nxt.value


def link_fd_by_id(link_id):
    return _check("bpf_link_get_fd_by_id(%d)" % link_id, lib().bpf_link_get_fd_by_id(link_id))


def prog_map_ids(fd):
    """Ids of the maps a loaded program uses (prog array included)."""
    raw = _info(fd, 232)
    n = _u32(raw, 52)  # nr_map_ids
    if not n:
        return []
    ids = (ctypes.c_uint32 * n)()
    buf = ctypes.create_string_buffer(232)
    ctypes.memmove(ctypes.addressof(buf) + 52, ctypes.byref(ctypes.c_uint32(n)), 4)
    ctypes.memmove(ctypes.addressof(buf) + 56, ctypes.byref(ctypes.c_uint64(ctypes.addressof(ids))), 8)
    ln = ctypes.c_uint32(232)
    _check("bpf_obj_get_info_by_fd (map ids)", lib().bpf_obj_get_info_by_fd(fd, buf, ctypes.byref(ln)))
    return sorted(ids[i] for i in range(min(n, _u32(buf.raw, 52))))


def object_map_flags(obj, map_name):
    """map_flags an opened BpfObject declares for map_name."""
    return _fn("bpf_map__map_flags")(obj._map_ptr(map_name))


def pin_kind(path):
    """"map", "prog", "link" or None for a bpffs path (by what the kernel says
    about the object behind it)."""
    try:
        fd = obj_get(path)
    except BpfError:
        return None
    try:
        link = os.readlink("/proc/self/fd/%d" % fd)
    finally:
        os.close(fd)
    for kind in ("map", "prog", "link"):
        if link == "anon_inode:bpf-" + kind:
            return kind
    return None


def read_array_blob(m, chunk=65536):
    """Every value of a (non-per-CPU) ARRAY map as one bytes object, slot i at
    i * value_size: batched lookups straight into one buffer, with no
    per-entry Python objects (a 2^19-slot table reads in milliseconds)."""
    if m.type != BPF_MAP_TYPE_ARRAY:
        raise ValueError("%s is not an array map" % m.name)
    if m.info["map_flags"] & BPF_F_MMAPABLE and m.value_size % 8 == 0:
        # the array's memory itself, in one copy (slots are value_size apart
        # when that is a multiple of 8, as the kernel lays them out)
        size = m.max_entries * m.value_size
        with mmap.mmap(m.fd, (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE, mmap.MAP_SHARED,
                       mmap.PROT_READ) as mm:
            return mm[:size]
    chunk = max(1, min(chunk, m.max_entries))
    kb = ctypes.create_string_buffer(4 * chunk)
    vb = ctypes.create_string_buffer(m.value_size * chunk)
    in_b = ctypes.create_string_buffer(8)
    out_b = ctypes.create_string_buffer(8)
    opts = _BatchOpts(ctypes.sizeof(_BatchOpts), 0, 0)
    parts = []
    first = True
    while True:
        count = ctypes.c_uint32(chunk)
        ret = lib().bpf_map_lookup_batch(m.fd, None if first else in_b, out_b, kb, vb,
                                         ctypes.byref(count), ctypes.byref(opts))
        if ret < 0 and ret != -errno_mod.ENOENT:
            raise BpfError("batch lookup in %s" % m.name, ret)
        parts.append(ctypes.string_at(vb, count.value * m.value_size))
        if ret == -errno_mod.ENOENT:
            break
        ctypes.memmove(in_b, out_b, 8)
        first = False
    blob = b"".join(parts)
    if len(blob) != m.max_entries * m.value_size:
        raise BpfError("reading array %s: %d of %d bytes" % (m.name, len(blob), m.max_entries * m.value_size),
                       errno_mod.EIO)
    return blob


def pinned_prog(path):
    """{prog_id, name, tag, map_ids} of the program pinned at path, or None
    when nothing is pinned there."""
    if not os.path.exists(path):
        return None
    fd = obj_get(path)
    try:
        info = prog_info(fd)
        return {"prog_id": info["id"], "name": info["name"], "tag": info["tag"], "map_ids": prog_map_ids(fd)}
    finally:
        os.close(fd)
