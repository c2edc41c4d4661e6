#!/usr/bin/env python
"""Record map images from real maps, for the planner's unit tests
(tests/unit/module_utils/bpf/test_tables.py, which plan on them without
maps or root):

    .venv/bin/python tests/datapath/record_map_images.py   # as root, bpffs mounted

Each image is what tables.read_images() reads from the maps of a fresh
datapath harness (the real objects loaded into a private pin directory)
after the writes of its scenario:

  world_b              tables.converge() of the fixture world b
  move_after_publish   world b, then a plan to move two endpoints to
                       another host (test_interrupted's "move") applied up
                       to its retire phase: both versions of each are live
  remove_after_retire  world b, then a plan to remove two endpoints, a
                       network, a VPC and a substrate host (test_interrupted's
                       "remove") applied up to its clean phase: tombstones
                       left uncleaned, the host's substrate slot not freed

The documents land in tests/unit/module_utils/bpf/fixtures/<name>.json
(tests/mapimage.py). tests/datapath/test_map_images.py records again and
compares, so the checked-in images are always what the engine writes.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
FIXTURES = os.path.join(TESTS, "unit", "module_utils", "bpf", "fixtures")

if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(TESTS), ".build"))
    sys.path.insert(0, TESTS)
    sys.path.insert(0, HERE)

import fixtures as F  # noqa: E402
import mapimage  # noqa: E402
from harness import Harness  # noqa: E402
from test_interrupted import SCENARIOS as CHANGES  # noqa: E402
from ansible_collections.mizar.transit.plugins.module_utils.bpf import tables  # noqa: E402


# name -> (what, the change of test_interrupted's SCENARIOS, the phase the
# apply of its plan stops before; None: only its first state, converged)
SCENARIOS = {
    "world_b": ("tables.converge() of world b", None, None),
    "move_after_publish": ("world b, then the plan to 'to' (two endpoints moved to h4) applied up to retire",
                           "move", "retire"),
    "remove_after_retire": ("world b, then the plan to 'to' (two endpoints, a network, a VPC and substrate host "
                            "h6 removed) applied up to clean", "remove", "clean"),
}


def record(name):
    """The document of one scenario, recorded from the maps of a fresh harness."""
    what, change, stop = SCENARIOS[name]
    first, then = CHANGES[change]() if change else (F.WORLD_B, None)
    h = Harness()
    try:
        tables.converge(h.pin_dir, first)
        states = {"from": first}
        if then is not None:
            states["to"] = then
            p = tables.converge_plan(tables.Snapshot(h.maps), then)
            phases = [phase for phase, dummy, dummy in p.phases]
            if stop not in phases:
                raise RuntimeError("%s: the plan has no %s phase (%s)" % (name, stop, ", ".join(phases)))
            for phase, map_name, writes in p.phases[:phases.index(stop)]:
                tables.write_slots(h.maps[map_name], writes)
        sizes = dict((n, (h.maps[n].value_size, h.maps[n].max_entries)) for n in tables.IMAGE_MAPS)
        note = "tests/datapath/record_map_images.py %s: %s" % (name, what)
        return mapimage.document(tables.read_images(h.maps), sizes, note, states)
    finally:
        h.close()


def path(name):
    return os.path.join(FIXTURES, name + ".json")


def main():
    for name in sorted(SCENARIOS):
        doc = record(name)
        mapimage.save(path(name), doc)
        used = ", ".join("%s %d" % (m, len(v["slots"])) for m, v in sorted(doc["maps"].items()))
        print("%s: slots in use: %s" % (path(name), used))


if __name__ == "__main__":
    main()
