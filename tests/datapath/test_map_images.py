"""The recorded map images the planner's unit tests replay
(tests/unit/module_utils/bpf/fixtures/*.json) are what the real maps hold:
recorded again from a fresh harness, each is the checked-in document
exactly. When the engine or the map ABI changes what lands in the maps,
this fails: run tests/datapath/record_map_images.py and review the plans
the unit tests then assert."""
import pytest

import mapimage
import record_map_images as R


@pytest.mark.parametrize("name", sorted(R.SCENARIOS))
def test_the_checked_in_image_is_what_the_maps_hold(name):
    got = R.record(name)
    want = mapimage.load(R.path(name))
    assert got["note"] == want["note"] and got["states"] == want["states"]
    for m in sorted(set(got["maps"]) | set(want["maps"])):
        assert got["maps"].get(m) == want["maps"].get(m), "%s differs: re-record (record_map_images.py)" % m
