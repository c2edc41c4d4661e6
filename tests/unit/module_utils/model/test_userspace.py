"""User-space functions in the model: `kind: userspace` in mizar_functions,
validated path-precisely (one defect, its path and message), and rendered
on the host of their endpoint with the host's supervisor and directory."""
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.model import diagram
from ansible_collections.mizar.transit.plugins.module_utils.model import functions as fnreg
from ansible_collections.mizar.transit.plugins.module_utils.model.render import render_inventory
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import validate

from unit_inventory import assert_one_defect, base

LOGGER = {"name": "logger", "ip": "10.1.0.9", "host": "h2", "netns": "logger", "bypass_decap": True}
FLOWLOG = {"name": "flows", "kind": "userspace", "program": "flowlog", "vpc": "vpc1", "endpoint": "logger",
           "config": {"log": "/var/log/flows//logger.jsonl", "flush": "500ms"}}


def with_flowlog():
    """base() with a bypass_decap endpoint logger (vpc1/net1, on h2) running flowlog."""
    inv = base()
    inv["mizar_vpcs"][0]["networks"][0]["endpoints"].append(dict(LOGGER))
    inv["mizar_functions"].insert(1, dict(FLOWLOG, config=dict(FLOWLOG["config"])))  # before base()'s lb1
    return inv


def _fn(inv):
    return inv["mizar_functions"][1]


def _ep(inv, name):
    return [e for e in inv["mizar_vpcs"][0]["networks"][0]["endpoints"] if e["name"] == name][0]


def test_flowlog_is_a_shipped_userspace_program():
    spec = fnreg.default_registry().get("flowlog")
    assert spec.kind == "userspace" and spec.stages == ()
    assert spec.source.endswith("plugins/module_utils/userspace/flowlog.py")
    assert "flowlog" in fnreg.default_registry().names("userspace")
    assert "flowlog" not in fnreg.default_registry().names()


def test_a_valid_flowlog_validates():
    assert validate(with_flowlog()) == []


def test_it_renders_on_its_endpoints_host_only():
    inv = with_flowlog()
    inv["hosts"]["h2"].update(mizar_function_supervisor="process", mizar_function_dir="/srv/fns/")
    out = render_inventory(inv)
    logger = [e for e in out["h2"]["local_endpoints"] if e["name"] == "vpc1/net1/logger"][0]
    assert logger["bypass_decap"] and logger["netns"] == "logger"
    assert out["h2"]["userspace"] == {"supervisor": "process", "dir": "/srv/fns", "functions": [{
        "name": "flows", "program": "flowlog", "endpoint": "vpc1/net1/logger", "netns": "logger",
        "iface": logger["iface"], "vni": 100,
        "ip": "10.1.0.9", "mac": logger["mac"],
        "config": {"log": "/var/log/flows/logger.jsonl", "flush": "500ms"}}]}
    for h in ("h1", "h3"):
        assert out[h]["userspace"] == {"supervisor": "systemd", "dir": "/var/lib/mizar/functions", "functions": []}
    # not a stage function: no stage, no object
    assert [f["name"] for f in out["h2"]["functions"]] == ["acl1", "lb1"]


def test_config_defaults_are_filled_in():
    inv = with_flowlog()
    del _fn(inv)["config"]
    fn = render_inventory(inv)["h2"]["userspace"]["functions"][0]
    assert fn["config"] == {"log": "/var/log/mizar/flows.jsonl", "flush": "1s"}


