"""objects.remove(): hosts sharing a file system (lab hosts) remove the same
object directory at the same moment, with real processes. Exactly one of
them removes it and says so, none fails, nothing is left; shutil.rmtree on
every host at once (what ansible.builtin.file does) fails on some."""
import multiprocessing
import os
import shutil

import pytest

import objdir
from ansible_collections.mizar.transit.plugins.module_utils.bpf import objects

ROUNDS = 6
REMOVERS = 4


def _naive(path):
    shutil.rmtree(path)
    return True


def _worker(fn, barrier, path, results):
    barrier.wait()
    try:
        results.put(("ok", fn(path)))
    except Exception as e:  # what the task would report as a failure
        results.put(("failed", "%s: %s" % (type(e).__name__, e)))


def _race(fn, path):
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(REMOVERS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(fn, barrier, path, results)) for dummy in range(REMOVERS)]
    for p in procs:
        p.start()
    out = [results.get(timeout=60) for dummy in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return out


def test_concurrent_removal_of_a_shared_directory(tmp_path):
    path = str(tmp_path / "bpf")
    for dummy in range(ROUNDS):
        objdir.fill(path)
        out = _race(objects.remove, path)
        assert all(status == "ok" for status, dummy in out), out
        assert sorted(v for dummy, v in out) == [False] * (REMOVERS - 1) + [True]  # one says changed
        assert os.listdir(str(tmp_path)) == []  # gone, and no .bpf.removing-* left
        assert objects.remove(path) is False  # idempotent


def test_the_race_is_real_for_plain_rmtree(tmp_path):
    """The same race with shutil.rmtree fails in some rounds (ENOENT):
    what teardown.yml's ansible.builtin.file did on lab hosts."""
    path = str(tmp_path / "bpf")
    failed = []
    for dummy in range(ROUNDS):
        objdir.fill(path)
        out = _race(_naive, path)
        failed += [v for status, v in out if status == "failed"]
        shutil.rmtree(path, ignore_errors=True)
    assert failed and all("No such file or directory" in f for f in failed), failed


def test_check_mode_leftovers_and_plain_files(tmp_path):
    path = str(tmp_path / "bpf")
    assert objects.remove(path) is False and objects.remove(path, check_mode=True) is False
    objdir.fill(path)
    assert objects.remove(path, check_mode=True) is True and os.path.isdir(path)
    # a removal killed half-way (its process gone) is finished by the next one
    dead = str(tmp_path / (".bpf" + objects.REMOVING + "999999999-0123456789ab"))
    os.rename(path, dead)
    live = str(tmp_path / (".bpf" + objects.REMOVING + "%d-0123456789ab" % os.getpid()))
    os.makedirs(live)  # a removal in progress elsewhere: not ours to touch
    assert objects.remove(path, check_mode=True) is True
    assert objects.remove(path) is True
    assert os.listdir(str(tmp_path)) == [os.path.basename(live)]
    os.rmdir(live)
    with open(path, "w") as f:
        f.write("not a directory")
    assert objects.remove(path) is True and not os.path.lexists(path)
    assert objects.remove(str(tmp_path / "no" / "such" / "parent")) is False


@pytest.mark.parametrize("trailing", ["", "/"])
def test_a_trailing_slash_names_the_same_directory(tmp_path, trailing):
    path = str(tmp_path / "bpf")
    objdir.fill(path)
    assert objects.remove(path + trailing) is True and os.listdir(str(tmp_path)) == []
