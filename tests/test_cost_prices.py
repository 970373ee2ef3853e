"""Price data: the packaged GPU rows and API tiers, genai-prices lookups, user price files."""

from __future__ import annotations

from datetime import UTC, date, datetime

import genai_prices
import pytest
import yaml

from harness.cost.inputs.files import CostInputError
from harness.cost.inputs.prices import PriceError, api_price_frame, gpu_price_frame, load_price_book

DAY = date(2026, 11, 26)


@pytest.fixture(scope="module")
def book():
    return load_price_book(price_date=DAY)


def test_every_gpu_row_is_sourced_and_dated(book):
    assert book.gpus
    for row in book.gpus:
        assert row.source and isinstance(row.checked, date) and row.usd_per_gpu_hour > 0


@pytest.mark.parametrize("gpu, providers", [
    ("H100", 5), ("H200", 4), ("A100-80GB", 1), ("L40S", 2), ("B200", 2)])
def test_required_gpus_have_an_on_demand_price(book, gpu, providers):
    assert book.gpu_price(gpu).tier == "on-demand"
    assert len({r.provider for r in book.gpus if r.gpu == gpu}) >= providers


def test_gpu_price_picks_the_cheapest_matching_row(book):
    cheapest = book.gpu_price("h100")  # names match whatever the case and dashes
    on_demand = [r.usd_per_gpu_hour for r in book.gpus if r.gpu == "H100" and
                 r.tier == "on-demand"]
    assert cheapest.usd_per_gpu_hour == min(on_demand)
    assert book.gpu_price("H100", provider="runpod").provider == "runpod"
    assert book.gpu_price("H100", tier="spot").tier == "spot"


@pytest.mark.parametrize("args, expected", [
    (("H1000",), "unknown GPU 'H1000' (did you mean H100"),
    (("A100",), "A100-80GB, A100-40GB?"),
    (("H100", "runpd"), "did you mean runpod"),
    (("H100", None, "reserved"), "known: "),
])
def test_unknown_gpu_suggests_the_closest_names(book, args, expected):
    with pytest.raises(PriceError) as caught:
        book.gpu_price(*args)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_every_tier_resolves_to_exactly_the_named_model(book):
    for name, tier in book.tiers.items():
        assert tier.apis and isinstance(tier.checked, date), name
        for ref in tier.apis:
            price = book.api_price(ref)
            assert price.name.lower() == ref.lower(), f"{ref} resolved to {price.name}"
            assert price.per_mtok("input_mtok") > 0 and price.per_mtok("output_mtok") > 0


def test_tier_of_a_served_model(book):
    assert book.tier_for_model("meta-llama/Llama-3.1-8B-Instruct") == "llama-3.1-8b"
    assert book.tier_for_model("dummy:llama-3.1-8b") == "llama-3.1-8b"
    assert book.tier_for_model("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4") == \
        "llama-3.1-8b"
    assert book.tier_for_model("dummy:llama-3.3-70b") == "llama-3.3-70b"
    assert book.tier_for_model("openai/gpt-oss-20b") == "gpt-oss-20b"
    assert book.tier_for_model("dummy:tiny") is None


def test_api_prices_come_from_genai_prices(book):
    """The harness asks genai-prices for the price of a request; it does not redo its tables."""
    price = book.api_price("groq:llama-3.1-8b-instant")
    when = datetime(2026, 11, 26, 12, tzinfo=UTC)
    usage = genai_prices.Usage(input_tokens=1536, output_tokens=512)
    expected = genai_prices.calc_price(usage, "llama-3.1-8b-instant", provider_id="groq",
                                       genai_request_timestamp=when).total_price
    assert price.request_usd(1536, 512, 0.0, 0.0) == pytest.approx(float(expected))
    assert price.price_date == DAY and price.data.startswith("genai-prices ")
    assert price.source.startswith("https://")


