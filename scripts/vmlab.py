#!/usr/bin/env python
"""The VM lab: Debian 12 virtual machines with the stock kernel, reached over
SSH, for running mizar.transit the way users do (docs/vmlab.md).

    vmlab.py image            # build (or find) the cached Debian 12 image
    vmlab.py up               # image, package repository, bridge, one VM per inventory host
    vmlab.py status           # what runs, as JSON
    vmlab.py down             # stop everything `up` started, by PID; remove the bridge

The hosts are those of an ordinary SSH inventory, inventories/vm/hosts.yml
(--inventory for another): each host's ansible_port is its forwarded SSH
port, mizar_underlay_ip and mizar_underlay_mac its substrate address.

KVM is used when a trial boot on this machine reached SSH (recorded in the
cache), TCG otherwise; MIZAR_VMLAB_ACCEL=kvm|tcg overrides.

Each VM has two NICs:
  eth0  management: qemu user-mode networking, SSH forwarded from
        127.0.0.1:<port>; the guest reaches this machine as 10.0.2.2 and
        nothing else;
  eth1  substrate: a multiqueue tap on the bridge mzvm0 (192.168.78.0/24),
        virtio-net with mq=on and 2 queues per vCPU, so native XDP has its
        own TX queues.

The image holds neither libbpf nor pyroute2: the transit role installs them
for real, from a local apt repository of exactly the packages the image
lacks, served over HTTP on 127.0.0.1 (the guests' 10.0.2.2).

Everything `up` starts is recorded in /run/mizar-vmlab/state.json and
stopped by `down`, by PID. The lab's SSH key and known_hosts are there too,
where the inventory expects them, for as long as the lab runs.
"""
import argparse
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE_DIR = "/run/mizar-vmlab"
STATE = os.path.join(STATE_DIR, "state.json")
INVENTORY = os.path.join(ROOT, "inventories", "vm", "hosts.yml")
KEY = os.path.join(STATE_DIR, "id_ed25519")
KNOWN_HOSTS = os.path.join(STATE_DIR, "known_hosts")
CACHE = os.environ.get("MIZAR_VMLAB_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache", "mizar.transit", "vmlab"))
TRANSIT_DEFAULTS = os.path.join(ROOT, "roles", "transit", "defaults", "main.yml")

SUITE = "bookworm"
MIRRORS = [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
]
# What a minimal Debian 12 server has, and no more: SSH, Python for Ansible,
# the cloud kernel (6.1), udev for the NICs' drivers. ping and the kernel's
# geneve module are there for the tests. Deliberately absent: iproute2
# (it pulls libbpf1) and everything the transit role installs.
IMAGE_PACKAGES = [
    "linux-image-cloud-amd64", "systemd-sysv", "udev", "openssh-server",
    "python3", "iputils-ping", "kmod",
]
IMAGE_SIZE = "2G"
# Ansible's apt module installs python3-apt on a host that lacks it, from the
# host's own sources: the lab's repository has to hold it too. iproute2 is
# for the tests only (the kernel's geneve device as a tunnel peer): they
# install it after the transit role has run.
ANSIBLE_APT = ["python3-apt"]
TEST_TOOLS = ["iproute2"]

BRIDGE = "mzvm0"
BRIDGE_ADDR = "192.168.78.254"
SUBNET = ipaddress.ip_network("192.168.78.0/24")
PREFIXLEN = 24
APT_PORT = 8790
VCPUS = 1
MEMORY_MB = 512

# Runs inside the image at every boot: the substrate address and the apt
# source come from the kernel command line (mzlab.substrate=, mzlab.apt=),
# so one image serves every VM.
BOOT_SCRIPT = """#!/bin/sh
set -e
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    mzlab.substrate=*) sub=${arg#mzlab.substrate=} ;;
    mzlab.apt=*) apt=${arg#mzlab.apt=} ;;
  esac
done
mkdir -p /run/systemd/network
if [ -n "${sub:-}" ]; then
  printf '[Match]\\nName=eth1\\n\\n[Link]\\nRequiredForOnline=no\\n\\n[Network]\\nAddress=%s\\nLinkLocalAddressing=no\\nIPv6AcceptRA=no\\n' "$sub" \\
    >/run/systemd/network/20-substrate.network
fi
if [ -n "${apt:-}" ]; then
  echo "deb [trusted=yes] $apt ./" >/etc/apt/sources.list
fi
"""

