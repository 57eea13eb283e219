"""Figures built from small hand-made posteriors and summary tables (no sampling)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import arviz as az
import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import three_region_system

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bayesmfa.analysis.summaries import read_summary  # noqa: E402
from bayesmfa.core.graph import Graph  # noqa: E402
from bayesmfa.core.system import system_from_dict  # noqa: E402
from bayesmfa.reporting import plots  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
YEARS = list(range(2010, 2020))


# ---------------------------------------------------------------------------
# hand-made posteriors
# ---------------------------------------------------------------------------


def fake_posterior(graph: Graph, *, chains: int = 2, draws: int = 300, seed: int = 0, zero: tuple[str, ...] = (),
                   sigma: float = 0.4) -> xr.Dataset:
    """``flow_*`` variables of ``graph`` filled with lognormal draws; the edge labels in ``zero`` stay 0."""
    rng = np.random.default_rng(seed)
    system = graph.system
    coords = system.all_coords()
    years = list(system.years)
    data = {}
    for fname in system.flows:
        dims = system.flow_dims(fname)
        shape = (chains, draws, len(years), *(len(coords[d]) for d in dims))
        arr = np.zeros(shape)
        for e in graph.edges_of(fname):
            if e.label in zero:
                continue
            idx = tuple(coords[d].index(v) for d, v in e.coords)
            median = 5.0 + 3.0 * e.index
            arr[(slice(None), slice(None), slice(None), *idx)] = rng.lognormal(np.log(median), sigma, size=(chains, draws, len(years)))
        data[f"flow_{fname}"] = (("chain", "draw", "year", *dims), arr)
    return xr.Dataset(data, coords={"chain": range(chains), "draw": range(draws), **{k: v for k, v in coords.items()}})


@pytest.fixture(scope="module")
def demo_graph() -> Graph:
    from bayesmfa.cases import demo

    return demo.load(ROOT).graph


SMUGGLING_SYSTEM = three_region_system(2000, 2002)


def flagged_system() -> dict:
    """The three-region system with its unregistered mining process and its smuggling flow marked in the system file."""
    doc = copy.deepcopy(SMUGGLING_SYSTEM)
    doc["processes"]["unregistered_mining"]["unregistered"] = True
    doc["flows"]["smuggling"]["unregistered"] = True
    return doc


# ---------------------------------------------------------------------------
# Sankey
# ---------------------------------------------------------------------------


def test_sankey_links_are_the_nonzero_flow_instances(demo_graph):
    ds = fake_posterior(demo_graph, zero=("ore_trade[origin=B,destination=A]",))
    fig = plots.sankey(ds, demo_graph, 2015)
    link = fig.data[0].link
    assert len(link.value) == demo_graph.n_edges - 1 == 11
    table = plots.sankey_table(ds, demo_graph, 2015)
    assert "ore_trade[origin=B,destination=A]" not in set(table["edge"])
    assert list(table.columns[:6]) == ["source", "target", "flow", "median", "lo", "hi"]
    assert np.allclose(link.value, table["median"])
    assert (table["lo"] <= table["median"]).all() and (table["median"] <= table["hi"]).all()
    # node labels are the process instances used by the links
    full = set(fig.data[0].node.customdata)
    assert {"mining, A", "refining, B", "final, A, magnets"} <= full
    # on the figure a node under its column head (the stage's process) shows its coords only
    heads = {a.text for a in fig.layout.annotations}
    assert {"<b>mining</b>", "<b>refining</b>", "<b>final</b>"} <= heads
    assert {"A", "B", "A, magnets"} <= set(fig.data[0].node.label)


def test_sankey_interval_label_numbers(demo_graph):
    ds = fake_posterior(demo_graph, seed=4)
    fig = plots.sankey(az.InferenceData(posterior=ds), demo_graph, 2012, prob=0.9)
    draws = ds["flow_ore_trade"].sel(year=2012, origin="A", destination="B").values.ravel()
    q05, q50, q95 = np.quantile(draws, [0.05, 0.5, 0.95])
    expected = plots.format_interval(q50, q05, q95, "kt")
    custom = {tuple(c)[0]: tuple(c)[1] for c in fig.data[0].link.customdata}
    assert custom["ore_trade[origin=A,destination=B]"] == expected
    nums = [float(x.replace(",", "")) for x in re.findall(r"[\d,.]+", expected)]
    assert nums == pytest.approx([q50, q05, q95], rel=0.01)
    assert expected.endswith(" kt") and "[" in expected


def test_period_sankey_sums_per_draw_not_quantiles(demo_graph):
    # strongly skewed draws: the median of a sum differs from the sum of medians
    ds = fake_posterior(demo_graph, seed=1, sigma=1.5)
    table = plots.sankey_table(ds, demo_graph, (2010, 2014))
    edge = "refined_domestic[region=A]"
    da = ds["flow_refined_domestic"].sel(region="A", year=slice(2010, 2014))
    per_draw = da.sum("year").values.ravel()
    row = table.set_index("edge").loc[edge]
    assert row["median"] == pytest.approx(np.median(per_draw))
    assert row["lo"] == pytest.approx(np.quantile(per_draw, 0.05))
    assert row["hi"] == pytest.approx(np.quantile(per_draw, 0.95))
    sum_of_medians = float(da.median(("chain", "draw")).sum())
    assert abs(row["median"] - sum_of_medians) > 0.02 * sum_of_medians
    assert (table["period"] == "2010-2014").all()
    # None is the whole period
    whole = plots.sankey_table(ds, demo_graph)
    assert whole.set_index("edge").loc[edge, "median"] == pytest.approx(
        np.median(ds["flow_refined_domestic"].sel(region="A").sum("year").values.ravel()))


def test_sankey_rejects_years_outside_the_fit(demo_graph):
    ds = fake_posterior(demo_graph, draws=20)
    with pytest.raises(ValueError, match="not in the fit"):
        plots.sankey_table(ds, demo_graph, 1999)
    with pytest.raises(ValueError, match="no year"):
        plots.sankey_table(ds, demo_graph, (1990, 1995))


def test_unregistered_links_are_coloured_distinctly():
    """Links are red exactly where the system file marks them: the flagged process's flow and the flagged smuggling flow."""
    graph = Graph(system_from_dict(flagged_system()))
    ds = fake_posterior(graph, draws=50)
    fig = plots.sankey(ds, graph, 2001)
    table = plots.sankey_table(ds, graph, 2001)
    colours = list(fig.data[0].link.color)
    assert len(colours) == len(table) == graph.n_edges
    flagged = {f for f, u in zip(table["flow"], table["unregistered"]) if u}
    assert flagged == {"illegal_ore", "smuggling"}
    red = {plots.UNREGISTERED_COLOR, plots.UNREGISTERED_TRADE_COLOR}
    for edge, flow, trade, colour in zip(table["edge"], table["flow"], table["trade"], colours):
        if flow in flagged:
            assert colour == (plots.UNREGISTERED_TRADE_COLOR if trade else plots.UNREGISTERED_COLOR), edge
        else:
            assert colour not in red, edge
    # every smuggling instance (CN->US, ...: 6 ordered pairs) and the one illegal ore link are red, nothing else
    assert sum(c in red for c in colours) == 6 + 1
    assert [t.name for t in fig.data[1:] if t.marker.color == plots.UNREGISTERED_COLOR] == ["unregistered flows"]
    assert plots.is_unregistered(graph.system, "illegal_ore") and plots.is_unregistered(graph.system, "smuggling")
    assert not plots.is_unregistered(graph.system, "ore")


