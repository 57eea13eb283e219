"""Declarative MFA system: dimensions, processes, flows and the system boundary.

A :class:`System` is built from a YAML file (:func:`load_system`) or a dict
(:func:`system_from_dict`) and validated up front. It knows nothing about any
commodity. :mod:`bayesmfa.core.graph` expands it into process instances (nodes) and
flow instances (edges).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bayesmfa.errors import SpecError
from bayesmfa.yamlio import read_text, read_yaml

#: Conversion of common mass units to kilotonnes.
MASS_UNITS_IN_KT: dict[str, float] = {"g": 1e-9, "kg": 1e-6, "t": 1e-3, "kt": 1.0, "Mt": 1e3}
RESERVED_DIMS = ("origin", "destination")


@dataclass(frozen=True)
class Process:
    """A process (stage) of the system.

    Parameters
    ----------
    name : str
        Unique name, e.g. ``"mining"``.
    dims : tuple of str
        Dims the process is indexed by, e.g. ``("region",)``.
    coords : dict
        Optional restriction of coords per dim (e.g. only some regions).
    has_yield : bool
        Whether part of the input is lost (a Beta yield is learned).
    unregistered : bool
        Whether the process lies outside the official statistics (illegal
        mining, say): every flow out of it is unregistered
        (:attr:`FlowType.unregistered`). YAML key ``unregistered: true``.
    """

    name: str
    dims: tuple[str, ...] = ()
    coords: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    has_yield: bool = False
    unregistered: bool = False


@dataclass(frozen=True)
class FlowType:
    """A family of flows from one process to another.

    Parameters
    ----------
    name : str
        Unique name (shares the namespace of processes).
    source, target : str
        Process names.
    cross : str or None
        Dim along which source and target differ (trade). Flow instances then
        carry the dims ``origin``/``destination`` (for the trade dim) instead
        of that dim, and never connect a coord to itself.
    product : str or None
        Label of what the flow carries (metadata for summaries and plots).
    from_coords, to_coords : dict
        Optional restriction of the source / target process instances the
        flow connects (e.g. only to ``region: [CN]``).
    unregistered : bool
        Whether the flow is missing from the official statistics (smuggling,
        the output of illegal mining): figures draw it apart (the Sankey's red
        links). ``True`` when the system file says ``unregistered: true`` on
        the flow or on its source process (metadata only: the model treats
        it like any other flow).
    """

    name: str
    source: str
    target: str
    cross: str | None = None
    product: str | None = None
    from_coords: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    to_coords: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    unregistered: bool = False


@dataclass(frozen=True)
class Stock:
    """A stock held by a process (e.g. a state stockpile of oxides).

    The stock's yearly change can take either sign: it is the difference of
    two non-negative latent flows, so the mass balance of every process stays
    exact in every draw. A stock ``S`` on process ``p`` expands into

    * process ``S`` (a boundary sink): what ``p`` adds to the stock, received
      through flow ``S_addition`` (``p -> S``, a share of ``p``'s output);
    * process ``S_withdrawal`` (a boundary input): what is taken out of the
      stock, delivered back to ``p`` through flow ``S_release``
      (``S_withdrawal -> p``, a latent external input with a random-walk prior).

    After sampling, ``stock_change_S`` = additions - releases and ``stock_S``
    = the initial level plus the running sum of the changes from the first
    year (without ``initial``: the change since the start of the first year)
    are added to the posterior.

    Parameters
    ----------
    name : str
        Name of the stock (shares the namespace of processes and flows).
    process : str
        The process that holds it.
    coords : dict
        Optional restriction of the process's coords (e.g. ``region: [CN]``).
    initial : float or None
        Level of the stock at the start of the first year, in the system
        unit, the same for every instance; needed for records of its level
        (``S.level``). ``None``: not given.
    """

    name: str
    process: str
    coords: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    initial: float | None = None

    @property
    def addition(self) -> str:
        """Name of the flow into the stock."""
        return f"{self.name}_addition"

    @property
    def release(self) -> str:
        """Name of the flow out of the stock."""
        return f"{self.name}_release"

    @property
    def withdrawal(self) -> str:
        """Name of the boundary-input process that delivers the releases."""
        return f"{self.name}_withdrawal"


@dataclass(frozen=True)
class System:
    """A validated system definition.

    Attributes
    ----------
    name : str
        Name of the system.
    unit : str
        Unit of every flow (e.g. ``"kt"``).
    time_dim : str
        Name of the time dim (``"year"``).
    years : tuple of int
        Time coords.
    dims : dict
        Non-time dims and their coords.
    processes : dict
        :class:`Process` by name, in declaration order.
    flows : dict
        :class:`FlowType` by name, in declaration order.
    inputs : tuple of str
        Processes that receive an external (latent) input.
    sinks : tuple of str
        Processes that keep what they receive (final use).
    trade_dim : str or None
        The dim whose crossing gives ``origin``/``destination``.
    units : dict
        Unit name -> factor to the system unit.
    stocks : dict
        :class:`Stock` by name (their generated processes and flows are in
        ``processes``, ``flows``, ``inputs`` and ``sinks``).
    groups : dict
        Process groups: name -> member processes (same dims). A group is one
        quantity in records (``<group>``: the members' summed output;
        ``<group>.input``: their summed input) and in the fit
        (``input_<group>``, ``output_<group>``).
    source_text : str
        The YAML the system was read from (kept for provenance).
    """

    name: str
    unit: str
    time_dim: str
    years: tuple[int, ...]
    dims: dict[str, tuple[Any, ...]]
    processes: dict[str, Process]
    flows: dict[str, FlowType]
    inputs: tuple[str, ...]
    sinks: tuple[str, ...]
    trade_dim: str | None
    units: dict[str, float]
    stocks: dict[str, Stock] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source_text: str = ""

    def process_coords(self, name: str) -> dict[str, tuple[Any, ...]]:
        """Coords of every dim of process ``name`` (restricted where declared)."""
        proc = self.processes[name]
        return {d: proc.coords.get(d, self.dims[d]) for d in proc.dims}

    def flow_dims(self, name: str) -> tuple[str, ...]:
        """Dims of flow type ``name`` (without the time dim)."""
        flow = self.flows[name]
        src, dst = self.processes[flow.source], self.processes[flow.target]
        out: list[str] = []
        for d in src.dims + tuple(x for x in dst.dims if x not in src.dims):
            if d == flow.cross:
                out.extend(self.cross_dim_names(d))
            else:
                out.append(d)
        return tuple(out)

    def cross_dim_names(self, dim: str) -> tuple[str, str]:
        """Names of the from/to dims when flows cross ``dim``."""
        if dim == self.trade_dim:
            return RESERVED_DIMS
        return (f"{dim}_from", f"{dim}_to")

    def all_coords(self) -> dict[str, list[Any]]:
        """Every dim (including time and crossed dims) with its coords."""
        coords: dict[str, list[Any]] = {self.time_dim: list(self.years)}
        for d, values in self.dims.items():
            coords[d] = list(values)
        for flow in self.flows.values():
            if flow.cross:
                for name in self.cross_dim_names(flow.cross):
                    coords[name] = list(self.dims[flow.cross])
        return coords

    def to_yaml(self) -> str:
        """The YAML text of the system (the original text when loaded from YAML)."""
        return self.source_text


def load_system(path: str | Path) -> System:
    """Load and validate a system from a YAML file.

    Parameters
    ----------
    path : str or Path
        YAML file with keys ``name, unit, time, dims, processes, boundary, flows``.

    Returns
    -------
    System
        The validated system.

    Raises
    ------
    SpecError
        Naming the file and the offending key.
    """
    doc = read_yaml(path, SpecError)
    return system_from_dict(doc, file=str(path), source_text=read_text(path, SpecError))


def _need(doc: dict, key: str, kind: type | tuple[type, ...], file: str, prefix: str = "") -> Any:
    where = f"{prefix}{key}"
    if not isinstance(doc, dict) or key not in doc:
        raise SpecError("required key is missing", file=file, field=where)
    value = doc[key]
    if not isinstance(value, kind):
        raise SpecError(f"expected {getattr(kind, '__name__', kind)}, got {value!r}", file=file, field=where)
    return value


def _flag(body: dict, key: str, file: str, prefix: str) -> bool:
    """An optional boolean ``key`` of ``body`` (absent: ``False``); anything but ``true``/``false`` is an error."""
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise SpecError(f"expected true or false, got {value!r}", file=file, field=f"{prefix}.{key}")
    return value


def _named_entries(value: Any, file: str, key: str) -> list[tuple[str, dict]]:
    """Accept a mapping name -> body or a list of bodies with ``name``."""
    if isinstance(value, dict):
        return [(str(k), v if v is not None else {}) for k, v in value.items()]
    if isinstance(value, list):
        out = []
        seen: set[str] = set()
        for i, body in enumerate(value):
            if not isinstance(body, dict) or "name" not in body:
                raise SpecError("each entry needs a 'name'", file=file, field=f"{key}[{i}]")
            name = str(body["name"])
            if name in seen:
                raise SpecError(f"duplicate name {name!r}", file=file, field=f"{key}[{i}].name")
            seen.add(name)
            out.append((name, {k: v for k, v in body.items() if k != "name"}))
        return out
    raise SpecError("expected a mapping or a list", file=file, field=key)


def _time(doc: dict, file: str) -> tuple[str, tuple[int, ...]]:
    time = _need(doc, "time", dict, file)
    dim = str(time.get("dim", "year"))
    if "years" in time:
        years = time["years"]
        if not isinstance(years, list) or not years:
            raise SpecError("expected a non-empty list of years", file=file, field="time.years")
    else:
        start = _need(time, "start", int, file, "time.")
        end = _need(time, "end", int, file, "time.")
        if end < start:
            raise SpecError(f"end {end} is before start {start}", file=file, field="time.end")
        years = list(range(start, end + 1))
    if any(not isinstance(y, int) for y in years) or sorted(set(years)) != list(years):
        raise SpecError("years must be increasing distinct integers", file=file, field="time")
    return dim, tuple(years)


def _dims(doc: dict, time_dim: str, file: str) -> dict[str, tuple[Any, ...]]:
    raw = _need(doc, "dims", dict, file)
    dims: dict[str, tuple[Any, ...]] = {}
    for name, values in raw.items():
        name = str(name)
        if name == time_dim or name in RESERVED_DIMS:
            raise SpecError(f"dim name {name!r} is reserved", file=file, field=f"dims.{name}")
        if not isinstance(values, list) or not values:
            raise SpecError("expected a non-empty list of coords", file=file, field=f"dims.{name}")
        if len(set(map(str, values))) != len(values):
            raise SpecError("duplicate coords", file=file, field=f"dims.{name}")
        dims[name] = tuple(str(v) for v in values)
    return dims


#: Process names whose ``input_<name>`` array would clash with a parameter of the model
#: (``input_step``, ``input_log_level``...; ``input_step_<family>`` when step priors mix families).
RESERVED_PROCESS_NAMES = frozenset({"step", "level_z", "log", "log_level", "log_innovation", "log_walk", "node"})


def _processes(doc: dict, dims: dict, file: str) -> dict[str, Process]:
    procs: dict[str, Process] = {}
    for name, body in _named_entries(_need(doc, "processes", (dict, list), file), file, "processes"):
        key = f"processes.{name}"
        if not isinstance(body, dict):
            raise SpecError("expected a mapping", file=file, field=key)
        unknown = set(body) - {"dims", "coords", "yield", "description", "unregistered"}
        if unknown:
            raise SpecError(f"unknown keys {sorted(unknown)}", file=file, field=key)
        if name in RESERVED_PROCESS_NAMES or name.startswith("step_"):
            raise SpecError(f"process name {name!r} is reserved: the model's parameter 'input_{name}' has that name; "
                            "rename the process", file=file, field=key)
        pdims = tuple(str(d) for d in body.get("dims", []) or [])
        for d in pdims:
            if d not in dims:
                raise SpecError(f"dim {d!r} is not declared in 'dims'", file=file, field=f"{key}.dims")
        if len(set(pdims)) != len(pdims):
            raise SpecError("a dim is listed twice", file=file, field=f"{key}.dims")
        coords: dict[str, tuple[Any, ...]] = {}
        for d, values in (body.get("coords") or {}).items():
            if d not in pdims:
                raise SpecError(f"coords given for dim {d!r} the process does not have", file=file, field=f"{key}.coords")
            values = tuple(str(v) for v in values)
            bad = [v for v in values if v not in dims[d]]
            if bad or not values:
                raise SpecError(f"unknown coords {bad} for dim {d!r}", file=file, field=f"{key}.coords.{d}")
            coords[d] = values
        procs[name] = Process(name=name, dims=pdims, coords=coords, has_yield=bool(body.get("yield", False)),
                              unregistered=_flag(body, "unregistered", file, key))
    if not procs:
        raise SpecError("no processes declared", file=file, field="processes")
    return procs


def _flows(doc: dict, procs: dict[str, Process], dims_of: dict[str, tuple[Any, ...]], file: str) -> dict[str, FlowType]:
    flows: dict[str, FlowType] = {}
    for name, body in _named_entries(_need(doc, "flows", (dict, list), file), file, "flows"):
        key = f"flows.{name}"
        if name in procs:
            raise SpecError(f"flow name {name!r} is already a process name", file=file, field=key)
        unknown = set(body) - {"from", "to", "cross", "product", "description", "from_coords", "to_coords", "unregistered"}
        if unknown:
            raise SpecError(f"unknown keys {sorted(unknown)}", file=file, field=key)
        src = str(_need(body, "from", str, file, f"{key}."))
        dst = str(_need(body, "to", str, file, f"{key}."))
        for end, proc in (("from", src), ("to", dst)):
            if proc not in procs:
                raise SpecError(f"unknown process {proc!r}", file=file, field=f"{key}.{end}")
        cross = body.get("cross")
        if cross is not None:
            cross = str(cross)
            if cross not in procs[src].dims or cross not in procs[dst].dims:
                raise SpecError(f"cross dim {cross!r} must be a dim of both processes", file=file, field=f"{key}.cross")
        elif src == dst:
            raise SpecError("a flow from a process to itself", file=file, field=key)
        product = body.get("product")
        ends = {}
        for end, proc in (("from_coords", src), ("to_coords", dst)):
            ends[end] = {}
            for d, values in (body.get(end) or {}).items():
                values = tuple(str(v) for v in (values if isinstance(values, list) else [values]))
                if d not in procs[proc].dims:
                    raise SpecError(f"process {proc!r} has no dim {d!r}", file=file, field=f"{key}.{end}")
                bad = [v for v in values if v not in procs[proc].coords.get(d, dims_of[d])]
                if bad or not values:
                    raise SpecError(f"unknown coords {bad} for dim {d!r}", file=file, field=f"{key}.{end}.{d}")
                ends[end][d] = values
        unregistered = _flag(body, "unregistered", file, key)
        if procs[src].unregistered and "unregistered" in body and not unregistered:
            raise SpecError(f"its source process {src!r} is unregistered, so every flow out of it is: drop 'unregistered: false'",
                            file=file, field=f"{key}.unregistered")
        flows[name] = FlowType(name, src, dst, cross, None if product is None else str(product), ends["from_coords"], ends["to_coords"],
                               unregistered=unregistered or procs[src].unregistered)
    return flows


def system_from_dict(doc: dict, *, file: str = "<dict>", source_text: str | None = None) -> System:
    """Build and validate a :class:`System` from a dict (same layout as the YAML file).

    Parameters
    ----------
    doc : dict
        The system definition.
    file : str
        Name used in error messages.
    source_text : str, optional
        The YAML text (kept for provenance); generated from ``doc`` when omitted.

    Returns
    -------
    System
    """
    if not isinstance(doc, dict):
        raise SpecError("the system definition must be a mapping", file=file)
    unknown = set(doc) - {"name", "unit", "time", "dims", "processes", "boundary", "flows", "trade_dim", "units", "description", "stocks",
                        "groups"}
    if unknown:
        raise SpecError(f"unknown top-level keys {sorted(unknown)}", file=file)
    name = str(_need(doc, "name", str, file))
    unit = str(doc.get("unit", "kt"))
    time_dim, years = _time(doc, file)
    dims = _dims(doc, time_dim, file)
    procs = _processes(doc, dims, file)
    flows = _flows(doc, procs, dims, file)
    boundary = _need(doc, "boundary", dict, file)
    inputs = tuple(str(p) for p in boundary.get("inputs", []) or [])
    sinks = tuple(str(p) for p in boundary.get("sinks", []) or [])
    for key, names in (("inputs", inputs), ("sinks", sinks)):
        for p in names:
            if p not in procs:
                raise SpecError(f"unknown process {p!r}", file=file, field=f"boundary.{key}")
    stocks = _stocks(doc, procs, flows, sinks, dims, file)
    for stock in stocks.values():
        inputs, sinks = (*inputs, stock.withdrawal), (*sinks, stock.name)
    if not inputs:
        raise SpecError("at least one input process is needed", file=file, field="boundary.inputs")
    has_in = {f.target for f in flows.values()}
    has_out = {f.source for f in flows.values()}
    for p in procs:
        if p not in has_in and p not in inputs:
            raise SpecError(f"process {p!r} receives no flow and is not a boundary input", file=file, field="boundary.inputs")
        if p not in has_out and p not in sinks:
            raise SpecError(f"process {p!r} sends no flow and is not a boundary sink", file=file, field="boundary.sinks")
        if p in sinks and p in has_out:
            raise SpecError(f"sink {p!r} must not send flows", file=file, field="boundary.sinks")
        if p in sinks and procs[p].has_yield:
            raise SpecError(f"sink {p!r} cannot have a yield", file=file, field=f"processes.{p}.yield")
    trade_dim = doc.get("trade_dim", "region" if "region" in dims else None)
    if trade_dim is not None and trade_dim not in dims:
        raise SpecError(f"trade_dim {trade_dim!r} is not a declared dim", file=file, field="trade_dim")
    units = dict(MASS_UNITS_IN_KT) if unit in MASS_UNITS_IN_KT else {unit: 1.0}
    if unit in MASS_UNITS_IN_KT:
        units = {u: f / MASS_UNITS_IN_KT[unit] for u, f in units.items()}
    for u, f in (doc.get("units") or {}).items():
        if not isinstance(f, (int, float)) or f <= 0:
            raise SpecError("unit factors must be positive numbers", file=file, field=f"units.{u}")
        units[str(u)] = float(f)
    groups = _groups(doc, procs, flows, stocks, file)
    text = source_text if source_text is not None else yaml.safe_dump(json.loads(json.dumps(doc, default=float)), sort_keys=False)
    return System(
        name=name,
        unit=unit,
        time_dim=time_dim,
        years=years,
        dims=dims,
        processes=procs,
        flows=flows,
        inputs=inputs,
        sinks=sinks,
        trade_dim=trade_dim,
        units=units,
        stocks=stocks,
        groups=groups,
        source_text=text,
    )


def _groups(doc: dict, procs: dict[str, Process], flows: dict[str, FlowType], stocks: dict[str, Stock],
            file: str) -> dict[str, tuple[str, ...]]:
    """Parse ``groups``: ``{name: {processes: [...], description: ...}}`` or ``{name: [...]}``."""
    groups: dict[str, tuple[str, ...]] = {}
    for name, body in _named_entries(doc.get("groups") or {}, file, "groups"):
        key = f"groups.{name}"
        if isinstance(body, list):
            body = {"processes": body}
        if not isinstance(body, dict):
            raise SpecError("expected a mapping with 'processes' (or a list of processes)", file=file, field=key)
        unknown = set(body) - {"processes", "description"}
        if unknown:
            raise SpecError(f"unknown keys {sorted(unknown)}", file=file, field=key)
        if name in procs or name in flows or name in stocks:
            raise SpecError(f"group name {name!r} is already a process, flow or stock name", file=file, field=key)
        members = body.get("processes")
        if not isinstance(members, list) or not members:
            raise SpecError("expected a non-empty list of processes", file=file, field=f"{key}.processes")
        members = [str(m) for m in members]
        for m in members:
            if m not in procs:
                raise SpecError(f"unknown process {m!r}", file=file, field=f"{key}.processes")
        if len(set(members)) != len(members):
            raise SpecError("a process is listed twice", file=file, field=f"{key}.processes")
        dims = {procs[m].dims for m in members}
        if len(dims) > 1:
            raise SpecError(f"the processes of a group must have the same dims, got {sorted(map(list, dims))}", file=file,
                            field=f"{key}.processes")
        groups[name] = tuple(members)
    return groups


def _stocks(
    doc: dict, procs: dict[str, Process], flows: dict[str, FlowType], sinks: tuple[str, ...],
    dims: dict[str, tuple[Any, ...]], file: str,
) -> dict[str, Stock]:
    """Parse ``stocks`` and add each stock's generated processes and flows to ``procs`` and ``flows``."""
    stocks: dict[str, Stock] = {}
    for name, body in _named_entries(doc.get("stocks") or {}, file, "stocks"):
        key = f"stocks.{name}"
        if not isinstance(body, dict):
            raise SpecError("expected a mapping", file=file, field=key)
        unknown = set(body) - {"process", "coords", "description", "initial"}
        if unknown:
            raise SpecError(f"unknown keys {sorted(unknown)}", file=file, field=key)
        pname = str(_need(body, "process", str, file, f"{key}."))
        if pname not in procs:
            raise SpecError(f"unknown process {pname!r}", file=file, field=f"{key}.process")
        if pname in sinks:
            raise SpecError(f"sink {pname!r} keeps all it receives: it cannot also hold a stock", file=file, field=f"{key}.process")
        proc = procs[pname]
        coords: dict[str, tuple[Any, ...]] = {}
        for d, values in (body.get("coords") or {}).items():
            values = tuple(str(v) for v in (values if isinstance(values, list) else [values]))
            allowed = proc.coords.get(d, dims.get(d, ())) if d in proc.dims else ()
            bad = [v for v in values if v not in allowed]
            if d not in proc.dims or bad or not values:
                what = f"process {pname!r} has no dim {d!r}" if d not in proc.dims else f"unknown coords {bad} for dim {d!r}"
                raise SpecError(what, file=file, field=f"{key}.coords.{d}")
            coords[d] = values
        initial = body.get("initial")
        if initial is not None:
            if isinstance(initial, bool) or not isinstance(initial, (int, float)) or not math.isfinite(initial) or initial < 0:
                raise SpecError(f"initial level must be a non-negative number (system unit), got {initial!r}", file=file,
                                field=f"{key}.initial")
            initial = float(initial)
        stock = Stock(name, pname, coords, initial)
        generated = (stock.name, stock.withdrawal, stock.addition, stock.release)
        for new in generated:
            if new in procs or new in flows or new in stocks:
                raise SpecError(f"name {new!r} (generated for this stock) is already taken", file=file, field=key)
        full = {d: coords.get(d, proc.coords.get(d, dims[d])) for d in proc.dims}
        restricted = {d: v for d, v in full.items() if v != dims[d]}
        procs[stock.name] = Process(stock.name, proc.dims, restricted)
        procs[stock.withdrawal] = Process(stock.withdrawal, proc.dims, restricted)
        flows[stock.addition] = FlowType(stock.addition, pname, stock.name, from_coords=dict(coords))
        flows[stock.release] = FlowType(stock.release, stock.withdrawal, pname, to_coords=dict(coords))
        stocks[name] = stock
    return stocks
