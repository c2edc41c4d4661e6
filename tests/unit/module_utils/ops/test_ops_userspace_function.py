"""ops/userspace_function without a kernel: the arguments refused naming the
function and field, and the plans on recorded states (what dir holds and
what runs) for both supervisors: a function running as it should is left
alone, a changed config or program or a new namespace restarts it, a
stopped one starts, an unlisted one goes with exclusive. Processes started
for real in their endpoints' namespaces: tests/integration/test_flowlog.py."""
import json

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.ops import userspace_function as us

DIR = "/var/lib/mizar/functions"
ITEM = {"name": "flows", "program": "flowlog", "netns": "logger", "iface": "mz0a0b0c0d0e", "endpoint": "blue/web/logger", "vni": 100,
        "ip": "10.0.1.20", "mac": "02:AA:00:00:00:01", "config": {"log": "/var/log/f.jsonl", "flush": "500ms"}}


def spec(items=(ITEM,), **kw):
    return us.Spec([dict(i) for i in items], directory=DIR, python="/usr/bin/python3", **kw)


def have(s, running=True, netns_ok=True, config=None, program=None, extra=None, enabled=True, unit=True):
    fn = s.functions[0]
    functions = {fn.name: {"program": "flowlog", "config": fn.text if config is None else config,
                           "pid": 4242 if running else None, "netns_ok": netns_ok and running, "enabled": enabled}}
    functions.update(extra or {})
    return {"dir": {"others": []},
            "programs": {"flowlog": us.program_source("flowlog") if program is None else program},
            "units": {"flowlog": us.unit_text("flowlog", DIR, "/usr/bin/python3") if unit else None},
            "functions": functions}


def texts(s, st):
    return [step.text for step in us.plan(s, st)]


def test_the_config_the_program_reads():
    fn = spec().functions[0]
    assert json.loads(fn.text) == {
        "name": "flows", "program": "flowlog", "endpoint": "blue/web/logger", "netns": "logger", "iface": "eth0",
        "host_iface": "mz0a0b0c0d0e", "vni": 100, "ip": "10.0.1.20", "mac": "02:aa:00:00:00:01", "log": "/var/log/f.jsonl",
        "flush": 0.5, "ready": DIR + "/flows.ready"}
    default = us.Spec([dict(ITEM, config={})]).functions[0].config
    assert (default["log"], default["flush"]) == ("/var/log/mizar/flows.jsonl", 1.0)


def test_the_program_written_is_the_shipped_one():
    from ansible_collections.mizar.transit.plugins.module_utils.userspace import flowlog
    with open(flowlog.__file__) as f:
        assert us.program_source("flowlog") == f.read()


def test_the_unit_template():
    assert us.unit_text("flowlog", DIR, "/usr/bin/python3") == (
        "# mizar.transit: the user-space function flowlog, one instance per function\n"
        "[Unit]\nDescription=mizar.transit user-space function %i (flowlog)\nAfter=network.target\n\n"
        "[Service]\nType=simple\n"
        "ExecStart=/usr/bin/python3 /var/lib/mizar/functions/flowlog.py /var/lib/mizar/functions/%i.json\n"
        "Restart=on-failure\nRestartSec=1\n\n[Install]\nWantedBy=multi-user.target\n")


@pytest.mark.parametrize("field,value,message", [
    ("name", "bad name", r"function bad name \(functions\[0\]\): name: .*not a valid name"),
    ("program", "tcpdump", r"function flows \(functions\[0\]\): program: 'tcpdump' is not a shipped"),
    ("netns", "a/b", r"function flows \(functions\[0\]\): netns: "),
    ("iface", "a/b", r"function flows \(functions\[0\]\): iface: "),
    ("ip", "10.0.1", r"function flows \(functions\[0\]\): ip: "),
    ("mac", "02:aa", r"function flows \(functions\[0\]\): mac: "),
    ("vni", 1 << 24, r"function flows \(functions\[0\]\): vni: 16777216 is not a VNI"),
    ("config", {"log": "f.jsonl"}, r"function flows \(functions\[0\]\): config.log: 'f.jsonl' is not an absolute"),
    ("config", {"flush": "soon"}, r"function flows \(functions\[0\]\): config.flush: 'soon' is not a duration"),
    ("config", {"rotate": 1}, r"function flows \(functions\[0\]\): config.rotate: unknown setting of flowlog"),
])
def test_bad_arguments_name_the_function_and_field(field, value, message):
    with pytest.raises(us.UserspaceError, match=message):
        spec([dict(ITEM, **{field: value})])


def test_two_functions_of_one_name_are_refused():
    with pytest.raises(us.UserspaceError, match=r"functions\[1\]\): name: functions\[0\] has this name too"):
        spec([ITEM, dict(ITEM, netns="other")])


def test_a_relative_dir_is_refused():
    with pytest.raises(us.UserspaceError, match="dir: 'fns' must be an absolute path"):
        us.Spec([], directory="fns")


