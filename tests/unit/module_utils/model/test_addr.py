"""Strict parsing of addresses and names."""
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.model.inventory import pin_dir_problem


@pytest.mark.parametrize("text,value", [
    ("0.0.0.0", 0), ("10.1.0.5", 0x0A010005), ("255.255.255.255", 0xFFFFFFFF), ("192.168.50.1", 0xC0A83201)])
def test_parse_ipv4(text, value):
    assert addr.parse_ipv4(text) == value
    assert addr.ip_text(value) == text


@pytest.mark.parametrize("text,reason", [
    ("10.1.0", "four numbers"), ("10.1.0.5.6", "four numbers"), ("10.1.0.256", "more than 255"),
    ("10.01.0.5", "leading zero"), ("10.1.0.5\n", "four numbers"), (" 10.1.0.5", "four numbers"),
    ("10.1.0.x", "four numbers"), ("１0.1.0.5", "four numbers"), (17, "must be a string"), ("", "four numbers")])
def test_parse_ipv4_refuses(text, reason):
    with pytest.raises(ValueError) as info:
        addr.parse_ipv4(text)
    assert reason in str(info.value)


def test_cidr():
    assert addr.parse_cidr("10.1.0.0/16") == (0x0A010000, 16)
    assert addr.parse_cidr("0.0.0.0/0") == (0, 0)
    for bad in ("10.1.0.0", "10.1.0.0/", "10.1.0.0/033", "10.1.0.0/-1", "10.1.0.0/16/2"):
        with pytest.raises(ValueError):
            addr.parse_cidr(bad)
    assert addr.subnet_of(0x0A010100, 24, 0x0A010000, 16)
    assert not addr.subnet_of(0x0A020100, 24, 0x0A010000, 16)
    assert addr.overlaps(0x0A010000, 23, 0x0A010100, 24)
    assert not addr.overlaps(0x0A010000, 24, 0x0A010100, 24)
    assert addr.broadcast(0x0A010000, 24) == 0x0A0100FF


def test_mac():
    assert addr.parse_mac("02:AA:bb:00:00:01") == "02:aa:bb:00:00:01"
    for bad in ("02-aa-bb-00-00-01", "02:aa:bb:00:00", "03:00:00:00:00:01", "00:00:00:00:00:00", None):
        with pytest.raises(ValueError):
            addr.parse_mac(bad)


def test_derived_mac_is_local_unicast():
    mac = addr.derived_mac(16777215, "10.255.255.254")
    first = int(mac[:2], 16)
    assert first == 0x02 and first & 1 == 0 and first & 2
    assert addr.derived(7, "10.0.0.2") == (addr.derived_mac(7, "10.0.0.2"), addr.veth_name(7, "10.0.0.2"))


@pytest.mark.parametrize("name,ok", [
    ("eth0", True), ("veth-ep2", True), ("a" * 15, True), ("a" * 16, False), ("", False), ("eth0:1", False),
    ("my if", False), ("a/b", False), (".", False), ("..", False), (None, False)])
def test_ifname(name, ok):
    assert (addr.ifname_problem(name) is None) == ok


@pytest.mark.parametrize("name,ok", [
    ("ep1", True), ("green-app1", True), ("a" * 64, True), ("a" * 65, False), ("my ns", False), ("a/b", False),
    ("..", False), ("", False)])
def test_netns(name, ok):
    assert (addr.netns_problem(name) is None) == ok


@pytest.mark.parametrize("path,ok", [
    ("/sys/fs/bpf/mizar", True), ("/sys/fs/bpf/tenants/mizar", True), ("/run/bpffs/mizar", True),
    ("/sys/fs/bpf", False), ("/sys/fs/bpf/", False), ("/tmp/mizar", False), ("sys/fs/bpf/mizar", False),
    ("/sys/fs/bpf//mizar", False), ("/sys/fs/bpf/./mizar", False), (7, False)])
def test_pin_dir(path, ok):
    assert (pin_dir_problem(path) is None) == ok
