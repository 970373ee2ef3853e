"""Cost: what serving costs per million tokens, and build versus buy for a traffic profile.
Reads stored results only; its views are in harness/report/answer/.

inputs/      prices (GPU rental, hosted APIs, tiers), the traffic profile, dated data files
formulas.py  the formulas (hosting cost per hour, $/Mtok, provisioning, bills, break-even)
measured.py, capacity.py, fidelity.py   judging the run: points at the profile's SLO, the
             capacity per variant and how far it can be trusted, fidelity against the baseline
model.py     the answer's typed parts; flat.py turns them into the columns scripts read
answer.py    a results directory + profile + prices -> the answer, with demand.py, hosting.py,
             costs.py, verdicts.py, ranges.py, sensitivity.py, decision.py, notes.py and
             caveats.py
points.py    every measured point priced (`harness cost --points`)
tiers.py     tiers and model choice over several runs (docs/tiers.md), with fleet.py (runs ->
             deployments), lengths.py (capacity at a tier's lengths), tier_traffic.py,
             tier_options.py, assign.py (who serves each tier, shared replicas),
             tier_sensitivity.py, whatif.py, tier_notes.py; tier_parts.py and tier_flat.py
"""
