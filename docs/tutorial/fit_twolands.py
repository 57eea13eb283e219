"""Fit the tutorial's case (run from the folder that holds twolands/)."""

import json

import arviz as az

import bayesmfa as bm

# 1. load and validate: system, priors, records (the records' schema.yaml is checked first)
problem = bm.load_problem("twolands/system.yaml", "twolands/priors", "twolands")
print(f"{problem.records.n_obs} records; source types {problem.records.source_types}; factors {problem.records.factors}")

# 2. fit: NUTS, 4 chains of 1000 draws after 1000 tuning steps (warns if the diagnostics fail)
idata = bm.fit(problem, draws=1000, tune=1000, chains=4, seed=0)
diagnostics = json.loads(idata.posterior.attrs["diagnostics"])
print({k: diagnostics[k] for k in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences")})

# 3. mass balance holds in every draw
print("largest imbalance:", float(bm.balance_residuals(idata.posterior, problem.graph).max()))

# 4. what we wanted to know, per draw, then summarised
table = bm.summarize_with_prior(idata, {
    "use": lambda d: d["output_use"],
    "ore_exports_north": lambda d: d["flow_ore_trade"].sel(origin="North", destination="South"),
    "net_metal_imports_south": lambda d: d["flow_metal_trade"].sel(origin="North", destination="South")
                                         - d["flow_metal_trade"].sel(origin="South", destination="North"),
    "smelter_loss": lambda d: (d["input_smelting"] - d["output_smelting"]).sum("region"),
}, prob=0.9)
print(table[table["year"] == 2020].round(2).to_string(index=False))

# 5. the factors learned from the records, and every record against the fit
print(az.summary(idata, var_names=["yield", "record_factor"], kind="stats").round(3))
checks = bm.check_records(idata, problem)
print(checks.records[["record_id", "observed", "model_q50", "z", "misfit"]].round(2).head(8).to_string(index=False))
print(len(checks.misfits), "misfits")

# 6. save; loading recomputes the named arrays and refuses a file built from other inputs
bm.save(idata, "twolands.nc")
again = bm.load("twolands.nc", problem)
