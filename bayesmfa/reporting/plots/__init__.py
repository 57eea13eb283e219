"""Figures of a fit: a Sankey of the whole system, uncertainty bands, trade triangle, counterfactual.

Figures take the derived quantities of a fit (:mod:`bayesmfa.analysis.derived`: the Dataset a run writes to
``derived.nc``, or one quantity of it as a DataArray, e.g. ``bands(ds.consumption.sel(region="CN"), by="end_use")``);
a summary table (``summary.csv``) is taken too. Static figures use matplotlib and return :class:`matplotlib.figure.Figure`
objects (nothing is shown); the interactive Sankey uses plotly, imported only
when it is drawn so the package imports without it.

Every interval is computed per draw first and summarised afterwards: sums over
years or over flow types are taken draw by draw, never by adding quantiles.

The package is split by job; every public name is importable from here
(``from bayesmfa.reporting.plots import bands``):

* :mod:`bayesmfa.reporting.plots.labels` -- a case's display labels and choices (``labels.yaml``);
* :mod:`bayesmfa.reporting.plots.tables` -- reading derived quantities (a Dataset, one of its DataArrays, or a summary
  table), number and axis text;
* :mod:`bayesmfa.reporting.plots.sankey` -- the system Sankey;
* :mod:`bayesmfa.reporting.plots.bands` -- bands over years, prior vs posterior, the generic figure list;
* :mod:`bayesmfa.reporting.plots.trade` -- net trade between pairs, the trade triangle, counterfactual bars.

No figure here names a commodity, region or quantity of a case: the REE case's
figures are in :mod:`bayesmfa.cases.ree_figures`.
"""

from __future__ import annotations

from typing import Any

from bayesmfa.reporting.plots.bands import (
    POSTERIOR_COLOR,
    PRIOR_BAND_COLOR,
    PRIOR_COLOR,
    FigureSpec,
    Panel,
    bands,
    default_panels,
    generic_figures,
    new_axes,
    outside_legend,
    prior_posterior_bands,
)
from bayesmfa.reporting.plots.labels import (
    LABEL_KEYS,
    Labels,
    label_kind,
    load_labels,
)
from bayesmfa.reporting.plots.sankey import (
    LINK_COLOR,
    NO_PRODUCT_RGB,
    NODE_COLOR,
    OTHER_PRODUCT_RGB,
    PRODUCT_PALETTE,
    UNREGISTERED_COLOR,
    UNREGISTERED_TRADE_COLOR,
    is_unregistered,
    node_display_label,
    node_label,
    product_colour,
    product_colours,
    sankey,
    sankey_table,
)
from bayesmfa.reporting.plots.tables import (
    SummaryData,
    YearSelection,
    as_text,
    dim_columns,
    format_interval,
    format_number,
    has_quantity,
    interval_label,
    interval_text,
    is_blank,
    is_stat_column,
    matches,
    posterior_of,
    quantile_columns,
    quantity_names,
    quantity_values,
    rows_of,
    select_rows,
    unit_of,
    value_axis_label,
    without_self_pairs,
    year_positions,
)
from bayesmfa.reporting.plots.trade import (
    counterfactual,
    net_pair_flows,
    trade_triangle,
)

#: Names that moved to :mod:`bayesmfa.cases.ree_figures` (the REE case's figures), still importable from here
#: (``from bayesmfa.reporting.plots import summary_figures``) until their callers import them from there.
MOVED_TO_REE_FIGURES = ("consumption_bands", "dependence_bands", "mining_share_bands", "net_exporter_probability",
                        "net_trade_bands", "summary_figures", "unregistered_mining_bands")


def __getattr__(name: str) -> Any:
    """Say where the REE figure functions went (:mod:`bayesmfa.cases.ree_figures`); the core does not import a case."""
    if name in MOVED_TO_REE_FIGURES:
        raise AttributeError(f"bayesmfa.reporting.plots.{name} is the REE case's: use bayesmfa.cases.ree_figures.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MOVED_TO_REE_FIGURES",
    "FigureSpec",
    "LABEL_KEYS",
    "LINK_COLOR",
    "Labels",
    "NODE_COLOR",
    "POSTERIOR_COLOR",
    "PRIOR_BAND_COLOR",
    "PRIOR_COLOR",
    "NO_PRODUCT_RGB",
    "OTHER_PRODUCT_RGB",
    "PRODUCT_PALETTE",
    "Panel",
    "UNREGISTERED_COLOR",
    "UNREGISTERED_TRADE_COLOR",
    "SummaryData",
    "YearSelection",
    "as_text",
    "bands",
    "counterfactual",
    "default_panels",
    "dim_columns",
    "format_interval",
    "format_number",
    "generic_figures",
    "has_quantity",
    "interval_label",
    "interval_text",
    "is_blank",
    "is_stat_column",
    "is_unregistered",
    "label_kind",
    "load_labels",
    "matches",
    "net_pair_flows",
    "new_axes",
    "node_display_label",
    "node_label",
    "outside_legend",
    "posterior_of",
    "prior_posterior_bands",
    "product_colour",
    "product_colours",
    "quantile_columns",
    "quantity_names",
    "quantity_values",
    "rows_of",
    "sankey",
    "sankey_table",
    "select_rows",
    "trade_triangle",
    "unit_of",
    "value_axis_label",
    "without_self_pairs",
    "year_positions",
]
