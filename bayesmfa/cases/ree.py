"""The rare-earth case: China, the US and the rest of the world, 2000-2022, in kt REO.

Data + a thin module: the system is ``data/ree/system.yaml``, the priors
``priors/ree/*.yaml``, the records are translated from ``data/ree/*.csv`` by
:mod:`bayesmfa.cases.ree_records`. This module computes the quantities of
interest per draw and writes the tidy summary table.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesmfa.analysis.scenarios import NO_TRADE, ScenarioSpec, no_trade
from bayesmfa.analysis.sensitivity import SensitivityPlan
from bayesmfa.analysis.summaries import QuantityInfo, summarize_quantities
from bayesmfa.cases.contract import Case, CaseFiles, KeyRow
from bayesmfa.cases.ree_records import build_records
from bayesmfa.core.model import ModelOptions
from bayesmfa.core.priors import load_priors
from bayesmfa.core.problem import Problem, make_problem
from bayesmfa.core.system import load_system

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from bayesmfa.reporting.plots import Labels

REGIONS = ("CN", "US", "RoW")
PRODUCTS = {
    "concentrate": ("concentrate_trade", "concentrate_unregistered_trade"),
    "salt": ("salt_trade",),
    "oxide": ("oxide_trade", "smuggled"),
    "metal": ("metal_trade",),
}
#: Options of the REE model: shares vary smoothly with a knot every 4 years; records and flows
#: get 0.1 kt added before logs are taken, because the tables print zeros for "nil", "not reported"
#: and "< 0.05 kt" alike (US mining 2003-2011, compilations) and such zeros must not pin a flow to 1e-5 kt;
#: registered mining, recorded every year by several sources, has a centred random walk.
#: Geometry (a reparametrisation each; the prior is unchanged): the end-use splits and the mines' shipments,
#: which records pin knot by knot, have centred share walks; customs record salts and oxides as one
#: "compounds" figure, so each origin-destination pair's salt and oxide trade is sampled as its sum and
#: its split (ModelOptions.share_sums), which NUTS crosses with short trajectories.
OPTIONS = ModelOptions(share_knots_every=4, floor=0.1, centred_inputs=("mining",), centred_shares=("use", "mining"),
                       share_sums=(("salt_trade", "oxide_trade"),))
#: Key quantities of ``figures/prior_posterior.png``: (quantity, filters, title, unit); flows in
#: kt REO on a log axis (their priors span orders of magnitude), shares on a linear one.
PRIOR_POSTERIOR_PANELS = (
    ("unregistered_mining", {"region": "CN"}, "Unregistered mining, China", "kt REO"),
    ("smuggling", {"partner": "RoW"}, "Smuggling, China to rest of world", "kt REO"),
    ("smuggling", {"partner": "US"}, "Smuggling, China to United States", "kt REO"),
    ("consumption_total", {"region": "CN"}, "Consumption, China", "kt REO"),
    ("consumption_total", {"region": "World"}, "Consumption, world", "kt REO"),
    ("mined_refined_in_cn_share", {"region": "US"}, "US-mined REO refined in China", "share (0-1)"),
)

#: Rows of the README's key-results table (:mod:`bayesmfa.drivers.resultstable`): a year is (y, y), a cumulative row (first, last).
KEY_ROWS = (
    KeyRow("Unregistered mining, China, cumulative (kt REO)", "unregistered_mining", {"region": "CN"}, (2000, 2022)),
    KeyRow("Unregistered mining, RoW, cumulative (kt REO)", "unregistered_mining", {"region": "RoW"}, (2000, 2022)),
    KeyRow("Unregistered mining, China, 2010 (kt REO)", "unregistered_mining", {"region": "CN"}, (2010, 2010)),
    KeyRow("Unregistered mining, China, 2022 (kt REO)", "unregistered_mining", {"region": "CN"}, (2022, 2022)),
    KeyRow("Unregistered share of world mining, 2010", "unregistered_mining_share", {"region": "World"}, (2010, 2010)),
    KeyRow("Unregistered share of world mining, 2022", "unregistered_mining_share", {"region": "World"}, (2022, 2022)),
    KeyRow("World mining, 2022 (kt REO)", "mining", {"region": "World"}, (2022, 2022)),
    KeyRow("China share of world mining, 2022", "mining_share", {"region": "CN"}, (2022, 2022)),
    KeyRow("China share of world refining, 2022", "refining_share", {"region": "CN"}, (2022, 2022)),
    KeyRow("China share of world mining, 2000-2022", "cumulative_mining_share", {"region": "CN"}, (2000, 2022)),
    KeyRow("China share of world refining, 2000-2022", "cumulative_refining_share", {"region": "CN"}, (2000, 2022)),
    KeyRow("China share of world consumption, 2000-2022", "cumulative_consumption_share", {"region": "CN"}, (2000, 2022)),
    KeyRow("China consumption, 2022 (kt REO)", "consumption_total", {"region": "CN"}, (2022, 2022)),
    KeyRow("US consumption, 2022 (kt REO)", "consumption_total", {"region": "US"}, (2022, 2022)),
    KeyRow("World consumption, 2022 (kt REO)", "consumption_total", {"region": "World"}, (2022, 2022)),
    KeyRow("World consumption of magnets, 2022 (kt REO)", "consumption", {"region": "World", "end_use": "magnets"}, (2022, 2022)),
    KeyRow("World consumption of catalysts, 2022 (kt REO)", "consumption", {"region": "World", "end_use": "catalysts"}, (2022, 2022)),
    KeyRow("China net stockpiling, cumulative (kt REO)", "stockpile_change", {"region": "CN"}, (2000, 2022)),
    KeyRow("Smuggling CN->RoW, cumulative (kt REO)", "smuggling", {"partner": "RoW"}, (2000, 2022)),
    KeyRow("Smuggling CN->US, cumulative (kt REO)", "smuggling", {"partner": "US"}, (2000, 2022)),
    KeyRow("Smuggling CN->RoW, 2022 (kt REO)", "smuggling", {"partner": "RoW"}, (2022, 2022)),
    KeyRow("Share of US imports from China, 2022", "import_share_from", {"region": "US", "partner": "CN"}, (2022, 2022)),
    KeyRow("Share of China's imports from the US, 2022", "import_share_from", {"region": "CN", "partner": "US"}, (2022, 2022)),
    KeyRow("Share of US-mined REO refined in China, 2022", "mined_refined_in_cn_share", {"region": "US"}, (2022, 2022)),
    KeyRow("P(US is a net exporter), 2022", "p_net_exporter", {"region": "US"}, (2022, 2022), mean_only=True),
    KeyRow("P(China is a net exporter), 2022", "p_net_exporter", {"region": "CN"}, (2022, 2022), mean_only=True),
)


def paths(root: Path) -> tuple[Path, Path, Path]:
    """System file, prior folder and data folder of the REE case under ``root``."""
    return root / "data" / "ree" / "system.yaml", root / "priors" / "ree", root / "data" / "ree"


def files(root: Path) -> CaseFiles:
    """The REE case's inputs under ``root``: its system, priors and data tables (records are built from the tables)."""
    system, priors, data = paths(root)
    return CaseFiles(system, priors, (), data)