BOOT_UNIT = """[Unit]
Description=mizar VM lab: substrate address and apt source from the kernel command line
DefaultDependencies=no
Before=systemd-networkd.service network-pre.target
Wants=network-pre.target
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/mzlab-boot

[Install]
WantedBy=sysinit.target
"""

MGMT_NETWORK = """[Match]
Name=eth0

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
"""


class LabError(Exception):
    pass


def log(msg):
    print("vmlab: %s" % msg, file=sys.stderr, flush=True)


def run(argv, cwd=None, stdout=None):
    """A build step that must succeed; what it prints goes to stderr
    (stdout carries the JSON)."""
    return subprocess.run(argv, cwd=cwd, stdout=stdout or sys.stderr, check=True)


# ------------------------------------------------------------------ image


def role_packages():
    """The packages the transit role installs (its transit_packages)."""
    import yaml
    with open(TRANSIT_DEFAULTS) as f:
        defaults = yaml.safe_load(f)
    return list(defaults["transit_packages"])


def image_key(packages):
    h = hashlib.sha256()
    for part in ([SUITE, IMAGE_SIZE, BOOT_SCRIPT, BOOT_UNIT, MGMT_NETWORK] + MIRRORS + IMAGE_PACKAGES + ["--"] + packages
                 + ANSIBLE_APT + TEST_TOOLS):
        h.update(part.encode() + b"\0")
    with open(os.path.abspath(__file__), "rb") as f:
        # the build recipe (between the two markers) is an input too
        src = f.read().split(b"\n# ---- recipe ----\n")
    h.update(src[1])
    return h.hexdigest()[:16]


def image_dir():
    return os.path.join(CACHE, "image-" + image_key(role_packages()))


# ---- recipe ----
def build_image():
    """Build the image once per set of inputs; return its directory.

    The directory holds disk.img (ext4, the root file system), vmlinuz, the
    lab's SSH key pair, the image's SSH host key (for known_hosts) and repo/,
    the apt repository of the packages the image lacks."""
    out = image_dir()
    if os.path.exists(os.path.join(out, "done")):
        return out, False
    packages = role_packages()
    for tool in ("mmdebstrap", "mkfs.ext4", "dpkg-scanpackages", "ssh-keygen", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            raise LabError("%s is missing (scripts/bootstrap --vm installs it)" % tool)
    work = out + ".work"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    rootfs = os.path.join(work, "rootfs")
    repo = os.path.join(work, "repo")
    os.makedirs(repo)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mizar-vmlab",
         "-f", os.path.join(work, "id_ed25519")])
    with open(os.path.join(work, "id_ed25519.pub")) as f:
        pubkey = f.read()
    files = {
        "/usr/local/sbin/mzlab-boot": (BOOT_SCRIPT, 0o755),
        "/etc/systemd/system/mzlab-boot.service": (BOOT_UNIT, 0o644),
        "/etc/systemd/network/10-mgmt.network": (MGMT_NETWORK, 0o644),
        "/root/.ssh/authorized_keys": (pubkey, 0o600),
        "/etc/fstab": ("/dev/nvme0n1 / ext4 rw,relatime 0 1\n", 0o644),
        "/etc/hostname": ("mzvm\n", 0o644),
    }
    staged = os.path.join(work, "files")
    hooks = []
    for i, (path, (text, mode)) in enumerate(sorted(files.items())):
        src = os.path.join(staged, str(i))
        os.makedirs(staged, exist_ok=True)
        with open(src, "w") as f:
            f.write(text)
        os.chmod(src, mode)
        hooks.append('--customize-hook=mkdir -p "$1%s" && cp -p %s "$1%s"' % (os.path.dirname(path), src, path))
    build_image_rootfs(rootfs, repo, packages, hooks)
    with open(os.path.join(repo, "Packages"), "w") as index:
        run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo, stdout=index)
    boot = os.path.join(rootfs, "boot")
    kernels = sorted(n for n in os.listdir(boot) if n.startswith("vmlinuz-"))
    shutil.copy(os.path.join(boot, kernels[-1]), os.path.join(work, "vmlinuz"))
    shutil.copy(os.path.join(rootfs, "etc", "ssh", "ssh_host_ed25519_key.pub"), os.path.join(work, "host_key.pub"))
    run(["mkfs.ext4", "-q", "-F", "-L", "mzvm", "-E", "root_owner=0:0", "-d", rootfs,
         os.path.join(work, "disk.img"), IMAGE_SIZE])
    shutil.rmtree(rootfs)
    shutil.rmtree(staged)
    with open(os.path.join(work, "done"), "w") as f:
        json.dump({"packages_served": sorted(os.listdir(repo))}, f)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(work, out)
    for name in os.listdir(CACHE):  # images of other inputs are never used again
        if name.startswith("image-") and os.path.join(CACHE, name) != out:
            shutil.rmtree(os.path.join(CACHE, name), ignore_errors=True)
    return out, True


