# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which filesystem a path is on (statfs), for telling a bpffs from the
directory it would be mounted on."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import os

BPF_FS_MAGIC = 0xCAFE4A11


class _Statfs(ctypes.Structure):
    # only f_type matters; the buffer is big enough for struct statfs everywhere
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 512)]


def libc():
    return ctypes.CDLL(None, use_errno=True)


def fs_type(path):
    """The filesystem magic number of path."""
    buf = _Statfs()
    raw = path if isinstance(path, bytes) else path.encode()
    if libc().statfs(raw, ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return buf.f_type & 0xFFFFFFFF
