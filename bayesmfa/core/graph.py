"""Expand a :class:`~bayesmfa.core.system.System` into process instances (nodes) and flow instances (edges)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from bayesmfa.core.system import System
from bayesmfa.errors import SpecError


@dataclass(frozen=True)
class Node:
    """One process instance, e.g. ``mining[region=CN]``."""

    index: int
    process: str
    coords: tuple[tuple[str, Any], ...]

    @property
    def label(self) -> str:
        inner = ",".join(f"{d}={v}" for d, v in self.coords)
        return f"{self.process}[{inner}]" if inner else self.process


@dataclass(frozen=True)
class Edge:
    """One flow instance from node ``source`` to node ``target``.

    ``coords`` are the coords of the flow type's dims (``origin``/``destination``
    for crossed flows).
    """

    index: int
    flow: str
    source: int
    target: int
    coords: tuple[tuple[str, Any], ...]

    @property
    def label(self) -> str:
        inner = ",".join(f"{d}={v}" for d, v in self.coords)
        return f"{self.flow}[{inner}]" if inner else self.flow


class Graph:
    """The flat node/edge expansion of a system, with index arrays for the model.

    Parameters
    ----------
    system : System
        A validated system.
    """

    def __init__(self, system: System) -> None:
        self.system = system
        self.nodes: list[Node] = []
        self._node_index: dict[tuple[str, tuple], int] = {}
        for pname in system.processes:
            coords = system.process_coords(pname)
            for combo in itertools.product(*coords.values()):
                key = tuple(zip(coords.keys(), combo, strict=True))
                node = Node(len(self.nodes), pname, key)
                self._node_index[(pname, key)] = node.index
                self.nodes.append(node)
        self.edges: list[Edge] = []
        for fname, flow in system.flows.items():
            dims = system.flow_dims(fname)
            for src in self._restricted(flow.source, flow.from_coords):
                for dst in self._restricted(flow.target, flow.to_coords):
                    coords = self._edge_coords(flow.cross, src, dst)
                    if coords is None:
                        continue
                    ordered = tuple((d, coords[d]) for d in dims)
                    self.edges.append(Edge(len(self.edges), fname, src.index, dst.index, ordered))
        self._check_reachable()

    def _restricted(self, process: str, coords: dict[str, tuple[Any, ...]]) -> list[Node]:
        return [n for n in self.nodes_of(process) if all(dict(n.coords)[d] in v for d, v in coords.items())]

    def _edge_coords(self, cross: str | None, src: Node, dst: Node) -> dict[str, Any] | None:
        s, t = dict(src.coords), dict(dst.coords)
        out: dict[str, Any] = {}
        for d in s.keys() & t.keys():
            if d == cross:
                if s[d] == t[d]:
                    return None
                d_from, d_to = self.system.cross_dim_names(d)
                out[d_from], out[d_to] = s[d], t[d]
            elif s[d] != t[d]:
                return None
            else:
                out[d] = s[d]
        out.update({d: v for d, v in s.items() if d not in t})
        out.update({d: v for d, v in t.items() if d not in s})
        return out

    def _check_reachable(self) -> None:
        has_out = {e.source for e in self.edges}
        has_in = {e.target for e in self.edges}
        for node in self.nodes:
            if node.process not in self.system.sinks and node.index not in has_out:
                raise SpecError(f"process instance {node.label} has no outgoing flow instance", field=f"processes.{node.process}")
            if node.process not in self.system.inputs and node.index not in has_in:
                raise SpecError(f"process instance {node.label} has no incoming flow instance", field=f"processes.{node.process}")

    def nodes_of(self, process: str) -> list[Node]:
        """Nodes of one process, in coord order."""
        return [n for n in self.nodes if n.process == process]

    def edges_of(self, flow: str) -> list[Edge]:
        """Edges of one flow type."""
        return [e for e in self.edges if e.flow == flow]

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @cached_property
    def input_nodes(self) -> list[Node]:
        """Nodes that receive an external input."""
        return [n for n in self.nodes if n.process in self.system.inputs]

    @cached_property
    def yield_nodes(self) -> list[Node]:
        """Nodes whose process has a yield."""
        return [n for n in self.nodes if self.system.processes[n.process].has_yield]

    @cached_property
    def out_edges(self) -> dict[int, list[int]]:
        """Edge indices leaving each node (nodes without out-edges are absent)."""
        out: dict[int, list[int]] = {}
        for e in self.edges:
            out.setdefault(e.source, []).append(e.index)
        return out

    @cached_property
    def free_edges(self) -> list[int]:
        """Edges whose share logit is free: all but the first out-edge of each node."""
        return [i for edges in self.out_edges.values() for i in edges[1:]]

    @cached_property
    def share_nodes(self) -> list[Node]:
        """Nodes that split their output among two or more edges (they own free share logits)."""
        return [self.nodes[n] for n, edges in self.out_edges.items() if len(edges) > 1]

    @cached_property
    def source_index(self) -> np.ndarray:
        """Source node of each edge, shape (edge,)."""
        return np.array([e.source for e in self.edges], dtype=int)

    @cached_property
    def target_matrix(self) -> np.ndarray:
        """Incidence matrix, shape (edge, node): 1 where the edge enters the node."""
        mat = np.zeros((self.n_edges, self.n_nodes))
        for e in self.edges:
            mat[e.index, e.target] = 1.0
        return mat

    @cached_property
    def source_matrix(self) -> np.ndarray:
        """Incidence matrix, shape (edge, node): 1 where the edge leaves the node."""
        mat = np.zeros((self.n_edges, self.n_nodes))
        mat[np.arange(self.n_edges), self.source_index] = 1.0
        return mat

    @cached_property
    def depth(self) -> int | None:
        """Longest path length in edges, or ``None`` when the graph has a cycle."""
        indeg = np.zeros(self.n_nodes, dtype=int)
        for e in self.edges:
            indeg[e.target] += 1
        level = np.zeros(self.n_nodes, dtype=int)
        queue = [n for n in range(self.n_nodes) if indeg[n] == 0]
        seen = 0
        while queue:
            n = queue.pop()
            seen += 1
            for ei in self.out_edges.get(n, []):
                t = self.edges[ei].target
                level[t] = max(level[t], level[n] + 1)
                indeg[t] -= 1
                if indeg[t] == 0:
                    queue.append(t)
        if seen < self.n_nodes:
            return None
        return int(level.max()) if self.n_nodes else 0

    def node_labels(self, nodes: list[Node] | None = None) -> list[str]:
        """Labels of the given nodes (all by default)."""
        return [n.label for n in (self.nodes if nodes is None else nodes)]

    def edge_labels(self, edges: list[int] | None = None) -> list[str]:
        """Labels of the given edge indices (all by default)."""
        idx = range(self.n_edges) if edges is None else edges
        return [self.edges[i].label for i in idx]