def options() -> ModelOptions:
    """Model options of the REE case."""
    return OPTIONS


def scenarios() -> list[ScenarioSpec]:
    """Scenarios the sensitivity study propagates: no trade, and China's exports of salts, oxides and metals halved from 2010.

    The second asks what the 2010 export-quota cut would have done had it
    halved every recorded export (smuggling left as estimated).
    """
    halved = ScenarioSpec("cn_exports_halved_from_2010", "export_restriction", "CN",
                          ("salt_trade", "oxide_trade", "metal_trade"), 0.5, 2010)
    return [NO_TRADE, halved]


def sampler_defaults() -> dict[str, float]:
    """Sampler settings of the REE case: target_accept 0.95, tune 500, 4 x 1000 draws, every draw 255 leapfrog steps.

    With the geometry of :data:`OPTIONS` (salt and oxide trade sampled as sum and split,
    centred end-use and mine-shipment walks) the ridges of flows seen only through sums
    no longer diverge. Long trajectories stay, for one reason: China's unregistered
    mining after 2019, which records bound only from above and whose walk has
    Student-t(2) steps, has a heavy left tail in log space that only long trajectories
    cross. On NUTS's own U-turn criterion (~107 steps per draw) its tail ESS was 140 in
    4 x 3000 draws thinned by 3 (seed 0, 318 s), while the salt trade, the old failure,
    reached 657; at a minimum depth of 7 (seed 0) the tail ESS was 293 with 2 divergences.

    The tree depth is fixed at 8 (nutpie's ``mindepth`` = ``maxdepth`` = 8): every draw
    takes exactly 255 leapfrog steps. With only a minimum of 8, NUTS tried a ninth doubling
    in about half the draws and found a U-turn inside it (~380 steps per draw, while only 2 %
    of the draws ended at depth 9): steps spent for no gain in the gate's figures. With the
    cost of a draw fixed, a smaller step (target_accept 0.95 instead of 0.9) costs no
    extra gradients and took away the one divergence that depth 8 to 8 gave at 0.9 (seed 0).

    Measured on 2 cores, ``bayesmfa run ree --seed N`` (benchmarks/README.md): seeds 0-4
    all pass the gate (max R-hat <= 1.004, min bulk ESS 1376-1744, min tail ESS 703-1029,
    0 divergences); fit 218-235 s, the whole command 245-263 s; before (minimum depth 8
    only, target_accept 0.9): ~370 steps per draw, min tail ESS 539-1256, the command
    273-321 s. Three exact reparametrisations of the Student-t steps that lighten the
    tail removed the need for long trajectories but each brought divergences where
    records pin a large step (benchmarks/README.md).
    """
    return {"target_accept": 0.95, "tune": 500, "min_tree_depth": 8, "max_tree_depth": 8, "draws": 1000}


