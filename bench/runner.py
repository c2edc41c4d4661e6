"""Running a playbook of the collection for a benchmark: the checkout's
collection and the venv's ansible-playbook, plain output, the run timed.
A failed run (a failed or unreachable host) ends the benchmark."""
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def playbook(inventory, name, *extra, **kw):
    """Run mizar.transit.<name> on inventory; returns (seconds, changed
    tasks per host, the run's output). calls_out="<file>": the
    mizar_calls callback writes what each host ran there."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1")
    if kw.get("calls_out"):
        env.update(ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, "bench", "callback_plugins"),
                   ANSIBLE_CALLBACKS_ENABLED="mizar_calls", MIZAR_CALLS_OUT=kw["calls_out"])
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
                        "mizar.transit." + name] + list(extra), env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - t0
    recap = RECAP.findall(r.stdout)
    if r.returncode or not recap or any(int(u) or int(f) for _h, _c, u, f in recap):
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-2000:])
        raise SystemExit("mizar.transit.%s failed" % name)
    return seconds, dict((h, int(c)) for h, c, _u, _f in recap), r.stdout