def test_batch_and_cached_prices(book):
    price = book.api_price("anthropic:claude-haiku-4-5")
    assert price.batch is not None
    standard = price.request_usd(1000, 1000, 0.0, 0.0)
    assert price.request_usd(1000, 1000, 0.0, 1.0) == pytest.approx(standard / 2)
    assert price.request_usd(1000, 1000, 1.0, 0.0) < standard  # cached input is cheaper
    no_batch = book.api_price("groq:llama-3.1-8b-instant")
    assert no_batch.batch is None
    assert no_batch.request_usd(1000, 1000, 0.0, 1.0) == no_batch.request_usd(1000, 1000, 0, 0)


def test_fireworks_models_resolve_by_id(book):
    # genai-prices matches Fireworks models by their full API path; the id works too.
    assert book.api_price("fireworks:llama-v3p1-8b-instruct").name == \
        "fireworks:llama-v3p1-8b-instruct"


def test_unknown_api_suggests_the_closest_names(book):
    with pytest.raises(PriceError, match="did you mean groq:llama-3.1-8b-instant"):
        book.api_prices(["groq:llama-3.1-8b-instnt"])
    with pytest.raises(PriceError, match="did you mean llama-3.1-8b"):
        book.api_prices(["llama-3.1-8"])


def write_prices(tmp_path, content: dict):
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def test_user_price_file_adds_and_replaces(tmp_path):
    path = write_prices(tmp_path, {
        "gpus": [
            {"gpu": "H100", "provider": "runpod", "tier": "on-demand", "usd_per_gpu_hour": 1.99,
             "source": "our contract", "checked": "2026-11-01"},
            {"gpu": "MI300X", "provider": "ourcloud", "tier": "on-demand",
             "usd_per_gpu_hour": 1.5, "source": "quote 42", "checked": "2026-10-01"}],
        "apis": [{"name": "our-endpoint", "input_mtok": 0.25, "output_mtok": 1.25,
                  "cached_input_mtok": 0.025, "batch_discount": 0.5, "source": "invoice",
                  "checked": "2026-11-20"}],
        "tiers": {"ours": {"checked": "2026-11-20", "apis": ["our-endpoint",
                                                             "groq:llama-3.1-8b-instant"]}}})
    book = load_price_book(path, DAY)
    runpod = [r for r in book.gpus if r.gpu == "H100" and r.provider == "runpod"
              and r.tier == "on-demand"]
    assert [r.usd_per_gpu_hour for r in runpod] == [1.99]
    assert book.gpu_price("MI300X").source == "quote 42"
    prices = book.api_prices(["ours"])
    assert [p.name for p in prices] == ["our-endpoint", "groq:llama-3.1-8b-instant"]
    ours = prices[0]
    # 1,500 input + 500 output at $0.25 / $1.25 per Mtok = $0.001
    assert ours.request_usd(1500, 500, 0.0, 0.0) == pytest.approx(0.001)
    assert ours.request_usd(1500, 500, 0.0, 1.0) == pytest.approx(0.0005)
    assert ours.request_usd(1500, 500, 1.0, 0.0) == pytest.approx(
        (1500 * 0.025 + 500 * 1.25) / 1e6)
    assert ours.price_date == date(2026, 11, 20) and "prices.yaml" in ours.data


@pytest.mark.parametrize("content, expected", [
    ({"gpus": [{"gpu": "H100", "provider": "x", "tier": "on-demand", "usd_per_gpu_hour": -1,
                "source": "s", "checked": "2026-01-01"}]}, "gpus.0.usd_per_gpu_hour"),
    ({"gpus": [{"gpu": "H100", "provider": "x", "tier": "on-demand", "usd_per_gpu_hour": 0,
                "source": "s", "checked": "2026-01-01"}]}, "greater than 0"),
    ({"gpus": [{"gpu": "H100", "provider": "x", "tier": "on-demand", "usd_per_gpu_hour": 2,
                "source": "s"}]}, "gpus.0.checked: Field required"),
    ({"apis": [{"name": "a", "input_mtok": 1, "output_mtok": 0, "source": "s",
                "checked": "2026-01-01"}]}, "apis.0.output_mtok"),
    ({"gpu": []}, "gpu: unknown key"),
])
def test_bad_user_price_file_is_one_line(tmp_path, content, expected):
    path = write_prices(tmp_path, content)
    with pytest.raises(CostInputError) as caught:
        load_price_book(path, DAY)
    assert expected in str(caught.value) and str(path) in str(caught.value)


