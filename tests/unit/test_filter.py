"""The filter plugin mizar.transit.validate / render / diagram / trace_start /
trace_step, called as Jinja would."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mizar.transit.plugins.filter import mizar as mizar_filter
from ansible_collections.mizar.transit.plugins.module_utils.model.diagram import diagram
from ansible_collections.mizar.transit.plugins.module_utils.model.render import render_inventory

from unit_inventory import base

FILTERS = mizar_filter.FilterModule().filters()


def _hostvars(inv, shared=True):
    """hostvars as Ansible builds them: group_vars/all in every host's variables."""
    hv = {}
    for name, hvars in inv["hosts"].items():
        hv[name] = dict(hvars, inventory_hostname=name, ansible_host="10.9.0.1")
        if shared:
            hv[name].update(mizar_vpcs=inv["mizar_vpcs"], mizar_functions=inv["mizar_functions"])
    hv["localhost"] = {"inventory_hostname": "localhost"}
    return hv


def test_filters_are_registered():
    assert sorted(FILTERS) == ["diagram", "render", "trace_start", "trace_step", "validate"]


def test_trace_start_builds_the_first_hop_from_hostvars():
    inv = base()
    hv = _hostvars(inv)
    rendered = render_inventory(inv)
    host, ep = next((h, e) for h, r in sorted(rendered.items()) for e in r["local_endpoints"])
    state = FILTERS["trace_start"](hv, list(inv["hosts"]), rendered, src=ep["name"], dst=ep["gateway"])
    assert state["next"]["host"] == host and state["next"]["program"] == "agent"
    assert state["next"]["iface"] == ep["iface"] and not state["done"]
    assert state["lines"][-1] == "(not finished)"


def test_trace_start_refuses_a_bad_request_before_any_host():
    inv = base()
    with pytest.raises(AnsibleFilterError) as e:
        FILTERS["trace_start"](_hostvars(inv), list(inv["hosts"]), render_inventory(inv), src="nosuch", dst="10.1.0.5")
    assert str(e.value).startswith("mizar.transit.trace: src: 'nosuch' is no endpoint")
    assert str(e.value).endswith("; no host was touched")


def test_trace_step_needs_a_trace_with_a_next_hop():
    with pytest.raises(AnsibleFilterError, match="must be a trace with a next hop"):
        FILTERS["trace_step"]({"done": True, "next": None}, {}, {})


def test_diagram_is_the_models_graph_of_hostvars():
    inv = base()
    graph = FILTERS["diagram"](_hostvars(inv), list(inv["hosts"]))
    assert graph == diagram(inv)
    assert [c["id"] for c in graph["clusters"]] == ["vpc/vpc1", "vpc/vpc2", "hosts", "functions"]


def test_diagram_fails_with_every_error():
    inv = base()
    inv["mizar_vpcs"][0]["vni"] = "100"
    with pytest.raises(AnsibleFilterError) as e:
        FILTERS["diagram"](_hostvars(inv), list(inv["hosts"]))
    assert "mizar_vpcs[0].vni: vni must be an integer" in str(e.value)


def test_validate_valid():
    inv = base()
    assert FILTERS["validate"](_hostvars(inv), list(inv["hosts"])) == []


def test_validate_returns_path_and_message():
    inv = base()
    inv["mizar_vpcs"][0]["vni"] = "100"
    errors = FILTERS["validate"](_hostvars(inv), list(inv["hosts"]))
    assert errors == [{"path": "mizar_vpcs[0].vni",
                       "message": "vni must be an integer from 1 to 16777215, not a string ('100')"}]


def test_render_equals_library():
    inv = base()
    assert FILTERS["render"](_hostvars(inv), list(inv["hosts"])) == render_inventory(inv)


def test_explicit_vpcs_and_functions():
    inv = base()
    out = FILTERS["render"](_hostvars(inv, shared=False), list(inv["hosts"]), vpcs=inv["mizar_vpcs"],
                            functions=inv["mizar_functions"])
    assert out == render_inventory(inv)


def test_render_fails_with_every_error():
    inv = base()
    inv["mizar_vpcs"][0]["vni"] = 0
    inv["mizar_vpcs"][1]["name"] = "vpc1"
    with pytest.raises(AnsibleFilterError) as info:
        FILTERS["render"](_hostvars(inv), list(inv["hosts"]))
    text = str(info.value)
    assert "2 errors in the mizar inventory" in text
    assert "mizar_vpcs[0].vni: vni 0 is out of range" in text
    assert "mizar_vpcs[1].name: VPC name 'vpc1' is already used" in text


def test_gathered_facts_fill_addresses():
    inv = base()
    hv = _hostvars(inv)
    for var in ("mizar_underlay_ip", "mizar_underlay_mac"):
        hv["h2"].pop(var)
    hv["h2"]["ansible_facts"] = {"eth0": {"ipv4": {"address": "192.168.50.2"}, "macaddress": "02:00:00:00:00:02"}}
    assert FILTERS["render"](hv, list(inv["hosts"])) == render_inventory(inv)