def test_flow_names_do_not_make_a_link_unregistered():
    """A flow called ``smuggling`` and a process called ``unregistered_mining``, not flagged: no red link, no legend entry."""
    graph = Graph(system_from_dict(SMUGGLING_SYSTEM))
    ds = fake_posterior(graph, draws=50)
    fig = plots.sankey(ds, graph, 2001)
    table = plots.sankey_table(ds, graph, 2001)
    assert not table["unregistered"].any()
    assert not {plots.UNREGISTERED_COLOR, plots.UNREGISTERED_TRADE_COLOR} & set(fig.data[0].link.color)
    smuggling = [c for f, c in zip(table["flow"], fig.data[0].link.color) if f == "smuggling"]
    assert len(smuggling) == 6 and set(smuggling) == {plots.product_colour("", trade=True)}
    assert not [t for t in fig.data[1:] if "unregistered" in t.name]
    assert not plots.is_unregistered(graph.system, "smuggling")


def test_unregistered_flag_survives_posterior_nc(tmp_path):
    """The system a fit stores in posterior.nc keeps the flag; a file stored without it (before the flag) has none red."""
    from bayesmfa.reporting.report import graph_from_posterior

    for doc, expected in ((flagged_system(), {"illegal_ore", "smuggling"}), (SMUGGLING_SYSTEM, set())):
        system = system_from_dict(doc)
        ds = fake_posterior(Graph(system), draws=20)
        ds.attrs["system_yaml"] = system.to_yaml()  # what bayesmfa.inference.sampling stores
        path = tmp_path / f"{system.name}-{len(expected)}.nc"
        az.InferenceData(posterior=ds).to_netcdf(str(path))
        idata = az.from_netcdf(str(path))
        graph = graph_from_posterior(idata)
        assert {n for n, f in graph.system.flows.items() if f.unregistered} == expected
        table = plots.sankey_table(idata, graph, 2001)
        assert set(table.loc[table["unregistered"], "flow"]) == expected


