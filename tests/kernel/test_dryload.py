"""What a load would make (bpf/dryload.py), on the real kernel: the answer
equals a real load's, is kept once every map is pinned, is taken from the
cache without a load while its inputs stay, and is asked again of the
verifier when any input changes (an object's bytes, a map's id)."""
import os
import shutil

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import dryload, libbpf, loader, pinned


def _no_load(monkeypatch):
    def refuse(self):
        raise AssertionError("the verifier was asked")
    monkeypatch.setattr(libbpf.BpfObject, "load", refuse)


def test_the_answer_is_a_real_loads_and_is_kept(datapath, obj_dir, tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    obj = os.path.join(obj_dir, "transit.bpf.o")
    first = dryload.program_summary(obj, "mzr_transit", datapath.maps_dir, cache_dir=cache)
    pinned_now = pinned.programs(datapath.layout)["transit"]
    assert (first["tag"], first["map_ids"], first["new_maps"]) == (pinned_now["tag"], pinned_now["map_ids"], [])
    assert len(os.listdir(cache)) == 1
    _no_load(monkeypatch)
    assert dryload.program_summary(obj, "mzr_transit", datapath.maps_dir, cache_dir=cache) == first


def test_another_object_or_other_maps_ask_the_verifier_again(pin_dir, obj_dir, tmp_path):
    cache = str(tmp_path / "cache")
    obj = os.path.join(obj_dir, "transit.bpf.o")
    d = loader.Loader(pin_dir, obj_dir)
    try:
        d.load()
        first = dryload.program_summary(obj, "mzr_transit", d.maps_dir, cache_dir=cache)
        # the same program in a file with one byte more at its end: another object
        other = str(tmp_path / "transit.bpf.o")
        shutil.copy(obj, other)
        with open(other, "ab") as f:
            f.write(b"\0")
        assert dryload.program_summary(other, "mzr_transit", d.maps_dir, cache_dir=cache) == first
        assert len(os.listdir(cache)) == 2
        # the datapath made anew: the same names, other maps (other ids)
        d.teardown()
        d.load()
        again = dryload.program_summary(obj, "mzr_transit", d.maps_dir, cache_dir=cache)
        assert again["tag"] == first["tag"] and set(again["map_ids"]).isdisjoint(first["map_ids"])
        assert again["map_ids"] == pinned.programs(d.layout)["transit"]["map_ids"]
        assert len(os.listdir(cache)) == 3
        # no maps to reuse: private ones, with ids of their own each time, never kept
        alone = dryload.program_summary(obj, "mzr_transit", None, cache_dir=cache)
        assert alone["new_maps"] and len(os.listdir(cache)) == 3
    finally:
        d.teardown()


def test_a_damaged_entry_is_ignored(datapath, obj_dir, tmp_path):
    cache = str(tmp_path / "cache")
    obj = os.path.join(obj_dir, "transit.bpf.o")
    first = dryload.program_summary(obj, "mzr_transit", datapath.maps_dir, cache_dir=cache)
    (entry,) = os.listdir(cache)
    with open(os.path.join(cache, entry), "w") as f:
        f.write('{"tag": "0000000000000000"')
    assert dryload.program_summary(obj, "mzr_transit", datapath.maps_dir, cache_dir=cache) == first


def test_without_a_cache_every_answer_is_a_load(datapath, obj_dir, monkeypatch):
    obj = os.path.join(obj_dir, "transit.bpf.o")
    dryload.program_summary(obj, "mzr_transit", datapath.maps_dir, cache_dir=None)
    _no_load(monkeypatch)
    with pytest.raises(AssertionError, match="verifier was asked"):
        dryload.program_summary(obj, "mzr_transit", datapath.maps_dir, cache_dir=None)
