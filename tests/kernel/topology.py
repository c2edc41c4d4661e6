"""A small Mizar overlay in network namespaces, with the real datapath.

    lab = Lab("mzdemo", obj_dir)
    lab.vpc(1000, bouncers=["h3"])
    lab.endpoint("ep1", 1000, "10.0.0.2", "h1")
    lab.endpoint("ep2", 1000, "10.0.0.3", "h2")
    lab.build()          # namespaces, veths, bridge, programs, maps
    lab.ping("ep1", "10.0.0.3")
    lab.destroy()

Hosts h1..hN are namespaces whose substrate NIC eth0 (192.168.150.N/24)
plugs into a bridge in a "wire" namespace. An endpoint is a namespace whose
eth0 (derived MAC, default route via the gateway) pairs with a host-side
veth in its host. The hosts' NICs have MTU nic_mtu (1500 unless told);
endpoints get what mizar.transit.endpoint derives from it (NIC MTU - 50,
the NIC's MTU for a bypass-decap endpoint), and if_cfg carries it. Each host
has its own Loader (lab.loaders[host]) with its own pin directory, and runs
the programs in native XDP mode:

  transit ... on the host's eth0
  agent ..... on every local endpoint's host-side veth
  pass ...... on every endpoint's eth0 and on each host's bridge port,
              the far ends of the veths the datapath transmits into

Maps follow the Mizar model: an endpoint's host holds the endpoint (with
the host-side ifindex), its agent entry (the network's bouncers) and the
bouncers' substrate entries; a bouncer holds every endpoint of its networks
(with their hosts), the gateway, the network, the VPC (it is the divider
here too) and the endpoint hosts' substrate entries.

A peering (Lab.peering) gives each divider of either VPC a peer route to
the other VPC's CIDR and dividers, as the renderer does.

A scaled endpoint (Lab.scaled) is held by its network's bouncers and its
backends' hosts, as the renderer places it; its backends get the MTU that
leaves room for the scaled function's option.

Used by tests/kernel/test_forwarding.py, test_mtu.py, test_stage_placements.py, test_peering.py and
test_scaled_traffic.py.
"""
import ipaddress
import os
import re
import select
import socket
import subprocess
import time

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import loader

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.ops.endpoint import max_mtu

BPFFS = "/sys/fs/bpf"
WIRE = "wire"
BRIDGE = "br0"
NIC_MTU = 1500


class Network:
    def __init__(self, vni, cidr, bouncers, gateway):
        self.vni = vni
        self.cidr = cidr
        self.bouncers = list(bouncers)
        self.gateway = gateway
        self.gateway_mac = addr.derived_mac(vni, gateway)


class Vpc(Network):
    """A VPC and its first network; more with Lab.network(). dividers None:
    every bouncer divides for its own networks only (one-network VPCs).
    vpc_cidr: the VPC's own CIDR (default: its first network's)."""

    def __init__(self, vni, cidr, bouncers, gateway, dividers=None, vpc_cidr=None):
        super(Vpc, self).__init__(vni, cidr, bouncers, gateway)
        self.networks = [self]
        self.dividers = list(dividers) if dividers is not None else None
        self.vpc_cidr = vpc_cidr or cidr

    def network_of(self, ip):
        a = ipaddress.ip_address(ip)
        for net in self.networks:
            if a in ipaddress.ip_network(net.cidr):
                return net
        raise ValueError("%s is in no network of VPC %d" % (ip, self.vni))


class Endpoint:
    def __init__(self, name, vpc, ip, host, bypass_decap=False):
        self.name = name
        self.vpc = vpc
        self.net = vpc.network_of(ip)
        self.ip = ip
        self.host = host
        self.bypass_decap = bypass_decap
        self.mac, self.host_ifname = addr.derived(vpc.vni, ip)
        self.host_ifindex = None


class Scaled:
    """A scaled endpoint: a VIP of a VPC served by backends [(endpoint name, weight)]."""

    def __init__(self, name, vpc, ip, backends):
        self.name = name
        self.vpc = vpc
        self.net = vpc.network_of(ip)
        self.ip = ip
        self.backends = list(backends)
        self.mac = addr.derived_mac(vpc.vni, ip)