def test_sankey_colours_by_product_and_sets_trade_apart(demo_graph):
    ds = fake_posterior(demo_graph)
    fig = plots.sankey(ds, demo_graph, 2015)
    table = plots.sankey_table(ds, demo_graph, 2015)
    colours = dict(zip(table["edge"], fig.data[0].link.color))
    domestic, traded = colours["ore_domestic[region=A]"], colours["ore_trade[origin=A,destination=B]"]
    refined = colours["refined_domestic[region=A]"]
    assert domestic != traded and domestic != refined  # product and trade both change the colour
    hues = plots.product_colours(demo_graph.system)  # no labels: the palette in the order the flows name the products
    assert list(hues) == ["concentrate", "oxide"] and hues["concentrate"] == plots.PRODUCT_PALETTE[0]
    assert hues["oxide"] == plots.PRODUCT_PALETTE[1]
    assert plots.product_colour("") == "rgba(60, 150, 90, 0.35)"  # flows without a product
    assert domestic == plots.product_colour("concentrate", colours=hues) == "rgba(140, 100, 60, 0.35)"
    assert traded == plots.product_colour("concentrate", trade=True, colours=hues) == "rgba(140, 100, 60, 0.85)"
    assert refined == plots.product_colour("oxide", colours=hues)
    # labels.yaml names a product's hue; the other products take the palette's free hues
    labelled = plots.sankey(ds, demo_graph, 2015, labels=plots.Labels(product_colours={"oxide": (1, 2, 3)}))
    relabelled = dict(zip(table["edge"], labelled.data[0].link.color))
    assert relabelled["refined_domestic[region=A]"] == "rgba(1, 2, 3, 0.35)"
    assert relabelled["ore_domestic[region=A]"] == domestic
    # a legend entry per colour in use, outside the Sankey
    names = [t.name for t in fig.data[1:]]
    assert "concentrate (domestic)" in names and "concentrate (trade)" in names and "oxide (trade)" in names
    # nodes in fixed columns by stage: mining left of refining left of use; no two nodes of a column at one height
    node = fig.data[0].node
    x = dict(zip(node.customdata, node.x))
    assert x["mining, A"] < x["refining, A"] < x["use, A"] < x["final, A, magnets"]
    spots = list(zip(node.x, node.y))
    assert len(set(spots)) == len(spots)
    assert "kt" in fig.layout.title.text and "90% interval" in fig.layout.title.text


# ---------------------------------------------------------------------------
# bands from summary tables
# ---------------------------------------------------------------------------