def build_image_rootfs(rootfs, repo, packages, hooks):
    """mmdebstrap the root file system; download (not install) the role's
    packages and whatever they need that the image lacks into repo/."""
    argv = [
        "mmdebstrap", "--quiet", "--mode=root", "--variant=minbase",
        "--include=" + ",".join(IMAGE_PACKAGES),
        "--dpkgopt=path-exclude=/usr/share/{doc,man,locale}/*",
    ] + hooks + [
        "--customize-hook=chroot \"$1\" systemctl enable systemd-networkd mzlab-boot.service ssh",
        "--customize-hook=chroot \"$1\" systemctl mask apt-daily.timer apt-daily-upgrade.timer "
        "e2scrub_all.timer fstrim.timer getty@tty1.service",
        "--customize-hook=chroot \"$1\" passwd -d root",
        "--customize-hook=mkdir -p \"$1/tmp/mzrepo/partial\"",
        "--customize-hook=chroot \"$1\" apt-get install -qq --download-only "
        "-o Dir::Cache::archives=/tmp/mzrepo/ " + " ".join(packages + ANSIBLE_APT + TEST_TOOLS),
        "--customize-hook=sync-out /tmp/mzrepo %s" % repo,
        "--customize-hook=rm -rf \"$1/tmp/mzrepo\"",
        SUITE, rootfs,
    ] + MIRRORS
    log("building the Debian 12 image (mmdebstrap, about a minute)")
    run(argv)
    # the repository holds .debs only (apt's partial/ and lock stay out)
    for name in os.listdir(repo):
        if not name.endswith(".deb"):
            path = os.path.join(repo, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    if not any(n.endswith(".deb") for n in os.listdir(repo)):
        raise LabError("the image already holds %s: nothing left for the role to install" % " ".join(packages))
# ---- recipe ----


# ------------------------------------------------------------------ state


def load_state():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def save_state(state):
    os.makedirs(STATE_DIR, exist_ok=True)
    tmp = STATE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, STATE)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is no longer running
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def spawn(argv, logfile):
    """Start a process in its own session (it outlives this command)."""
    with open(logfile, "ab") as out:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True)
    return p.pid


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# ------------------------------------------------------------------ network


def ensure_bridge():
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=BRIDGE)
        if not idx:
            ipr.link("add", ifname=BRIDGE, kind="bridge")
            idx = ipr.link_lookup(ifname=BRIDGE)
        idx = idx[0]
        have = [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx, family=socket.AF_INET)]
        if BRIDGE_ADDR not in have:
            ipr.addr("add", index=idx, address=BRIDGE_ADDR, prefixlen=PREFIXLEN)
        ipr.link("set", index=idx, state="up")


def enslave(tap, pid, timeout=10.0):
    from pyroute2 import IPRoute
    deadline = time.monotonic() + timeout
    with IPRoute() as ipr:
        while True:
            idx = ipr.link_lookup(ifname=tap)
            if idx:
                break
            if not alive(pid):
                raise LabError("qemu (pid %d) exited before it made the tap %s (its log is in %s)"
                               % (pid, tap, STATE_DIR))
            if time.monotonic() > deadline:
                raise LabError("qemu did not create the tap %s" % tap)
            time.sleep(0.05)
        br = ipr.link_lookup(ifname=BRIDGE)[0]
        ipr.link("set", index=idx[0], master=br, state="up")


def remove_link(name):
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if idx:
            ipr.link("del", index=idx[0])


# ------------------------------------------------------------------ VMs


