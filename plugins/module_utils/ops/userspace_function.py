# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's user-space functions (kind userspace in mizar_functions), each
a program of module_utils/userspace/ kept running in its endpoint's network
namespace.

In the host's function directory `dir`:

    <program>.py     the program, as this collection ships it (written from
                     the module's own copy: the host needs nothing else)
    <name>.json      one function's config: its endpoint (netns, vni, ip,
                     mac), its settings, the files it writes
    <name>.ready     written by the program, with its process id, once it
                     is up (its sockets open)
    <name>.pid       (supervisor process) the process id
    <name>.err       (supervisor process) what the program wrote to stderr

The program enters the endpoint's namespace itself, as `nsenter --net`
would, so both supervisors start it the same way:

    systemd   a unit template per program, <systemd_dir>/mizar-<program>@.service
              (ExecStart=<python> <dir>/<program>.py <dir>/%i.json,
              Restart=on-failure), its instance per function enabled and
              started, restarted when its program or config changes
    process   for hosts whose PID 1 is not systemd (the lab): the module
              starts the program detached (its own session, no tie to the
              task) and keeps its pid; a re-run starts it again if it died

A running function counts only if it runs in its endpoint's namespace as it
is now: a namespace made again (its endpoint re-created) means a restart.
`exclusive` stops and removes the functions found in `dir` that the list
leaves out; state absent those listed (with exclusive, all). Logs stay.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import signal
import subprocess
import sys
import time

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.model import functions as fnreg
from ansible_collections.mizar.transit.plugins.module_utils.model.defaults import (DEFAULT_FUNCTION_DIR,
                                                                                   DEFAULT_SUPERVISOR, SUPERVISORS)
from ansible_collections.mizar.transit.plugins.module_utils.ops import args
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError
from ansible_collections.mizar.transit.plugins.module_utils.ops.steps import Step, carry_out
from ansible_collections.mizar.transit.plugins.module_utils.userspace import flowlog

# The shipped programs, by the name mizar_functions gives them.
PROGRAMS = {"flowlog": flowlog}
INNER = "eth0"  # the endpoint's interface in its namespace (ops/endpoint.py makes it)
DEFAULT_SYSTEMD_DIR = "/etc/systemd/system"
READY_TIMEOUT = 10.0  # seconds a starting program has to come up
STOP_TIMEOUT = 5.0

NEEDS = ()
FUNCTION_OPTIONS = dict(
    name=dict(type="str", required=True),
    program=dict(type="str", required=True),
    netns=dict(type="str", required=True),
    iface=dict(type="str", required=True),
    endpoint=dict(type="str"),
    vni=dict(type="int", required=True),
    ip=dict(type="str", required=True),
    mac=dict(type="str", required=True),
    config=dict(type="dict", default={}),
)
MODULE = args.module_args(dict(
    functions=dict(type="list", elements="dict", default=[], options=FUNCTION_OPTIONS),
    supervisor=dict(type="str", choices=list(SUPERVISORS), default=DEFAULT_SUPERVISOR),
    dir=dict(type="path", default=DEFAULT_FUNCTION_DIR),
    systemd_dir=dict(type="path", default=DEFAULT_SYSTEMD_DIR),
    python=dict(type="path"),
    exclusive=dict(type="bool", default=False),
    state=args.state(),
))


class UserspaceError(BackendError):
    """A function cannot be brought to its state; names it and the field."""


ERRORS = (UserspaceError,)


def context(params):
    return "user-space functions in %s" % params.get("dir")


def program_source(program):
    """The text of a shipped program, from the module's own copy of it."""
    module = PROGRAMS[program]
    return module.__spec__.loader.get_source(module.__name__)


