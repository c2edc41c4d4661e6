"""The kernel check: one sentence for a kernel too old, none for a good one."""
import collections

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import kernel

Uname = collections.namedtuple("Uname", "sysname nodename release version machine")


def uname(release, node="edge7"):
    return Uname("Linux", node, release, "#1 SMP", "x86_64")


@pytest.mark.parametrize("release,want", [
    ("6.1.0-56-cloud-amd64", (6, 1)),
    ("6.18.44-fc-v595", (6, 18)),
    ("5.15.0-1061-azure", (5, 15)),
    ("4.19.0-27-amd64", (4, 19)),
])
def test_version(release, want):
    assert kernel.version(release) == want


@pytest.mark.parametrize("release", ["6.1.0-56-cloud-amd64", "5.7.0", "6.8.0-45-generic"])
def test_supported_kernels_pass(release):
    kernel.require_supported(uname(release))


def test_too_old_names_host_kernel_and_need():
    with pytest.raises(kernel.KernelError) as e:
        kernel.require_supported(uname("5.4.0-190-generic"))
    assert str(e.value) == ("edge7 runs Linux 5.4.0-190-generic, older than the 5.7 that mizar.transit needs for "
                            "mmap-able BPF arrays (5.5) and compare-and-swap XDP attach (5.7); nothing was loaded")


def test_unreadable_release():
    with pytest.raises(kernel.KernelError):
        kernel.version("custom")
