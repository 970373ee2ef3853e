"""The `harness` command line: each command lives in its own module under harness/commands/."""

from __future__ import annotations

import typer

from harness.commands import (
    cluster,
    compare,
    cost,
    dummy_model,
    report,
    run,
    selftest,
    tune,
    validate,
)
from harness.commands.console import OneLineErrors

app = typer.Typer(
    help="Benchmark self-hosted LLM serving: sweep vLLM over batch sizes and quantizations, "
         "measure throughput and latency under load, and price it per million tokens.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    cls=OneLineErrors)

app.command("run")(run.run)
app.command("tune")(tune.tune)
app.command("report")(report.report)
app.command("compare")(compare.compare)
app.command("cost")(cost.cost)
app.command("prices")(cost.prices)
app.command("validate")(validate.validate)
app.command("dummy-model")(dummy_model.dummy_model)
app.command("cluster")(cluster.cluster)

selftest_app = typer.Typer(help="The harness measuring itself.", no_args_is_help=True)
selftest_app.command("client", help=selftest.HELP)(selftest.client)
app.add_typer(selftest_app, name="selftest")

if __name__ == "__main__":
    app()
