"""Helpers for tests/integration/test_modules.py: run the datapath modules
through the real ansible-playbook, read back every task's result, and clean
up namespaces and pins by name.

Task results come from a small callback plugin (written next to the
playbooks) that appends each result as one JSON line to a file, so tests
assert on `changed`, `msg`, `diff` and return values instead of scraping the
screen; the default stdout callback still prints, for --diff text and for
failure reports.
"""
import json
import os
import subprocess
import sys
import textwrap

import yaml
from machine import bpffs_rmtree

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import xdp

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
BPFFS = "/sys/fs/bpf"

# Short and unique per run: namespaces, interfaces and the bpffs root carry
# it, so runs never touch each other's (or a person's) objects.
RUN = "mzm%04x" % (os.getpid() & 0xffff)
BPFFS_ROOT = os.path.join(BPFFS, RUN)

CALLBACK = '''
import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "mzm_results"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result, status):
        data = getattr(result, "result", None)
        if data is None:
            data = result._result
        name = getattr(result, "task_name", None) or result._task.get_name()
        line = {"task": name, "host": result._host.get_name(), "status": status, "result": data}
        with open(os.environ["MZM_RESULTS"], "a") as f:
            f.write(json.dumps(line, default=str) + "\\n")

    def v2_runner_on_ok(self, result, **kwargs):
        self._record(result, "changed" if result.is_changed() else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result, **kwargs):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._record(result, "unreachable")
'''


class Play:
    """A finished ansible-playbook run: rc, output, and the task results in order."""

    def __init__(self, args, proc, records):
        self.args = args
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.records = records

    def __str__(self):
        return "$ %s\n(rc %d)\n%s\n%s" % (" ".join(self.args), self.rc, self.stdout[-6000:], self.stderr[-3000:])

    def results(self, task, host=None):
        out = [r for r in self.records if r["task"] == task and (host is None or r["host"] == host)]
        assert out, "no result for task %r (host %s) in:\n%s" % (task, host, self)
        return out

    def __getitem__(self, task):
        """The result dict of the task (of its only host), with 'status'."""
        found = self.results(task)
        assert len(found) == 1, "task %r ran on %d hosts" % (task, len(found))
        return dict(found[0]["result"], status=found[0]["status"])

    def changed_tasks(self):
        return [(r["host"], r["task"]) for r in self.records if r["status"] == "changed"]


