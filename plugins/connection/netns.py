# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection plugin: run tasks inside a lab host (a network namespace)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: netns
short_description: Run tasks inside a lab host, a network namespace of this machine
description:
  - Runs every command of a task inside a network namespace of the controller, so that
    a namespace can stand in for a transit host (the mizar.transit lab, see C(docs/lab.md)).
    Files are transferred as with the C(ansible.builtin.local) connection, since the
    namespace shares the controller's filesystem.
  - Each command runs in its own private mount namespace in which C(/sys) is a fresh sysfs
    mounted from inside the network namespace, so C(/sys/class/net) and the gathered facts
    show the namespace's interfaces (like C(ip netns exec)).
  - C(/sys/fs/bpf) inside is a bind mount of the directory O(bpffs_root)/<namespace> of the
    machine's own bpffs (created as needed), not a new empty bpffs instance. Every lab host
    thus has its own pin tree on the one bpffs of the machine, and the collection's default
    pin directory C(/sys/fs/bpf/mizar) is per host without any per-host setting.
  - Everything else is the machine's. In particular C(/run/netns) stays shared with the
    machine's mount namespace, so namespaces that a task creates (C(ip netns add), pyroute2)
    are bind mounts that outlive the task and are visible to the controller and the other
    lab hosts.
  - Tasks must run as root on the controller (entering namespaces needs C(CAP_SYS_ADMIN)).
    Lab inventories set C(ansible_python_interpreter) to C({{ ansible_playbook_python }}) so
    that modules inside the lab host run with the controller's Python and its libraries.
  - No process is left behind. Each command enters the namespaces itself and holds them only
    while it runs.
author:
  - Mizar Transit Developers (@mizar-transit)
version_added: 0.1.0
options:
  netns:
    description:
      - The network namespace of the lab host, a name under C(/run/netns) or an absolute path
        to a namespace file.
      - Defaults to the host's address (C(ansible_host), which is its inventory name unless set).
        With C(delegate_to), both are the delegated host's, so a task delegated to another lab
        host runs in that host's namespace.
    type: str
    vars:
      - name: ansible_mizar_netns
  bpffs_root:
    description:
      - Directory of the machine's bpffs under which each lab host's view lives. Inside the lab
        host, C(/sys/fs/bpf) is O(bpffs_root)/<basename of O(netns)>.
      - Must lie on a mounted bpffs.
    type: path
    default: /sys/fs/bpf/lab
    vars:
      - name: ansible_mizar_bpffs_root
    env:
      - name: MIZAR_NETNS_BPFFS_ROOT
  bpffs_view:
    description:
      - When false, the lab host sees the machine's whole bpffs at C(/sys/fs/bpf) instead of
        its own view (for debugging; pins of several hosts then collide).
    type: bool
    default: true
    vars:
      - name: ansible_mizar_bpffs_view
  become_success_timeout:
    description:
      - Seconds to wait for privilege escalation to succeed (as for the C(ansible.builtin.local) connection).
    type: int
    default: 10
    vars:
      - name: ansible_local_become_success_timeout
  become_strip_preamble:
    description:
      - Strip internal become output preceding command execution (as for the C(ansible.builtin.local) connection).
    type: bool
    default: true
    vars:
      - name: ansible_local_become_strip_preamble
extends_documentation_fragment:
  - ansible.builtin.connection_pipelining
notes:
  - The remote user is ignored; commands run as the user running ansible-playbook, which must
    be root.
  - Privilege escalation (C(become)) happens inside the namespaces, after they are entered.
"""

EXAMPLES = r"""
# inventories/lab/group_vars/mizar_hosts.yml: every lab host is a namespace of the controller,
# created by `ansible-playbook -i inventories/lab mizar.transit.lab`.
ansible_connection: mizar.transit.netns
ansible_python_interpreter: "{{ ansible_playbook_python }}"

# One host whose namespace has another name than the host:
# mzh9:
#   ansible_mizar_netns: lab-host-9
"""

import ctypes
import os
import shlex
import sys

import ansible.constants as C
from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection.local import Connection as LocalConnection
from ansible.utils.display import Display
from ansible_collections.mizar.transit.plugins.module_utils.host.fsmagic import BPF_FS_MAGIC, fs_type
from ansible_collections.mizar.transit.plugins.module_utils.host.fsmagic import libc as _libc

display = Display()

NETNS_RUN_DIR = "/run/netns"
BPFFS_MOUNT = "/sys/fs/bpf"
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20

# Run by the controller's Python (argv: netns file, bpffs directory, command...):
# setns(CLONE_NEWNET); unshare(CLONE_NEWNS), keeping propagation as it is
# (/run/netns must stay a peer of the machine's); open the bpffs directory and
# the cgroup tree (after the unshare: a bind source must be a mount of the
# caller's own namespace); make /sys private in the copy, so nothing mounted
# below it leaks out; mount the namespace's sysfs over /sys; bind the bpffs
# directory (by fd, its path is hidden now) at /sys/fs/bpf and the cgroup tree
# back; exec the command.
_ENTER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
CLONE_NEWNS, CLONE_NEWNET = 0x20000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x1000, 0x4000, 0x40000
def die(what, err):
    sys.stderr.write("mizar.transit.netns: %s: %s\n" % (what, os.strerror(err)))
    os._exit(125)
def call(ret, what):
    if ret != 0:
        die(what, ctypes.get_errno())
def opendir(path, what):
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
    except OSError as e:
        die("%s %s" % (what, path), e.errno)
def bind(fd, target, flags):
    return libc.mount(b"/proc/self/fd/%d" % fd, target, None, MS_BIND | flags, None)
try:
    net = os.open(sys.argv[1], os.O_RDONLY | os.O_CLOEXEC)
except OSError as e:
    die("network namespace " + sys.argv[1], e.errno)
call(libc.setns(net, CLONE_NEWNET), "entering " + sys.argv[1])
call(libc.unshare(CLONE_NEWNS), "unsharing the mount namespace")
bpf = opendir(sys.argv[2], "bpffs view")
cgroup = opendir("/sys/fs/cgroup", "cgroup tree") if os.path.ismount("/sys/fs/cgroup") else None
call(libc.mount(None, b"/sys", None, MS_REC | MS_PRIVATE, None), "making /sys private")
call(libc.mount(b"sysfs", b"/sys", b"sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mounting the namespace's sysfs")
call(bind(bpf, b"/sys/fs/bpf", 0), "binding %s at /sys/fs/bpf" % sys.argv[2])
if cgroup is not None:
    call(bind(cgroup, b"/sys/fs/cgroup", MS_REC), "binding the cgroup tree")
try:
    os.execv(sys.argv[3], sys.argv[3:])
except OSError as e:
    die("executing " + sys.argv[3], e.errno)
"""