class Function:
    """One function as it should be: its config file's content."""

    def __init__(self, item, index, directory):
        self.name = item["name"]
        self.label = "function %s (functions[%d])" % (self.name, index)
        problem = addr.name_problem(self.name)
        if problem:
            self.fail("name", problem)
        self.program = item["program"]
        if self.program not in PROGRAMS:
            self.fail("program", "%r is not a shipped user-space program; one of %s"
                      % (self.program, ", ".join(sorted(PROGRAMS))))
        problem = addr.netns_problem(item["netns"])
        if problem:
            self.fail("netns", problem)
        problem = addr.ifname_problem(item["iface"])
        if problem:
            self.fail("iface", problem)
        for field, parse in (("ip", addr.parse_ipv4), ("mac", addr.parse_mac)):
            try:
                parse(item[field])
            except ValueError as e:
                self.fail(field, str(e))
        if not 0 < item["vni"] < 1 << 24:
            self.fail("vni", "%d is not a VNI (1..16777215)" % item["vni"])
        config = dict(item.get("config") or {})
        log = config.get("log") or "/var/log/mizar/%s.jsonl" % self.name
        if not os.path.isabs(log):
            self.fail("config.log", "%r is not an absolute path" % log)
        try:
            flush = fnreg.parse_duration(config.get("flush") or "1s") / 1e9
        except ValueError as e:
            self.fail("config.flush", str(e))
        unknown = sorted(set(config) - {"log", "flush"})
        if unknown:
            self.fail("config." + unknown[0], "unknown setting of %s" % self.program)
        self.netns = item["netns"]
        self.paths = paths(directory, self.name)
        self.config = {"name": self.name, "program": self.program, "endpoint": item.get("endpoint"),
                       "netns": self.netns, "iface": INNER, "host_iface": item["iface"], "vni": item["vni"],
                       "ip": item["ip"],
                       "mac": item["mac"].lower(), "log": log, "flush": flush, "ready": self.paths["ready"]}
        self.text = json.dumps(self.config, sort_keys=True, indent=1) + "\n"

    def fail(self, field, problem):
        raise UserspaceError("%s: %s: %s" % (self.label, field, problem))


def paths(directory, name):
    return dict((kind, os.path.join(directory, "%s.%s" % (name, kind))) for kind in ("json", "ready", "pid", "err"))


def unit_name(program, name=None):
    return "mizar-%s@%s.service" % (program, name or "")


def unit_text(program, directory, python):
    return ("# mizar.transit: the user-space function %s, one instance per function\n"
            "[Unit]\n"
            "Description=mizar.transit user-space function %%i (%s)\n"
            "After=network.target\n"
            "\n"
            "[Service]\n"
            "Type=simple\n"
            "ExecStart=%s %s/%s.py %s/%%i.json\n"
            "Restart=on-failure\n"
            "RestartSec=1\n"
            "\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n" % (program, program, python, directory, program, directory))


class Spec:
    """The module's arguments: the functions, how they are supervised,
    where they live."""

    def __init__(self, functions, supervisor=DEFAULT_SUPERVISOR, directory=DEFAULT_FUNCTION_DIR,
                 systemd_dir=DEFAULT_SYSTEMD_DIR, python=None, exclusive=False, state="present"):
        self.directory = directory.rstrip("/") or "/"
        if not os.path.isabs(self.directory) or self.directory == "/":
            raise UserspaceError("dir: %r must be an absolute path other than /" % directory)
        if supervisor not in SUPERVISORS:
            raise UserspaceError("supervisor: %r is not one of %s" % (supervisor, ", ".join(SUPERVISORS)))
        self.supervisor = supervisor
        self.systemd_dir = systemd_dir
        self.python = python or sys.executable
        self.exclusive = bool(exclusive)
        self.state = state
        self.functions = [Function(item, i, self.directory) for i, item in enumerate(functions)]
        seen = {}
        for i, fn in enumerate(self.functions):
            if seen.setdefault(fn.name, i) != i:
                fn.fail("name", "functions[%d] has this name too; every function needs its own" % seen[fn.name])
        self.headers = ("user-space functions in %s (before)" % self.directory,
                        "user-space functions in %s (after)" % self.directory)

    @classmethod
    def from_params(cls, params):
        return cls(params["functions"], params["supervisor"], params["dir"], params["systemd_dir"],
                   params["python"], params["exclusive"], params["state"])