def test_a_fresh_host_gets_program_config_and_a_process():
    s = spec(supervisor="process")
    st = {"programs": {"flowlog": None}, "units": {}, "functions": {}, "dir": None}
    assert texts(s, st) == ["install flowlog at %s/flowlog.py" % DIR,
                            "write the config of flows (%s/flows.json)" % DIR,
                            "start flows: flowlog in namespace logger"]


def test_a_running_function_is_left_alone():
    for supervisor in ("process", "systemd"):
        s = spec(supervisor=supervisor)
        assert texts(s, have(s)) == []


def test_a_dead_process_is_started_again():
    s = spec(supervisor="process")
    assert texts(s, have(s, running=False)) == ["start flows: flowlog in namespace logger"]


def test_a_process_in_an_old_namespace_is_restarted():
    s = spec(supervisor="process")
    assert texts(s, have(s, netns_ok=False)) == [
        "stop flows (process 4242): its endpoint's namespace is new", "start flows: flowlog in namespace logger"]


def test_a_new_config_or_program_restarts_the_process():
    s = spec(supervisor="process")
    assert texts(s, have(s, config="{}")) == [
        "write the config of flows (%s/flows.json)" % DIR,
        "stop flows (process 4242): its program or config changed", "start flows: flowlog in namespace logger"]
    assert texts(s, have(s, program="old")) == [
        "install flowlog at %s/flowlog.py" % DIR,
        "stop flows (process 4242): its program or config changed", "start flows: flowlog in namespace logger"]


def test_systemd_plans():
    s = spec()
    assert texts(s, {"programs": {"flowlog": None}, "units": {"flowlog": None}, "functions": {}, "dir": None}) == [
        "install flowlog at %s/flowlog.py" % DIR,
        "write the unit template /etc/systemd/system/mizar-flowlog@.service", "reload systemd",
        "write the config of flows (%s/flows.json)" % DIR,
        "enable mizar-flowlog@flows.service", "start mizar-flowlog@flows.service: flowlog in namespace logger"]
    assert texts(s, have(s, config="{}")) == [
        "write the config of flows (%s/flows.json)" % DIR,
        "restart mizar-flowlog@flows.service: flowlog in namespace logger"]
    assert texts(s, have(s, running=False, enabled=False)) == [
        "enable mizar-flowlog@flows.service", "start mizar-flowlog@flows.service: flowlog in namespace logger"]


def test_exclusive_removes_the_unlisted_and_what_no_function_needs():
    s = spec(supervisor="process", exclusive=True)
    old = {"old": {"program": "flowlog", "config": "{}", "pid": 7, "netns_ok": True, "enabled": False}}
    assert texts(s, have(s, extra=old)) == ["stop old (process 7)", "remove the config of old (%s/old.json)" % DIR]
    assert texts(spec(supervisor="process"), have(s, extra=old)) == []  # not exclusive: left alone
    gone = us.Spec([], directory=DIR, supervisor="process", exclusive=True, state="absent")
    assert texts(gone, have(s, unit=False)) == [
        "stop flows (process 4242)", "remove the config of flows (%s/flows.json)" % DIR,
        "remove flowlog (%s/flowlog.py)" % DIR, "remove %s" % DIR]
    kept = have(s, unit=False)
    kept["dir"]["others"] = ["notes.txt"]  # someone else's file: the directory stays
    assert texts(gone, kept)[-1] == "remove flowlog (%s/flowlog.py)" % DIR
    sysd = us.Spec([], directory=DIR, exclusive=True, state="absent")
    assert texts(sysd, have(s)) == [
        "stop and disable mizar-flowlog@flows.service", "remove the config of flows (%s/flows.json)" % DIR,
        "remove flowlog (%s/flowlog.py)" % DIR, "remove the unit template /etc/systemd/system/mizar-flowlog@.service",
        "reload systemd", "remove %s" % DIR]


def test_read_finds_the_functions_of_dir(tmp_path):
    s = us.Spec([dict(ITEM)], directory=str(tmp_path), supervisor="process")
    (tmp_path / "flows.json").write_text(s.functions[0].text)
    (tmp_path / "flows.pid").write_text("999999999\n")  # no such process
    (tmp_path / "junk.json").write_text("not json")
    st = us.read(s)
    assert st["programs"] == {"flowlog": None}
    assert st["functions"]["flows"] == {"program": "flowlog", "config": s.functions[0].text, "pid": None,
                                        "netns_ok": False, "enabled": False}
    assert st["functions"]["junk"]["program"] is None
    assert st["dir"] == {"others": []}
    assert texts(s, st) == ["install flowlog at %s/flowlog.py" % tmp_path,
                            "start flows: flowlog in namespace logger"]
    res = us.ensure(s, check_mode=True)
    assert res["changed"] and res["actions"] == texts(s, st)
    assert res["diff"] == {"before": "flows: flowlog, not running\njunk: None, not running\n",
                           "after": "flows: flowlog, running\n"}
    assert not (tmp_path / "flowlog.py").exists()  # check mode writes nothing