class Ansible:
    """Runs ansible-playbook of the .venv with the collection from .build,
    isolated from the user's Ansible configuration."""

    def __init__(self, workdir):
        self.workdir = str(workdir)
        plugins = os.path.join(self.workdir, "callback_plugins")
        os.makedirs(plugins, exist_ok=True)
        with open(os.path.join(plugins, "mzm_results.py"), "w") as f:
            f.write(CALLBACK)
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_"))
        env.update(ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_HOME=os.path.join(self.workdir, "ansible-home"), ANSIBLE_LOCALHOST_WARNING="0",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_CALLBACK_PLUGINS=plugins, ANSIBLE_CALLBACKS_ENABLED="mzm_results",
                   ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_DEPRECATION_WARNINGS="0",
                   ANSIBLE_PIPELINING="1")
        self.env = env
        self.count = 0

    def play(self, tasks, hosts="localhost", inventory=None, extra=(), wrap=(), play_vars=None):
        """Run one play of `tasks` (a list of task dicts) on hosts; inventory
        defaults to a local localhost. wrap prefixes the command (unshare)."""
        self.count += 1
        name = "play%03d" % self.count
        play = {"name": name, "hosts": hosts, "gather_facts": False, "tasks": tasks}
        if play_vars:
            play["vars"] = play_vars
        path = os.path.join(self.workdir, name + ".yml")
        with open(path, "w") as f:
            yaml.safe_dump([play], f, default_flow_style=False, sort_keys=False)
        results = os.path.join(self.workdir, name + ".jsonl")
        if inventory is None:
            inventory = self.localhost_inventory()
        args = list(wrap) + [os.path.join(BIN, "ansible-playbook"), "-i", inventory, path] + list(extra)
        env = dict(self.env, MZM_RESULTS=results)
        proc = subprocess.run(args, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=300,
                              check=False)
        records = []
        if os.path.exists(results):
            with open(results) as f:
                records = [json.loads(line) for line in f if line.strip()]
        return Play(args, proc, records)

    def localhost_inventory(self):
        path = os.path.join(self.workdir, "localhost.yml")
        if not os.path.exists(path):
            write_yaml(path, {"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}})
        return path

    def netns_inventory(self, name, hosts, all_vars=None):
        """An inventory of lab-style hosts (network namespaces entered by the
        mizar.transit.netns connection, each with its bpffs view under
        BPFFS_ROOT), in group mizar_hosts; hosts: {name: vars}."""
        common = {"ansible_connection": "mizar.transit.netns",
                  "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                  "ansible_mizar_bpffs_root": BPFFS_ROOT}
        data = {"all": {"children": {"mizar_hosts": {"hosts": dict((h, dict(common, **(v or {})))
                                                                   for h, v in hosts.items())}}}}
        if all_vars:
            data["all"]["vars"] = all_vars
        path = os.path.join(self.workdir, name + ".yml")
        write_yaml(path, data)
        return path


def write_yaml(path, data):
    with open(path, "w") as f:
        yaml.safe_dump(data, f, default_flow_style=False, sort_keys=False)


def task(module, args=None, name=None, **keywords):
    """One task dict: {name, mizar.transit.<module>: args, **keywords}."""
    t = {"name": name or module}
    t[module if "." in module else "mizar.transit." + module] = args or {}
    t.update(keywords)
    return t


def host_pins(host):
    """Where a host's default pin dir /sys/fs/bpf/mizar lives on the real bpffs."""
    return os.path.join(BPFFS_ROOT, host, "mizar")


def xdp_on(iface, netns=None):
    """(prog_name, mode) of the XDP program on iface, or None."""
    q = xdp.query(iface, netns=netns)
    return (q["prog_name"], q["mode"]) if q["attached"] else None


def cleanup():
    """Remove everything of this run: pins (links detached), namespaces and
    root-namespace links whose names start with RUN. Returns the errors."""
    errors = []
    try:
        bpffs_rmtree(BPFFS_ROOT)
    except Exception as e:
        errors.append("%s: %s" % (BPFFS_ROOT, e))
    for name in nsenter.netns_list():
        if name.startswith(RUN):
            try:
                netlink.netns_del(name)
            except Exception as e:
                errors.append("netns %s: %s" % (name, e))
    for lk in netlink.links():
        if (lk["ifname"] or "").startswith(RUN):
            try:
                netlink.link_del(lk["ifname"])
            except Exception as e:
                errors.append("link %s: %s" % (lk["ifname"], e))
    return errors


def leftovers():
    """What of this run still exists (for a test's final assertion)."""
    out = ["netns %s" % n for n in nsenter.netns_list() if n.startswith(RUN)]
    out += ["link %s" % lk["ifname"] for lk in netlink.links() if (lk["ifname"] or "").startswith(RUN)]
    if os.path.exists(BPFFS_ROOT):
        for dirpath, _dirs, files in os.walk(BPFFS_ROOT):
            out += ["pin %s" % os.path.join(dirpath, f) for f in files]
    return out


def quiet_veth(netns, a, b, mac=None):
    """A veth pair a <-> b inside netns, up, IPv6 off."""
    netlink.veth_add(a, b, netns=netns)
    for end in (a, b):
        netlink.sysctl("net/ipv6/conf/%s/disable_ipv6" % end, 1, netns=netns)
        netlink.link_set(end, netns=netns, up=True)
    if mac:
        netlink.link_set(a, netns=netns, mac=mac)


def ping(netns, ip, count=3, timeout=2):
    """(sent, received) of a ping from inside netns (no BPF work there, so
    `ip netns exec` is fine)."""
    res = subprocess.run(["ip", "netns", "exec", netns, "ping", "-n", "-c", str(count), "-i", "0.2", "-W",
                          str(timeout), ip], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    for line in res.stdout.splitlines():
        if "packets transmitted" in line:
            parts = line.split()
            return int(parts[0]), int(parts[3])
    raise AssertionError("ping from %s to %s: %s" % (netns, ip, res.stdout))


def dedent(text):
    return textwrap.dedent(text).lstrip()