def spec_of(rendered, state="present"):
    """The spec of a host's rendering (its userspace part), exclusive: what
    the functions role and the drift gate ask for."""
    us = rendered["userspace"]
    return Spec(us["functions"], us["supervisor"], us["dir"], exclusive=True, state=state)


# ---------------------------------------------------------------- reading


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _alive(pid, argv):
    """True when process pid runs argv (its command line ends with it) and
    is not a zombie."""
    if not _alive_pid(pid):
        return False
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read().split(b"\0")[:-1]
    except OSError:
        return False
    return [a.decode(errors="replace") for a in cmdline[-len(argv):]] == list(argv)


def _netns_inode(pid):
    try:
        return os.stat("/proc/%d/ns/net" % pid).st_ino
    except OSError:
        return None


def _wanted_netns_inode(netns):
    try:
        return os.stat(nsenter.netns_path(netns)).st_ino
    except (OSError, nsenter.NetnsError):
        return None


def _systemctl(*argv):
    """systemctl's answer (rc, stdout)."""
    proc = subprocess.run(("systemctl",) + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          universal_newlines=True)
    return proc.returncode, proc.stdout.strip() + proc.stderr.strip()


def _process_pid(spec, name, argv):
    text = _read(paths(spec.directory, name)["pid"])
    try:
        pid = int((text or "").strip())
    except ValueError:
        return None
    return pid if _alive(pid, argv) else None


def _unit_pid(name, program):
    rc, out = _systemctl("show", "--property=MainPID", "--value", unit_name(program, name))
    try:
        pid = int(out) if rc == 0 else 0
    except ValueError:
        pid = 0
    return pid or None


def read(spec):
    """{programs: {program: its text in dir}, units: {program: its unit's
    text}, functions: {name: {program, config (text), pid, netns_ok,
    enabled}}}: what dir holds, and which of its functions run where they
    should."""
    st = {"programs": {}, "units": {}, "functions": {}, "dir": None}
    try:
        files = os.listdir(spec.directory)
    except FileNotFoundError:
        files = None
    names = sorted(f[:-5] for f in files or () if f.endswith(".json"))
    for prog in PROGRAMS:
        st["programs"][prog] = _read(os.path.join(spec.directory, prog + ".py"))
        if spec.supervisor == "systemd":
            st["units"][prog] = _read(os.path.join(spec.systemd_dir, unit_name(prog)))
    for name in names:
        p = paths(spec.directory, name)
        text = _read(p["json"])
        try:
            found = json.loads(text)
            program, netns = found["program"], found["netns"]
        except (TypeError, ValueError, KeyError):
            program = netns = None  # not one of ours, or broken: replaced, or removed
        entry = {"program": program, "config": text, "pid": None, "netns_ok": False, "enabled": False}
        if program in PROGRAMS:
            argv = [os.path.join(spec.directory, program + ".py"), p["json"]]
            if spec.supervisor == "process":
                entry["pid"] = _process_pid(spec, name, argv)
            else:
                entry["pid"] = _unit_pid(name, program)
                entry["enabled"] = _systemctl("is-enabled", unit_name(program, name))[0] == 0
            if entry["pid"] is not None:
                entry["netns_ok"] = _netns_inode(entry["pid"]) == _wanted_netns_inode(netns)
        st["functions"][name] = entry
    if files is not None:  # whether dir holds anything but what this module writes
        ours = set(prog + ".py" for prog in PROGRAMS)
        for name in names:
            ours.update(os.path.basename(path) for path in paths(spec.directory, name).values())
        st["dir"] = {"others": sorted(f for f in files if f not in ours)}
    return st


# ---------------------------------------------------------------- planning


def _write(path, text, mode=0o644):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _tail(path, lines=5):
    text = _read(path) or ""
    return " | ".join(text.strip().splitlines()[-lines:]) or "nothing on stderr"