class Lab:
    def __init__(self, prefix, obj_dir, hosts=("h1", "h2", "h3"), subnet="192.168.150", mode="native",
                 nic_mtu=NIC_MTU):
        self.prefix = prefix
        self.nic_mtu = nic_mtu
        self.obj_dir = obj_dir
        self.mode = mode
        self.hosts = dict((h, {"ip": "%s.%d" % (subnet, i + 1), "mac": "02:00:c0:a8:96:%02x" % (i + 1)})
                          for i, h in enumerate(hosts))
        self.vpcs = {}
        self.endpoints = {}
        self.scaled_eps = {}
        self.peerings = []  # (vni, vni)
        self.pin_root = os.path.join(BPFFS, prefix)
        self.loaders = {}

    # ------------------------------------------------------------ spec

    def ns(self, name):
        return "%s-%s" % (self.prefix, name)

    def vpc(self, vni, cidr="10.0.0.0/24", bouncers=("h3",), gateway=None, dividers=None, vpc_cidr=None):
        net = ipaddress.ip_network(cidr)
        self.vpcs[vni] = Vpc(vni, cidr, bouncers, gateway or str(net.network_address + 1), dividers, vpc_cidr)
        return self.vpcs[vni]

    def peering(self, a, b):
        """Peer VPCs a and b (VNIs; both need dividers)."""
        self.peerings.append((a, b))

    def network(self, vni, cidr, bouncers, gateway=None):
        """Another network of VPC vni (give the VPC dividers: they join its networks)."""
        net = Network(vni, cidr, bouncers, gateway or str(ipaddress.ip_network(cidr).network_address + 1))
        self.vpcs[vni].networks.append(net)
        return net

    def endpoint(self, name, vni, ip, host, bypass_decap=False):
        self.endpoints[name] = Endpoint(name, self.vpcs[vni], ip, host, bypass_decap)
        return self.endpoints[name]

    def scaled(self, name, vni, ip, backends):
        """A scaled endpoint of VPC vni: backends [(endpoint name, weight)].
        Its bouncers and its backends' hosts hold it (Lab.converge() after a
        change); serve() puts its VIP on a backend."""
        self.scaled_eps[name] = Scaled(name, self.vpcs[vni], ip, backends)
        return self.scaled_eps[name]

    def backend_of(self, ep):
        return any(ep.name == b for s in self.scaled_eps.values() for b, dummy in s.backends)

    def serve(self, ep_name, vip):
        """Direct server return on a backend, as mizar.transit.endpoint does it:
        the VIP on its lo, and ARP on eth0 only for its own address."""
        ns = self.ns(ep_name)
        netlink.sysctl("net/ipv4/conf/eth0/arp_ignore", 1, netns=ns)
        netlink.sysctl("net/ipv4/conf/eth0/arp_announce", 2, netns=ns)
        netlink.addr_add("lo", "%s/32" % vip, netns=ns)

    def loader(self, host):
        return loader.Loader(os.path.join(self.pin_root, host), self.obj_dir, netns=self.ns(host))

    # ------------------------------------------------------------ build

    def build(self):
        """Plumb everything, load and attach every host's programs, program maps."""
        if not os.path.isdir(self.pin_root):
            os.mkdir(self.pin_root)
        plen = 24
        for h, spec in self.hosts.items():
            netlink.bridge_veth(self.ns(h), "eth0", self.ns(WIRE), BRIDGE, h, ip="%s/%d" % (spec["ip"], plen),
                                mac=spec["mac"], mtu=self.nic_mtu)
        for ep in self.endpoints.values():
            net = ipaddress.ip_network(ep.net.cidr)
            res = netlink.endpoint_veth(self.ns(ep.name), ep.host_ifname, "%s/%d" % (ep.ip, net.prefixlen),
                                        ep.mac, host_netns=self.ns(ep.host),
                                        mtu=max_mtu(self.nic_mtu, ep.bypass_decap, self.backend_of(ep)),
                                        gateway=ep.net.gateway)
            ep.host_ifindex = res["host_ifindex"]
        for h in self.hosts:
            ld = self.loader(h)
            ld.load()
            self.loaders[h] = ld
            ld.converge(self.host_state(h))
            ld.attach("pass", h, mode=self.mode, netns=self.ns(WIRE))
            for ep in self.local_endpoints(h):
                ld.attach("pass", "eth0", mode=self.mode, netns=self.ns(ep.name))
                ld.attach("agent", ep.host_ifname, mode=self.mode)
            ld.attach("transit", "eth0", mode=self.mode)

    def converge(self):
        """Bring every host's maps to host_state() again (after a change of the spec)."""
        for h in self.hosts:
            self.loaders[h].converge(self.host_state(h))

    def local_endpoints(self, host):
        return [ep for ep in self.endpoints.values() if ep.host == host]

    def host_state(self, host):
        """The map state of one host, per the Mizar model."""
        me = self.hosts[host]
        eps, subs, nets, vpcs, agents = {}, set(), [], [], []
        for ep in self.local_endpoints(host):
            eps[(ep.vpc.vni, ep.ip)] = {"vni": ep.vpc.vni, "ip": ep.ip, "type": "simple",
                                        "ifindex": ep.host_ifindex, "mac": ep.mac, "bypass_decap": ep.bypass_decap}
            bouncer_ips = [self.hosts[b]["ip"] for b in ep.net.bouncers]
            agents.append({"ifindex": ep.host_ifindex, "vni": ep.vpc.vni, "ip": ep.ip, "mac": ep.mac,
                           "bouncers": bouncer_ips})
            subs.update(b for b in ep.net.bouncers if b != host)
        for vpc in self.vpcs.values():
            divides = vpc.dividers is not None and host in vpc.dividers
            held = [net for net in vpc.networks if host in net.bouncers or divides]
            if not held:
                continue
            for net in held:
                if host in net.bouncers:
                    for ep in self.endpoints.values():
                        if ep.net is net and ep.host != host:
                            eps[(vpc.vni, ep.ip)] = {"vni": vpc.vni, "ip": ep.ip, "type": "simple",
                                                     "host_ip": self.hosts[ep.host]["ip"], "mac": ep.mac,
                                                     "bypass_decap": ep.bypass_decap}
                            subs.add(ep.host)
                    eps[(vpc.vni, net.gateway)] = {"vni": vpc.vni, "ip": net.gateway, "type": "gateway",
                                                   "mac": net.gateway_mac}
                bouncer_ips = [self.hosts[b]["ip"] for b in net.bouncers]
                nets.append({"vni": vpc.vni, "cidr": net.cidr, "bouncers": bouncer_ips})
                subs.update(b for b in net.bouncers if b != host)
            if vpc.dividers is None:
                vpcs.append({"vni": vpc.vni, "dividers": [me["ip"]], "local_divider": True})
            else:
                vpcs.append({"vni": vpc.vni, "dividers": [self.hosts[d]["ip"] for d in vpc.dividers],
                             "local_divider": divides})
                subs.update(d for d in vpc.dividers if d != host)
        for sc in self.scaled_eps.values():
            names = [b for b, dummy in sc.backends]
            if host in sc.net.bouncers or host in [self.endpoints[b].host for b in names]:
                eps[(sc.vpc.vni, sc.ip)] = {"vni": sc.vpc.vni, "ip": sc.ip, "type": "scaled", "mac": sc.mac,
                                            "backends": [self.endpoints[b].ip for b in names]}
        peers = []
        for a, b in self.peerings:
            for mine, other in ((self.vpcs[a], self.vpcs[b]), (self.vpcs[b], self.vpcs[a])):
                if host in mine.dividers:
                    peers.append({"vni": mine.vni, "cidr": other.vpc_cidr, "peer_vni": other.vni,
                                  "dividers": [self.hosts[d]["ip"] for d in other.dividers],
                                  "src_cidr": mine.vpc_cidr})
                    subs.update(d for d in other.dividers if d != host)
        return {
            "if_cfg": {"ip": me["ip"], "mac": me["mac"], "ifindex": netlink.ifindex("eth0", self.ns(host)),
                       "mtu": netlink.link("eth0", self.ns(host))["mtu"]},
            "substrate": [{"ip": self.hosts[s]["ip"], "mac": self.hosts[s]["mac"]} for s in sorted(subs)],
            "endpoints": [eps[k] for k in sorted(eps)],
            "networks": nets,
            "vpcs": vpcs,
            "agents": agents,
            "sources": [{"ip": h["ip"], "vni": 0} for dummy, h in sorted(self.hosts.items())],
            "peers": peers,
        }

    # ------------------------------------------------------------ traffic

    def ping(self, src, dst_ip, count=3, timeout=2):
        """ping from endpoint src (inside its namespace): (sent, received, output)."""
        res = subprocess.run(["ip", "netns", "exec", self.ns(src), "ping", "-n", "-c", str(count), "-i", "0.2",
                              "-W", str(timeout), dst_ip], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, check=False)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", res.stdout)
        if not m:
            raise RuntimeError("ping from %s to %s: %s" % (src, dst_ip, res.stdout.strip()))
        return int(m.group(1)), int(m.group(2)), res.stdout

    def neighbour_mac(self, ep_name, ip):
        """The MAC endpoint ep_name resolved ip to (its ARP cache), or None."""

        def body():
            with netlink.IPRoute() as ipr:
                for n in ipr.neigh("dump", family=2):
                    if n.get_attr("NDA_DST") == ip and n.get_attr("NDA_LLADDR"):
                        return n.get_attr("NDA_LLADDR")
            return None

        return nsenter.run_in_netns(self.ns(ep_name), body)

    def udp(self, ep, bind=None):
        """A UDP socket in endpoint ep's namespace, bound to bind (ip, port) if given."""
        s = netlink.netns_socket(self.ns(ep), socket.AF_INET, socket.SOCK_DGRAM)
        if bind:
            s.bind(bind)
        return s

    def counters(self, host):
        return self.loaders[host].counters() if host in self.loaders else self.loader(host).counters()

    def all_counters(self):
        """{host: counters} of every host."""
        return dict((h, self.counters(h)) for h in self.hosts)

    def counter_deltas(self, before, after=None):
        """{host: the counters that moved} from all_counters() before to after (default: now)."""
        after = self.all_counters() if after is None else after
        return dict((h, deltas(before[h], after[h])) for h in self.hosts)

    # ------------------------------------------------------------ teardown

    def destroy(self):
        """Detach and unpin every host's programs and maps, delete every
        namespace. Returns the errors met (it keeps going past them)."""
        return cleanup(self.prefix, self.obj_dir)

    def destroy_checked(self):
        """destroy(), asserting that it met no error and left no namespace."""
        errors = self.destroy()
        assert not errors, errors
        assert not [n for n in nsenter.netns_list() if n.startswith(self.prefix + "-")]


