"""Every view of stored results: the run report, `harness compare` and the build-or-buy answer,
each in the terminal and as Markdown, CSV, JSON and a self-contained HTML page. Reads typed
results only; never starts a server or measures.

run_report/  the results table, summary.csv and the page of one or more runs
comparison/  runs side by side, each delta against the noise
answer/      the cost answer's views
page.py, charts.py, frames.py   the page, its charts and the frames they are drawn from
"""