def _wait_ready(fn, running_pid):
    """Wait until the program says it is up: its ready file holds the pid
    running_pid() gives (None: the program has ended); UserspaceError if it
    ends first or takes too long."""
    deadline = time.time() + READY_TIMEOUT
    while time.time() < deadline:
        pid = running_pid()
        if pid is None:
            raise UserspaceError("%s: %s ended as it started: %s" % (fn.label, fn.program, _tail(fn.paths["err"])))
        if (_read(fn.paths["ready"]) or "").strip() == str(pid):
            return
        time.sleep(0.05)
    stderr = _tail(fn.paths["err"])
    raise UserspaceError("%s: %s did not come up within %ds: %s" % (fn.label, fn.program, READY_TIMEOUT, stderr))


def start_process(spec, fn):
    """Start fn's program detached, in a session of its own, and record its
    pid once it is up."""
    _remove(fn.paths["ready"])
    argv = [spec.python, os.path.join(spec.directory, fn.program + ".py"), fn.paths["json"]]
    with open(fn.paths["err"], "ab") as err, open(os.devnull, "rb") as null:
        proc = subprocess.Popen(argv, stdin=null, stdout=err, stderr=err, close_fds=True, start_new_session=True,
                                cwd="/")
    _wait_ready(fn, lambda: proc.pid if proc.poll() is None else None)
    _write(fn.paths["pid"], "%d\n" % proc.pid)


def stop_process(pid):
    """SIGTERM (the program flushes its log), then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        try:
            os.kill(pid, sig)
        except OSError as e:
            if e.errno == errno.ESRCH:
                return
            raise
        deadline = time.time() + wait
        while time.time() < deadline:
            if not _alive_pid(pid):
                return
            time.sleep(0.05)
    raise UserspaceError("process %d does not end" % pid)


def _alive_pid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _systemctl_step(*argv):
    rc, out = _systemctl(*argv)
    if rc != 0:
        raise UserspaceError("systemctl %s: %s" % (" ".join(argv), out))


def start_unit(fn, restart):
    """(Re)start fn's unit instance and wait until its program is up."""
    _remove(fn.paths["ready"])
    _systemctl_step("restart" if restart else "start", unit_name(fn.program, fn.name))
    _wait_ready(fn, lambda: _unit_pid(fn.name, fn.program))


def _plan_present(spec, fn, have, steps):
    supervised = spec.supervisor == "process"
    program_new = have["programs"].get(fn.program) != program_source(fn.program)
    cur = have["functions"].get(fn.name)
    config_new = cur is None or cur["config"] != fn.text
    running = cur is not None and cur["pid"] is not None and cur["netns_ok"]
    if config_new:
        steps.append(Step("write the config of %s (%s)" % (fn.name, fn.paths["json"]), _write, fn.paths["json"],
                          fn.text))
    if supervised:
        if cur is not None and cur["pid"] is not None and (program_new or config_new or not cur["netns_ok"]):
            why = "its program or config changed" if program_new or config_new else "its endpoint's namespace is new"
            steps.append(Step("stop %s (process %d): %s" % (fn.name, cur["pid"], why), stop_process, cur["pid"]))
            running = False
        if not running or program_new or config_new:
            steps.append(Step("start %s: %s in namespace %s" % (fn.name, fn.program, fn.netns), start_process, spec,
                              fn))
        return
    if cur is None or not cur["enabled"]:
        steps.append(Step("enable %s" % unit_name(fn.program, fn.name), _systemctl_step, "enable",
                          unit_name(fn.program, fn.name)))
    if not running or program_new or config_new:
        restart = cur is not None and cur["pid"] is not None
        steps.append(Step("%s %s: %s in namespace %s" % ("restart" if restart else "start",
                                                         unit_name(fn.program, fn.name), fn.program, fn.netns),
                          start_unit, fn, restart))


