# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The diagram module's backend: lay out a topology graph (model/diagram.py)
with Graphviz's dot, through the Python graphviz package, and write it as
SVG, and PNG when asked, on the controller.

The backend contract of ops/runner.py: the Spec lays the graph out (the
pictures are the wanted state), read() takes the files as they are, plan()
writes each one whose bytes differ. dot gives the same bytes for the same
graph, so a re-run with an unchanged inventory writes nothing. A file is
written whole or not at all (objects.write_whole: a temporary file renamed over it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from collections.abc import Mapping

from ansible_collections.mizar.transit.plugins.module_utils.bpf import objects
from ansible_collections.mizar.transit.plugins.module_utils.ops import args
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError
from ansible_collections.mizar.transit.plugins.module_utils.ops.steps import Step, carry_out

try:
    import graphviz
    HAS_GRAPHVIZ = True
    GRAPHVIZ_IMPORT_ERROR = None
except ImportError as e:
    graphviz = None
    HAS_GRAPHVIZ = False
    GRAPHVIZ_IMPORT_ERROR = e

GRAPHVIZ_PYTHON = "the Python package graphviz (pip install graphviz; requirements-test.txt pins it)"
GRAPHVIZ_DOT = "Graphviz's dot (apt-get install graphviz, dnf install graphviz, brew install graphviz)"

NEEDS = ()  # runs on the controller: neither pyroute2 nor libbpf
MODULE = args.module_args(dict(
    graph=dict(type="dict", required=True),
    svg=dict(type="path", required=True),
    png=dict(type="path"),
))


class DiagramError(BackendError):
    """A graph that cannot be laid out, a missing Graphviz, a file that cannot be written."""


ERRORS = (DiagramError,)


def context(params):
    return "drawing the topology into %s" % params.get("svg")


def _label(lines):
    """A DOT label of lines of text, centred, taken literally (backslashes
    and <...> have no special meaning)."""
    return graphviz.nohtml("\\n".join(str(line).replace("\\", "\\\\") for line in lines))


def _attrs(item, where):
    attrs = item.get("attrs") or {}
    if not isinstance(attrs, Mapping):
        raise DiagramError("graph: %s.attrs must be a mapping of Graphviz attributes" % where)
    return dict((str(k), str(v)) for k, v in attrs.items())


def _required(item, key, where):
    value = item.get(key) if isinstance(item, Mapping) else None
    if value is None or value == "":
        raise DiagramError("graph: %s.%s is required" % (where, key))
    return value


def _add_nodes(dot, items, where):
    for i, node in enumerate(items or ()):
        here = "%s.nodes[%d]" % (where, i)
        dot.node(str(_required(node, "id", here)), label=_label(node.get("label") or [node["id"]]),
                 **_attrs(node, here))


def _add_cluster(parent, cluster, where):
    name = "cluster_%s" % _required(cluster, "id", where)
    with parent.subgraph(name=name) as sub:
        sub.attr(label=_label(cluster.get("label") or []), **_attrs(cluster, where))
        _add_nodes(sub, cluster.get("nodes"), where)
        for j, inner in enumerate(cluster.get("clusters") or ()):
            _add_cluster(sub, inner, "%s.clusters[%d]" % (where, j))


def source(graph):
    """The DOT text of a graph of model/diagram.py. Raises DiagramError
    naming the item of the graph at fault."""
    if not HAS_GRAPHVIZ:
        raise DiagramError("drawing the topology needs %s: %s" % (GRAPHVIZ_PYTHON, GRAPHVIZ_IMPORT_ERROR))
    if not isinstance(graph, Mapping):
        raise DiagramError("graph must be a mapping, the result of the filter mizar.transit.diagram")
    dot = graphviz.Digraph("mizar", graph_attr=_attrs(graph, "graph"),
                           node_attr=_attrs({"attrs": graph.get("node")}, "graph.node"),
                           edge_attr=_attrs({"attrs": graph.get("edge")}, "graph.edge"))
    for i, cluster in enumerate(graph.get("clusters") or ()):
        _add_cluster(dot, cluster, "graph.clusters[%d]" % i)
    _add_nodes(dot, graph.get("nodes"), "graph")
    for i, edge in enumerate(graph.get("edges") or ()):
        here = "graph.edges[%d]" % i
        dot.edge(str(_required(edge, "tail", here)), str(_required(edge, "head", here)), **_attrs(edge, here))
    return dot.source


def lay_out(text, fmt):
    """The bytes of DOT text laid out by dot as fmt (svg or png)."""
    try:
        return graphviz.pipe("dot", fmt, text.encode("utf-8"))
    except graphviz.ExecutableNotFound:
        raise DiagramError("drawing the topology needs %s: no dot on PATH (%s)" % (GRAPHVIZ_DOT, os.environ.get("PATH")))
    except graphviz.CalledProcessError as e:
        raise DiagramError("dot could not lay the topology out as %s: %s" % (
            fmt, (e.stderr or b"").decode("utf-8", "replace").strip()))


class Spec:
    """The pictures wanted: {path: bytes} for the SVG and, when asked, the PNG."""

    def __init__(self, graph, svg, png=None):
        if not svg:
            raise DiagramError("svg: give the path of the SVG file to write")
        self.svg = os.path.abspath(svg)
        self.png = os.path.abspath(png) if png else None
        if self.png == self.svg:
            raise DiagramError("png: %s is the SVG's path too; give the PNG a path of its own" % png)
        self.source = source(graph)
        self.files = {self.svg: lay_out(self.source, "svg")}
        if self.png:
            self.files[self.png] = lay_out(self.source, "png")
        self.headers = ("%s (before)" % self.svg, "%s (after)" % self.svg)

    @classmethod
    def from_params(cls, params):
        return cls(params["graph"], params["svg"], params.get("png"))


def read(spec):
    """{path: its bytes, or None when there is no such file} for each picture."""
    state = {}
    for path in spec.files:
        if os.path.isdir(path):
            raise DiagramError("%s is a directory: give the path of a file" % path)
        try:
            with open(path, "rb") as f:
                state[path] = f.read()
        except FileNotFoundError:
            state[path] = None
        except OSError as e:
            raise DiagramError("cannot read %s: %s" % (path, e))
    return state


def plan(spec, state):
    """Write each picture that is missing or differs."""
    return [Step("%s %s" % ("write" if state[path] is None else "update", path), objects.write_whole, path, data)
            for path, data in sorted(spec.files.items()) if state[path] != data]


def _text(data):
    return data.decode("utf-8", "replace") if data is not None else ""


def ensure(spec, check_mode=False):
    """Write what differs. Returns {changed, actions, svg, png, written:
    [paths], diff: {before, after} of the SVG's text}."""
    state = read(spec)
    steps = plan(spec, state)
    actions = carry_out(steps, what="drawing the topology", check_mode=check_mode, error=DiagramError)
    return {"changed": bool(steps), "actions": actions, "svg": spec.svg, "png": spec.png,
            "written": [s.args[0] for s in steps],
            "diff": {"before": _text(state[spec.svg]), "after": _text(spec.files[spec.svg])}}
