"""Shared pytest setup: import the collection as ansible_collections.mizar.transit."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".build")
BPF_OUT = os.path.join(ROOT, ".build", "bpf")

if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "mizar", "transit")):
    raise RuntimeError("run scripts/bootstrap first: .build/ansible_collections is missing")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
TESTS = os.path.dirname(os.path.abspath(__file__))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)  # machine.py: what tests on the real kernel need


KERNEL_DIRS = tuple(os.path.join(TESTS, d) + os.sep for d in ("datapath", "kernel", "integration"))


def pytest_collection_modifyitems(items):
    """Tests under datapath/, kernel/ and integration/ run on the real kernel."""
    import pytest

    for item in items:
        if str(item.fspath).startswith(KERNEL_DIRS):
            item.add_marker(pytest.mark.kernel)
