"""`harness cost` (build or buy for a stored run and a traffic profile) and `harness prices`
(every price known, with its source and date)."""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from pathlib import Path

import pandas as pd
import typer

from harness.commands.output import console, user_error


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


PRICES_OPTION = typer.Option(
    None, "--prices", metavar="FILE",
    help="Your own prices (YAML): GPU rows, API rows and tiers added to the packaged ones.")
PRICE_DATE_OPTION = typer.Option(
    None, "--price-date", metavar="YYYY-MM-DD",
    help="Evaluate API prices in force on this date [default: today].")
FORMAT_OPTION = typer.Option(OutputFormat.table, "--format", help="table, csv or json.")


def _price_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise user_error(f"--price-date: {text!r} is not a date (YYYY-MM-DD)") from None


def _emit(frame: pd.DataFrame, output_format: OutputFormat) -> None:
    if output_format is OutputFormat.csv:
        typer.echo(frame.to_csv(index=False), nl=False)
    else:
        typer.echo(frame.to_json(orient="records", indent=2))


def cost(
    results: Path = typer.Argument(..., metavar="RESULTS_DIR",
                                   help="A results directory written by `harness run`."),
    profile_path: Path = typer.Option(
        None, "--profile", metavar="FILE",
        help="Traffic profile (YAML): volume, peak, mix, SLO, hardware prices; see "
             "configs/profile-example.yaml."),
    prices_file: Path = PRICES_OPTION,
    price_date: str = PRICE_DATE_OPTION,
    output_format: OutputFormat = FORMAT_OPTION,
    points: bool = typer.Option(False, "--points",
                                help="List every measured point's $/Mtok instead."),
) -> None:
    """Build or buy: self-hosted cost of a stored run against hosted APIs, for your traffic.

    Per variant: capacity per GPU at the SLO, GPUs for the peak, monthly cost rented and owned,
    monthly cost on each comparable API, the break-even and which side is cheaper. Offline:
    reads the results directory and the price data only. Every formula: docs/cost-model.md.
    """
    from harness.cost.answer import build_answer, points_frame
    from harness.cost.files import CostInputError
    from harness.cost.measured import load_results
    from harness.cost.prices import load_price_book
    from harness.cost.profile import Profile, load_profile
    from harness.cost.tables import answer_view, points_table

    when = _price_date(price_date)
    try:
        profile = load_profile(profile_path) if profile_path else Profile()
        book = load_price_book(prices_file, when)
        stored = load_results(results)
        if points:
            frame = points_frame(stored, profile, book)
        else:
            answer = build_answer(stored, profile, book,
                                  str(profile_path) if profile_path else None)
    except (CostInputError, ValueError) as err:
        raise user_error(str(err).splitlines()[0]) from None
    if output_format is not OutputFormat.table:
        _emit(frame if points else answer.verdicts, output_format)
    elif points:
        console.print(points_table(frame, f"measured {stored.manifest.hardware}; SLO and prices as "
                                          "in `harness cost` (rented price of the run or GPU)"))
    else:
        console.print(answer_view(answer))


def prices(
    gpu: str = typer.Option(None, "--gpu", help="Only this GPU's rental prices."),
    api: list[str] = typer.Option(None, "--api", metavar="TIER|PROVIDER:MODEL",
                                  help="Only these API tiers or models (repeatable)."),
    prices_file: Path = PRICES_OPTION,
    price_date: str = PRICE_DATE_OPTION,
    output_format: OutputFormat = FORMAT_OPTION,
) -> None:
    """List the known prices with their sources and dates: GPU rental and hosted APIs."""
    from harness.cost.files import CostInputError
    from harness.cost.prices import api_price_frame, gpu_price_frame, load_price_book
    from harness.cost.tables import api_price_table, gpu_price_table

    when = _price_date(price_date)
    show_gpus, show_apis = gpu is not None or not api, bool(api) or gpu is None
    try:
        book = load_price_book(prices_file, when)
        gpus = gpu_price_frame(book, gpu) if show_gpus else pd.DataFrame()
        apis = api_price_frame(book, api or None) if show_apis else pd.DataFrame()
    except CostInputError as err:
        raise user_error(str(err)) from None
    if output_format is OutputFormat.json:
        typer.echo(json.dumps({"gpus": json.loads(gpus.to_json(orient="records")),
                               "apis": json.loads(apis.to_json(orient="records"))}, indent=2))
    elif output_format is OutputFormat.csv:
        both = pd.concat([gpus.assign(kind="gpu"), apis.assign(kind="api")], ignore_index=True)
        _emit(both, output_format)
    else:
        if show_gpus:
            console.print(gpu_price_table(gpus))
        if show_apis:
            console.print(api_price_table(apis))


def print_answer(results: Path, profile: Path) -> None:
    """The build-or-buy answer for a traffic profile, as `harness cost` prints it (a problem
    with the profile or prices is one line: the measured run itself stands)."""
    try:
        cost(results=results, profile_path=profile, prices_file=None, price_date=None,
             output_format=OutputFormat.table, points=False)
    except typer.Exit:
        pass
