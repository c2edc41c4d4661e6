# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attach, replace, detach and query XDP programs on an interface.

New attachments are bpf_links (pinned where the caller says), so a program
is replaced with one bpf_link_update(BPF_F_REPLACE, expected old program):
atomic, the interface never runs without a program, and a concurrent change
makes the update fail instead of being overwritten. Kernels without XDP
links (before 5.9) get a netlink attachment instead: libbpf's
bpf_xdp_attach with XDP_FLAGS_REPLACE and the expected old program, giving
the same compare-and-swap.

Existing attachments are always updated the way they were made: a link can
only be changed through the link, and a netlink attachment is replaced by
netlink. The mode (native = driver, generic = skb) is always explicit. A
request for another mode than the attached one is refused unless
switch_mode is set, because switching needs a detach and an attach (the
kernel keeps one mode per interface): the result says so.

A program is "ours" when it runs through the link pinned at link_pin or its
id is in `ours` (the caller's own programs). Anything else is foreign and is
never replaced or removed unless takeover is set.

Interfaces are named or given by index, in netns (None: this namespace).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import socket

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf
from ansible_collections.mizar.transit.plugins.module_utils.model.defaults import XDP_MODES

# the attach flags of each mode, in the order of defaults.XDP_MODES (native, generic)
MODES = dict(zip(XDP_MODES, (libbpf.XDP_FLAGS_DRV_MODE, libbpf.XDP_FLAGS_SKB_MODE)))
_ATTACHED = {
    libbpf.XDP_ATTACHED_DRV: "native",
    libbpf.XDP_ATTACHED_SKB: "generic",
    libbpf.XDP_ATTACHED_HW: "offload",
    libbpf.XDP_ATTACHED_MULTI: "multi",
}
VIAS = ("auto", "link", "netlink")


class XdpError(Exception):
    """An XDP request that cannot be carried out as asked."""


class ForeignProgramError(XdpError):
    """Another owner's program is attached: we leave it alone."""


class ModeMismatchError(XdpError):
    """The attached program runs in another mode than requested."""


class NativeUnsupportedError(XdpError):
    """The NIC's driver has no native XDP."""


def driver(iface):
    """The kernel driver of iface (from sysfs), or None for a virtual one."""
    try:
        return os.path.basename(os.readlink("/sys/class/net/%s/device/driver" % iface))
    except OSError:
        return None


def _create_or_explain(iface, ifindex, prog_fd, mode, link_pin, via):
    """_create, with the one refusal users meet on real NICs said plainly:
    a driver without native XDP (EOPNOTSUPP). Nothing is attached then."""
    try:
        return _create(ifindex, prog_fd, mode, link_pin, via)
    except libbpf.BpfError as e:
        if mode == "native" and e.errno == errno.EOPNOTSUPP:
            name = iface if not isinstance(iface, int) else "ifindex %d" % iface
            raise NativeUnsupportedError(
                "%s (driver %s) has no native XDP support: the kernel refused a native attach; nothing was "
                "attached. Use generic mode for this NIC (mizar_xdp_mode: generic), or a driver with native XDP"
                % (name, driver(name) or "unknown"))
        raise


def _fd(prog):
    return prog if isinstance(prog, int) else prog.fd


def _mode_flags(mode):
    if mode not in MODES:
        raise XdpError("XDP mode must be one of %s, not %r" % (", ".join(sorted(MODES)), mode))
    return MODES[mode]


class NoInterfaceError(XdpError):
    errno = errno.ENODEV


def _resolve(iface):
    """ifindex of iface (a name or an index, checked to exist) in the
    calling thread's namespace."""
    try:
        if isinstance(iface, int):
            socket.if_indextoname(iface)
            return iface
        return socket.if_nametoindex(iface)
    except OSError:
        raise NoInterfaceError("no interface %s" % (iface,))


class _Pinned:
    """The link pinned at a path, if any: fd, id, prog_id, ifindex."""

    def __init__(self, path):
        self.path = path
        self.fd = None
        self.info = None
        if path and os.path.exists(path):
            if libbpf.pin_kind(path) != "link":
                raise XdpError("%s is pinned but is not a bpf_link" % path)
            self.fd = libbpf.obj_get(path)
            self.info = libbpf.link_info(self.fd)

    def runs_on(self, ifindex, prog_id):
        return (self.info is not None and self.info["type"] == libbpf.BPF_LINK_TYPE_XDP and
                self.info["ifindex"] == ifindex and self.info["prog_id"] == prog_id)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _find_link(ifindex, prog_id):
    """Id of an XDP link running prog_id on ifindex, or 0."""
    for lid in libbpf.link_ids():
        try:
            fd = libbpf.link_fd_by_id(lid)
        except libbpf.BpfError:
            continue  # gone meanwhile
        try:
            info = libbpf.link_info(fd)
        finally:
            os.close(fd)
        if info["type"] == libbpf.BPF_LINK_TYPE_XDP and info["ifindex"] == ifindex and info["prog_id"] == prog_id:
            return lid
    return 0


def _query(ifindex, pinned):
    q = libbpf.xdp_query(ifindex)
    out = {"ifindex": ifindex, "attached": False, "prog_id": 0, "prog_name": None, "tag": None,
           "mode": None, "via": None, "link_id": 0}
    mode = _ATTACHED.get(q["attach_mode"])
    if not mode:
        return out
    prog_id = q["prog_id"] or q["drv_prog_id"] or q["skb_prog_id"] or q["hw_prog_id"]
    out.update(attached=True, prog_id=prog_id, mode=mode)
    try:
        fd = libbpf.prog_fd_by_id(prog_id)
        try:
            info = libbpf.prog_info(fd)
        finally:
            os.close(fd)
        out.update(prog_name=info["name"], tag=info["tag"])
    except libbpf.BpfError:
        pass  # replaced meanwhile: the ids still tell the story
    if pinned is not None and pinned.runs_on(ifindex, prog_id):
        out.update(via="link", link_id=pinned.info["id"])
    else:
        lid = _find_link(ifindex, prog_id)
        out.update(via="link" if lid else "netlink", link_id=lid)
    return out


def query(iface, netns=None, link_pin=None):
    """{attached, ifindex, prog_id, prog_name, tag, mode, via, link_id} of
    the XDP program on iface: mode native|generic|offload|multi, via
    link|netlink (None when nothing is attached)."""

    def body():
        pinned = _Pinned(link_pin)
        try:
            return _query(_resolve(iface), pinned)
        finally:
            pinned.close()

    return nsenter.run_in_netns(netns, body)


def _ours(state, pinned, ours):
    return pinned.runs_on(state["ifindex"], state["prog_id"]) or state["prog_id"] in set(ours or ())


def _netlink_set(ifindex, prog_fd, flags, expected_fd=None):
    """A netlink XDP attachment (libbpf's bpf_xdp_attach): attach prog_fd,
    or detach with -1, guarded by the expected program when expected_fd is
    given (XDP_FLAGS_REPLACE, a compare-and-swap in the kernel)."""
    if prog_fd < 0:
        libbpf.xdp_detach(ifindex, flags, old_prog_fd=expected_fd)
        return
    if expected_fd is None:
        flags |= libbpf.XDP_FLAGS_UPDATE_IF_NOEXIST
    libbpf.xdp_attach(ifindex, prog_fd, flags, old_prog_fd=expected_fd)


def _create(ifindex, prog_fd, mode, link_pin, via):
    """A new attachment; returns the via used."""
    flags = _mode_flags(mode)
    if via in ("auto", "link"):
        try:
            lfd = libbpf.xdp_link_create(prog_fd, ifindex, flags)
        except libbpf.BpfError as e:
            # EINVAL: no XDP links in this kernel. Anything else is real.
            if via == "link" or e.errno != errno.EINVAL:
                raise
        else:
            try:
                if link_pin:
                    libbpf.unpin(link_pin)  # a stale pin of a dead link
                    libbpf.obj_pin(lfd, link_pin)
            except Exception:
                libbpf.link_detach(lfd)
                raise
            finally:
                os.close(lfd)
            return "link"
    _netlink_set(ifindex, prog_fd, flags)
    return "netlink"


def _remove(state, pinned):
    """Take the program in state off its interface (it was checked to be ours)."""
    if state["via"] == "link":
        if pinned.runs_on(state["ifindex"], state["prog_id"]):
            libbpf.link_detach(pinned.fd)
        else:
            lfd = libbpf.link_fd_by_id(state["link_id"])
            try:
                libbpf.link_detach(lfd)
            finally:
                os.close(lfd)
    else:
        old = libbpf.prog_fd_by_id(state["prog_id"])
        try:
            _netlink_set(state["ifindex"], -1, MODES.get(state["mode"], 0), expected_fd=old)
        finally:
            os.close(old)


def attach(iface, prog, mode, netns=None, link_pin=None, via="auto", switch_mode=False, ours=(),
           takeover=False):
    """Make prog (a libbpf.Program or fd) the XDP program of iface in mode.

    Returns {changed, action, via, before, after, note}: action is attached,
    replaced, unchanged or switched (mode change: detach then attach, so the
    interface ran no program for a moment, which note says). A program of
    ours identical to prog (same tag, same maps: e.g. the same object loaded
    again) stays attached and counts as unchanged, so re-runs are no-ops."""
    if via not in VIAS:
        raise XdpError("via must be one of %s" % ", ".join(VIAS))
    _mode_flags(mode)
    prog_fd = _fd(prog)
    new_id = libbpf.prog_info(prog_fd)["id"]

    def body():
        ifindex = _resolve(iface)
        pinned = _Pinned(link_pin)
        try:
            before = _query(ifindex, pinned)
            note = None
            if not before["attached"]:
                action = "attached"
                used = _create_or_explain(iface, ifindex, prog_fd, mode, link_pin, via)
            else:
                mine = _ours(before, pinned, ours)
                if not mine and not takeover:
                    raise ForeignProgramError(
                        "%s runs XDP program %s (id %d, %s) that is not ours; refusing to replace it "
                        "(takeover=True to take the interface over)" % (
                            iface, before["prog_name"], before["prog_id"], before["via"]))
                if before["mode"] != mode:
                    if not switch_mode:
                        raise ModeMismatchError(
                            "%s runs XDP in %s mode, %s was requested; switching needs a detach and an "
                            "attach (switch_mode=True)" % (iface, before["mode"], mode))
                    _remove(before, pinned)
                    if link_pin and pinned.runs_on(ifindex, before["prog_id"]):
                        libbpf.unpin(link_pin)
                    used = _create_or_explain(iface, ifindex, prog_fd, mode, link_pin, via)
                    action = "switched"
                    note = ("mode %s -> %s needs detach + attach: %s ran no XDP program in between"
                            % (before["mode"], mode, iface))
                elif before["prog_id"] == new_id or (mine and _identical(before["prog_id"], prog_fd)):
                    action, used = "unchanged", before["via"]
                elif not mine:
                    _remove(before, pinned)
                    used = _create(ifindex, prog_fd, mode, link_pin, via)
                    action = "replaced"
                    note = "took over from foreign program %s (id %d): detach + attach" % (
                        before["prog_name"], before["prog_id"])
                else:
                    used = _replace(before, pinned, prog_fd)
                    action = "replaced"
            now = _Pinned(link_pin)
            try:
                after = _query(ifindex, now)
            finally:
                now.close()
        finally:
            pinned.close()
        return {"changed": action != "unchanged", "action": action, "via": used, "before": before,
                "after": after, "note": note}

    return nsenter.run_in_netns(netns, body)


def _identical(prog_id, prog_fd):
    """The attached program prog_id does exactly what prog_fd would: same
    instructions (tag) on the same maps (the tag ignores which maps)."""
    try:
        fd = libbpf.prog_fd_by_id(prog_id)
    except libbpf.BpfError:
        return False
    try:
        a, b = libbpf.prog_info(fd), libbpf.prog_info(prog_fd)
        return (a["tag"] == b["tag"] and a["type"] == b["type"] and
                libbpf.prog_map_ids(fd) == libbpf.prog_map_ids(prog_fd))
    finally:
        os.close(fd)


def _replace(state, pinned, prog_fd):
    """Atomically swap our attached program for prog_fd, expecting the old one."""
    old = libbpf.prog_fd_by_id(state["prog_id"])
    try:
        if state["via"] == "link":
            if pinned.runs_on(state["ifindex"], state["prog_id"]):
                libbpf.link_update(pinned.fd, prog_fd, old_prog_fd=old)
            else:
                lfd = libbpf.link_fd_by_id(state["link_id"])
                try:
                    libbpf.link_update(lfd, prog_fd, old_prog_fd=old)
                finally:
                    os.close(lfd)
            return "link"
        _netlink_set(state["ifindex"], prog_fd, MODES[state["mode"]], expected_fd=old)
        return "netlink"
    finally:
        os.close(old)


def detach(iface, netns=None, link_pin=None, ours=(), takeover=False):
    """Remove our XDP program from iface (and the link pin). A foreign program
    is an error unless takeover. Returns {changed, action, before}; a missing
    interface counts as detached (its links died with it)."""

    def body():
        pinned = _Pinned(link_pin)
        try:
            try:
                ifindex = _resolve(iface)
            except NoInterfaceError:
                removed = libbpf.unpin(link_pin) if link_pin else False
                return {"changed": removed, "action": "absent", "before": None}
            before = _query(ifindex, pinned)
            action = "absent"
            if before["attached"]:
                if not _ours(before, pinned, ours) and not takeover:
                    raise ForeignProgramError(
                        "%s runs XDP program %s (id %d) that is not ours; leaving it" % (
                            iface, before["prog_name"], before["prog_id"]))
                _remove(before, pinned)
                action = "detached"
            unpinned = libbpf.unpin(link_pin) if link_pin else False
        finally:
            pinned.close()
        return {"changed": action == "detached" or unpinned, "action": action, "before": before}

    return nsenter.run_in_netns(netns, body)


def link_detach_pinned(link_pin):
    """Detach whatever the link pinned at link_pin runs on and unpin it, with
    no interface needed (it may be in a namespace that is gone). Returns
    changed."""
    if not os.path.exists(link_pin):
        return False
    fd = libbpf.obj_get(link_pin)
    try:
        info = libbpf.link_info(fd)
        if info["ifindex"]:
            try:
                libbpf.link_detach(fd)
            except libbpf.BpfError as e:
                if e.errno not in (errno.ENOLINK, errno.EINVAL):
                    raise
    finally:
        os.close(fd)
    libbpf.unpin(link_pin)
    return True