UNITS = {"mining": "kt REO", "consumption": "kt REO", "net_export": "kt REO", "p_net_exporter": "probability (0-1)",
         "mining_share": "share (0-1)", "unregistered_mining": "kt REO", "import_share_from": "share (0-1)",
         "mined_refined_in_cn_share": "share (0-1)", "no_trade_consumption": "kt REO"}


def fake_summary(seed: int = 0) -> pd.DataFrame:
    """A summary in the published layout: integer ``year_start``/``year_end``, ``unit`` and ``description``."""
    rng = np.random.default_rng(seed)
    rows = []

    def add(quantity, year, value, spread=0.2, start=None, **dims):
        rows.append({"quantity": quantity, **dims, "year_start": year if start is None else start, "year_end": year,
                     "mean": value, "sd": spread * value, "q05": value * (1 - spread), "q50": value, "q95": value * (1 + spread)})

    for y in range(2000, 2011):
        for r, base in (("CN", 100.0), ("US", 10.0), ("RoW", 30.0), ("World", 140.0)):
            add("mining", y, base * (1 + 0.03 * (y - 2000)) * rng.uniform(0.9, 1.1), region=r)
            for u, share in (("magnets", 0.4), ("catalysts", 0.2), ("metallurgy", 0.1), ("glass_ceramics", 0.2), ("other", 0.1)):
                add("consumption", y, base * share, region=r, end_use=u)
            for p in ("concentrate", "salt", "oxide", "metal"):
                add("net_export", y, base * rng.uniform(-0.3, 0.3), spread=0.5, region=r, product=p)
            rows.append({"quantity": "p_net_exporter", "region": r, "year_start": y, "year_end": y, "mean": rng.uniform(),
                         "sd": 0.4, "q05": 0.0, "q50": 1.0, "q95": 1.0})
        for r, share in (("CN", 0.7), ("US", 0.1), ("RoW", 0.2)):
            add("mining_share", y, share, spread=0.1, region=r)
        for r in ("CN", "RoW"):
            add("unregistered_mining", y, 15.0 if r == "CN" else 3.0, spread=0.6, region=r)
        for p in ("CN", "RoW", "US"):  # US from US: a structural zero, never drawn
            add("import_share_from", y, {"CN": 0.8, "RoW": 0.2, "US": 0.0}[p], spread=0.1, region="US", partner=p)
        add("mined_refined_in_cn_share", y, 0.85, spread=0.05, region="US")
    for r, base in (("CN", 100.0), ("US", 10.0), ("RoW", 30.0)):
        add("mining", 2010, base * 11, start=2000, region=r)  # cumulative row
        for u, share in (("magnets", 0.4), ("catalysts", 0.6)):
            add("no_trade_consumption", 2010, base * share * 0.5, spread=0.3, region=r, end_use=u)
    df = pd.DataFrame(rows)
    df["unit"] = df["quantity"].map(UNITS)
    df["description"] = "a test quantity"
    cols = ["quantity", "region", "partner", "product", "end_use", "year_start", "year_end", "unit", "description",
            "mean", "sd", "q05", "q50", "q95"]
    return df.reindex(columns=cols)


