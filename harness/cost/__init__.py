"""Cost: what serving costs per million tokens, and build versus buy for a traffic profile.

model.py     the formulas (hosting cost per hour, $/Mtok, provisioning, bills, break-even)
prices.py    price data: GPU rental (gpu_prices.yaml), hosted APIs (genai-prices, api_tiers.yaml)
profile.py   the traffic profile (volume, peak, mix, SLO, owned hardware)
answer.py    a results directory + profile + prices -> the answer, as DataFrames
tables.py    the answer and the price lists as rich tables
commands.py  `harness cost` and `harness prices`
"""
