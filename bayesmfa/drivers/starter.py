"""``bayesmfa init``: a complete, commented, runnable starter case to copy and edit.

The starter lives in ``bayesmfa/drivers/templates/starter/`` (shipped in the wheel):
two regions, three processes (mining, refining with a yield and a stockpile,
use), trade of ore and product both ways, priors with a comment on every
section, and records of each kind — production, consumption surveys, mirror
trade records (exporter's and importer's, with a reporting factor on the
exporter's) and an upper bound. Its records were simulated from a truth
drawn from its priors (:func:`make_records`, seed in the ``source`` column),
so a fit of the starter can be checked against that truth.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from bayesmfa.core.records import mirror_trade_rows
from bayesmfa.errors import OutputError

#: The starter case's files.
TEMPLATE = Path(__file__).resolve().parent / "templates" / "starter"
SEED = 20261129
RECORD_COLUMNS = ["quantity", "region", "origin", "destination", "year", "value", "unit", "factor", "bound", "source_type",
                  "source", "note"]


def init_case(dest: str | Path) -> Path:
    """Write the starter case into ``dest`` (a new or empty folder).

    Parameters
    ----------
    dest : str or Path
        Folder to create.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    OutputError
        When ``dest`` exists and is not an empty folder (nothing is overwritten).
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise OutputError(f"{dest}: exists and is not an empty folder; bayesmfa init writes only into a new or empty folder")
    shutil.copytree(TEMPLATE, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def record_template(years: range) -> pd.DataFrame:
    """Which records the starter has (values are placeholders until simulated).

    Parameters
    ----------
    years : range
        Years of the system.

    Returns
    -------
    DataFrame
        One row per record, columns :data:`RECORD_COLUMNS`, values in kt.
    """
    rows = []
    for y in years:
        for r in ("north", "south"):
            rows.append({"quantity": "mining", "region": r, "year": y, "source_type": "production", "note": "mine output"})
            rows.append({"quantity": "refining", "region": r, "year": y, "source_type": "production",
                         "note": "refinery output"})
            if y % 2 == 0:
                rows.append({"quantity": "use", "region": r, "year": y, "source_type": "survey", "note": "consumption survey"})
                for flow in ("stockpile_addition", "stockpile_release"):
                    rows.append({"quantity": flow, "region": r, "year": y, "source_type": "survey",
                                 "note": "stock survey: material put into / taken out of store"})
        rows.extend(mirror_trade_rows(("ore_trade", "product_trade"), (("north", "south"), ("south", "north")), y))
    df = pd.DataFrame(rows)
    df["unit"] = "kt"
    df["value"] = 1.0
    df["source"] = f"synthetic: simulated by bayesmfa.drivers.starter.make_records (seed {SEED})"
    return df.reindex(columns=RECORD_COLUMNS).astype(object).fillna("").astype(str)


def make_records(folder: Path = TEMPLATE, seed: int = SEED) -> pd.DataFrame:
    """Simulate the starter's records from a truth drawn from its priors and write ``records.csv``.

    One upper bound is added: the stockpile's releases in the last year are at
    most twice their simulated value (a "reported capacity").
    """
    from bayesmfa.core.priors import load_priors
    from bayesmfa.core.problem import make_problem
    from bayesmfa.core.system import load_system
    from bayesmfa.inference.simulate import simulate_records

    system = load_system(folder / "system.yaml")
    problem = make_problem(system, load_priors(folder / "priors"), record_template(range(system.years[0], system.years[-1] + 1)))
    truth, table = simulate_records(problem, seed=seed)
    out = table.reindex(columns=RECORD_COLUMNS).fillna("")
    last = system.years[-1]
    release = float(truth["flow_stockpile_release"].sel(year=last, region="north"))
    bound = {"quantity": "stockpile_release", "region": "north", "year": str(last),
             "value": f"{2 * release:.4g}", "unit": "kt", "bound": "upper", "source_type": "production",
             "source": f"synthetic: twice the simulated value (seed {seed})", "note": "reported capacity: releases at most this"}
    out = pd.concat([out, pd.DataFrame([bound])], ignore_index=True).reindex(columns=RECORD_COLUMNS).fillna("")
    out.to_csv(folder / "records.csv", index=False)
    return out


if __name__ == "__main__":  # regenerate the starter's records
    make_records()
