"""A host's counters in the Prometheus text format (model/metrics.py), read
back with prometheus_client's own parser."""
import pytest

from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.mizar.transit.plugins.module_utils.model import metrics

INFO = {
    "loaded": True,
    "verdicts": {"aborted": 0, "drop": 5, "pass": 7, "tx": 11, "redirect": 13},
    "paths": {"transit": {"bounce": 11, "decap": 13}, "agent": {"agent_encap": 3, "agent_local": 0}},
    "drop_reasons": {"ttl": 1, "untrusted_src": 2, "no_network": 0, "no_substrate": 2},
    "functions": {"acl": {"counters": {"seen": 20, "dropped": 4}, "stages": ["on_xdp_redirect", "on_xdp_tx"]},
                  "ratelimit": {"counters": {"passed": 9, "dropped": 1}, "stages": ["on_xdp_redirect"]}},
    "maps": {"mzr_endpoints": {"id": 9, "entries": 3, "max_entries": 524288}},
    "counters": {}, "drops": {}, "stages": {},
}


def parsed(text):
    """{family name: (type, help, {(sample name, sorted labels): value})}."""
    out = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = (fam.type, fam.documentation,
                         dict(((s.name, tuple(sorted(s.labels.items()))), s.value) for s in fam.samples))
    return out


def test_every_counter_by_name_with_its_labels():
    fams = parsed(metrics.exposition("mzh1", INFO))
    assert sorted(fams) == ["mizar_transit_drop_packets", "mizar_transit_function_packets",
                            "mizar_transit_function_stage_info", "mizar_transit_map_entries",
                            "mizar_transit_map_max_entries", "mizar_transit_path_packets", "mizar_transit_up",
                            "mizar_transit_verdict_packets"]
    kind, doc, samples = fams["mizar_transit_verdict_packets"]
    assert kind == "counter" and doc.startswith("Packets per XDP verdict")
    assert samples == dict((("mizar_transit_verdict_packets_total", (("host", "mzh1"), ("verdict", v))), float(n))
                           for v, n in INFO["verdicts"].items())
    kind, dummy, samples = fams["mizar_transit_path_packets"]
    assert kind == "counter" and samples == {
        ("mizar_transit_path_packets_total", (("host", "mzh1"), ("path", "bounce"), ("program", "transit"))): 11.0,
        ("mizar_transit_path_packets_total", (("host", "mzh1"), ("path", "decap"), ("program", "transit"))): 13.0,
        ("mizar_transit_path_packets_total", (("host", "mzh1"), ("path", "agent_encap"), ("program", "agent"))): 3.0,
        ("mizar_transit_path_packets_total", (("host", "mzh1"), ("path", "agent_local"), ("program", "agent"))): 0.0}
    kind, dummy, samples = fams["mizar_transit_drop_packets"]
    assert kind == "counter" and samples == dict(
        (("mizar_transit_drop_packets_total", (("host", "mzh1"), ("reason", r))), float(n))
        for r, n in INFO["drop_reasons"].items())
    kind, dummy, samples = fams["mizar_transit_function_packets"]
    assert kind == "counter" and samples == dict(
        (("mizar_transit_function_packets_total", (("counter", c), ("function", f), ("host", "mzh1"))), float(n))
        for f, e in INFO["functions"].items() for c, n in e["counters"].items())
    kind, dummy, samples = fams["mizar_transit_function_stage_info"]
    assert kind == "gauge" and sorted((dict(k[1])["function"], dict(k[1])["stage"]) for k in samples) == [
        ("acl", "on_xdp_redirect"), ("acl", "on_xdp_tx"), ("ratelimit", "on_xdp_redirect")]
    assert set(samples.values()) == {1.0}
    assert fams["mizar_transit_up"][2] == {("mizar_transit_up", (("host", "mzh1"),)): 1.0}
    assert fams["mizar_transit_map_entries"][2] == {
        ("mizar_transit_map_entries", (("host", "mzh1"), ("map", "mzr_endpoints"))): 3.0}
    assert fams["mizar_transit_map_max_entries"][2] == {
        ("mizar_transit_map_max_entries", (("host", "mzh1"), ("map", "mzr_endpoints"))): 524288.0}


def test_the_text_has_help_and_type_lines_and_no_created_samples():
    text = metrics.exposition("mzh1", INFO)
    assert text.endswith("\n")
    lines = text.splitlines()
    for name, kind in (("mizar_transit_drop_packets_total", "counter"), ("mizar_transit_up", "gauge")):
        assert "# TYPE %s %s" % (name, kind) in lines
        assert any(line.startswith("# HELP %s " % name) for line in lines)
    assert "_created" not in text  # a snapshot: no creation times that change on every export
    assert metrics.exposition("mzh1", INFO) == text  # the same counters, the same bytes


def test_a_host_without_a_datapath_is_down_and_nothing_else():
    fams = parsed(metrics.exposition("mzh2", {"loaded": False, "pin_dir": "/sys/fs/bpf/mizar"}))
    assert fams == {"mizar_transit_up": ("gauge", metrics.HELP["up"], {("mizar_transit_up", (("host", "mzh2"),)): 0.0})}


def test_label_values_are_escaped():
    text = metrics.exposition('we"ird\\host', dict(INFO, functions={}, maps={}))
    fams = parsed(text)
    assert {dict(k[1])["host"] for k in fams["mizar_transit_up"][2]} == {'we"ird\\host'}


@pytest.mark.parametrize("info,message", [
    ({"pin_dir": "/x"}, "host h: not a result of mizar.transit.transit_info (it has no loaded)"),
    (dict(INFO, paths=None), "host h: transit_info's paths is missing (a module older than this collection?)"),
    (dict(INFO, drop_reasons={"ttl": -1}), "host h: drop_reasons.ttl: a count of 0 or more, not -1"),
    (dict(INFO, functions={"acl": {"counters": {"seen": "many"}}}),
     "host h: functions.acl.counters.seen: a count of 0 or more, not 'many'"),
])
def test_a_result_that_is_not_transit_info_s_is_refused(info, message):
    with pytest.raises(metrics.MetricsError) as e:
        metrics.exposition("h", info)
    assert str(e.value) == message
