"""Display labels and display choices of a case (``labels.yaml``): names of codes, title, sources, region order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Labels:
    """Display labels of a case's codes, with its title, unit, sources and caveats.

    Read from a case's ``labels.yaml`` (:func:`load_labels`); a code without a
    label is shown as it is, so a case without a table falls back to code names.

    Attributes
    ----------
    names : mapping of kind -> (code -> label)
        Kinds: ``quantity``, ``region`` (also used for ``partner``), ``product``,
        ``end_use``, ``process``, ``flow``.
    title : str
        The case's title (report heading).
    unit : str
        The unit of flows as printed (e.g. ``"kt REO"``; empty: the system's).
    methods : str
        A paragraph on how the case is modelled (report).
    sources : tuple of str
        The data sources, one line each (report).
    caveats : tuple of str
        What a reader must keep in mind, one line each (report).
    regions : tuple of str
        Region codes in the order figures show them (one figure or line each);
        regions of the data not listed follow in their data order. Empty: the
        data's order.
    aggregate : str
        The code of the row that adds up all regions (e.g. ``"all"``): it is
        left out of figures that compare regions with each other. Empty: none.
    default_regions : mapping of str -> tuple of str
        Per figure quantity, the regions drawn when the summary does not name
        any (e.g. ``{"imports": ("A", "B")}``).
    key_quantities : tuple of str
        The quantities of the report's key-interval table, in order. Empty:
        every quantity (see :func:`bayesmfa.reporting.report.key_intervals`).
    product_colours : mapping of str -> (int, int, int)
        Hue (RGB, 0-255) of a product's Sankey links; products not named take
        a palette in the system's order (:func:`bayesmfa.reporting.plots.product_colours`).
    """

    names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    title: str = ""
    unit: str = ""
    methods: str = ""
    sources: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    aggregate: str = ""
    default_regions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    key_quantities: tuple[str, ...] = ()
    product_colours: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)

    def __call__(self, kind: str, code: Any) -> str:
        """The label of ``code`` in table ``kind``; the code itself when there is none."""
        text = str(code)
        return str(self.names.get(kind, {}).get(text, text))

    def order_regions(self, values: Sequence[str]) -> list[str]:
        """``values`` in display order: those in :attr:`regions` first, in that order, then the rest as given."""
        values = [str(v) for v in values]
        first = [r for r in self.regions if r in values]
        return first + [r for r in values if r not in first]

    def regions_for(self, quantity: str, present: Sequence[str]) -> list[str]:
        """The regions of a figure of ``quantity``: ``present`` in display order, else :attr:`default_regions`."""
        return self.order_regions(present) or list(self.default_regions.get(quantity, ()))


#: Top-level keys of a ``labels.yaml`` (every one optional).
LABEL_KEYS = ("title", "unit", "methods", "sources", "caveats", "labels", "regions", "aggregate", "default_regions",
              "key_quantities", "product_colours")


def load_labels(path: str | Path) -> Labels:
    """A case's label table (``labels.yaml``); :class:`Labels` with no names when the file does not exist.

    The file holds ``title``, ``unit``, ``methods`` (text), ``sources`` and
    ``caveats`` (lists of text) and ``labels``: a mapping of kind (``quantity``,
    ``region``, ``product``, ``end_use``, ``process``, ``flow``) to a mapping
    of code to display label. The case's display choices: ``regions`` (list of
    region codes in display order), ``aggregate`` (the code of the all-regions
    row), ``default_regions`` (quantity -> list of region codes drawn when the
    summary names none), ``key_quantities`` (list: the report's key table) and
    ``product_colours`` (product -> ``[r, g, b]``, 0-255: its Sankey links' hue).
    Every key is optional (see :class:`Labels`).

    Raises
    ------
    ValueError
        One line naming the file and the key, when it is not YAML of that
        shape (an unknown key, or a value of the wrong type).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        return Labels()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping at the top, got {type(doc).__name__}")
    unknown = [str(k) for k in doc if k not in LABEL_KEYS]
    if unknown:
        raise ValueError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(LABEL_KEYS)})")
    names = doc.get("labels") or {}
    if not isinstance(names, dict) or not all(isinstance(v, dict) for v in names.values()):
        raise ValueError(f"{path}: 'labels' must map each kind to a mapping of code -> label")
    for key in ("title", "unit", "methods", "aggregate"):
        if doc.get(key) is not None and not isinstance(doc[key], str | int | float):
            raise ValueError(f"{path}: '{key}' must be text, got {type(doc[key]).__name__}")
    lists = {key: _text_list(doc, key, path) for key in ("sources", "caveats", "regions", "key_quantities")}
    defaults = doc.get("default_regions") or {}
    if not isinstance(defaults, dict):
        raise ValueError(f"{path}: 'default_regions' must map a quantity to a list of region codes, got {type(defaults).__name__}")
    default_regions = {str(q): _text_list(defaults, q, path, f"default_regions.{q}") for q in defaults}
    colours = doc.get("product_colours") or {}
    if not isinstance(colours, dict):
        raise ValueError(f"{path}: 'product_colours' must map a product to [r, g, b], got {type(colours).__name__}")
    for product, rgb in colours.items():
        if (not isinstance(rgb, list) or len(rgb) != 3
                or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in rgb)):
            raise ValueError(f"{path}: 'product_colours.{product}' must be [r, g, b] with integers 0-255, got {rgb!r}")
    return Labels(
        names={str(k): {str(c): str(lab) for c, lab in v.items()} for k, v in names.items()},
        title=str(doc.get("title") or ""),
        unit=str(doc.get("unit") or ""),
        methods=" ".join(str(doc.get("methods") or "").split()),
        aggregate=str(doc.get("aggregate") or ""),
        default_regions=default_regions,
        product_colours={str(p): (int(c[0]), int(c[1]), int(c[2])) for p, c in colours.items()},
        **lists,
    )


def _text_list(doc: Mapping[str, Any], key: str, path: Path, where: str | None = None) -> tuple[str, ...]:
    """``doc[key]`` as a tuple of stripped text (absent: empty); anything but a list of scalars is an error naming the key."""
    value = doc.get(key) or []
    if not isinstance(value, list) or any(isinstance(v, dict | list) for v in value):
        raise ValueError(f"{path}: '{where or key}' must be a list of text, got {type(value).__name__}")
    return tuple(str(v).strip() for v in value)


def label_kind(column: str | None) -> str:
    """The kind of :class:`Labels` a summary column's codes are looked up in (``partner``, ``origin``, ``destination``: ``region``)."""
    return "region" if column in ("region", "partner", "origin", "destination") else str(column)
