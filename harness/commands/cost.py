"""`harness cost` (build or buy for a stored run and a traffic profile) and `harness prices`
(every price known, with its source and date)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from harness.commands.console import emit, err_console, user_error
from harness.report.output import Format

PRICES_OPTION = typer.Option(
    None, "--prices", metavar="FILE",
    help="Your own prices (YAML): GPU rows, API rows and tiers added to the packaged ones.")
PRICE_DATE_OPTION = typer.Option(
    None, "--price-date", metavar="YYYY-MM-DD",
    help="Evaluate API prices in force on this date \\[default: today].")
FORMAT_OPTION = typer.Option(
    Format.table, "--format",
    help="table (the terminal), md (Markdown), csv, json, or html (one self-contained page).")
REFRESH_OPTION = typer.Option(
    False, "--refresh", help="Fetch genai-prices' current API price data first (needs the "
    "network; on failure its bundled data is used and a warning says so).")
MAX_AGE_OPTION = typer.Option(
    None, "--max-price-age", metavar="DAYS", min=1,
    help="Flag prices whose data is older than this on their price date \\[default: the "
         "profile's max_price_age_days, 90].")


def _refresh() -> None:
    from harness.cost.inputs.genai_data import refresh_genai_prices

    problem = refresh_genai_prices()
    if problem is not None:
        err_console.print(f"[yellow]warning: could not refresh the genai-prices data ({problem}); "
                      "using the data it ships with[/yellow]", highlight=False)


def _price_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise user_error(f"--price-date: {text!r} is not a date (YYYY-MM-DD)") from None


def cost(
    results: list[Path] = typer.Argument(
        ..., metavar="RESULTS_DIR...",
        help="A results directory written by `harness run`; several (one per model or machine) "
             "with a profile that has `tiers` (docs/tiers.md)."),
    profile_path: Path = typer.Option(
        None, "--profile", metavar="FILE",
        help="Traffic profile (YAML): volume, peak, mix, SLO, hardware prices; see "
             "configs/profile-example.yaml."),
    prices_file: Path = PRICES_OPTION,
    price_date: str = PRICE_DATE_OPTION,
    output_format: Format = FORMAT_OPTION,
    points: bool = typer.Option(False, "--points",
                                help="List every measured point's $/Mtok instead."),
    detail: bool = typer.Option(False, "--detail",
                                help="In the terminal, print the full tables: self-hosted, APIs, "
                                     "every verdict with its break-even ranges, sensitivity, all "
                                     "caveats (md and html always hold them)."),
    table: str = typer.Option(
        "verdicts", "--table", metavar="NAME",
        help="With --format csv: which table (verdicts, decision, capacity, apis, break-even, "
             "sensitivity, prices, caveats; with tiers: tiers, plans, options, pools, "
             "sensitivity, what-ifs, prices, caveats)."),
    refresh: bool = REFRESH_OPTION,
    max_price_age: int = MAX_AGE_OPTION,
) -> None:
    """Build or buy: self-hosted cost of a stored run against hosted APIs, for your traffic.

    Leads with the decision per variant (the cheapest way to serve the traffic, its monthly
    bill, the runner-up and the caveats it rests on); --detail adds capacity per GPU at the
    SLO and where it comes from (capacity search or unverified closed loop), GPUs for the
    peak, monthly cost rented and owned, each API's bill, the traffic ranges where
    self-hosting wins and what flips the decision. --format json carries all of it. Offline
    unless --refresh: reads the results directory and the price data only. --format md or html
    writes the decision and every table as a document. Every formula: docs/cost-model.md.
    """
    from harness.cost.answer import build_answer
    from harness.cost.flat import TABLES
    from harness.cost.inputs.files import CostInputError
    from harness.cost.inputs.prices import load_price_book
    from harness.cost.inputs.profile import Profile, load_profile
    from harness.cost.measured import load_results
    from harness.cost.points import point_costs
    from harness.report.answer.document import AnswerDocument
    from harness.report.answer.listing_documents import PointsDocument

    when = _price_date(price_date)
    if refresh:
        _refresh()
    try:
        profile = load_profile(profile_path) if profile_path else Profile()
        book = load_price_book(prices_file, when, max_price_age or profile.max_price_age_days)
        if profile.tiers and not points:
            emit(tier_document(results, profile, book, profile_path, detail, table),
                 output_format)
            return
        if table not in TABLES:
            raise user_error(f"--table: {table!r} is not one of {', '.join(TABLES)}")
        if len(results) > 1:
            raise user_error("several results directories are priced together only for a "
                             "profile with `tiers` (docs/tiers.md)")
        stored = load_results(results[0])
        if points:
            document = PointsDocument(
                point_costs(stored, profile, book), f"measured {stored.manifest.hardware}; SLO "
                "and prices as in `harness cost` (rented price of the run or GPU)")
        else:
            document = AnswerDocument(build_answer(stored, profile, book,
                                                   str(profile_path) if profile_path else None),
                                      detail, table)
    except (CostInputError, ValueError) as err:
        raise user_error(str(err).splitlines()[0]) from None
    emit(document, output_format)


def tier_document(results: list[Path], profile, book, profile_path: Path | None, detail: bool,
                  table: str):
    """The tiered answer over one or several runs (harness.cost.tiers)."""
    from harness.cost.measured import load_results
    from harness.cost.tier_flat import TIER_TABLES
    from harness.cost.tiers import build_tier_answer
    from harness.report.answer.tier_document import TierDocument

    table = "tiers" if table == "verdicts" else table
    if table not in TIER_TABLES:
        raise user_error(f"--table: {table!r} is not one of {', '.join(TIER_TABLES)}")
    roots = [path.resolve() for path in results]
    twice = sorted({str(r) for r in roots if roots.count(r) > 1})
    if twice:
        raise user_error(f"{twice[0]}: given twice; give each results directory once")
    runs = [load_results(path) for path in results]
    answer = build_tier_answer(runs, profile, book, str(profile_path) if profile_path else None)
    return TierDocument(answer, detail, table)


def prices(
    gpu: str = typer.Option(None, "--gpu", help="Only this GPU's rental prices."),
    api: list[str] = typer.Option(None, "--api", metavar="TIER|PROVIDER:MODEL",
                                  help="Only these API tiers or models (repeatable)."),
    prices_file: Path = PRICES_OPTION,
    price_date: str = PRICE_DATE_OPTION,
    output_format: Format = FORMAT_OPTION,
    refresh: bool = REFRESH_OPTION,
    max_price_age: int = typer.Option(90, "--max-price-age", metavar="DAYS", min=1,
                                      help="Flag prices whose data is older than this."),
) -> None:
    """List the known prices with their sources and dates: GPU rental and hosted APIs, each
    with the date of its data, its age and whether it is stale."""
    from harness.cost.inputs.files import CostInputError
    from harness.cost.inputs.prices import api_price_frame, gpu_price_frame, load_price_book
    from harness.report.answer.listing_documents import PricesDocument

    when = _price_date(price_date)
    show_gpus, show_apis = gpu is not None or not api, bool(api) or gpu is None
    if refresh:
        _refresh()
    try:
        book = load_price_book(prices_file, when, max_price_age)
        gpus = gpu_price_frame(book, gpu) if show_gpus else None
        apis = api_price_frame(book, api or None) if show_apis else None
    except CostInputError as err:
        raise user_error(str(err)) from None
    emit(PricesDocument(gpus, apis), output_format)


def print_answer(results: Path, profile: Path) -> None:
    """The build-or-buy answer for a traffic profile, as `harness cost` prints it (a problem
    with the profile or prices is one line: the measured run itself stands)."""
    try:
        cost(results=[results], profile_path=profile, prices_file=None, price_date=None,
             output_format=Format.table, points=False, detail=False, table="verdicts",
             refresh=False, max_price_age=None)
    except typer.Exit:
        pass
