# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turning a shipped function's `config` into the entries of its maps.

Each shipped function with maps has a Configurator here: it reads what the
function's maps hold, compares it with the config (already checked against
the function's schema by the validator), and writes the difference so that
packets see either the old or the new configuration, whole.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import os
import socket

from ansible_collections.mizar.transit.plugins.module_utils.bpf.abi import check_vni
from ansible_collections.mizar.transit.plugins.module_utils.bpf.libbpf import Map

u8, u16, u32 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32

ACL_MAX_RULES = 64
ACL_PROTOS = {"any": 0, "icmp": 1, "tcp": 6, "udp": 17}
ACL_PROTO_NAMES = dict((v, k) for k, v in ACL_PROTOS.items())
ACL_DROP = 1


class AclRule(ctypes.Structure):
    _fields_ = [("vni", u32), ("src", u32), ("src_mask", u32), ("dst", u32), ("dst_mask", u32),
                ("proto", u8), ("action", u8), ("port", u16)]


class AclSet(ctypes.Structure):
    _fields_ = [("nrules", u32), ("rule", AclRule * ACL_MAX_RULES)]


C_NAMES = {AclRule: "mzr_acl_rule", AclSet: "mzr_acl_set"}


class FunctionConfigError(Exception):
    pass


def _prefix(cidr):
    addr, dummy, plen = cidr.partition("/")
    plen = int(plen or 32)
    mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
    net = int.from_bytes(socket.inet_aton(addr), "big") & mask
    # as the datapath loads them: network-order bytes read little-endian
    return (int.from_bytes(net.to_bytes(4, "big"), "little"),
            int.from_bytes(mask.to_bytes(4, "big"), "little"))


def _unprefix(net, mask):
    m = int.from_bytes(mask.to_bytes(4, "little"), "big")
    plen = bin(m).count("1")
    return "%s/%d" % (socket.inet_ntoa(net.to_bytes(4, "little")), plen)


class Acl:
    """Rules of bpf/functions/acl.bpf.c: double-buffered in mzr_acl_sets,
    selected by mzr_acl_active."""

    maps = ("mzr_acl_sets", "mzr_acl_active")

    def encode(self, config, vni_of):
        rules = config.get("rules") or []
        if len(rules) > ACL_MAX_RULES:
            raise FunctionConfigError("acl: %d rules, at most %d" % (len(rules), ACL_MAX_RULES))
        s = AclSet(nrules=len(rules))
        for i, r in enumerate(rules):
            try:
                vni = vni_of[r["vpc"]]
            except KeyError:
                raise FunctionConfigError("acl: rules[%d].vpc: no VPC named %r" % (i, r.get("vpc")))
            try:
                check_vni(vni, "the VNI of VPC %r," % r["vpc"])
            except ValueError as e:
                raise FunctionConfigError("acl: rules[%d].vpc: %s" % (i, e))
            src, smask = _prefix(r.get("src") or "0.0.0.0/0")
            dst, dmask = _prefix(r["dst"])
            port = int(r.get("port") or 0)
            s.rule[i] = AclRule(vni=vni, src=src, src_mask=smask, dst=dst, dst_mask=dmask,
                                proto=ACL_PROTOS[r.get("protocol", "any")], action=ACL_DROP,
                                port=socket.htons(port))
        return bytes(s)

    def decode(self, raw, vpc_of):
        s = AclSet.from_buffer_copy(raw)
        out = []
        for i in range(min(s.nrules, ACL_MAX_RULES)):
            r = s.rule[i]
            rule = {"vpc": vpc_of.get(r.vni, r.vni), "src": _unprefix(r.src, r.src_mask),
                    "dst": _unprefix(r.dst, r.dst_mask), "protocol": ACL_PROTO_NAMES.get(r.proto, r.proto),
                    "action": "drop"}
            if r.port:
                rule["port"] = socket.ntohs(r.port)
            out.append(rule)
        return {"rules": out}

    @staticmethod
    def _active(sets, active):
        """(slot, bytes) of the rule set packets use now."""
        cur = int.from_bytes(active.lookup(bytes(4)), "little") & 1
        return cur, sets.lookup(cur.to_bytes(4, "little"))

    def current(self, pin_dir):
        """The bytes of the rule set in use (compare with encode())."""
        with Map.from_pin(os.path.join(pin_dir, "mzr_acl_sets")) as sets, \
                Map.from_pin(os.path.join(pin_dir, "mzr_acl_active")) as active:
            return self._active(sets, active)[1]

    def converge(self, pin_dir, config, vni_of, check_mode=False):
        """Returns (changed, before, after) with configs in inventory terms."""
        vpc_of = dict((v, k) for k, v in vni_of.items())
        with Map.from_pin(os.path.join(pin_dir, "mzr_acl_sets")) as sets, \
                Map.from_pin(os.path.join(pin_dir, "mzr_acl_active")) as active:
            cur, have = self._active(sets, active)
            want = self.encode(config, vni_of)
            before = self.decode(have, vpc_of)
            if have == want:
                return False, before, before
            if not check_mode:
                nxt = (cur ^ 1).to_bytes(4, "little")
                sets.update(nxt, want)  # the inactive set, whole
                active.update(bytes(4), nxt)  # one aligned word: the flip
            return True, before, self.decode(want, vpc_of)


CONFIGURATORS = {"acl": Acl()}


def configurator(program):
    """The Configurator of a shipped function, or None (no maps to fill)."""
    return CONFIGURATORS.get(program)