def load(root: Path, families: list[str] | None = None) -> Problem:
    """The REE problem from the files under ``root`` (optionally only some record families)."""
    system_path, prior_path, data_path = paths(root)
    records, _ = build_records(data_path, families)
    return make_problem(load_system(system_path), load_priors(prior_path), records.drop(columns=["family"]))


def unused_rows(root: Path) -> pd.DataFrame:
    """Table rows not turned into records, with the reason for each."""
    return build_records(paths(root)[2])[1]


def separation_quota(root: Path) -> pd.Series:
    """China's smelting/separation quota by year (kt REO; latest total figure of each year)."""
    df = pd.read_csv(paths(root)[2] / "china_quotas.csv", dtype=str, keep_default_na=False)
    df = df[(df["quantity"] == "smelting_separation_quota") & (df["period"] == "") & (df["value"] != "")]
    return df.assign(value=df["value"].astype(float), year=df["year"].astype(int)).groupby("year")["value"].max()


# ----------------------------------------------------------------------------- per-draw quantities


def _trade(post: xr.Dataset, names: tuple[str, ...]) -> xr.DataArray:
    return sum(post[f"flow_{n}"] for n in names)


def trade_by_product(post: xr.Dataset) -> xr.DataArray:
    """True trade (recorded + smuggled) by origin, destination and product, kt REO."""
    parts = [_trade(post, names).expand_dims(product=[p]) for p, names in PRODUCTS.items()]
    return xr.concat(parts, dim="product")


