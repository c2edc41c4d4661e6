"""The states the plan tests replay: read() of the endpoint, lab_host and
stage backends on a real host, recorded by fixtures/record.py, and the
specs they were recorded for."""
import copy
import json
import os

from ansible_collections.mizar.transit.plugins.module_utils.ops import endpoint, lab_host, stage

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
OBJS = os.path.join(ROOT, ".build", "bpf")
PIN_DIR = "/sys/fs/bpf/mzrec/pins"


def state(name):
    """A recorded state (a fresh copy: tests edit it to make drift)."""
    with open(os.path.join(HERE, "fixtures", name + ".json")) as f:
        return copy.deepcopy(json.load(f))


def endpoint_item(**kw):
    item = dict(name="blue/web/ep1", iface="mzrecv0", netns="mzrece0", ip="10.0.1.10", prefixlen=24,
                mac="02:00:0a:00:01:0a", gateway="10.0.1.1")
    item.update(kw)
    return item


def endpoint_spec(items=None, exclusive=False, **kw):
    """The endpoint module's Spec of the recorded endpoint (or of items, the
    list form), its MTUs settled as ensure() settles them with no substrate
    interface named."""
    params = dict(endpoint_item(**kw), endpoints=items, exclusive=exclusive, state=kw.get("state", "present"),
                  substrate_interface=None, mode="native", pin_dir=PIN_DIR, mtu=kw.get("mtu"),
                  bypass_decap=kw.get("bypass_decap", False), vips=kw.get("vips"))
    spec = endpoint.Spec.from_params(params)
    endpoint.resolve_mtus(spec)
    return spec


def lab_spec(state="present", **kw):
    args = dict(bridge="mzrecbr", bpffs_root="/sys/fs/bpf/mzrec/lab")
    if state == "present":
        args.update(address="192.168.79.1/24", xdp_object=os.path.join(OBJS, "pass.bpf.o"))
    args.update(kw)
    return lab_host.Spec("mzrecl", state=state, **args)


ACL_RULES = {"rules": [{"vpc": "blue", "src": "0.0.0.0/0", "dst": "10.0.1.0/24", "protocol": "tcp", "port": 22,
                        "action": "drop"}]}


def stage_spec(state="present", **kw):
    args = dict(object=os.path.join(OBJS, "functions", "acl.bpf.o"), function="acl", config=ACL_RULES,
                vpcs={"blue": 100})
    if state == "absent":
        args = dict(function="acl")
    args.update(kw)
    return stage.StageSpec("on_xdp_redirect", PIN_DIR, state=state, **args)


def stage_state(name):
    """A recorded stage state, its rules' bytes back from hex. The states
    were recorded before read() said whether the program goes on along its
    chain: the ACL does (mzr_stage_next), and goes_on says so."""
    st = state(name)
    if st.get("config_raw"):
        st["config_raw"] = bytes.fromhex(st["config_raw"])
    st.setdefault("goes_on", True)
    return st


def texts(steps):
    return [s.text for s in steps]


EMPTY_SLOT = {"datapath": True, "slot": None, "private": {}, "in_use": [], "stage_pin": False}


def stage_list_spec(functions, exclusive=False, vpcs=None, state="present"):
    """The stage module's Spec of a list of functions (the list form)."""
    params = dict(functions=functions, exclusive=exclusive, vpcs={"blue": 100} if vpcs is None else vpcs,
                  pin_dir=PIN_DIR, state=state, stage=None, object=None, program=None, function=None, config={})
    return stage.Spec.from_params(params)


def stage_list_state(**slots):
    """A host's stage state: the recorded slot states named by stage (a
    name, or a state), every other slot empty."""
    return {"datapath": True, "slots": dict(
        (s, stage_state(slots[s]) if isinstance(slots.get(s), str) else copy.deepcopy(slots.get(s, EMPTY_SLOT)))
        for s in stage.SLOT_ORDER)}
