"""ensure() of the bpf_build backend, whole (read, plan, carry out), with a
stand-in compiler that copies each source to its object: the manifest it
returns is the archive's as the build leaves it, and in check mode it is
never the digests of objects that do not exist."""
import os

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import objects
from ansible_collections.mizar.transit.plugins.module_utils.ops import bpf_build

# `clang --version` answers; `clang ... -c SOURCE -o OUTPUT` copies SOURCE.
FAKE_CLANG = """#!/bin/sh
[ "$1" = --version ] && { echo "stand-in clang 1.0"; exit 0; }
while [ $# -gt 0 ]; do
    case "$1" in -c) src="$2"; shift;; -o) out="$2"; shift;; esac
    shift
done
cp "$src" "$out"
"""


@pytest.fixture
def spec(tmp_path):
    src = tmp_path / "bpf"
    (src / "include").mkdir(parents=True)
    (src / "functions").mkdir()
    (src / "include" / "common.h").write_text("/* shared */\n")
    (src / "transit.bpf.c").write_text("transit v1\n")
    (src / "functions" / "acl.bpf.c").write_text("acl v1\n")
    clang = tmp_path / "clang"
    clang.write_text(FAKE_CLANG)
    clang.chmod(0o755)
    return bpf_build.Spec(str(src), str(tmp_path / "out"), clang=str(clang))


def _bytes(path):
    with open(path, "rb") as f:
        return f.read()


def test_the_manifest_is_the_archives_after_a_build_and_after_a_rerun(spec):
    first = bpf_build.ensure(spec)
    assert first["changed"] and sorted(first["built"]) == ["functions/acl", "transit"]
    assert first["manifest"] == objects.manifest(spec.archive)
    assert sorted(first["manifest"]) == ["functions/acl.bpf.o", "transit.bpf.o"]
    assert first["manifest"]["transit.bpf.o"] == objects.digests(spec.dest)["transit.bpf.o"]
    second = bpf_build.ensure(spec)
    assert not second["changed"] and second["actions"] == [] and second["manifest"] == first["manifest"]


def test_check_mode_on_a_stale_build_claims_no_digests_and_writes_nothing(spec):
    first = bpf_build.ensure(spec)
    archive, stamp = _bytes(spec.archive), _bytes(spec.stamp)
    with open(os.path.join(spec.src, "transit.bpf.c"), "w") as f:
        f.write("transit v2\n")
    check = bpf_build.ensure(spec, check_mode=True)
    assert check["changed"] and sorted(check["built"]) == ["functions/acl", "transit"] and check["manifest"] is None
    assert (_bytes(spec.archive), _bytes(spec.stamp)) == (archive, stamp)
    assert _bytes(os.path.join(spec.dest, "transit.bpf.o")) == b"transit v1\n"
    done = bpf_build.ensure(spec)
    assert done["manifest"] == objects.manifest(spec.archive)
    assert done["manifest"]["transit.bpf.o"] != first["manifest"]["transit.bpf.o"]
    assert objects.read_archive(spec.archive)["transit.bpf.o"] == b"transit v2\n"


def test_check_mode_with_the_archive_to_rewrite_claims_no_digests(spec):
    bpf_build.ensure(spec)
    os.unlink(spec.archive)
    check = bpf_build.ensure(spec, check_mode=True)
    assert check["changed"] and check["built"] == [] and check["manifest"] is None
    assert not os.path.exists(spec.archive)


def test_check_mode_with_nothing_to_build_gives_the_archives_manifest(spec):
    first = bpf_build.ensure(spec)
    check = bpf_build.ensure(spec, check_mode=True)
    assert not check["changed"] and check["manifest"] == first["manifest"] == objects.manifest(spec.archive)
