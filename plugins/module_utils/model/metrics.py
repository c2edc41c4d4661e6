# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's counters, as mizar.transit.transit_info returns them, in the
Prometheus text exposition format, for node_exporter's textfile collector.
Run on the controller (filter mizar.transit.prometheus); the format itself
is prometheus_client's, so the hosts need no more than the modules do.

    mizar_transit_up{host}                            1 when a datapath is loaded
    mizar_transit_verdict_packets_total{host,verdict} XDP verdicts of the pipeline
    mizar_transit_path_packets_total{host,program,path}
                                                      paths taken, program transit or agent
    mizar_transit_drop_packets_total{host,reason}     drops by reason, every reason
    mizar_transit_function_packets_total{host,function,counter}
                                                      what each installed function counts
    mizar_transit_function_stage_info{host,function,stage}
                                                      1 for each stage a function runs at
    mizar_transit_map_entries{host,map}               entries in use of each pinned map
    mizar_transit_map_max_entries{host,map}           and its capacity

The counters restart from 0 when the datapath's maps are made anew (a
layout migration, a teardown): Prometheus' rate() and increase() take that
for a reset. docs/monitoring.md says what each counter means.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    HAS_PROMETHEUS = True
except ImportError:  # pragma: no cover - the controller's requirements.txt has it
    HAS_PROMETHEUS = False

PREFIX = "mizar_transit_"
PROMETHEUS_REQUIREMENT = "prometheus-client (the Python package, on the controller)"

HELP = {
    "up": "1 when a mizar datapath is loaded on the host (its maps are pinned), else 0.",
    "verdict_packets": "Packets per XDP verdict the mizar pipeline decided, before any stage function ran.",
    "path_packets": "Packets per path taken through the transit program (program transit) or an agent "
                    "(program agent).",
    "drop_packets": "Packets the mizar datapath dropped, by reason.",
    "function_packets": "Packets a stage function counted, by function and counter (the function's schema "
                        "declares them).",
    "function_stage_info": "1 for each stage whose chain runs the function.",
    "map_entries": "Entries in use in a pinned map of the mizar datapath.",
    "map_max_entries": "Capacity (max_entries) of a pinned map of the mizar datapath.",
}


class MetricsError(ValueError):
    """transit_info's result lacks what the export needs; says what."""


class _Snapshot:
    """A prometheus_client collector that yields one host's metrics, once."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return iter(self.families)


def _counter(name, labels):
    return CounterMetricFamily(PREFIX + name, HELP[name], labels=labels)


def _gauge(name, labels):
    return GaugeMetricFamily(PREFIX + name, HELP[name], labels=labels)


def _number(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MetricsError("%s: a count of 0 or more, not %r" % (where, value))
    return value


def families(host, info):
    """The metric families (prometheus_client) of one host's transit_info
    result (info). MetricsError names a field that is missing or wrong."""
    if not HAS_PROMETHEUS:
        raise MetricsError("the Prometheus export needs %s" % PROMETHEUS_REQUIREMENT)
    if not isinstance(info, dict) or "loaded" not in info:
        raise MetricsError("host %s: not a result of mizar.transit.transit_info (it has no loaded)" % host)
    up = _gauge("up", ["host"])
    up.add_metric([host], 1 if info["loaded"] else 0)
    out = [up]
    if not info["loaded"]:
        return out
    for key in ("verdicts", "paths", "drop_reasons", "functions", "maps"):
        if not isinstance(info.get(key), dict):
            raise MetricsError("host %s: transit_info's %s is missing (a module older than this collection?)"
                               % (host, key))
    verdicts = _counter("verdict_packets", ["host", "verdict"])
    for verdict, n in sorted(info["verdicts"].items()):
        verdicts.add_metric([host, verdict], _number(n, "host %s: verdicts.%s" % (host, verdict)))
    paths = _counter("path_packets", ["host", "program", "path"])
    for program, counts in sorted(info["paths"].items()):
        for path, n in sorted(counts.items()):
            paths.add_metric([host, program, path], _number(n, "host %s: paths.%s.%s" % (host, program, path)))
    drops = _counter("drop_packets", ["host", "reason"])
    for reason, n in sorted(info["drop_reasons"].items()):
        drops.add_metric([host, reason], _number(n, "host %s: drop_reasons.%s" % (host, reason)))
    fn_counts = _counter("function_packets", ["host", "function", "counter"])
    fn_stages = _gauge("function_stage_info", ["host", "function", "stage"])
    for fn, entry in sorted(info["functions"].items()):
        for counter, n in sorted(entry.get("counters", {}).items()):
            fn_counts.add_metric([host, fn, counter], _number(n, "host %s: functions.%s.counters.%s"
                                                              % (host, fn, counter)))
        for stage in sorted(entry.get("stages") or []):
            fn_stages.add_metric([host, fn, stage], 1)
    entries = _gauge("map_entries", ["host", "map"])
    capacity = _gauge("map_max_entries", ["host", "map"])
    for name, m in sorted(info["maps"].items()):
        entries.add_metric([host, name], _number(m.get("entries"), "host %s: maps.%s.entries" % (host, name)))
        capacity.add_metric([host, name], _number(m.get("max_entries"), "host %s: maps.%s.max_entries"
                                                  % (host, name)))
    return out + [verdicts, paths, drops, fn_counts, fn_stages, entries, capacity]


def exposition(host, info):
    """The text a textfile collector reads: families(host, info) in the
    Prometheus text format (version 0.0.4), HELP and TYPE lines included."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families(host, info)))
    return generate_latest(registry).decode("utf-8")
