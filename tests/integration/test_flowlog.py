"""The flowlog user-space function end to end, on two lab hosts through
`ansible-playbook mizar.transit.site`: an endpoint src on the first host, a
bypass_decap endpoint logger on the second running flowlog (a supervised
process, as in the lab). Real traffic from src to logger across the hosts
(ping, full-size ping, UDP, a TCP stream of 1410-byte segments) is answered
by logger's own services; the flow log has each flow with its VNI, outer
source and 5-tuple, a counted burst exactly; hostile frames put on the
logger's veth are counted by reason and never reach its stack while a good
one does; a killed function is reported by --check and restarted by the next
run, after which a run changes nothing; teardown stops it and removes its
files. The tests run in order on one deployment."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.userspace import flowlog as fl

from .conftest import RUN, LabHosts

H1, H2 = RUN + "f1", RUN + "f2"
IP1, IP2 = "192.168.83.1", "192.168.83.2"
MAC1, MAC2 = "02:00:c0:a8:53:01", "02:00:c0:a8:53:02"
LAB_HOSTS = LabHosts({H1: IP1, H2: IP2}, RUN + "fb", "/sys/fs/bpf/%s-fl" % RUN)
SRC_NS, LOG_NS = RUN + "fs", RUN + "fl"
VNI = 320
SRC_IP, LOG_IP = "10.32.1.10", "10.32.1.20"
FN_DIR = "/var/lib/mizar-%s-functions" % H2  # the shipped lab settings' mizar_function_dir
UDP_PORT, TCP_PORT = 7000, 8000
TCP_BYTES = 2 * 1024 * 1024

SERVERS = textwrap.dedent("""
    import hashlib, socket, sys, threading
    received = open(sys.argv[1], "a")
    def udp():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", %d))
        while True:
            data, peer = s.recvfrom(65535)
            received.write(data.decode(errors="replace") + "\\n")
            received.flush()
            s.sendto(data, peer)
    def tcp():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", %d))
        s.listen(4)
        while True:
            c, dummy = s.accept()
            h, n = hashlib.sha256(), 0
            while True:
                data = c.recv(65536)
                if not data:
                    break
                h.update(data)
                n += len(data)
            c.sendall(("%%d %%s" %% (n, h.hexdigest())).encode())
            c.close()
    threading.Thread(target=udp, daemon=True).start()
    tcp()
""" % (UDP_PORT, TCP_PORT))


def tenants(log):
    return {
        "mizar_model_version": 1,
        "mizar_vpcs": [{
            "name": "teal", "vni": VNI, "cidr": "10.32.0.0/16",
            "networks": [{"name": "a", "cidr": "10.32.1.0/24", "bouncers": [H1], "endpoints": [
                {"name": "src", "ip": SRC_IP, "host": H1, "netns": SRC_NS},
                {"name": "logger", "ip": LOG_IP, "host": H2, "netns": LOG_NS, "bypass_decap": True}]}]}],
        "mizar_functions": [{
            "name": "flows", "kind": "userspace", "program": "flowlog", "vpc": "teal", "endpoint": "logger",
            "config": {"log": log, "flush": "200ms"}}],
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("flowlog")
    return {"log": str(d / "logs" / "flows.jsonl"), "received": str(d / "received.txt")}


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, files):
    path = LAB_HOSTS.inventory(tmp_path_factory.mktemp("inventory"),
                               host_vars={H1: {"mizar_underlay_mac": MAC1}, H2: {"mizar_underlay_mac": MAC2}})
    with open(os.path.join(path, "group_vars", "all.yml"), "w") as f:
        yaml.safe_dump(tenants(files["log"]), f, default_flow_style=False)
    return path


@pytest.fixture(scope="module")
def deployed(ansible, inventory, files):
    servers = None
    res = LAB_HOSTS.playbook(ansible, inventory)
    try:
        assert res.ok(), res
        first = ansible.playbook(inventory, "mizar.transit.site")
        assert first.ok(), first
        assert first.changed(H1) and first.changed(H2), first.recap
        assert os.path.exists(os.path.join(FN_DIR, "flows.pid")), first
        servers = subprocess.Popen(["ip", "netns", "exec", LOG_NS, sys.executable, "-c", SERVERS, files["received"]],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        assert servers.poll() is None, "the servers in %s did not start" % LOG_NS
        yield first
    finally:
        if servers is not None:
            servers.kill()
            servers.wait()
        ansible.playbook(inventory, "mizar.transit.teardown")
        errors = LAB_HOSTS.remove(ansible, inventory)
        assert not errors, errors


def pid_of():
    with open(os.path.join(FN_DIR, "flows.pid")) as f:
        return int(f.read())


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def in_src(*argv, **kw):
    return subprocess.run(["ip", "netns", "exec", SRC_NS] + list(argv), capture_output=True, text=True,
                          timeout=120, check=False, **kw)


def records(log, wait=0.7):
    """The log's records after a flush or two: (the last record of each
    flow by key, the last counters record)."""
    time.sleep(wait)
    flows, counters = {}, None
    with open(log) as f:
        for line in f:
            r = json.loads(line)
            if r["type"] == "flow":
                flows[(r["vni"], r["outer_src"], r["proto"], r["src"], r["dst"], r["sport"], r["dport"])] = r
            else:
                counters = r
    return flows, counters


def test_the_function_runs_in_the_endpoints_namespace(deployed):
    pid = pid_of()
    assert alive(pid)
    assert os.stat("/proc/%d/ns/net" % pid).st_ino == os.stat(nsenter.netns_path(LOG_NS)).st_ino
    with open(os.path.join(FN_DIR, "flows.json")) as f:
        config = json.load(f)
    assert (config["netns"], config["vni"], config["ip"], config["iface"]) == (LOG_NS, VNI, LOG_IP, "eth0")
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert f.read().split(b"\0")[1:3] == [os.path.join(FN_DIR, "flowlog.py").encode(),
                                              os.path.join(FN_DIR, "flows.json").encode()]


def test_a_converged_lab_is_a_no_op_that_check_mode_predicts(deployed, ansible, inventory):
    check = ansible.playbook(inventory, "mizar.transit.site", "--check", "--diff")
    assert check.ok(), check
    assert (check.changed(H1), check.changed(H2)) == (0, 0), check
    again = ansible.playbook(inventory, "mizar.transit.site")
    assert again.ok(), again
    assert (again.changed(H1), again.changed(H2)) == (0, 0), again.recap


def test_ping_across_hosts_is_answered_full_size_too(deployed):
    res = in_src("ping", "-c", "5", "-i", "0.2", "-W", "2", LOG_IP)
    assert res.returncode == 0 and " 5 received" in res.stdout, res.stdout + res.stderr
    # 1450 bytes of IPv4 (src's MTU): a 1514-byte tunnel frame on the 1500-byte substrate
    res = in_src("ping", "-c", "3", "-i", "0.2", "-W", "2", "-M", "do", "-s", "1422", LOG_IP)
    assert res.returncode == 0 and " 3 received" in res.stdout, res.stdout + res.stderr


UDP_CLIENT = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(sys.argv[3])))
    s.settimeout(3)
    n, size, got = int(sys.argv[1]), int(sys.argv[2]), 0
    for i in range(n):
        msg = ("udp-%%06d-" %% i).ljust(size, "u").encode()
        s.sendto(msg, ("%s", %d))
        if s.recvfrom(65535)[0] == msg:
            got += 1
    print(got)
""" % (LOG_IP, UDP_PORT))