def deltas(before, after):
    """The counters that moved between two readings: {name: after - before}."""
    return dict((k, after[k] - before[k]) for k in after if after[k] != before[k])


def recv(sock, timeout, size=2048):
    """(data, peer) of the next datagram within timeout seconds, or (None, None)."""
    r, dummy, dummy = select.select([sock], [], [], timeout)
    return sock.recvfrom(size) if r else (None, None)


def poll(read, done, timeout=5.0, interval=0.02):
    """read() until done(value) is true or timeout seconds have passed;
    returns the last value read (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = read()
    return value


def cleanup(prefix, obj_dir):
    """Remove everything a lab with this prefix may have left, even from an
    aborted run: pins under /sys/fs/bpf/<prefix>/<host>, namespaces <prefix>-*."""
    errors = []
    pin_root = os.path.join(BPFFS, prefix)
    if os.path.isdir(pin_root):
        for h in sorted(os.listdir(pin_root)):
            try:
                loader.Loader(os.path.join(pin_root, h), obj_dir).teardown()
            except Exception as e:
                errors.append("loader %s: %s" % (h, e))
        try:
            os.rmdir(pin_root)
        except OSError as e:
            errors.append("%s: %s" % (pin_root, e))
    for name in nsenter.netns_list():
        if name.startswith(prefix + "-"):
            try:
                netlink.netns_del(name)
            except Exception as e:
                errors.append("netns %s: %s" % (name, e))
    return errors
