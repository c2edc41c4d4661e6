# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a call inside a network namespace, with the standard library only.

Both kernel-facing layers need it: bpf/ to attach XDP programs and query
them by ifindex, host/ for every netlink request. It sits beside them so
that neither imports the other.

The call runs on a short-lived thread that setns() into the namespace:
only that thread moves, never the process, and the mount namespace is
untouched, so /sys/fs/bpf pins stay visible (unlike `ip netns exec`, which
remounts /sys).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import os
import threading

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000


class NetnsError(Exception):
    """A namespace could not be named or entered; errno is kept when known."""

    def __init__(self, msg, err=0):
        self.errno = err
        super(NetnsError, self).__init__(msg)


def netns_path(netns):
    """The namespace file of a name (under /run/netns) or an absolute path."""
    if not netns or "/" in netns and not os.path.isabs(netns):
        raise NetnsError("bad network namespace name %r" % (netns,), errno.EINVAL)
    return netns if os.path.isabs(netns) else os.path.join(NETNS_RUN_DIR, netns)


def netns_exists(netns):
    return os.path.exists(netns_path(netns))


def netns_list():
    """Names of the namespaces under /run/netns."""
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


_libc = None


def _setns(fd):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError("setns: %s" % os.strerror(err), err)


def run_in_netns(netns, fn, *args, **kwargs):
    """fn(*args, **kwargs) run in netns (None: right here), its result
    returned and its exception re-raised. Sockets fn creates stay in netns."""
    if netns is None:
        return fn(*args, **kwargs)
    path = netns_path(netns)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise NetnsError("network namespace %s: %s" % (netns, e.strerror), e.errno)
    out = {}

    def body():
        try:
            _setns(fd)
            out["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the caller's thread
            out["error"] = e

    try:
        t = threading.Thread(target=body, name="netns-%s" % os.path.basename(path))
        t.start()
        t.join()
    finally:
        os.close(fd)
    if "error" in out:
        raise out["error"]
    return out["value"]