def share_netns_dir(path=NETNS_RUN_DIR):
    """Make path a shared mount point, as `ip netns add` and pyroute2 do: the
    namespaces that tasks bind under it then propagate back to this mount
    namespace. Idempotent."""
    libc = _libc()
    os.makedirs(path, mode=0o755, exist_ok=True)
    bpath = to_bytes(path)
    if libc.mount(b"none", bpath, None, MS_SHARED | MS_REC, None) == 0:
        return
    # not a mount point yet: bind it onto itself first
    if libc.mount(bpath, bpath, None, MS_BIND | MS_REC, None) != 0 or \
            libc.mount(b"none", bpath, None, MS_SHARED | MS_REC, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "making %s a shared mount: %s" % (path, os.strerror(err)))


class Connection(LocalConnection):
    """Local connection whose commands run inside a lab host's namespaces."""

    transport = "mizar.transit.netns"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super(Connection, self).__init__(*args, **kwargs)
        self._netns_file = None
        self._bpf_dir = None

    def _netns(self):
        name = self.get_option("netns") or self._play_context.remote_addr
        if not name or (not os.path.isabs(name) and "/" in name) or name in (".", ".."):
            raise AnsibleConnectionFailure("mizar.transit.netns: bad network namespace name %r" % (name,))
        return name if os.path.isabs(name) else os.path.join(NETNS_RUN_DIR, name)

    def _bpffs_view(self, netns_file):
        if not self.get_option("bpffs_view"):
            return BPFFS_MOUNT
        root = os.path.normpath(self.get_option("bpffs_root"))
        view = os.path.join(root, os.path.basename(netns_file))
        try:
            os.makedirs(root, mode=0o700, exist_ok=True)
            if fs_type(root) != BPF_FS_MAGIC:
                raise AnsibleConnectionFailure(
                    "mizar.transit.netns: bpffs_root %s is not on a bpffs (mount one: "
                    "mount -t bpf bpf %s)" % (root, BPFFS_MOUNT))
            os.makedirs(view, mode=0o700, exist_ok=True)
        except OSError as e:
            raise AnsibleConnectionFailure("mizar.transit.netns: bpffs view %s: %s" % (view, e.strerror or e))
        return view

    def _connect(self):
        if not self._connected:
            netns_file = self._netns()
            if os.geteuid() != 0:
                raise AnsibleConnectionFailure("mizar.transit.netns: entering a network namespace needs root; "
                                               "run ansible-playbook as root")
            if not os.path.exists(netns_file):
                raise AnsibleConnectionFailure(
                    "mizar.transit.netns: no network namespace %s for host %s: create the lab first "
                    "(ansible-playbook -i <inventory> mizar.transit.lab)" % (netns_file, self._play_context.remote_addr))
            self._bpf_dir = self._bpffs_view(netns_file)
            try:
                share_netns_dir()
            except OSError as e:
                raise AnsibleConnectionFailure("mizar.transit.netns: %s" % e)
            self._netns_file = netns_file
            display.vvv("ESTABLISH NETNS CONNECTION TO %s (bpffs %s)" % (netns_file, self._bpf_dir),
                        host=self._play_context.remote_addr)
        return super(Connection, self)._connect()

    def exec_command(self, cmd, in_data=None, sudoable=True):
        """Run cmd with the local connection, wrapped so that it first enters
        the namespaces (become, if any, is inside the wrapped command)."""
        self._connect()
        shell = C.DEFAULT_EXECUTABLE.split()[0] if C.DEFAULT_EXECUTABLE else "/bin/sh"
        wrapped = "exec %s" % " ".join(shlex.quote(a) for a in (
            sys.executable, "-c", _ENTER, self._netns_file, self._bpf_dir, shell, "-c", to_text(cmd)))
        display.vvv("NETNS %s: %s" % (self._netns_file, to_text(cmd)), host=self._play_context.remote_addr)
        return super(Connection, self).exec_command(wrapped, in_data=in_data, sudoable=sudoable)