def _plan_absent(spec, name, cur, steps):
    p = paths(spec.directory, name)
    if spec.supervisor == "process":
        if cur["pid"] is not None:
            steps.append(Step("stop %s (process %d)" % (name, cur["pid"]), stop_process, cur["pid"]))
    elif cur["program"] in PROGRAMS and (cur["pid"] is not None or cur["enabled"]):
        steps.append(Step("stop and disable %s" % unit_name(cur["program"], name), _systemctl_step, "disable",
                          "--now", unit_name(cur["program"], name)))
    steps.append(Step("remove the config of %s (%s)" % (name, p["json"]), _remove_all, p))


def _rmdir(directory):
    try:
        os.rmdir(directory)
    except FileNotFoundError:
        pass


def _remove_all(p):
    for path in p.values():
        _remove(path)


def plan(spec, have):
    steps = []
    wanted = dict((fn.name, fn) for fn in spec.functions) if spec.state == "present" else {}
    programs = sorted(set(fn.program for fn in wanted.values()))
    for prog in programs:
        if have["programs"].get(prog) != program_source(prog):
            steps.append(Step("install %s at %s" % (prog, os.path.join(spec.directory, prog + ".py")), _write,
                              os.path.join(spec.directory, prog + ".py"), program_source(prog)))
        if spec.supervisor == "systemd":
            text = unit_text(prog, spec.directory, spec.python)
            if have["units"].get(prog) != text:
                path = os.path.join(spec.systemd_dir, unit_name(prog))
                steps.append(Step("write the unit template %s" % path, _write, path, text))
                steps.append(Step("reload systemd", _systemctl_step, "daemon-reload"))
    for fn in spec.functions:
        if fn.name in wanted:
            _plan_present(spec, fn, have, steps)
    listed = set(fn.name for fn in spec.functions)
    for name in sorted(have["functions"]):
        if name not in wanted and (name in listed or spec.exclusive):
            _plan_absent(spec, name, have["functions"][name], steps)
    if spec.exclusive:  # programs and unit templates no function needs any more
        for prog in sorted(PROGRAMS):
            if prog in programs:
                continue
            if have["programs"].get(prog) is not None:
                path = os.path.join(spec.directory, prog + ".py")
                steps.append(Step("remove %s (%s)" % (prog, path), _remove, path))
            if have["units"].get(prog) is not None:
                path = os.path.join(spec.systemd_dir, unit_name(prog))
                steps.append(Step("remove the unit template %s" % path, _remove, path))
                steps.append(Step("reload systemd", _systemctl_step, "daemon-reload"))
    if spec.exclusive and not wanted and have["dir"] is not None and not have["dir"]["others"]:
        steps.append(Step("remove %s" % spec.directory, _rmdir, spec.directory))
    return steps


# ---------------------------------------------------------------- the module


def _describe(have):
    lines = []
    for name in sorted(have["functions"]):
        f = have["functions"][name]
        state = ("running, process %d" % f["pid"]) if f["pid"] is not None and f["netns_ok"] else (
            "running outside its endpoint's namespace" if f["pid"] is not None else "not running")
        lines.append("%s: %s, %s" % (name, f["program"], state))
    return "".join(line + "\n" for line in lines)


def _after(spec):
    if spec.state != "present":
        return ""
    return "".join("%s: %s, running\n" % (fn.name, fn.program) for fn in sorted(spec.functions, key=lambda f: f.name))


def ensure(spec, check_mode=False):
    have = read(spec)
    steps = plan(spec, have)
    done = carry_out(steps, "user-space functions in %s" % spec.directory, check_mode, UserspaceError)
    after = have if check_mode or not steps else read(spec)
    functions = [{"name": name, "program": f["program"], "pid": f["pid"],
                  "running": f["pid"] is not None and f["netns_ok"]} for name, f in sorted(after["functions"].items())]
    return {"changed": bool(steps), "actions": done, "functions": functions,
            "diff": {"before": _describe(have), "after": _after(spec) if steps else _describe(have)}}