def csv_roundtrip(df: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "summary.csv"
    df.to_csv(path, index=False)
    return read_summary(path)


def band_polygons(fig: Figure) -> list[np.ndarray]:
    return [p.vertices for c in fig.axes[0].collections if isinstance(c, PolyCollection) for p in c.get_paths()]


def legend_outside(fig: Figure, ax) -> bool:
    """Whether the legend of ``ax`` (or of the figure) lies wholly outside the axes' box."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legend = ax.get_legend() or (fig.legends[0] if fig.legends else None)
    assert legend is not None, "no legend"
    box, frame = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    return box.x0 >= frame.x1 or box.x1 <= frame.x0 or box.y0 >= frame.y1 or box.y1 <= frame.y0


def test_bands_lines_per_region_and_lower_below_upper(tmp_path):
    summary = csv_roundtrip(fake_summary(), tmp_path)
    assert summary["year_start"].dtype.kind == "i" and summary["year_end"].dtype.kind == "i"
    fig = plots.bands(summary, "mining", by="region")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["CN", "US", "RoW", "World"]
    # cumulative rows skipped: x values are the 11 integer years
    for line in ax.get_lines():
        assert list(line.get_xdata()) == list(range(2000, 2011))
    polys = band_polygons(fig)
    assert len(polys) == 4
    rows = summary[(summary["quantity"] == "mining") & (summary["year_start"] == summary["year_end"])]
    for region, line, verts in zip(["CN", "US", "RoW", "World"], ax.get_lines(), polys, strict=True):
        r = rows[rows["region"] == region].set_index("year_end")
        assert np.allclose(line.get_ydata(), r["q50"])
        # the band drawn for this region spans exactly its q05..q95 in every year: the outline of fill_between
        # visits each year's lower and upper bound (and nothing else, apart from closing points)
        by_x: dict[int, set[float]] = {}
        for x, y in verts:
            by_x.setdefault(int(round(x)), set()).add(round(float(y), 9))
        assert sorted(by_x) == list(range(2000, 2011))
        for year, ys in by_x.items():
            assert min(ys) == pytest.approx(r.loc[year, "q05"]) and max(ys) == pytest.approx(r.loc[year, "q95"]), (region, year)
    # the unit comes from the summary's unit column, the interval level from its quantile columns
    assert ax.get_ylabel() == "kt REO (median, 90% interval)"
    assert legend_outside(fig, ax)


def test_bands_of_one_year_draw_the_interval_as_an_error_bar_around_that_year(tmp_path):
    """A single-year system: no zero-width band on a century of axis, but the 90 % interval as an error bar."""
    summary = csv_roundtrip(fake_summary(), tmp_path)
    one = summary[(summary["year_start"] == 2005) & (summary["year_end"] == 2005)]
    fig = plots.bands(one, "mining", by="region")
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [2005] and ax.get_xlim() == (2004, 2006)
    assert not band_polygons(fig)
    bars = [c for c in ax.containers if isinstance(c, matplotlib.container.ErrorbarContainer)]
    assert len(bars) == 4
    rows = one[one["quantity"] == "mining"].set_index("region")
    for region, bar in zip(["CN", "US", "RoW", "World"], bars, strict=True):
        segment = bar.lines[2][0].get_segments()[0]  # the vertical bar from the lower to the upper limit
        assert np.allclose(sorted(segment[:, 1]), [rows.loc[region, "q05"], rows.loc[region, "q95"]])


def test_bands_filters_and_errors(tmp_path):
    summary = csv_roundtrip(fake_summary(), tmp_path)
    fig = plots.bands(summary, "consumption", by="end_use", filters={"region": "US", "year": list(range(2000, 2010))})
    assert len(fig.axes[0].get_lines()) == 5
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == list(range(2000, 2010))
    with pytest.raises(ValueError, match="no rows for quantity 'no_such_thing'"):
        plots.bands(summary, "no_such_thing")
    with pytest.raises(ValueError, match="region='Mars'"):
        plots.bands(summary, "mining", filters={"region": "Mars"})
    with pytest.raises(ValueError, match="several rows"):
        plots.bands(summary, "consumption", by="region")  # end uses not filtered
    with pytest.raises(ValueError, match="cumulative"):
        plots.bands(summary, "mining", filters={"year_start": 2000, "year_end": 2010})


def test_labels_replace_codes_and_fall_back_to_them(tmp_path):
    (tmp_path / "labels.yaml").write_text("title: A case\nunit: kt X\nlabels:\n  region: {CN: China}\n"
                                          "  quantity: {mining: Mine output}\nsources: [one]\ncaveats: [two, three]\n")
    labels = plots.load_labels(tmp_path / "labels.yaml")
    assert (labels.title, labels.unit, labels.sources, labels.caveats) == ("A case", "kt X", ("one",), ("two", "three"))
    assert labels("region", "CN") == "China" and labels("region", "US") == "US" and labels("end_use", "x") == "x"
    fig = plots.bands(csv_roundtrip(fake_summary(), tmp_path), "mining", labels=labels)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["China", "US", "RoW", "World"]
    assert ax.get_title() == "Mine output"
    assert plots.load_labels(tmp_path / "none.yaml")("region", "CN") == "CN"  # no table: code names
    (tmp_path / "bad.yaml").write_text("labels: [1, 2]\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        plots.load_labels(tmp_path / "bad.yaml")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("title: x\nregion_order: [CN]\n", "'region_order'"),  # unknown key (a typo of regions)
        ("regions: CN\n", "'regions'"),
        ("key_quantities: {mining: 1}\n", "'key_quantities'"),
        ("default_regions: [CN]\n", "'default_regions'"),
        ("default_regions: {net_export: CN}\n", "'default_regions.net_export'"),
        ("aggregate: [World]\n", "'aggregate'"),
        ("sources: one\n", "'sources'"),
        ("product_colours: {ore: [1, 2]}\n", "'product_colours.ore'"),
        ("product_colours: {ore: [1, 2, 300]}\n", "'product_colours.ore'"),
        ("product_colours: [ore]\n", "'product_colours'"),
    ],
)
def test_bad_labels_file_is_one_line_naming_file_and_key(tmp_path, text, key):
    path = tmp_path / "labels.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        plots.load_labels(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and key in message and "\n" not in message


def test_labels_order_regions_and_choose_defaults(tmp_path):
    """Region order, the aggregate row and the default regions come from labels.yaml; without one, the data's order."""
    from bayesmfa.cases import ree_figures

    summary = csv_roundtrip(fake_summary(), tmp_path)
    names = [n for n, *_ in ree_figures.summary_figures(summary) if n.startswith("consumption_")]
    assert names == ["consumption_CN", "consumption_US", "consumption_RoW", "consumption_World"]  # as in the data
    (tmp_path / "labels.yaml").write_text("regions: [World, RoW, CN]\naggregate: World\n"
                                          "default_regions: {consumption: [Mars]}\nkey_quantities: [mining]\n")
    labels = plots.load_labels(tmp_path / "labels.yaml")
    assert labels.order_regions(["CN", "US", "RoW", "World"]) == ["World", "RoW", "CN", "US"]  # unlisted US last
    specs = ree_figures.summary_figures(summary, labels)
    names = [n for n, *_ in specs]
    assert [n for n in names if n.startswith("consumption_")] == ["consumption_World", "consumption_RoW", "consumption_CN",
                                                                  "consumption_US"]
    assert [n for n in names if n.startswith("net_export_")] == ["net_export_World", "net_export_RoW", "net_export_CN",
                                                                 "net_export_US"]
    # the figures drawn follow the same order: the first consumption figure is the world's
    fig = dict((n, b) for n, _, _, b in specs)["consumption_World"]()
    assert "World" in fig._suptitle.get_text()
    # default regions name a figure only when the summary has no region of the quantity
    empty = summary[summary["quantity"] != "consumption"]
    assert [n for n, *_ in ree_figures.summary_figures(empty, labels) if n.startswith("consumption_")] == ["consumption_Mars"]
    assert not [n for n, *_ in ree_figures.summary_figures(empty) if n.startswith("consumption_")]
    assert labels.key_quantities == ("mining",)


def test_ree_figures_live_in_the_case_and_plots_says_where():
    from bayesmfa.cases import ree_figures

    for name in plots.MOVED_TO_REE_FIGURES:
        assert callable(getattr(ree_figures, name))
        with pytest.raises(AttributeError, match=f"bayesmfa.cases.ree_figures.{name}"):
            getattr(plots, name)
    with pytest.raises(AttributeError, match="no attribute"):
        plots.no_such_function  # noqa: B018


def test_shipped_label_tables_name_every_code():
    from bayesmfa.cases import demo, ree
    from bayesmfa.core.system import load_system

    labels = ree.labels(ROOT)
    system = load_system(ROOT / "data" / "ree" / "system.yaml")
    assert labels.title.startswith("Rare earth") and labels.unit == "kt REO" and labels.sources and labels.caveats
    for kind, codes in (("region", system.dims["region"]), ("end_use", system.dims["end_use"]),
                        ("process", system.processes), ("product", ("concentrate", "salt", "oxide", "metal")),
                        ("quantity", ree.QUANTITY_INFO)):
        assert all(labels(kind, c) != c for c in codes), kind
    assert demo.labels(ROOT)("region", "A") == "Region A"


def test_band_wrappers(tmp_path):
    from bayesmfa.cases import ree_figures

    summary = csv_roundtrip(fake_summary(), tmp_path)
    fig = ree_figures.consumption_bands(summary, "CN")
    stack, *panels = fig.axes
    assert len(panels) == 5  # stacked medians, then one panel per end use
    assert len(stack.collections) == 5 and "stacked" in stack.get_title()
    for ax in panels:
        assert len(ax.get_lines()) == 1 and len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1
    assert "kt REO" in panels[0].get_ylabel() and "90% interval" in panels[0].get_ylabel()
    assert legend_outside(fig, stack) and all(legend_outside(fig, ax) for ax in panels)
    fig = ree_figures.mining_share_bands(summary)
    assert fig.axes[0].get_ylim() == (0.0, 1.0)
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["CN", "US", "RoW"]
    assert fig.axes[0].get_ylabel() == "share (0-1) (median, 90% interval)"
    fig = ree_figures.unregistered_mining_bands(summary)
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["CN", "RoW"]
    fig = ree_figures.net_trade_bands(summary, "US")
    labels = [line.get_label() for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
    assert labels == ["concentrate", "salt", "oxide", "metal"]
    assert legend_outside(fig, fig.axes[0])
    fig = ree_figures.dependence_bands(summary, "US")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    # US from US (a self-pair) is not drawn
    assert labels == ["import_share_from: CN", "import_share_from: RoW", "mined_refined_in_cn_share: US"]
    assert legend_outside(fig, fig.axes[0]) and "90%" in fig.axes[0].get_ylabel()
    fig = ree_figures.net_exporter_probability(summary)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] < 0.0 and ax.get_ylim()[1] > 1.0  # lines at 0 and 1 stay inside the frame
    assert ax.get_ylabel() == "probability (posterior mean)"
    assert not band_polygons(fig)  # probabilities: the mean, no band
    cn = summary[(summary["quantity"] == "p_net_exporter") & (summary["region"] == "CN")]
    assert np.allclose(ax.get_lines()[0].get_ydata(), cn["mean"])
    with pytest.raises(ValueError, match="none of"):
        ree_figures.dependence_bands(summary.iloc[0:0].assign(quantity=[]))


def test_summary_figures_have_one_name_each(tmp_path):
    from bayesmfa.cases import ree_figures

    summary = csv_roundtrip(fake_summary(), tmp_path)
    specs = ree_figures.summary_figures(summary)
    names = [name for name, *_ in specs]
    assert len(names) == len(set(names))
    assert {"net_export_CN", "consumption_World", "dependence_US", "counterfactual_2010"} <= set(names)
    assert not any(n.startswith("net_trade_") for n in names)
    for name, _, _, build in specs:
        if name.startswith(("consumption_", "net_export_", "counterfactual_")):
            fig = build()
            assert any("kt REO" in ax.get_ylabel() and "90%" in ax.get_ylabel() for ax in fig.axes), name


# ---------------------------------------------------------------------------
# net trade and the triangle
# ---------------------------------------------------------------------------


def test_net_pair_flows_per_draw():
    graph = Graph(system_from_dict(SMUGGLING_SYSTEM))
    ds = fake_posterior(graph, draws=400, seed=7, sigma=1.0)
    net = plots.net_pair_flows(ds, ["oxide_trade", "flow_smuggling"], year=2001)
    assert len(net) == 3  # unordered pairs of three regions
    assert set(zip(net["region"], net["partner"])) == {("CN", "US"), ("CN", "RoW"), ("US", "RoW")}
    t = ds["flow_oxide_trade"] + ds["flow_smuggling"]
    per_draw = (t.sel(origin="CN", destination="US") - t.sel(origin="US", destination="CN")).sel(year=2001).values.ravel()
    row = net[(net["region"] == "CN") & (net["partner"] == "US")].iloc[0]
    assert row["q50"] == pytest.approx(np.median(per_draw))
    assert row["q05"] == pytest.approx(np.quantile(per_draw, 0.05))
    each = plots.net_pair_flows(ds, ["oxide_trade"])
    assert len(each) == 3 * 3
    period = plots.net_pair_flows(ds, ["oxide_trade"], year=(2000, 2002))
    assert set(zip(period["year_start"], period["year_end"])) == {(2000, 2002)} and period["year_start"].dtype.kind == "i"
    assert set(each["year_start"]) == {2000, 2001, 2002} and (each["year_start"] == each["year_end"]).all()
    fig = plots.trade_triangle(period, (2000, 2002))
    assert "Net trade 2000-2002" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="origin/destination"):
        plots.net_pair_flows(ds, ["ore"])