def test_missing_user_price_file(tmp_path):
    with pytest.raises(CostInputError, match="no such price file"):
        load_price_book(tmp_path / "nope.yaml")


def test_listings_carry_sources_and_dates(book):
    gpus = gpu_price_frame(book, "H200")
    assert set(gpus["gpu"]) == {"H200"} and gpus["checked"].notna().all()
    apis = api_price_frame(book, ["frontier-small"])
    assert (apis["prices_as_of"] == "2026-11-26").all()
    assert apis["tier_checked"].notna().all() and apis["source"].notna().all()


def test_expired_gpu_rows_are_not_chosen_unless_their_provider_is_named(book):
    aws = [r for r in book.gpus if r.provider == "aws"]
    assert aws and all(r.expired(DAY) for r in aws)
    with pytest.raises(PriceError, match="every H100 capacity-block price has expired"):
        book.gpu_price("H100", tier="capacity-block")
    assert book.gpu_price("H100", provider="aws", tier="capacity-block").provider == "aws"


def test_a_price_date_before_any_price_is_one_line():
    early = load_price_book(price_date=date(2020, 1, 1))
    with pytest.raises(PriceError) as caught:
        early.gpu_price("H100")
    assert str(caught.value) == ("--price-date 2020-01-01: before any H100 on-demand price "
                                 "(the earliest was checked 2026-11-26)")


def test_each_price_carries_the_date_of_its_data_and_its_age(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump({"apis": [
        {"name": "old-api", "input_mtok": 1, "output_mtok": 2, "source": "a 2025 price list",
         "checked": "2025-06-01"}]}))
    book = load_price_book(path, date(2026, 1, 1), max_age_days=90)
    (old,) = book.api_prices(["old-api"])
    assert old.data_date == date(2025, 6, 1)
    assert book.age_days(old.data_date) == (max(date(2026, 1, 1), book.today) - old.data_date).days
    assert book.stale(old.data_date)
    (groq,) = book.api_prices(["groq:llama-3.1-8b-instant"])
    # genai-prices' bundled data has no date of its own: the newest price change in force by
    # today stands for it (at least that recent); a fetched snapshot is dated by its fetch.
    assert groq.data_date <= book.today and groq.data == f"genai-prices {genai_prices.__version__}"
    frame = api_price_frame(book, ["old-api"])
    assert frame.loc[0, "data_date"] == "2025-06-01" and bool(frame.loc[0, "stale"])
    with pytest.raises(PriceError, match="before any price of old-api"):
        load_price_book(path, date(2025, 1, 1)).api_prices(["old-api"])


def test_a_gpu_price_is_dated_by_its_own_date_with_its_age_and_staleness():
    from datetime import date

    from harness.cost.inputs.prices import (
        api_price_frame,
        gpu_price_frame,
        load_price_book,
        price_date_of,
    )

    assert price_date_of("2025-08") == date(2025, 8, 1)
    assert price_date_of("late 2024") == date(2024, 10, 1)
    assert price_date_of("2025-08-14") == date(2025, 8, 14) and price_date_of(None) is None
    book = load_price_book(price_date=date(2026, 12, 7), max_age_days=90)
    rows = gpu_price_frame(book, "H100").set_index(["provider", "tier"])
    contract = rows.loc[("semianalysis", "3-yr-contract")]
    assert contract["data_date"] == "2025-08-01" and contract["checked"] == "2026-11-26"
    assert contract["stale"] and contract["age_days"] >= (date(2026, 12, 7) - date(2025, 8, 1)).days
    listed = rows.loc[("runpod", "on-demand")]
    assert listed["data_date"] == listed["checked"] and not listed["stale"]
    assert not api_price_frame(book, ["llama-3.1-8b"]).empty