def udp_burst(n, size, sport):
    res = in_src(sys.executable, "-c", UDP_CLIENT, str(n), str(size), str(sport))
    assert res.returncode == 0, res.stderr
    return int(res.stdout)


def test_udp_is_answered(deployed):
    assert udp_burst(20, 1000, 41000) == 20


def test_a_tcp_stream_of_full_segments_is_answered(deployed):
    client = textwrap.dedent("""
        import hashlib, socket
        data = bytes(range(256)) * (%d // 256)
        s = socket.create_connection(("%s", %d), timeout=30)
        print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        print(answer.decode())
        print("%%d %%s" %% (len(data), hashlib.sha256(data).hexdigest()))
    """ % (TCP_BYTES, LOG_IP, TCP_PORT))
    res = in_src(sys.executable, "-c", client)
    assert res.returncode == 0, res.stderr
    mss, answer, sent = res.stdout.splitlines()
    # full-size segments crossed: 1398 bytes of data, 32 of TCP header with
    # timestamps and 20 of IPv4 fill src's 1450-byte MTU (a 1514-byte tunnel frame)
    assert int(mss) + 32 + 20 == 1450, mss
    assert answer == sent == "%d %s" % (TCP_BYTES, hashlib.sha256(bytes(range(256)) * (TCP_BYTES // 256)).hexdigest())


def test_the_flow_log_has_each_flow_and_a_counted_burst_exactly(deployed, files):
    assert udp_burst(37, 300, 42000) == 37
    flows, counters = records(files["log"])
    burst = flows[(VNI, IP1, "udp", SRC_IP, LOG_IP, 42000, UDP_PORT)]
    assert (burst["packets"], burst["bytes"]) == (37, 37 * (20 + 8 + 300)), burst
    assert burst["function"] == "flows" and burst["first"] <= burst["last"] and burst["options"] == []
    echo = flows[(VNI, IP1, "icmp", SRC_IP, LOG_IP, 0, 8 * 256)]  # echo requests: type 8, code 0
    assert echo["packets"] == 5 + 3, echo
    assert flows[(VNI, IP1, "udp", SRC_IP, LOG_IP, 41000, UDP_PORT)]["packets"] == 20
    tcp = [r for k, r in flows.items() if k[2] == "tcp" and k[6] == TCP_PORT]
    assert len(tcp) == 1 and tcp[0]["bytes"] > TCP_BYTES and tcp[0]["outer_src"] == IP1, tcp
    # the replies leave through the agent: they are no flows of this log
    assert all(r["dst"] == LOG_IP and r["vni"] == VNI for r in flows.values())
    assert counters["drops"] == {} and counters["delivered"] >= 5 + 3 + 20 + 37


def _inner_udp(payload, dst=LOG_IP):
    return fl.ethernet(logger_mac(), "02:00:00:00:00:aa", fl.ETH_P_IP,
                       fl.ipv4(SRC_IP, dst, 17, fl.udp(43000, UDP_PORT, payload, SRC_IP, dst)))


def logger_mac():
    with open(os.path.join(FN_DIR, "flows.json")) as f:
        return json.load(f)["mac"]


def _tunnel(inner, vni=VNI, **kw):
    return fl.tunnel_frame(inner, vni, IP1, IP2, MAC1, MAC2, **kw)


def test_hostile_frames_are_counted_and_never_delivered(deployed, files):
    with open(os.path.join(FN_DIR, "flows.json")) as f:
        host_iface = json.load(f)["host_iface"]
    bad_csum = bytearray(_tunnel(_inner_udp(b"hostile-csum")))
    bad_csum[24:26] = b"\xde\xad"
    hostile = {
        "vni": _tunnel(_inner_udp(b"hostile-vni"), vni=VNI + 1),            # another tenant's
        "outer_ip_checksum": bytes(bad_csum),
        "geneve_critical": _tunnel(_inner_udp(b"hostile-crit"), options=[(0x0102, 0x80, b"\0\0\0\0")]),
        "geneve_control": _tunnel(_inner_udp(b"hostile-oam"), control=True),
        "inner_dst": _tunnel(_inner_udp(b"hostile-dst", dst="10.32.1.99")),
        "outer_short": _tunnel(_inner_udp(b"hostile-short"))[:40],
    }
    good = _tunnel(_inner_udp(b"injected-good"))
    flows_before, before = records(files["log"], wait=0.3)

    def send():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.bind((host_iface, 0))
        for frame in hostile.values():
            for dummy in range(3):
                s.send(frame)
        s.send(good)
        s.close()
    nsenter.run_in_netns(H2, send)
    flows_after, after = records(files["log"])
    for reason in hostile:
        assert after["drops"].get(reason, 0) - before["drops"].get(reason, 0) == 3, (reason, after)
    assert sum(after["drops"].values()) - sum(before["drops"].values()) == 3 * len(hostile)
    # the good one only, and the port unreachable src answers logger's echo of it with
    unreachable = (VNI, IP1, "icmp", SRC_IP, LOG_IP, 0, 3 * 256 + 3)
    answers = flows_after.get(unreachable, {}).get("packets", 0) - flows_before.get(unreachable, {}).get("packets", 0)
    assert after["delivered"] - before["delivered"] == 1 + answers, (after, answers)
    assert flows_after[(VNI, IP1, "udp", SRC_IP, LOG_IP, 43000, UDP_PORT)]["packets"] == 1
    assert not [k for k in flows_after if k[0] != VNI or k[4] != LOG_IP]
    with open(files["received"]) as f:
        got = f.read()
    assert "injected-good" in got
    assert "hostile" not in got


def test_a_killed_function_is_reported_and_restarted_and_then_a_run_is_a_no_op(deployed, ansible, inventory):
    old = pid_of()
    os.kill(old, signal.SIGKILL)
    for dummy in range(100):
        if not alive(old):
            break
        time.sleep(0.05)
    assert not alive(old)
    check = ansible.playbook(inventory, "mizar.transit.site", "--check", "--diff")
    assert check.ok(), check
    assert check.changed(H2) >= 1 and check.changed(H1) == 0, check.recap
    assert "flows: flowlog, not running" in check.stdout, check
    assert pid_of() == old and not alive(old)  # --check changed nothing
    run = ansible.playbook(inventory, "mizar.transit.site")
    assert run.ok(), run
    assert run.changed(H2) >= 1 and run.changed(H1) == 0, run.recap
    new = pid_of()
    assert new != old and alive(new)
    res = in_src("ping", "-c", "2", "-i", "0.2", "-W", "2", LOG_IP)
    assert res.returncode == 0 and " 2 received" in res.stdout, res.stdout
    again = ansible.playbook(inventory, "mizar.transit.site")
    assert again.ok(), again
    assert (again.changed(H1), again.changed(H2)) == (0, 0), again.recap
    assert pid_of() == new and alive(new)


def test_teardown_stops_it_and_removes_its_files_but_the_log(deployed, ansible, inventory, files):
    pid = pid_of()
    res = ansible.playbook(inventory, "mizar.transit.teardown")
    assert res.ok(), res
    assert not alive(pid)
    assert not os.path.exists(FN_DIR)  # programs, configs, pids and the directory itself
    assert os.path.exists(files["log"])
    again = ansible.playbook(inventory, "mizar.transit.teardown")
    assert again.ok() and (again.changed(H1), again.changed(H2)) == (0, 0), again.recap