def test_trade_triangle_arrows_follow_the_net_direction():
    net = pd.DataFrame(
        {
            "region": ["CN", "CN", "US"],
            "partner": ["US", "RoW", "RoW"],
            "year": [2020, 2020, 2020],
            "q05": [5.0, -30.0, -2.0],
            "q50": [10.0, -20.0, 1.0],
            "q95": [15.0, -10.0, 3.0],
        }
    )
    fig = plots.trade_triangle(net, 2020, unit="kt")
    ax = fig.axes[0]
    assert "kt" in ax.get_title() and "90% interval" in ax.get_title()
    texts = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
    assert set(texts) == {"net:CN->US", "net:RoW->CN", "net:US->RoW"}
    assert texts["net:RoW->CN"].endswith(plots.format_interval(20.0, 10.0, 30.0, "kt"))
    assert "10.0 [5.00, 15.0] kt" in texts["net:CN->US"]
    # the uncertain pair is dashed grey, the certain ones solid
    arrows = [a for a in ax.texts if hasattr(a, "arrow_patch") and a.arrow_patch is not None]
    assert len(arrows) == 3
    styles = sorted(a.arrow_patch.get_linestyle() for a in arrows)
    assert styles.count("-") == 2 and styles.count("--") == 1
    with pytest.raises(ValueError, match="three regions"):
        plots.trade_triangle(net[net["partner"] != "RoW"].assign(partner=["US"]), 2020, regions=["CN", "US"])
    with pytest.raises(ValueError, match="no net trade rows"):
        plots.trade_triangle(net, 1999)


