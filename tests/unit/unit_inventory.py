"""Inventories and expected entries shared by the unit tests."""
import copy
import re

from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.model.defaults import DEFAULT_PIN_DIR
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import format_errors
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import validate


def hostvars(n, **extra):
    """Variables of transit host h<n>: eth0, 192.168.50.<n>, 02:00:00:00:00:<n>."""
    hv = {"mizar_interface": "eth0", "mizar_underlay_ip": "192.168.50.%d" % n,
          "mizar_underlay_mac": "02:00:00:00:00:%02x" % n}
    hv.update(extra)
    return hv


def hosts(*numbers):
    return dict(("h%d" % n, hostvars(n)) for n in numbers)


def ip_of(host):
    return "192.168.50.%d" % int(host[1:])


def mac_of(host):
    return "02:00:00:00:00:%02x" % int(host[1:])


BASE = {
    "hosts": hosts(1, 2, 3),
    "mizar_vpcs": [
        {"name": "vpc1", "vni": 100, "cidr": "10.1.0.0/16", "dividers": ["h3"], "networks": [
            {"name": "net1", "cidr": "10.1.0.0/24", "bouncers": ["h3"], "endpoints": [
                {"name": "ep1", "ip": "10.1.0.5", "host": "h1", "netns": "ep1"},
                {"name": "ep2", "ip": "10.1.0.6", "host": "h2", "iface": "veth-ep2"},
                {"name": "lb", "ip": "10.1.0.7", "type": "scaled", "backends": ["ep1", "ep2"]},
            ]},
            {"name": "net2", "cidr": "10.1.1.0/24", "bouncers": ["h2"], "endpoints": [
                {"name": "ep3", "ip": "10.1.1.5", "host": "h1", "netns": "ep3"},
            ]},
        ]},
        {"name": "vpc2", "vni": 200, "cidr": "10.1.0.0/16", "networks": [
            {"name": "net1", "cidr": "10.1.0.0/24", "bouncers": ["h1"], "endpoints": [
                {"name": "other", "ip": "10.1.0.5", "host": "h2", "netns": "vpc2-other"},
            ]},
        ]},
    ],
    "mizar_functions": [
        {"name": "acl1", "stage": "on_xdp_redirect", "program": "acl", "config": {"rules": [
            {"vpc": "vpc1", "dst": "10.1.1.0/24", "protocol": "tcp", "port": 22, "action": "drop"},
        ]}},
        # lb's balancer (h3, net1's bouncer) and its backends' hosts (h1, h2)
        {"name": "lb1", "stage": "on_xdp_scaled_ep", "program": "scaled"},
    ],
}


def base():
    """A valid inventory with two VPCs (same CIDR), a scaled endpoint with its function, and an ACL."""
    return copy.deepcopy(BASE)


def assert_one_defect(inv, mutate, path, pattern):
    """After mutate(inv), validation reports exactly one error, at path,
    whose message matches pattern."""
    mutate(inv)
    errors = validate(inv)
    assert [e.path for e in errors] == [path], format_errors(errors)
    assert re.search(pattern, errors[0].message), errors[0].message


# ---------------------------------------------------------------- expected entries


def iface_cfg(host, name="eth0", xdp_mode="native", pin_dir=DEFAULT_PIN_DIR):
    return {"name": name, "ip": ip_of(host), "mac": mac_of(host), "xdp_mode": xdp_mode, "pin_dir": pin_dir}


def ep_entry(vni, ip, name, host=None, iface=None, mac=None, type="simple", backends=(), bypass_decap=False):
    return {"vni": vni, "ip": ip, "name": name, "type": type, "host_ip": ip_of(host) if host else None,
            "iface": iface, "mac": mac or addr.derived_mac(vni, ip), "bypass_decap": bypass_decap,
            "backends": list(backends)}


def gw_entry(vni, ip, name):
    return ep_entry(vni, ip, name, type="gateway")


def net_entry(vni, cidr, name, bouncers, local_bouncer=False):
    return {"vni": vni, "cidr": cidr, "name": name, "bouncers": [ip_of(b) for b in bouncers],
            "local_bouncer": local_bouncer}


def bounced_entry(vni, cidr, name):
    """A bouncer's entry for its own network: no bouncer list, flagged."""
    return net_entry(vni, cidr, name, [], local_bouncer=True)


def vpc_entry(vni, name, dividers, local_divider):
    return {"vni": vni, "name": name, "dividers": [ip_of(d) for d in dividers], "local_divider": local_divider}


def sub_entry(host):
    return {"ip": ip_of(host), "mac": mac_of(host), "name": host}


def agent_entry(iface, vni, ip, name, bouncers, mac=None):
    return {"iface": iface, "vni": vni, "ip": ip, "mac": mac or addr.derived_mac(vni, ip), "name": name,
            "bouncers": [ip_of(b) for b in bouncers]}


def local_ep(name, vni, ip, prefixlen, gateway, iface, netns=None, mac=None, bypass_decap=False):
    return {"name": name, "vni": vni, "ip": ip, "prefixlen": prefixlen, "mac": mac or addr.derived_mac(vni, ip),
            "gateway": gateway, "netns": netns, "iface": iface, "bypass_decap": bypass_decap}


def rendering(host, endpoints=(), networks=(), vpcs=(), substrate=(), agents=(), local=(), functions=(), sources=(),
              vnis=None, obj_dir="/var/lib/mizar/bpf", switch_mode=False, peers=(), userspace=(),
              supervisor="systemd", function_dir="/var/lib/mizar/functions", **iface):
    """A host's expected rendering (without its trusted sources, see
    without_sources): functions are rendered entries (with object and
    shipped), sources the user sources of the whole inventory, vnis the
    VPCs' VNIs (rendered only where functions run), userspace the rendered
    user-space functions of its endpoints."""
    return {"host": host, "interface": iface_cfg(host, **iface),
            "transit": {"obj_dir": obj_dir, "switch_mode": switch_mode, "sources": list(sources),
                        "stages": [{"stage": f["stage"], "object": f["object"]} for f in functions]},
            "maps": {"endpoints": list(endpoints), "networks": list(networks), "vpcs": list(vpcs),
                     "substrate": list(substrate), "agents": list(agents), "peers": list(peers)},
            "local_endpoints": list(local), "functions": list(functions), "vnis": dict(vnis or {}),
            "userspace": {"supervisor": supervisor, "dir": function_dir, "functions": list(userspace)}}


def without_sources(renderings, host_names, peers=()):
    """The renderings without their trusted-source lists, after checking
    that every host trusts every host of the fleet (host_names) for any VNI
    and each tunnel peer [(ip, vni, name)] for its VPC, ordered by address."""
    expected = sorted([(int(ip_of(h).split(".")[3]), ip_of(h), 0, h) for h in host_names]
                      + [(int(ip.split(".")[3]), ip, vni, name) for ip, vni, name in peers])
    want = [{"ip": ip, "vni": vni, "name": name} for dummy, ip, vni, name in expected]
    out = {}
    for host, r in renderings.items():
        assert r["maps"]["sources"] == want, host
        r = copy.deepcopy(r)
        del r["maps"]["sources"]
        out[host] = r
    return out
