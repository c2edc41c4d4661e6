# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the datapath needs of a host's kernel, checked before anything is
loaded, so that an old kernel gets one sentence instead of a verifier log
or an EINVAL from deep inside a map creation."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

# The oldest kernel the datapath can run on, and why (docs/hosts.md):
# mmap-able BPF arrays (5.5) hold the flat tables; XDP_FLAGS_REPLACE (5.7)
# makes a netlink attach a compare-and-swap where XDP links (5.9) are
# missing. Tested: Debian 12 (6.1) and 6.18.
MIN_KERNEL = (5, 7)
WHY = "mmap-able BPF arrays (5.5) and compare-and-swap XDP attach (5.7)"


class KernelError(Exception):
    pass


def version(release):
    """(major, minor) of a release string such as 6.1.0-56-cloud-amd64."""
    m = re.match(r"(\d+)\.(\d+)", release)
    if not m:
        raise KernelError("cannot read a version from kernel release %r" % release)
    return int(m.group(1)), int(m.group(2))


def require_supported(uname=None):
    """Raise KernelError naming the host and its kernel when it is too old."""
    uname = uname or os.uname()
    if version(uname.release) < MIN_KERNEL:
        raise KernelError("%s runs Linux %s, older than the %d.%d that mizar.transit needs for %s; nothing was "
                          "loaded" % (uname.nodename, uname.release, MIN_KERNEL[0], MIN_KERNEL[1], WHY))