def inventory_hosts(path):
    """The VMs to boot: one per host of the inventory's mizar_hosts group,
    with its SSH port and substrate address."""
    import yaml
    with open(path) as f:
        inv = yaml.safe_load(f) or {}
    group = ((inv.get("all") or {}).get("children") or {}).get("mizar_hosts") or {}
    hosts = group.get("hosts") or {}
    if not hosts:
        raise LabError("%s: no hosts in the mizar_hosts group" % path)
    vms = []
    for i, (name, hv) in enumerate(sorted(hosts.items()), start=1):
        hv = hv or {}
        for key in ("ansible_port", "mizar_underlay_ip", "mizar_underlay_mac"):
            if key not in hv:
                raise LabError("%s: host %s: %s is missing (the VM lab needs it)" % (path, name, key))
        if ipaddress.ip_address(hv["mizar_underlay_ip"]) not in SUBNET:
            raise LabError("%s: host %s: mizar_underlay_ip %s is not on the lab bridge's %s"
                           % (path, name, hv["mizar_underlay_ip"], SUBNET))
        vms.append({
            "name": name,
            "ssh_port": int(hv["ansible_port"]),
            "substrate_ip": hv["mizar_underlay_ip"],
            "substrate_mac": hv["mizar_underlay_mac"],
            "mgmt_mac": "52:54:00:77:00:%02x" % i,
            "tap": "mzvt%d" % i,
        })
    return vms


KVM_RECORD = "kvm-trial"
KVM_TRIAL_S = 40  # a KVM guest answers SSH in seconds; a TCG one needs about a minute


def recorded_accel():
    """The accelerator to use without a trial: MIZAR_VMLAB_ACCEL, or the
    outcome of an earlier trial boot on this machine (None: try KVM)."""
    forced = os.environ.get("MIZAR_VMLAB_ACCEL")
    if forced:
        if forced not in ("kvm", "tcg"):
            raise LabError("MIZAR_VMLAB_ACCEL must be kvm or tcg, not %r" % forced)
        return forced
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    try:
        with open(os.path.join(CACHE, KVM_RECORD)) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def record_accel(name):
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, KVM_RECORD), "w") as f:
        f.write(name + "\n")


def stop(pid):
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def qemu_argv(img, vm, accel_name):
    if accel_name == "kvm":
        accel_args = ["-accel", "kvm", "-cpu", "host"]
    else:
        accel_args = ["-accel", "tcg,thread=multi", "-cpu", "max"]
    queues = 2 * VCPUS
    cmdline = " ".join([
        "root=/dev/nvme0n1", "rw", "console=ttyS0", "net.ifnames=0", "quiet",
        "systemd.hostname=%s" % vm["name"],
        "mzlab.substrate=%s/%d" % (vm["substrate_ip"], PREFIXLEN),
        "mzlab.apt=http://10.0.2.2:%d/" % APT_PORT,
    ])
    return ["qemu-system-x86_64", "-name", "mizar-" + vm["name"], "-nodefaults", "-no-user-config",
            "-display", "none", "-serial", "file:%s" % os.path.join(STATE_DIR, vm["name"] + ".console"),
            "-m", str(MEMORY_MB), "-smp", str(VCPUS)] + accel_args + [
        "-kernel", os.path.join(img, "vmlinuz"), "-append", cmdline,
        "-drive", "file=%s,if=none,id=d0,format=raw,snapshot=on" % os.path.join(img, "disk.img"),
        "-device", "nvme,drive=d0,serial=mzvm",
        "-netdev", "user,id=mgmt,hostfwd=tcp:127.0.0.1:%d-:22" % vm["ssh_port"],
        "-device", "virtio-net-pci,netdev=mgmt,mac=%s,addr=0x3" % vm["mgmt_mac"],
        "-netdev", "tap,id=sub,ifname=%s,script=no,downscript=no,vhost=off,queues=%d" % (vm["tap"], queues),
        # csum=off: the guest computes every checksum itself, so a capture on
        # the tap shows the bytes a physical wire would carry
        "-device", "virtio-net-pci,netdev=sub,mac=%s,addr=0x4,mq=on,vectors=%d,csum=off"
        % (vm["substrate_mac"], 2 * queues + 2),
    ]