def _div(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    return a / b.where(b > 0)


def quantities(post: xr.Dataset, quota: pd.Series | None = None, problem: Problem | None = None) -> dict[str, xr.DataArray]:
    """Every quantity of interest per draw (dims chain, draw, year, ...), kt REO or shares.

    Among them: ``cumulative_mining_share`` (registered + unregistered),
    ``cumulative_refining_share`` (separation output) and
    ``cumulative_consumption_share`` (input of ``use``): each region's share of
    the world total summed over all years (dims chain, draw, region; no year);
    ``exports_by_product`` / ``imports_by_product``: a region's trade of each
    product (concentrate, salt, oxide, metal) summed over its partners (dims
    chain, draw, product, year, region; ``region`` the exporter resp. the
    importer). Trade is the true flow: recorded trade plus unregistered RoW
    concentrate to China and oxides smuggled out of China (see :data:`PRODUCTS`).

    Parameters
    ----------
    post : xarray.Dataset
        Posterior (or prior) group of a REE fit.
    quota : Series, optional
        China's separation quota by year (kt REO) for the unregistered refining share.
    problem : Problem, optional
        The problem of the fit: with it, the no-trade rows (``no_trade_consumption``,
        ``no_trade_change``), which propagate the balance again per draw.
    """
    q: dict[str, xr.DataArray] = {}
    registered = post["output_mining"]
    unregistered = post["output_mining_unregistered"]
    mining = registered + unregistered
    world_mining = mining.sum("region")
    q["mining"] = _with_world(mining)
    q["registered_mining"] = _with_world(registered)
    q["unregistered_mining"] = _with_world(unregistered.sel(region=["CN", "RoW"]))
    q["unregistered_mining_share"] = _div(unregistered.sum("region"), world_mining).expand_dims(region=["World"])
    q["mining_share"] = _div(mining, world_mining)
    q["cumulative_mining_share"] = _cumulative_share(mining)
    refining = post["output_separation"]
    q["refining"] = _with_world(refining)
    q["refining_share"] = _div(refining, refining.sum("region"))
    q["cumulative_refining_share"] = _cumulative_share(refining)
    if quota is not None and len(quota):
        cn = refining.sel(region="CN")
        qa = xr.DataArray(quota.reindex(cn["year"].values).values, dims="year", coords={"year": cn["year"]})
        share = _div((cn - qa).clip(min=0), cn).where(~np.isnan(qa))
        q["unregistered_refining_share"] = share.dropna("year", how="all").expand_dims(region=["CN"])
    consumption = post["flow_end_use"]
    q["consumption"] = _with_world(consumption)
    q["consumption_total"] = _with_world(consumption.sum("end_use"))
    q["consumption_share"] = _div(consumption.sum("end_use"), consumption.sum(("end_use", "region")))
    q["cumulative_consumption_share"] = _cumulative_share(post["input_use"])
    trade = trade_by_product(post)
    exports = trade.rename(origin="region", destination="partner")
    imports = trade.rename(destination="region", origin="partner")
    q["exports"] = exports
    q["imports"] = imports
    q["exports_by_product"] = exports.sum("partner")
    q["imports_by_product"] = imports.sum("partner")
    q["exports_total"] = exports.sum(("partner", "product"))
    q["imports_total"] = imports.sum(("partner", "product"))
    net = exports.sum("partner") - imports.sum("partner")
    q["net_export"] = net
    q["net_export_total"] = net.sum("product")
    q["p_net_exporter"] = (net.sum("product") > 0).astype(float)
    q["import_share_from"] = _div(imports.sum("product"), imports.sum(("product", "partner")))
    q["supply_share_from"] = _div(imports.sum("product"), post["input_use"])
    q["mined_refined_in_cn_share"] = _refined_in_cn(post, mining)
    q["smuggling"] = post["flow_smuggled"].sel(origin="CN").rename(destination="partner").expand_dims(region=["CN"])
    if "stock_change_stockpile" in post:  # China's stockpiles (kt REO/yr, either sign; level = change since 2000)
        q["stockpile_change"] = post["stock_change_stockpile"].sel(region=["CN"])
        q["stockpile_level"] = post["stock_stockpile"].sel(region=["CN"])
    if problem is not None:
        q["no_trade_consumption"] = _no_trade(post, problem)
        q["no_trade_change"] = q["no_trade_consumption"] - consumption.sel(year=consumption["year"][-1:])
    return q


def _cumulative_share(da: xr.DataArray) -> xr.DataArray:
    """Each region's share of the world total over all years (dims chain, draw, region; summed per draw, then divided)."""
    total = da.sum("year")
    return _div(total, total.sum("region"))


def _with_world(da: xr.DataArray) -> xr.DataArray:
    world = da.sum("region").expand_dims(region=["World"])
    return xr.concat([da, world], dim="region")


def _refined_in_cn_share_of_cracking(post: xr.Dataset) -> xr.DataArray:
    """Fraction of each region's cracking output separated in China (dims year, region)."""
    out = post["output_cracking"]
    to_cn = post["flow_salt_trade"].sel(destination="CN").rename(origin="region")
    domestic_cn = post["flow_salt"].sel(region="CN")
    to_cn = to_cn.where(to_cn["region"] != "CN", domestic_cn)
    return _div(to_cn, out)


def _refined_in_cn(post: xr.Dataset, mining: xr.DataArray) -> xr.DataArray:
    """Share of each region's mined REO that is separated in China (dims year, region)."""
    frac = _refined_in_cn_share_of_cracking(post)
    ore = post["flow_concentrate_trade"].rename(origin="region", destination="cracker")
    traded = (ore * frac.rename(region="cracker")).sum("cracker")
    domestic = post["flow_concentrate"] + post["flow_concentrate_unregistered"].reindex(region=list(REGIONS), fill_value=0.0)
    unreg_flow = post["flow_concentrate_unregistered_trade"].sel(origin="RoW", destination="CN", drop=True)
    unreg_row = unreg_flow * frac.sel(region="CN", drop=True)
    refined_cn = traded + domestic * frac + xr.where(frac["region"] == "RoW", unreg_row, 0.0)
    return _div(refined_cn, mining)


def _no_trade(post: xr.Dataset, problem: Problem) -> xr.DataArray:
    """Consumption by region and end use in the last year with every trade flow removed (kt REO; dims chain, draw, year,
    region, end_use), by the package's one no-trade rule (:func:`bayesmfa.analysis.scenarios.no_trade`)."""
    last = post["year"].values[-1:]
    return no_trade(post, problem)["sink_consumption"].sel(year=last)


# ----------------------------------------------------------------------------- tables


#: Shares over the whole period (world total of all years in the denominator), reported with
#: ``year_start`` the first and ``year_end`` the last year of the fit.
CUMULATIVE_SHARES = {"cumulative_mining_share", "cumulative_refining_share", "cumulative_consumption_share"}

UNIT = "kt REO"
SHARE = "share (0-1)"
PROBABILITY = "probability (0-1)"
_PER_YEAR = ", per year (a cumulative row: the total over year_start-year_end)"


def _flow(text: str) -> QuantityInfo:
    """A quantity in kt REO per year that is also reported summed over all years (its description says so)."""
    return QuantityInfo(UNIT, text + _PER_YEAR + ".", cumulative=True)


#: The case's quantities of interest: unit, one plain sentence (the direction conventions of ``region`` and
#: ``partner`` included; shares name their numerator and denominator), whether a cumulative row is added (flows:
#: summed per draw over 2000-2022) and whether it is a 0/1 indicator (its mean a probability, no contraction).
QUANTITY_INFO: dict[str, QuantityInfo] = {
    "mining": _flow("Mine output of `region` (registered plus unregistered; World = sum of the regions)"),
    "registered_mining": _flow("Registered (officially recorded) mine output of `region`"),
    "unregistered_mining": _flow("Unregistered (illegal or unrecorded) mine output of `region` (CN, RoW; World = "
                                              "their sum)"),
    "unregistered_mining_share": QuantityInfo(SHARE, "Unregistered mine output of all regions divided by world mine output, "
                                                     "per year (`region` = World)."),
    "mining_share": QuantityInfo(SHARE, "Mine output of `region` divided by world mine output, per year."),
    "cumulative_mining_share": QuantityInfo(SHARE, "Mine output of `region` summed over year_start-year_end divided by world "
                                                   "mine output summed over the same years."),
    "refining": _flow("Separation (refining) output of `region`: separated rare-earth oxides"),
    "refining_share": QuantityInfo(SHARE, "Separation output of `region` divided by world separation output, per year."),
    "cumulative_refining_share": QuantityInfo(SHARE, "Separation output of `region` summed over year_start-year_end divided by "
                                                     "world separation output summed over the same years."),
    "unregistered_refining_share": QuantityInfo(SHARE, "China's separation output beyond its separation quota divided by "
                                                       "China's separation output (years with a quota; 0 when within it)."),
    "consumption": _flow("Apparent consumption of `region` in `end_use` (World = sum of the regions)"),
    "consumption_total": _flow("Apparent consumption of `region`, all end uses"),
    "consumption_share": QuantityInfo(SHARE, "Apparent consumption of `region` divided by world apparent consumption, per year."),
    "cumulative_consumption_share": QuantityInfo(SHARE, "Apparent consumption of `region` summed over year_start-year_end divided "
                                                        "by world consumption summed over the same years."),
    "exports": _flow("Exports: flow of `product` out of `region` into `partner` (recorded trade plus smuggled "
                                  "oxides and unregistered concentrate)"),
    "imports": _flow("Imports: flow of `product` into `region` from `partner` (recorded trade plus smuggled "
                                  "oxides and unregistered concentrate)"),
    "exports_by_product": _flow("Exports of `product` out of `region` to all partners"),
    "imports_by_product": _flow("Imports of `product` into `region` from all partners"),
    "exports_total": _flow("Exports of all products out of `region` to all partners"),
    "imports_total": _flow("Imports of all products into `region` from all partners"),
    "net_export": _flow("Net exports of `product` by `region`: its exports minus its imports (negative = net "
                                     "imports)"),
    "net_export_total": _flow("Net exports of all products by `region`: exports minus imports (negative = net "
                                           "imports)"),
    "p_net_exporter": QuantityInfo(PROBABILITY, "Posterior probability (in `mean`) that `region` exports more than it imports, "
                                                "all products together, in the year.", indicator=True),
    "import_share_from": QuantityInfo(SHARE, "Imports of `region` from `partner` divided by all imports of `region`, all "
                                             "products, per year."),
    "supply_share_from": QuantityInfo(SHARE, "Imports of `region` from `partner` divided by the apparent consumption of "
                                             "`region`, per year."),
    "mined_refined_in_cn_share": QuantityInfo(SHARE, "REO mined in `region` and separated in China divided by all REO mined "
                                                     "in `region`, per year."),
    "smuggling": _flow("Unrecorded (smuggled) oxide exports out of China (`region` CN) into `partner`"),
    "stockpile_change": _flow("Net additions to China's state and commercial stockpiles (negative = releases)"),
    "stockpile_level": QuantityInfo(UNIT, "China's stockpile at the end of the year, as the running sum of its net additions "
                                          "since the first year (level at the start = 0)."),
    "no_trade_consumption": QuantityInfo(UNIT, "Counterfactual consumption of `region` in `end_use` in the last year if every "
                                               "trade flow were removed, by the package's one no-trade rule "
                                               "(bayesmfa.analysis.scenarios.no_trade: what a region exported goes to its own next "
                                               "stage in proportion to its domestic shares; yields, end-use shares, mining "
                                               "and stock withdrawals as estimated)."),
    "no_trade_change": QuantityInfo(UNIT, "No-trade counterfactual consumption minus actual consumption of `region` in "
                                          "`end_use`, last year (negative = trade raises its use)."),
}


def summary_table(
    idata: az.InferenceData, problem: Problem | None = None, prob: float = 0.9, quota: pd.Series | None = None
) -> pd.DataFrame:
    """The tidy summary of every quantity of interest (``summary.csv``).

    Columns (:func:`bayesmfa.analysis.summaries.summary_columns`): ``quantity, region, partner, product,
    end_use, year_start, year_end, unit, description, mean, sd, q05, q50, q95, prior_q05, prior_q50,
    prior_q95, contraction, weakly_informed``. ``year_start`` and ``year_end`` are integers:
    equal for a yearly row, the first and last year of the fit for a cumulative row (summed per
    draw) and for the cumulative shares. ``unit``, ``description`` and which quantities get a cumulative
    row come from :data:`QUANTITY_INFO` (see :func:`bayesmfa.analysis.summaries.summarize_quantities`). The
    contraction is NaN (flag False) when the fit has no prior group, for its indicators and where
    an interval is undefined (a share of a zero total, a zero
    prior width). Interval names follow ``prob``; dims are blank where they do not apply;
    ``region`` is the reporting region (exporter of ``exports*``, importer of ``imports*``),
    ``partner`` the other side.
    """
    if quota is None:
        quota = _quota_from_attrs(idata)
    return summarize_quantities(idata, lambda group: quantities(group, quota, problem), QUANTITY_INFO, prob)


def _quota_from_attrs(idata: az.InferenceData) -> pd.Series | None:
    text = idata.posterior.attrs.get("separation_quota")
    if not text:
        return None
    return pd.read_json(io.StringIO(text), typ="series")


def reported_dataset(idata: az.InferenceData, problem: Problem | None = None) -> xr.Dataset:
    """The reported quantities as one Dataset (for R-hat/ESS over every reported quantity)."""
    qs = quantities(idata.posterior, _quota_from_attrs(idata), problem)
    keep = {k: v for k, v in qs.items() if k != "p_net_exporter"}
    return xr.Dataset({k: v.reset_coords(drop=True) for k, v in keep.items()})


def annotate(idata: az.InferenceData, root: Path) -> None:
    """Store the separation quota (used by derived quantities) in the posterior attrs."""
    idata.posterior.attrs["separation_quota"] = separation_quota(root).to_json()


def write_extras(out: Path, root: Path) -> None:
    """Write the table of data rows the fit did not use (with reasons)."""
    unused_rows(root).to_csv(out / "unused_rows.csv", index=False)


def labels_file(root: Path | None = None) -> Path:
    """The REE case's ``labels.yaml`` (under :func:`bayesmfa.cases.project_root`)."""
    from bayesmfa.cases import project_root

    return project_root(root) / "data" / "ree" / "labels.yaml"


def labels(root: Path | None = None) -> Labels:
    """Display labels, title, sources and caveats of the REE case (``data/ree/labels.yaml``)."""
    from bayesmfa.reporting.plots import load_labels

    return load_labels(labels_file(root))


def prior_posterior_figure(derived: xr.Dataset | pd.DataFrame) -> Figure:
    """Prior and posterior 90% bands of the key quantities (:data:`PRIOR_POSTERIOR_PANELS`) of the derived quantities."""
    from bayesmfa.reporting import plots

    panels = [plots.Panel(q, filters, title, unit, log=unit != SHARE) for q, filters, title, unit in PRIOR_POSTERIOR_PANELS]
    return plots.prior_posterior_bands(derived, panels, ncols=3)


def report_figures(derived: xr.Dataset, label_table: Labels) -> list:
    """The figures of the REE report from its derived quantities (:func:`bayesmfa.cases.ree_figures.summary_figures`;
    matplotlib is imported here, not when the case is loaded)."""
    from bayesmfa.cases.ree_figures import summary_figures

    return summary_figures(derived, label_table)


def write_figures(derived: xr.Dataset, idata: az.InferenceData, problem: Problem, outdir: Path) -> list[Path]:
    """The figures of the derived quantities (:func:`bayesmfa.cases.ree_figures.summary_figures`, one file each) and prior
    vs posterior (PNG)."""
    from bayesmfa.cases.ree_figures import summary_figures

    outdir.mkdir(parents=True, exist_ok=True)
    figures = [(name, build) for name, _, _, build in summary_figures(derived, labels())]
    if "prior" in idata.groups():
        figures.append(("prior_posterior", lambda: prior_posterior_figure(derived)))
    written = []
    for name, make in figures:
        make().savefig(outdir / f"{name}.png", dpi=110)
        written.append(outdir / f"{name}.png")
    return written


# ----------------------------------------------------------------------------- the case's contract


def _cum_unregistered(post: xr.Dataset, region: str | None = None) -> xr.DataArray:
    da = post["output_mining_unregistered"].sum("year")
    return da.sel(region=region) if region is not None else da


def _unregistered_cn(post: xr.Dataset) -> xr.DataArray:
    return _cum_unregistered(post, "CN")


def _unregistered(post: xr.Dataset) -> xr.DataArray:
    return post["output_mining_unregistered"]


def _mining(post: xr.Dataset) -> xr.DataArray:
    return post["output_mining"] + post["output_mining_unregistered"]


def _consumption_total(post: xr.Dataset) -> xr.DataArray:
    return post["flow_end_use"].sum("end_use")


def sensitivity_plan(problem: Problem) -> SensitivityPlan:
    """The REE study's questions: unregistered mining (per year and cumulative), mining and consumption (kt REO).

    Record families are left out one at a time; the literature estimates and China's
    customs get sweeps named after the question they answer.
    """
    quantities = {"unregistered_mining_cum": _cum_unregistered, "unregistered_mining": _unregistered, "mining": _mining,
                  "consumption_total": _consumption_total}
    return SensitivityPlan(quantities, _unregistered_cn, "cumulative unregistered mining, CN (kt REO)",
                           "unregistered_mining_sensitivity.png", group_by="family",
                           renamed={"unregistered_estimates": "literature_dropped", "china_trade": "china_customs_dropped"})


def case() -> Case:
    """The REE case as a :class:`~bayesmfa.cases.contract.Case`."""
    return Case(name="ree", files=files, load=load, summary_table=summary_table, options=OPTIONS, sampler=sampler_defaults(),
                labels_file=labels_file, write_figures=write_figures, report_figures=report_figures,
                reported_dataset=reported_dataset, annotate=annotate,
                write_extras=write_extras, scenarios=tuple(scenarios()), sensitivity=sensitivity_plan, key_rows=KEY_ROWS,
                quantities=QUANTITY_INFO)