def test_counterfactual_bars(tmp_path):
    summary = csv_roundtrip(fake_summary(), tmp_path)
    fig = plots.counterfactual(summary, 2010, actual="consumption", no_trade="no_trade_consumption", category="end_use",
                               legend_labels=("with trade", "no trade"))
    assert [ax.get_title() for ax in fig.axes] == ["CN", "US", "RoW"]
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 2 * 2  # with/without trade x the end uses of the no-trade rows (magnets, catalysts)
    cons = summary[(summary["quantity"] == "consumption") & (summary["region"] == "CN") & (summary["year_end"] == 2010)
                   & (summary["year_start"] == 2010)]
    none = summary[(summary["quantity"] == "no_trade_consumption") & (summary["region"] == "CN")]
    assert heights[:2] == pytest.approx(cons.set_index("end_use").loc[["magnets", "catalysts"], "q50"].tolist())
    assert heights[2:] == pytest.approx(none.set_index("end_use").loc[["magnets", "catalysts"], "q50"].tolist())
    assert ax.get_ylabel() == "kt REO (median, 90% interval)" and "90% interval" in fig._suptitle.get_text()
    assert all(legend_outside(fig, a) for a in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["with trade", "no trade"]
    assert fig._suptitle.get_text().startswith("consumption and no_trade_consumption by end_use in 2010")
    with pytest.raises(ValueError, match="no_trade_consumption"):
        plots.counterfactual(summary[summary["quantity"] != "no_trade_consumption"], 2010, actual="consumption",
                             no_trade="no_trade_consumption", category="end_use")