def ssh_argv(port):
    return ["ssh", "-i", KEY, "-p", str(port),
            "-o", "UserKnownHostsFile=%s" % KNOWN_HOSTS, "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "root@127.0.0.1"]


def wait_ssh(vms, timeout):
    """Wait until every VM runs a command over SSH."""
    deadline = time.monotonic() + timeout
    pending = list(vms)
    while pending:
        for vm in list(pending):
            r = subprocess.run(ssh_argv(vm["ssh_port"]) + ["true"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            if r.returncode == 0:
                pending.remove(vm)
        if pending:
            if time.monotonic() > deadline:
                raise LabError("no SSH from %s after %d s (consoles in %s)"
                               % (", ".join(v["name"] for v in pending), timeout, STATE_DIR))
            time.sleep(2)


def up(inventory, timeout):
    state = load_state()
    if state and any(alive(p["pid"]) for p in state["procs"]):
        raise LabError("the VM lab is already up (vmlab.py down first)")
    if state:
        down()
    t0 = time.monotonic()
    img, built = build_image()
    t_image = time.monotonic() - t0
    os.makedirs(STATE_DIR, exist_ok=True)
    vms = inventory_hosts(inventory)
    for port in [APT_PORT] + [vm["ssh_port"] for vm in vms]:
        if not port_free(port):
            raise LabError("port 127.0.0.1:%d is taken; the VM lab needs it" % port)
    state = {"image": img, "procs": [], "links": [BRIDGE], "hosts": vms, "inventory": inventory,
             "accel": recorded_accel()}
    save_state(state)
    try:
        pid = spawn([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                     os.path.join(img, "repo"), str(APT_PORT)], os.path.join(STATE_DIR, "apt.log"))
        state["procs"].append({"what": "apt repository", "pid": pid})
        save_state(state)
        ensure_bridge()
        shutil.copy(os.path.join(img, "id_ed25519"), KEY)
        os.chmod(KEY, 0o600)
        with open(os.path.join(img, "host_key.pub")) as f:
            key = " ".join(f.read().split()[:2])
        with open(KNOWN_HOSTS, "w") as f:
            for vm in vms:
                f.write("[127.0.0.1]:%d %s\n" % (vm["ssh_port"], key))
        t1 = time.monotonic()
        first = 0
        if state["accel"] is None:
            # A trial boot decides, once per machine: a /dev/kvm can be a
            # module that cannot run a distribution kernel. The trial VM is
            # the first lab VM when it works.
            log("trying KVM (once on this machine)")
            try:
                boot(img, vms[0], "kvm", state)
                wait_ssh(vms[:1], KVM_TRIAL_S)
                state["accel"], first = "kvm", 1
            except LabError as e:
                log("KVM trial: %s" % e)
                stop(state["procs"].pop()["pid"])
                state["accel"] = "tcg"
            record_accel(state["accel"])
            log("KVM %s: the lab uses %s" % ("works" if first else "does not boot this kernel", state["accel"]))
            save_state(state)
        for vm in vms[first:]:
            boot(img, vm, state["accel"], state)
        wait_ssh(vms, timeout)
        state["boot_s"] = round(time.monotonic() - t1, 1)
    except BaseException:
        down()
        raise
    state["image_s"] = round(t_image, 1)
    state["image_built"] = built
    save_state(state)
    return state


def boot(img, vm, accel_name, state):
    """Start one VM and put its substrate tap on the bridge."""
    pid = spawn(qemu_argv(img, vm, accel_name), os.path.join(STATE_DIR, vm["name"] + ".qemu.log"))
    state["procs"].append({"what": vm["name"], "pid": pid})
    save_state(state)
    enslave(vm["tap"], pid)


def down():
    """Stop every process `up` started (TERM, then KILL), remove the bridge
    and the state directory. Safe when nothing runs."""
    state = load_state()
    if not state:
        return False
    pids = [p["pid"] for p in state["procs"]]
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    for link in state["links"]:
        remove_link(link)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("image")
    p = sub.add_parser("up")
    p.add_argument("--inventory", default=INVENTORY, help="the SSH inventory whose hosts to boot")
    p.add_argument("--timeout", type=int, default=300, help="seconds to wait for SSH")
    sub.add_parser("down")
    sub.add_parser("status")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "image":
            t0 = time.monotonic()
            img, built = build_image()
            print(json.dumps({"image": img, "built": built, "seconds": round(time.monotonic() - t0, 1)}))
        elif args.cmd == "up":
            state = up(args.inventory, args.timeout)
            print(json.dumps({k: state[k] for k in ("inventory", "accel", "image_built", "image_s", "boot_s")}), flush=True)
        elif args.cmd == "down":
            print(json.dumps({"stopped": down()}))
        else:
            state = load_state()
            if state:
                for p in state["procs"]:
                    p["alive"] = alive(p["pid"])
            print(json.dumps(state, indent=1))
    except LabError as e:
        print("vmlab: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
