#!/usr/bin/env python
"""The VM lab's phases, timed: what a user waits for on three Debian 12 VMs
with the stock kernel (TCG here, so every guest task costs seconds).

    image_cold_s     the image built from nothing (an empty cache)
    image_cached_s   the same inputs again: found, nothing built
    boot_s           three VMs from start to SSH
    converge_s       mizar.transit.site on fresh VMs (packages installed for real)
    noop_s           the same playbook again (it changes nothing)
    check_s          the same playbook with --check --diff (it predicts no change)
    teardown_s       mizar.transit.teardown
    noop_tasks       module runs a no-op run makes on each host (skipped tasks and
                     the controller's own work not counted): each costs an SSH
                     round trip and a Python start on the host

    bench/vmlab.py            # table
    bench/vmlab.py --json     # the figures as one JSON object
    bench/vmlab.py --keep-cache   # skip the cold build (reuse the cached image)
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import runner

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VMLAB = os.path.join(ROOT, "scripts", "vmlab.py")
INVENTORY = os.path.join(ROOT, "inventories", "vm")
HEADER = re.compile(r"^TASK \[(.*)\] \**$")
RESULT = re.compile(r"^(?:ok|changed): \[(mzh\d+)\]")
# Tasks that print a host's name but run on the controller, without a
# round trip to the host: role argument checks, set_fact, the rendering
# ("Render every host's entries" in the tenants role before issue 9,
# "Render every host, once, on the controller" in site.yml since).
CONTROLLER = ("Validating arguments against arg spec", "Note the functions this host runs", "Render every host")


def remote_tasks(stdout):
    """{host: module runs on that host} from a default-callback log (each
    item of a loop is a run of its own)."""
    per_host, task = {}, ""
    for line in stdout.splitlines():
        m = HEADER.match(line)
        if m:
            task = m.group(1)
            continue
        m = RESULT.match(line)
        if m and not any(c in task for c in CONTROLLER):
            per_host[m.group(1)] = per_host.get(m.group(1), 0) + 1
    return per_host


def vmlab(*args, env=None):
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, VMLAB] + list(args), env=env, capture_output=True, text=True, check=False)
    if r.returncode:
        sys.stderr.write(r.stderr[-3000:])
        raise SystemExit("vmlab.py %s failed" % " ".join(args))
    return time.monotonic() - t0, json.loads(r.stdout)


def playbook(name, *extra):
    """(seconds, tasks changed on the VMs, module runs per VM) of one run."""
    seconds, changed, out = runner.playbook(INVENTORY, name, *extra)
    return seconds, sum(c for h, c in changed.items() if h != "localhost"), remote_tasks(out)


def measure(keep_cache):
    out = {}
    env = None
    cold_cache = None
    if not keep_cache:
        cold_cache = tempfile.mkdtemp(prefix="mizar-vmlab-cold-")
        env = dict(os.environ, MIZAR_VMLAB_CACHE=cold_cache)
        out["image_cold_s"], dummy = vmlab("image", env=env)
    try:
        out["image_cached_s"], dummy = vmlab("image", env=env)
        vmlab("down", env=env)
        dummy, up = vmlab("up", env=env)
        out["boot_s"] = up["boot_s"]
        try:
            out["converge_s"], changed, dummy = playbook("site")
            if not changed:
                raise SystemExit("the first converge changed nothing: the VMs were not fresh")
            out["noop_s"], changed, per_host = playbook("site")
            if changed:
                raise SystemExit("the second converge changed %d things" % changed)
            out["noop_tasks"] = per_host
            out["check_s"], changed, dummy = playbook("site", "--check", "--diff")
            if changed:
                raise SystemExit("check mode predicted %d changes after a converge" % changed)
            out["teardown_s"], dummy, dummy = playbook("teardown")
        finally:
            vmlab("down", env=env)
    finally:
        if cold_cache:
            shutil.rmtree(cold_cache, ignore_errors=True)
    return out


def table(r):
    rows = [("image, cold", "image_cold_s"), ("image, cached", "image_cached_s"), ("boot 3 VMs to SSH", "boot_s"),
            ("converge (site.yml)", "converge_s"), ("no-op re-run", "noop_s"), ("check mode (--check --diff)", "check_s"),
            ("teardown", "teardown_s")]
    lines = ["| phase | seconds |", "| --- | ---: |"]
    for label, key in rows:
        if key in r:
            lines.append("| %s | %.1f |" % (label, r[key]))
    tasks = r.get("noop_tasks") or {}
    lines.append("")
    lines.append("module runs a no-op makes per host: %s" % ", ".join("%s %d" % kv for kv in sorted(tasks.items())))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep-cache", action="store_true", help="reuse the cached image (no cold build)")
    args = ap.parse_args()
    r = measure(args.keep_cache)
    print(json.dumps(r) if args.json else table(r))


if __name__ == "__main__":
    main()
