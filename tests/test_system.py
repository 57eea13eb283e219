"""System spec validation: each bad spec gives an error naming the key at fault."""

from __future__ import annotations

import pytest

import bayesmfa as bm
from bayesmfa.core.graph import Graph


def test_valid_system_expands_to_nodes_and_edges(tiny_system_dict):
    system = bm.system_from_dict(tiny_system_dict)
    graph = Graph(system)
    assert graph.n_nodes == 6
    # ore (2 domestic) + ore_trade (A->B, B->A) + product (2)
    assert graph.n_edges == 6
    trade = graph.edges_of("ore_trade")
    assert {dict(e.coords)["origin"] + dict(e.coords)["destination"] for e in trade} == {"AB", "BA"}
    assert system.flow_dims("ore_trade") == ("origin", "destination")
    assert graph.depth == 2


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda d: d["flows"]["ore"].update({"to": "smelting"}), "flows.ore.to", "unknown process 'smelting'"),
        (lambda d: d["flows"].update({"loop": {"from": "use", "to": "use"}}), "flows.loop", "to itself"),
        (lambda d: d["processes"]["use"].update({"dims": ["country"]}), "processes.use.dims", "not declared"),
        (lambda d: d["processes"].update({"ore": {"dims": []}}), "flows.ore", "already a process name"),
        (lambda d: d["boundary"].update({"sinks": []}), "boundary.sinks", "sends no flow"),
        (lambda d: d["boundary"].update({"inputs": ["nowhere"]}), "boundary.inputs", "unknown process"),
        (lambda d: d["flows"]["ore_trade"].update({"cross": "product"}), "flows.ore_trade.cross", "dim of both"),
        (lambda d: d["time"].update({"end": 1990}), "time.end", "before start"),
        (lambda d: d["dims"].update({"region": ["A", "A"]}), "dims.region", "duplicate coords"),
        (lambda d: d.pop("boundary"), "boundary", "required key is missing"),
        (lambda d: d["flows"]["ore_trade"].update({"unregistered": "yes"}), "flows.ore_trade.unregistered", "expected true or false"),
        (lambda d: d["processes"]["mining"].update({"unregistered": 1}), "processes.mining.unregistered", "expected true or false"),
        (lambda d: (d["processes"]["mining"].update({"unregistered": True}), d["flows"]["ore"].update({"unregistered": False})),
         "flows.ore.unregistered", "source process 'mining' is unregistered"),
    ],
)
def test_bad_spec_names_the_key(tiny_system_dict, mutate, field, words):
    mutate(tiny_system_dict)
    with pytest.raises(bm.SpecError) as err:
        bm.system_from_dict(tiny_system_dict, file="sys.yaml")
    assert err.value.field == field
    assert words in str(err.value)
    assert "sys.yaml" in str(err.value)


def test_duplicate_yaml_keys_are_errors(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: x\ntime: {start: 2000, end: 2001}\ndims: {region: [A]}\n"
        "processes:\n  mining: {dims: [region]}\n  mining: {dims: []}\n"
        "boundary: {inputs: [mining], sinks: [mining]}\nflows: {}\n"
    )
    with pytest.raises(bm.SpecError, match="duplicate key 'mining'") as err:
        bm.load_system(path)
    assert str(path) in str(err.value)


def test_duplicate_names_in_list_form(tiny_system_dict):
    tiny_system_dict["processes"] = [{"name": "mining"}, {"name": "mining"}]
    with pytest.raises(bm.SpecError, match="duplicate name 'mining'"):
        bm.system_from_dict(tiny_system_dict)


def test_restricted_coords_and_dense_named_flows(tiny_system_dict):
    tiny_system_dict["processes"]["hidden"] = {"dims": ["region"], "coords": {"region": ["B"]}}
    tiny_system_dict["boundary"]["inputs"].append("hidden")
    tiny_system_dict["flows"]["hidden_ore"] = {"from": "hidden", "to": "refining"}
    graph = Graph(bm.system_from_dict(tiny_system_dict))
    assert [n.label for n in graph.nodes_of("hidden")] == ["hidden[region=B]"]
    assert len(graph.edges_of("hidden_ore")) == 1


def test_demo_system_file_loads(demo_problem):
    assert demo_problem.system.name == "demo"
    assert demo_problem.graph.n_edges == 12


@pytest.mark.parametrize("name", ["step", "log_level", "level_z", "step_lognormal"])
def test_process_names_that_clash_with_model_parameters_are_refused(name):
    """A process 'step' would make an array 'input_step', the name of the step-scale parameter: refused up front."""
    from bayesmfa.core.system import system_from_dict
    from bayesmfa.errors import SpecError

    doc = {"name": "x", "unit": "kt", "time": {"dim": "year", "start": 2000, "end": 2001}, "dims": {},
           "processes": {"mining": {}, name: {}}, "boundary": {"inputs": ["mining"], "sinks": [name]},
           "flows": {"ore": {"from": "mining", "to": name}}}
    with pytest.raises(SpecError, match="reserved") as err:
        system_from_dict(doc, file="system.yaml")
    assert err.value.field == f"processes.{name}"


def test_unregistered_flag_on_flows_and_processes(tiny_system_dict):
    """``unregistered: true`` on a flow marks it; on a process, every flow out of it; absent: nothing (names are not read)."""
    plain = bm.system_from_dict(tiny_system_dict)
    assert not any(f.unregistered for f in plain.flows.values()) and not any(p.unregistered for p in plain.processes.values())
    tiny_system_dict["flows"]["product"]["unregistered"] = True
    tiny_system_dict["processes"]["mining"]["unregistered"] = True
    system = bm.system_from_dict(tiny_system_dict)
    assert {n for n, f in system.flows.items() if f.unregistered} == {"ore", "ore_trade", "product"}
    assert [n for n, p in system.processes.items() if p.unregistered] == ["mining"]
    # the flag travels with the system's text (what a fit stores in posterior.nc)
    again = bm.system_from_dict(__import__("yaml").safe_load(system.to_yaml()))
    assert {n for n, f in again.flows.items() if f.unregistered} == {"ore", "ore_trade", "product"}


def test_ree_system_marks_unregistered_mining_and_smuggling():
    from pathlib import Path

    system = bm.load_system(Path(__file__).resolve().parents[1] / "data" / "ree" / "system.yaml")
    assert {n for n, f in system.flows.items() if f.unregistered} == {
        "concentrate_unregistered", "concentrate_unregistered_trade", "smuggled"}
    assert [n for n, p in system.processes.items() if p.unregistered] == ["mining_unregistered"]
