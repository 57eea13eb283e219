"""Priors as data: load prior tables from YAML and resolve them onto nodes, edges and sources.

A prior file is a YAML mapping with any of these lists (each entry needs a
``source``; a ``justification`` is recommended):

``inputs``
    Level of an external input in the first year, ``dist: LogNormal`` with
    ``median`` (system unit, e.g. kt REO) and ``sigma`` (log scale).
``steps``
    Random-walk step scale, ``target: input`` (log input) or ``target: share``
    (logit shares of the outflows), per process instance: select by process
    and coords. Input walks may take ``innovations: studentt`` (with
    ``nu``) so that rare jumps (a mine closing) need not inflate the scale.
``shares``
    Expected transfer coefficients out of a process (``shares: {key: value}``
    summing to 1, keys are flow names or coords of the receiving process) and
    their spread ``sd_logit``; without ``shares`` the split is uniform.
``yields``
    Fraction of a process's input that leaves it (Beta, Uniform or Fixed).
``noise``
    Relative error (sd on the log scale) of records of one ``source_type``;
    optional ``likelihood: lognormal|studentt|normal`` and ``nu``. With
    ``normal`` the likelihood is additive and the noise is an absolute sd in
    the system unit.
``factors``
    Multiplicative reporting or conversion factors named in records.
``flows``
    A lognormal on the size of flows (each selected flow instance in each
    selected year), stated as a soft constraint (:mod:`bayesmfa.core.flowpriors`).

Entries select what they apply to by ``process`` and by coords of any dim
(``region: CN`` or ``region: [CN, US]``). When several entries match, the
last one wins, so put general entries first and specific ones after.

Selectors are checked against the system before anything is resolved
(:func:`check_prior_selectors`): a coord that is not a coord of its dim, or a
selector value that selects nothing (``process: mining, region: Z``, a
process without that dim, a ``yields`` entry of a process without a yield) is
a :class:`~bayesmfa.errors.PriorError` naming the file and key. Only generic
defaults (no ``process`` other than ``*`` and no coords) may match nothing.
An entry that matches nodes but is overridden on every one of them by later
entries is never used: that is reported as a warning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bayesmfa.core.distributions import DistSpec, parse_dist
from bayesmfa.core.graph import Graph, Node
from bayesmfa.core.system import System
from bayesmfa.errors import BayesMFAError, PriorError
from bayesmfa.yamlio import read_yaml

SECTIONS = ("inputs", "steps", "shares", "yields", "noise", "factors", "flows")
META_KEYS = {"source", "justification", "note"}
STEP_DISTS = ("HalfNormal", "LogNormal", "Exponential", "Gamma", "Fixed")
LIKELIHOODS = ("lognormal", "studentt", "normal")


@dataclass(frozen=True)
class PriorEntry:
    """One validated entry of a prior table, with where it came from."""

    section: str
    file: str
    key: str
    select: tuple[tuple[str, tuple[str, ...]], ...]
    dist: DistSpec | None
    extra: tuple[tuple[str, Any], ...] = ()
    source: str = ""

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.extra).get(name, default)

    def get_select(self, name: str) -> tuple[str, ...]:
        """Values of selector ``name`` (empty when the entry does not select on it)."""
        return dict(self.select).get(name, ())


@dataclass
class Priors:
    """All prior entries of a model, by section, in file order.

    Attributes
    ----------
    entries : dict
        Section name -> list of :class:`PriorEntry`.
    text : str
        Canonical YAML of every file read (for provenance and hashing).
    """

    entries: dict[str, list[PriorEntry]] = field(default_factory=lambda: {s: [] for s in SECTIONS})
    text: str = ""

    @property
    def files(self) -> str:
        return ", ".join(sorted({e.file for es in self.entries.values() for e in es})) or "<priors>"


def load_priors(paths: str | Path | Iterable[str | Path]) -> Priors:
    """Load prior tables from YAML files or directories (every ``*.yaml`` inside, sorted).

    Parameters
    ----------
    paths : path or iterable of paths
        Files or directories.

    Returns
    -------
    Priors

    Raises
    ------
    PriorError
        Naming the file and key of a missing, malformed or impossible prior.
    """
    files = prior_files(paths)
    priors = Priors()
    texts = []
    for f in files:
        doc = read_yaml(f, PriorError)
        add_prior_doc(priors, doc, file=str(f))
        texts.append(f"# {f.name}\n{f.read_text(encoding='utf-8-sig')}")  # a byte-order mark must not change the hash
    priors.text = "\n".join(texts)
    return priors


def prior_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The prior files named by ``paths``: files as given, directories as every ``*.yaml``/``*.yml`` inside, sorted.

    Raises
    ------
    PriorError
        When there are none.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")))
        else:
            files.append(p)
    if not files:
        raise PriorError("no prior files found", file=", ".join(map(str, paths)))
    return files


def priors_from_dict(doc: dict, *, file: str = "<dict>") -> Priors:
    """Build :class:`Priors` from a dict with the layout of a prior file."""
    priors = Priors()
    add_prior_doc(priors, doc, file=file)
    priors.text = yaml.safe_dump(json.loads(json.dumps(doc, default=float)), sort_keys=True)
    return priors


def add_prior_doc(priors: Priors, doc: Any, *, file: str, errors: list[BayesMFAError] | None = None) -> None:
    """Validate one prior document and append its entries to ``priors``.

    Parameters
    ----------
    priors : Priors
        Where the entries go.
    doc : Any
        The parsed document.
    file : str
        Its file name, for errors.
    errors : list, optional
        When given, every bad section or entry is appended to it (and left
        out) instead of the first being raised: ``bayesmfa check`` lists them all.
    """
    if not isinstance(doc, dict):
        _fail(PriorError("a prior file must be a mapping of sections", file=file), errors)
        return
    for section, items in doc.items():
        if section not in SECTIONS:
            _fail(PriorError(f"unknown section; known: {list(SECTIONS)}", file=file, field=str(section)), errors)
            continue
        if not isinstance(items, list):
            _fail(PriorError("a section must be a list of entries", file=file, field=section), errors)
            continue
        for i, item in enumerate(items):
            key = f"{section}[{i}]"
            try:
                if not isinstance(item, dict):
                    raise PriorError("an entry must be a mapping", file=file, field=key)
                priors.entries[section].append(_parse_entry(section, item, file, key))
            except PriorError as err:
                _fail(err, errors)


def _fail(err: BayesMFAError, errors: list[BayesMFAError] | None) -> None:
    """Raise ``err``, or append it to ``errors`` when collecting."""
    if errors is None:
        raise err
    errors.append(err)


_SELECT_KEYS = {
    "inputs": {"process"},
    "steps": {"process", "target"},
    "shares": {"process"},
    "yields": {"process"},
    "noise": {"source_type"},
    "factors": {"name"},
    "flows": {"flow", "year"},
}
_EXTRA_KEYS = {
    "inputs": set(),
    "steps": {"innovations", "nu"},
    "shares": {"shares", "sd_logit"},
    "yields": set(),
    "noise": {"likelihood", "nu"},
    "factors": set(),
    "flows": set(),
}
_ALLOWED = {
    "inputs": ("LogNormal",),
    "steps": STEP_DISTS,
    "yields": ("Beta", "Uniform", "Fixed"),
    "noise": STEP_DISTS,
    "factors": ("LogNormal", "Beta", "Gamma", "Uniform", "Fixed"),
    "flows": ("LogNormal",),
}
_SUPPORT = {"inputs": "positive", "steps": "positive", "yields": "unit", "noise": "positive", "factors": "positive",
            "flows": "positive"}


def _parse_entry(section: str, item: dict, file: str, key: str) -> PriorEntry:
    source = item.get("source")
    if not isinstance(source, str) or not source.strip():
        raise PriorError("every prior needs a non-empty 'source'", file=file, field=f"{key}.source")
    if section == "noise" and "source_type" not in item:
        raise PriorError("a noise prior needs 'source_type'", file=file, field=f"{key}.source_type")
    if section == "factors" and "name" not in item:
        raise PriorError("a factor prior needs 'name'", file=file, field=f"{key}.name")
    if section == "flows" and "flow" not in item:
        raise PriorError("a flow prior needs 'flow' (a flow name)", file=file, field=f"{key}.flow")
    if section == "steps" and item.get("target") not in ("input", "share"):
        raise PriorError("'target' must be 'input' or 'share'", file=file, field=f"{key}.target")
    if section == "steps" and item.get("innovations", "normal") not in ("normal", "studentt"):
        raise PriorError("'innovations' must be 'normal' or 'studentt'", file=file, field=f"{key}.innovations")
    if section == "steps" and "nu" in item and (not isinstance(item["nu"], (int, float)) or item["nu"] <= 0):
        raise PriorError("'nu' must be a positive number", file=file, field=f"{key}.nu")
    dist = None
    dist_keys: set[str] = set()
    if section != "shares":
        dist = parse_dist(item, allowed=_ALLOWED[section], file=file, key=key, support=_SUPPORT[section])
        dist_keys = {"dist", "median"} | set(dict(dist.params))
    select = []
    extra = []
    for k, v in item.items():
        if k in META_KEYS or k in dist_keys:
            continue
        if k in _EXTRA_KEYS[section]:
            extra.append((k, v))
        elif section in ("noise", "factors") and k not in _SELECT_KEYS[section]:
            raise PriorError(f"unknown key {k!r}", file=file, field=f"{key}.{k}")
        else:
            values = v if isinstance(v, list) else [v]
            select.append((k, tuple(str(x) for x in values)))
    entry = PriorEntry(section, file, key, tuple(select), dist, tuple(extra), source)
    if section == "shares":
        _check_share_entry(entry)
    if section == "noise":
        lik = entry.get("likelihood", "lognormal")
        if lik not in LIKELIHOODS:
            raise PriorError(f"likelihood must be one of {LIKELIHOODS}", file=file, field=f"{key}.likelihood")
        nu = entry.get("nu", 4)
        if not isinstance(nu, (int, float)) or nu <= 0:
            raise PriorError("nu must be a positive number", file=file, field=f"{key}.nu")
    return entry


def _positive_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and x > 0 and np.isfinite(x)


def _check_share_entry(entry: PriorEntry) -> None:
    sd = entry.get("sd_logit")
    if sd is None:
        raise PriorError("'sd_logit' is missing", file=entry.file, field=f"{entry.key}.sd_logit")
    if isinstance(sd, dict):
        if not sd:
            raise PriorError("'sd_logit' mapping is empty", file=entry.file, field=f"{entry.key}.sd_logit")
        for k, v in sd.items():
            if not _positive_number(v):
                raise PriorError(f"sd_logit of {k!r} must be a positive number, got {v!r}", file=entry.file,
                                 field=f"{entry.key}.sd_logit.{k}")
    elif not _positive_number(sd):
        raise PriorError(f"'sd_logit' must be a positive number or a mapping key -> number, got {sd!r}", file=entry.file,
                         field=f"{entry.key}.sd_logit")
    shares = entry.get("shares")
    if shares is None:
        return
    if not isinstance(shares, dict) or not shares:
        raise PriorError("'shares' must be a mapping key -> share", file=entry.file, field=f"{entry.key}.shares")
    for k, v in shares.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
            raise PriorError(f"share {k!r} must be in (0, 1], got {v!r}", file=entry.file, field=f"{entry.key}.shares.{k}")
    total = float(sum(shares.values()))
    if abs(total - 1.0) > 1e-6:
        raise PriorError(f"shares sum to {total:g}, not 1", file=entry.file, field=f"{entry.key}.shares")


# --------------------------------------------------------------------------- resolution


def _matches(entry: PriorEntry, system: System, process: str, coords: dict[str, Any], extra: dict[str, str] | None = None) -> bool:
    extra = extra or {}
    for k, values in entry.select:
        if k == "process":
            if process not in values and "*" not in values:
                return False
        elif k in extra:
            if extra[k] not in values:
                return False
        elif k in system.dims:
            if k not in coords or str(coords[k]) not in values:
                return False
        else:
            raise PriorError(f"unknown selector {k!r} (not a dim of the system)", file=entry.file, field=f"{entry.key}.{k}")
    return True


def _last_match(
    priors: Priors, section: str, system: System, process: str, coords: dict[str, Any], what: str, extra: dict[str, str] | None = None
) -> PriorEntry:
    found = None
    for entry in priors.entries[section]:
        if _matches(entry, system, process, coords, extra):
            found = entry
    if found is None:
        raise PriorError(f"no prior in '{section}' matches {what}", file=priors.files, field=section)
    return found


def _check_processes(priors: Priors, system: System) -> None:
    for entries in priors.entries.values():
        for e in entries:
            for k, values in e.select:
                if k == "process":
                    bad = [v for v in values if v != "*" and v not in system.processes]
                    if bad:
                        raise PriorError(f"unknown process {bad}", file=e.file, field=f"{e.key}.process")


#: Structural sections: (section, the ``target`` of ``steps`` entries or None, what their nodes are called).
_TARGETS = (
    ("inputs", None, "input node"),
    ("steps", "input", "input node"),
    ("steps", "share", "node that splits its output"),
    ("shares", None, "node that splits its output"),
    ("yields", None, "node with a yield"),
)


def check_prior_selectors(priors: Priors, graph: Graph) -> list[str]:
    """Check that every structural prior entry selects something in ``graph``.

    Every value of every selector must select at least one node of the
    entry's kind (input nodes for ``inputs`` and input ``steps``, splitting
    nodes for ``shares`` and share ``steps``, yield nodes for ``yields``):
    a coord that is not a coord of its dim, a process without that dim or
    that coord, or a process of the wrong kind is an error. Generic defaults
    (no ``process`` but ``*`` and no coords) are exempt. ``noise`` and
    ``factors`` entries are not checked here: their names come from the
    records (see :mod:`bayesmfa.core.plausibility`).

    Parameters
    ----------
    priors : Priors
        Prior tables.
    graph : Graph
        The expanded system.

    Returns
    -------
    list of str
        One warning per entry that matches nodes but is overridden on every
        one of them by a later entry (so it is never used).

    Raises
    ------
    PriorError
        Naming the file and key (``inputs[3].region``) of the first selector
        that is unknown, names an unknown coord, or selects nothing.
    """
    system = graph.system
    _check_processes(priors, system)
    for section in ("inputs", "steps", "shares", "yields"):
        for entry in priors.entries[section]:
            _check_selector_coords(entry, system)
    warnings = []
    for section, target, noun in _TARGETS:
        nodes = _nodes_for(graph, section, target)
        entries = [e for e in priors.entries[section] if target is None or e.get_select("target") == (target,)]
        extra = {"target": target} if target else None
        for entry in entries:
            _check_entry_selects(entry, system, nodes, noun, extra)
        warnings.extend(_shadowed(entries, system, nodes, noun, extra))
    return warnings


def _nodes_for(graph: Graph, section: str, target: str | None) -> list[Node]:
    """Nodes the entries of a structural section apply to (``steps``: input or splitting nodes by target)."""
    if section == "inputs" or target == "input":
        return graph.input_nodes
    return graph.yield_nodes if section == "yields" else graph.share_nodes


def _check_selector_coords(entry: PriorEntry, system: System) -> None:
    """Every selector is ``process``, ``target`` or a dim, and every coord is a coord of its dim."""
    for k, values in entry.select:
        if k == "process" or (k == "target" and entry.section == "steps"):
            continue
        if k not in system.dims:
            raise PriorError(f"unknown selector {k!r}: not 'process' nor a dim of system {system.name!r} (dims: {', '.join(system.dims)})",
                             file=entry.file, field=f"{entry.key}.{k}")
        known = [str(c) for c in system.dims[k]]
        for v in values:
            if v not in known:
                raise PriorError(f"coord {v!r} is not a {k} of system {system.name!r} (known: {', '.join(known)})",
                                 file=entry.file, field=f"{entry.key}.{k}")


def _is_generic(entry: PriorEntry) -> bool:
    """A default for every node of its kind: no coords, and no process or ``process: '*'``."""
    return all(k == "target" or (k == "process" and "*" in values) for k, values in entry.select)


def _check_entry_selects(entry: PriorEntry, system: System, nodes: list[Node], noun: str, extra: dict[str, str] | None) -> None:
    """Each value of each selector (the others as given) must match at least one node."""
    if _is_generic(entry):
        return
    for i, (k, values) in enumerate(entry.select):
        if k == "target":
            continue
        for v in values:
            if v == "*":
                continue
            narrowed = replace(entry, select=entry.select[:i] + ((k, (v,)),) + entry.select[i + 1:])
            if not any(_matches(narrowed, system, n.process, dict(n.coords), extra) for n in nodes):
                at, reason = _why_nothing(narrowed, system, nodes, noun)
                raise PriorError(f"selects no {noun}: {reason}", file=entry.file, field=f"{entry.key}.{at or k}")


def _why_nothing(entry: PriorEntry, system: System, nodes: list[Node], noun: str) -> tuple[str | None, str]:
    """The selector at fault (None: their combination) and why an entry matches none of ``nodes``, in words."""
    sel = {k: v for k, v in entry.select if k != "target"}
    procs = [p for p in sel.get("process", ("*",)) if p != "*"]
    for p in procs:
        if not any(n.process == p for n in nodes):
            return "process", f"process {p!r} has no {noun}"
        for k, values in sel.items():
            if k == "process":
                continue
            covered = system.process_coords(p).get(k)
            if covered is None:
                return k, f"process {p!r} has no dim {k!r} (its dims: {', '.join(system.processes[p].dims) or 'none'})"
            if not set(values) & {str(c) for c in covered}:
                return k, f"process {p!r} covers {k} {', '.join(map(str, covered))} only, not {values[0]!r}"
    wanted = ", ".join(f"{k}={'|'.join(v)}" for k, v in sel.items())
    return None, f"no {noun} has {wanted}"


def _shadowed(entries: list[PriorEntry], system: System, nodes: list[Node], noun: str, extra: dict[str, str] | None) -> list[str]:
    """Entries that match nodes but lose every one of them to a later entry (last match wins)."""
    winner: dict[int, PriorEntry] = {}
    matched: dict[int, list[int]] = {}
    for i, entry in enumerate(entries):
        hits = [n.index for n in nodes if _matches(entry, system, n.process, dict(n.coords), extra)]
        matched[i] = hits
        for h in hits:
            winner[h] = entry
    out = []
    for i, entry in enumerate(entries):
        if matched[i] and not _is_generic(entry) and all(winner[h] is not entry for h in matched[i]):
            later = sorted({winner[h].key for h in matched[i]})
            out.append(f"{entry.file} field '{entry.key}': never used: every {noun} it selects is overridden by a later entry "
                       f"({', '.join(later)}; the last matching entry wins, put general entries first)")
    return out


@dataclass(frozen=True)
class ResolvedPriors:
    """Priors resolved onto the graph, as arrays ordered like the model's coords.

    Attributes
    ----------
    input_level : list of DistSpec
        Log-level prior of each input node (dim ``input_node``).
    input_step : list of DistSpec
        Step-size prior of each input node's random walk (dim ``input_node``).
    input_nu : ndarray
        Degrees of freedom of each input node's innovations (``inf``: Gaussian).
    share_step : list of DistSpec
        Step-size prior of the share walks of each splitting node (dim ``share_node``).
    share_mean, share_sd : ndarray
        Prior mean and sd of each free edge's logit (dim ``share_edge``).
    yields : list of DistSpec
        Per yield node.
    """

    input_level: list[DistSpec]
    input_step: list[DistSpec]
    input_nu: np.ndarray
    share_mean: np.ndarray
    share_sd: np.ndarray
    share_step: list[DistSpec]
    yields: list[DistSpec]


#: The step "prior" of a system with one year: a constant the model never uses (there is no step to take).
UNUSED_STEP = PriorEntry("steps", "<single year>", "steps", (), DistSpec("Fixed", (("value", 1.0),)))


def resolve_priors(priors: Priors, graph: Graph, errors: list[BayesMFAError] | None = None) -> ResolvedPriors | None:
    """Resolve the structural priors onto the nodes and edges of ``graph``.

    Parameters
    ----------
    priors : Priors
        Prior tables.
    graph : Graph
        The expanded system.
    errors : list, optional
        When given, every node or entry that fails is appended to it instead
        of the first being raised, and ``None`` is returned if any did.

    Raises
    ------
    PriorError
        When a node or edge has no matching prior, a share key matches
        nothing, or a selector selects nothing (:func:`check_prior_selectors`).
    """
    system = graph.system
    failed: list[BayesMFAError] = []

    def attempt(thunk: Any) -> Any:
        try:
            return thunk()
        except PriorError as err:
            _fail(err, errors)
            failed.append(err)
            return None

    attempt(lambda: check_prior_selectors(priors, graph))
    level = [
        attempt(lambda n=n: _last_match(priors, "inputs", system, n.process, dict(n.coords), f"input node {n.label}").dist)
        for n in graph.input_nodes
    ]
    # one year has no year-on-year steps: a system of one year needs no step priors (one given is unused)
    single_year = len(system.years) == 1
    step_entries = [
        UNUSED_STEP if single_year else
        attempt(lambda n=n: _last_match(priors, "steps", system, n.process, dict(n.coords), f"input steps of {n.label}",
                                        {"target": "input"}))
        for n in graph.input_nodes
    ]
    share_step = [
        UNUSED_STEP.dist if single_year else
        attempt(lambda n=n: _last_match(priors, "steps", system, n.process, dict(n.coords), f"share steps of {n.label}",
                                        {"target": "share"}).dist)
        for n in graph.share_nodes
    ]
    mean = np.zeros(graph.n_edges)
    sd = np.ones(graph.n_edges)
    for node_idx, edges in graph.out_edges.items():
        if len(edges) < 2:
            continue
        node = graph.nodes[node_idx]
        entry = attempt(lambda node=node: _last_match(priors, "shares", system, node.process, dict(node.coords),
                                                       f"the split of {node.label}"))
        p = None if entry is None else attempt(lambda entry=entry, node=node, edges=edges: _share_means(entry, graph, node, edges))
        if p is not None:
            mean[edges] = np.log(p / p[0])
            widths = attempt(lambda entry=entry, node=node, edges=edges: _sd_logits(entry, graph, node, edges))
            if widths is not None:
                sd[edges] = widths
    free = graph.free_edges
    yields = [
        attempt(lambda n=n: _last_match(priors, "yields", system, n.process, dict(n.coords), f"yield of {n.label}").dist)
        for n in graph.yield_nodes
    ]
    if failed:
        return None
    input_step = [e.dist for e in step_entries]
    input_nu = np.array([float(e.get("nu", 4)) if e.get("innovations") == "studentt" else np.inf for e in step_entries])
    return ResolvedPriors(level, input_step, input_nu, mean[free], sd[free], share_step, yields)


def _edge_keys(graph: Graph, node: Node, edges: list[int]) -> list[set[str]]:
    """The keys (flow name, coords that tell them apart) of each outgoing edge of ``node``, for ``shares`` and ``sd_logit``."""
    keys_of = []
    for ei in edges:
        edge = graph.edges[ei]
        target = graph.nodes[edge.target]
        keys = {edge.flow} | {str(v) for d, v in edge.coords}
        keys -= {str(v) for _, v in node.coords} - {str(v) for _, v in target.coords}
        keys_of.append(keys)
    return keys_of


def _sd_logits(entry: PriorEntry, graph: Graph, node: Node, edges: list[int]) -> np.ndarray:
    """The first-year spread of each outgoing edge's logit: ``sd_logit`` a number, or a mapping whose keys are
    matched as ``shares`` keys and whose ``"*"`` is the default for the edges no key matches."""
    sd = entry.get("sd_logit")
    if not isinstance(sd, dict):
        return np.full(len(edges), float(sd))
    out = np.full(len(edges), float(sd["*"]) if "*" in sd else np.nan)
    keys_of = _edge_keys(graph, node, edges)
    for key, value in sd.items():
        if key == "*":
            continue
        hit = [i for i, keys in enumerate(keys_of) if str(key) in keys]
        if not hit:
            raise PriorError(f"sd_logit key {key!r} matches no flow out of {node.label}", file=entry.file,
                             field=f"{entry.key}.sd_logit.{key}")
        out[hit] = float(value)
    # the first edge is the reference (its logit is 0): its width is never used
    missing = [graph.edges[edges[i]].label for i in np.flatnonzero(np.isnan(out)) if i > 0]
    if missing:
        raise PriorError(f"sd_logit for {node.label} does not cover {missing} (add a '*' default)", file=entry.file,
                         field=f"{entry.key}.sd_logit")
    return np.nan_to_num(out, nan=1.0)


def _share_means(entry: PriorEntry, graph: Graph, node: Node, edges: list[int]) -> np.ndarray:
    shares = entry.get("shares")
    if shares is None:
        return np.full(len(edges), 1.0 / len(edges))
    keys_of = _edge_keys(graph, node, edges)
    p = np.zeros(len(edges))
    for key, value in shares.items():
        hit = [i for i, keys in enumerate(keys_of) if str(key) in keys]
        if not hit:
            raise PriorError(f"share key {key!r} matches no flow out of {node.label}", file=entry.file, field=f"{entry.key}.shares.{key}")
        if np.any(p[hit] > 0):
            raise PriorError(f"share key {key!r} overlaps another key for {node.label}", file=entry.file, field=f"{entry.key}.shares.{key}")
        p[hit] = float(value) / len(hit)
    missing = [graph.edges[edges[i]].label for i in np.flatnonzero(p == 0)]
    if missing:
        raise PriorError(f"shares for {node.label} do not cover {missing}", file=entry.file, field=f"{entry.key}.shares")
    return p


def resolve_named(priors: Priors, section: str, names: Iterable[str], selector: str) -> dict[str, PriorEntry]:
    """Resolve ``noise`` (by source type) or ``factors`` (by name) priors.

    Raises
    ------
    PriorError
        When a name used by the records has no prior.
    """
    out = {}
    for name in names:
        found = None
        for entry in priors.entries[section]:
            values = dict(entry.select).get(selector, ())
            if name in values or "*" in values:
                found = entry
        if found is None:
            raise PriorError(f"no prior in '{section}' for {selector} {name!r}", file=priors.files, field=section)
        out[name] = found
    return out