def test_facts_parameter_wins_over_gathered():
    inv = base()
    hv = _hostvars(inv)
    hv["h2"].pop("mizar_underlay_mac")
    hv["h2"]["ansible_facts"] = {"eth0": {"macaddress": "02:00:00:00:00:99"}}
    out = FILTERS["render"](hv, list(inv["hosts"]), facts={"h2": {"mac": "02:00:00:00:00:02"}})
    assert out == render_inventory(inv)


def test_offline_and_limit():
    inv = base()
    hv = _hostvars(inv)
    hv["h2"].pop("mizar_underlay_mac")
    with pytest.raises(AnsibleFilterError) as info:
        FILTERS["render"](hv, list(inv["hosts"]))
    assert "hostvars[h2].mizar_underlay_mac: the underlay MAC of h2 is unknown" in str(info.value)
    out = FILTERS["render"](hv, list(inv["hosts"]), offline=True, limit=["h2"])
    assert list(out) == ["h2"] and out["h2"]["interface"]["mac"] is None


def test_hosts_must_be_a_list():
    with pytest.raises(AnsibleFilterError):
        FILTERS["validate"](_hostvars(base()), "h1")


def test_host_missing_from_hostvars():
    inv = base()
    with pytest.raises(AnsibleFilterError) as info:
        FILTERS["validate"](_hostvars(inv), ["h1", "h9"])
    assert "'h9' is in the host list but not in hostvars" in str(info.value)


def test_model_version_from_hostvars():
    inv = base()
    hv = _hostvars(inv)
    hv["h1"]["mizar_model_version"] = 7
    errors = FILTERS["validate"](hv, list(inv["hosts"]))
    assert [e["path"] for e in errors] == ["mizar_model_version"]


def test_inventory_from_hostvars_keeps_only_mizar_host_settings():
    inv = base()
    data = mizar_filter.inventory_from_hostvars(_hostvars(inv), ["h1"])
    assert data["hosts"] == {"h1": inv["hosts"]["h1"]}
    assert data["mizar_vpcs"] == inv["mizar_vpcs"]


def test_vpc_peerings_come_from_hostvars_like_the_vpcs():
    inv = base()
    hv = _hostvars(inv)
    for name in inv["hosts"]:
        hv[name]["mizar_vpc_peerings"] = [{"name": "p", "vpcs": ["vpc1", "nope"]}]
    data = mizar_filter.inventory_from_hostvars(hv, list(inv["hosts"]))
    assert data["mizar_vpc_peerings"] == [{"name": "p", "vpcs": ["vpc1", "nope"]}]
    assert [e["path"] for e in FILTERS["validate"](hv, list(inv["hosts"]))] == ["mizar_vpc_peerings[0].vpcs[1]"]


def test_relative_sources_are_rooted_in_the_first_hosts_inventory_directory(tmp_path, monkeypatch):
    """One rule for site.yml and render.yml: the inventory directory of the
    first transit host, whatever the current directory; base_dir overrides."""
    inv = base()
    inv["mizar_functions"].append({"name": "mine", "stage": "on_xdp_pass", "program": "fn/mine.c", "hosts": None})
    hv = _hostvars(inv)
    hv["h1"]["inventory_dir"] = "/srv/inventory"
    hv["h2"]["inventory_dir"] = "/elsewhere"
    monkeypatch.chdir(tmp_path)
    hosts = list(inv["hosts"])
    out = FILTERS["render"](hv, hosts, limit=["h3"])
    assert [f["program"] for f in out["h3"]["functions"]] == ["/srv/inventory/fn/mine.c", "acl", "scaled"]
    assert out["h3"]["transit"]["sources"] == ["/srv/inventory/fn/mine.c"]
    assert out == render_inventory(inv, hosts=["h3"], base_dir="/srv/inventory")
    assert FILTERS["render"](hv, hosts, offline=True) == render_inventory(inv, base_dir="/srv/inventory")
    out = FILTERS["render"](hv, hosts, base_dir="/opt/other")
    assert out["h1"]["transit"]["sources"] == ["/opt/other/fn/mine.c"]
    del hv["h1"]["inventory_dir"]  # unknown: the current directory
    out = FILTERS["render"](hv, hosts)
    assert out["h1"]["transit"]["sources"] == [str(tmp_path / "fn" / "mine.c")]


def test_the_playbooks_facts_are_no_host_settings():
    inv = base()
    hv = _hostvars(inv)
    hv["h1"].update(mizar_rendered={"h1": {}}, mizar_errors=[])
    assert mizar_filter.inventory_from_hostvars(hv, ["h1"])["hosts"] == {"h1": inv["hosts"]["h1"]}
    assert FILTERS["validate"](hv, list(inv["hosts"])) == []
