"""Prior validation: missing, malformed or impossible priors name file and key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bayesmfa as bm
from bayesmfa.core.priors import resolve_priors


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda p: p["noise"][0].update({"sigma": -0.1}), "noise[0].sigma", "must be positive"),
        (lambda p: p["shares"][0].update({"shares": {"ore": 0.8, "ore_trade": 0.3}}), "shares[0].shares", "sum to 1.1"),
        (lambda p: p["yields"][0].update({"dist": "Weibull"}), "yields[0].dist", "unknown distribution 'Weibull'"),
        (lambda p: p["yields"][0].update({"dist": "LogNormal", "mu": 0, "sigma": 1}), "yields[0].dist", "not allowed"),
        (lambda p: p["factors"][0].pop("source"), "factors[0].source", "non-empty 'source'"),
        (lambda p: p["inputs"][0].pop("sigma"), "inputs[0].sigma", "'sigma' of LogNormal is missing"),
        (lambda p: p["inputs"][0].update({"median": -3}), "inputs[0].median", "positive"),
        (lambda p: p["shares"][0].update({"sd_logit": 0}), "shares[0].sd_logit", "positive"),
        (lambda p: p["steps"][0].update({"target": "flows"}), "steps[0].target", "'input' or 'share'"),
        (lambda p: p.update({"bogus": []}), "bogus", "unknown section"),
        (lambda p: p["yields"][0].update({"dist": "Fixed", "value": 1.5}), "yields[0].value", "outside the support"),
        (lambda p: p["noise"][0].update({"likelihood": "cauchy"}), "noise[0].likelihood", "likelihood must be"),
    ],
)
def test_malformed_prior_names_file_and_key(tiny_priors_dict, mutate, field, words):
    mutate(tiny_priors_dict)
    with pytest.raises(bm.PriorError) as err:
        bm.priors_from_dict(tiny_priors_dict, file="priors.yaml")
    assert err.value.field == field
    assert words in str(err.value)
    assert "priors.yaml" in str(err.value)


def _problem(system_dict, priors_dict):
    from conftest import tiny_records

    return bm.make_problem(bm.system_from_dict(system_dict), bm.priors_from_dict(priors_dict, file="p.yaml"), tiny_records())


def test_missing_input_prior_is_an_error(tiny_system_dict, tiny_priors_dict):
    tiny_priors_dict["inputs"][0]["region"] = "A"
    with pytest.raises(bm.PriorError, match=r"no prior in 'inputs' matches input node mining\[region=B\]"):
        _problem(tiny_system_dict, tiny_priors_dict)  # up front, when the problem is made, not when a model is built


def test_share_key_matching_nothing_is_an_error(tiny_system_dict, tiny_priors_dict):
    tiny_priors_dict["shares"][0]["shares"] = {"ore": 0.8, "smuggling": 0.2}
    with pytest.raises(bm.PriorError, match="share key 'smuggling' matches no flow") as err:
        _problem(tiny_system_dict, tiny_priors_dict)
    assert err.value.field == "shares[0].shares.smuggling"


def test_missing_noise_prior_for_a_used_source_type(tiny_system_dict, tiny_priors_dict):
    tiny_priors_dict["noise"][0]["source_type"] = "customs"
    with pytest.raises(bm.PriorError, match="no prior in 'noise' for source_type 'stats'"):
        _problem(tiny_system_dict, tiny_priors_dict)  # up front, when the problem is made, not at fit time


def test_missing_factor_prior_fails_when_the_problem_is_made(tmp_path):
    import shutil

    import yaml

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "priors" / "demo", tmp_path / "priors")
    for f in (tmp_path / "priors").glob("*.yaml"):
        doc = yaml.safe_load(f.read_text())
        if isinstance(doc, dict) and "factors" in doc:
            doc.pop("factors")
            f.write_text(yaml.safe_dump(doc))
    with pytest.raises(bm.PriorError, match="no prior in 'factors' for name 'exporter_reporting'"):
        bm.load_problem(root / "data" / "demo" / "system.yaml", tmp_path / "priors", root / "data" / "demo" / "records.csv")


def test_last_matching_entry_wins_and_share_means(tiny_system_dict, tiny_priors_dict):
    tiny_priors_dict["inputs"].append(
        {"process": "mining", "region": "B", "dist": "LogNormal", "median": 100, "sigma": 0.2, "source": "specific"}
    )
    problem = _problem(tiny_system_dict, tiny_priors_dict)
    res = resolve_priors(problem.priors, problem.graph)
    assert [d.kwargs["mu"] for d in res.input_level] == pytest.approx([np.log(10), np.log(100)])
    # free edge of each mining node is its trade edge: logit mean log(0.2/0.8)
    assert res.share_mean == pytest.approx([np.log(0.25)] * 2)


def test_priors_load_from_directory(tmp_path):
    (tmp_path / "a.yaml").write_text("noise:\n  - {source_type: s, dist: HalfNormal, sigma: 0.2, source: x}\n")
    (tmp_path / "b.yaml").write_text("factors:\n  - {name: f, dist: Beta, alpha: 2, beta: 2, source: y}\n")
    priors = bm.load_priors(tmp_path)
    assert len(priors.entries["noise"]) == 1 and len(priors.entries["factors"]) == 1
    (tmp_path / "c.yaml").write_text("noise:\n  - {source_type: s, dist: HalfNormal, sigma: 0.2\n")
    with pytest.raises(bm.PriorError, match="malformed YAML") as err:
        bm.load_priors(tmp_path)
    assert "c.yaml" in str(err.value)