CASES = [
    ("bad-kind", lambda inv: _fn(inv).update(kind="user"), "mizar_functions[1].kind", r"unknown kind 'user'"),
    ("stage-given", lambda inv: _fn(inv).update(stage="on_xdp_redirect"), "mizar_functions[1].stage",
     r"a userspace function has no stage"),
    ("hosts-given", lambda inv: _fn(inv).update(hosts=["h2"]), "mizar_functions[1].hosts",
     r"runs on the host of its endpoint"),
    ("unknown-program", lambda inv: _fn(inv).update(program="flowlg"), "mizar_functions[1].program",
     r"unknown user-space program 'flowlg' \(did you mean \"flowlog\"\?\)"),
    ("bpf-program", lambda inv: _fn(inv).update(program="acl"), "mizar_functions[1].program",
     r"unknown user-space program 'acl'.*name one of flowlog"),
    ("userspace-in-a-stage",
     lambda inv: _fn(inv).update(kind="xdp", vpc=None, endpoint=None, stage="on_xdp_redirect", config={}),
     "mizar_functions[1].program", r"flowlog is a user-space function.*kind: userspace"),
    ("endpoint-on-xdp", lambda inv: inv["mizar_functions"][0].update(endpoint="ep1"), "mizar_functions[0].endpoint",
     r"endpoint is for a function of kind userspace"),
    ("no-endpoint", lambda inv: _fn(inv).pop("endpoint"), "mizar_functions[1].endpoint", r"endpoint is required"),
    ("unknown-vpc", lambda inv: _fn(inv).update(vpc="vpc3"), "mizar_functions[1].vpc", r"no VPC named 'vpc3'"),
    ("unknown-endpoint", lambda inv: _fn(inv).update(endpoint="loger"), "mizar_functions[1].endpoint",
     r"no endpoint named 'loger' in VPC vpc1 \(did you mean \"logger\"\?\)"),
    ("not-bypass", lambda inv: _ep(inv, "logger").update(bypass_decap=False), "mizar_functions[1].endpoint",
     r"endpoint logger of VPC vpc1 cannot run flowlog: it does not have bypass_decap: true"),
    ("adopted", lambda inv: _ep(inv, "ep2").update(bypass_decap=True) or _fn(inv).update(endpoint="ep2")
     or _ep(inv, "lb").update(backends=["ep1"]),  # a backend may not be bypass_decap
     "mizar_functions[1].endpoint", r"cannot run flowlog: it adopts the interface veth-ep2"),
    ("scaled", lambda inv: _fn(inv).update(endpoint="lb"), "mizar_functions[1].endpoint",
     r"cannot run flowlog: it is a scaled endpoint"),
    ("twice", lambda inv: inv["mizar_functions"].append(dict(FLOWLOG, name="again")), "mizar_functions[3].endpoint",
     r"already runs the user-space function of mizar_functions\[1\]"),
    ("relative-log", lambda inv: _fn(inv)["config"].update(log="flows.jsonl"), "mizar_functions[1].config.log",
     r"must be the absolute path of a file"),
    ("flush-too-short", lambda inv: _fn(inv)["config"].update(flush="1ms"), "mizar_functions[1].config.flush",
     r"out of range"),
    ("unknown-setting", lambda inv: _fn(inv)["config"].update(rotate=True), "mizar_functions[1].config.rotate",
     r"unknown setting 'rotate'"),
    ("bad-supervisor", lambda inv: inv["hosts"]["h2"].update(mizar_function_supervisor="runit"),
     "hostvars[h2].mizar_function_supervisor", r"'runit' is not one of systemd, process"),
    ("relative-dir", lambda inv: inv["hosts"]["h2"].update(mizar_function_dir="fns"),
     "hostvars[h2].mizar_function_dir", r"must be an absolute path"),
]


@pytest.mark.parametrize("name,mutate,path,pattern", CASES, ids=[c[0] for c in CASES])
def test_one_defect_one_error(name, mutate, path, pattern):
    assert_one_defect(with_flowlog(), mutate, path, pattern)


def test_the_diagram_ties_it_to_its_endpoint():
    inv = with_flowlog()
    g = diagram.diagram(inv)
    assert {"tail": "fn/flows", "head": "ep/vpc1/net1/logger",
            "attrs": {"style": "dotted", "color": "#b45309", "dir": "none"}} in g["edges"]
    node = [n for c in g["clusters"] if c["id"] == "functions" for n in c["nodes"] if n["id"] == "fn/flows"][0]
    assert node["label"] == ["flows", "flowlog in user space"]
    lines = diagram.summary(inv)
    assert "function flows: flowlog in user space on endpoint logger (vpc1)" in lines
    assert "  flush: 500ms" in lines and "  log: /var/log/flows/logger.jsonl" in lines


def test_a_users_bpf_source_may_share_the_name_of_a_userspace_program():
    # no object of flowlog is shipped: fns/flowlog.c builds functions/flowlog.bpf.o unchallenged
    inv = base()
    inv["mizar_functions"].append({"name": "mine", "stage": "on_xdp_redirect", "program": "fns/flowlog.c"})
    assert validate(inv) == []
