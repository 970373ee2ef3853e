"""Price data: GPU rental prices, hosted API prices and the tiers that make them comparable.

- GPU rental ($/GPU-hour): gpu_prices.yaml in this package, one dated, sourced row each.
- Hosted API prices: the genai-prices package (its bundled data, offline), evaluated at a
  pricing date; api_tiers.yaml maps tiers (llama-3.1-8b, frontier-small, ...) to its models.
- A user price file (`--prices FILE`) adds or replaces GPU rows, adds API rows of its own
  (or replaces a genai-prices model's price by naming it `provider:model`) and adds tiers.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field, PositiveFloat

from harness.config.base import Strict
from harness.cost.formulas import api_usd_per_request
from harness.cost.inputs.files import load_model
from harness.cost.inputs.genai_data import (  # noqa: F401 - PriceError is part of this API
    PriceError,
    _genai,
    genai_data_date,
    genai_version,
)

PACKAGE_DIR = Path(__file__).resolve().parent
GPU_PRICES_FILE = PACKAGE_DIR / "gpu_prices.yaml"
API_TIERS_FILE = PACKAGE_DIR / "api_tiers.yaml"
BATCH = {"processing": "batch"}


class GpuPrice(Strict):
    gpu: str
    provider: str
    tier: str
    usd_per_gpu_hour: PositiveFloat
    source: str = Field(min_length=1)
    checked: date
    source_date: str | None = None
    note: str | None = None
    valid_until: date | None = Field(None, description="the source says the price changes on "
                                     "this date: not chosen after it unless its provider is named")

    def expired(self, on: date) -> bool:
        return self.valid_until is not None and on >= self.valid_until

    @property
    def data_date(self) -> date:
        """The price's own date where its source gives one (a month or a part of a year is
        taken at its start), else the day it was read."""
        return price_date_of(self.source_date) or self.checked


SEASONS = {"early": 1, "mid": 6, "late": 10}


def price_date_of(text: str | None) -> date | None:
    """'2025-08-14', '2025-08', '2025', 'late 2024' (early, mid) as a date; None for None."""
    if not text:
        return None
    found = re.fullmatch(r"(?:(early|mid|late) )?(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", text.strip())
    if found is None:
        return None
    season, year, month, day = found.groups()
    return date(int(year), int(month or SEASONS.get(season, 1)), int(day or 1))


class ApiRow(Strict):
    """A user's own API price ($ per million tokens)."""
    name: str = Field(min_length=1)
    input_mtok: PositiveFloat
    output_mtok: PositiveFloat
    cached_input_mtok: PositiveFloat | None = None
    batch_discount: float = Field(1.0, gt=0, le=1, description="batch price / standard price")
    source: str = Field(min_length=1)
    checked: date


class Tier(Strict):
    description: str = ""
    checked: date
    models: list[str] = Field(default_factory=list)
    apis: list[str] = Field(min_length=1)


class GpuPriceFile(Strict):
    gpus: list[GpuPrice]


class TierFile(Strict):
    tiers: dict[str, Tier]


class UserPrices(Strict):
    gpus: list[GpuPrice] = Field(default_factory=list)
    apis: list[ApiRow] = Field(default_factory=list)
    tiers: dict[str, Tier] = Field(default_factory=dict)


def _key(name: str) -> str:
    return re.sub(r"[\s_-]", "", name.lower())


def did_you_mean(value: str, candidates: list[str]) -> str:
    """' (did you mean a, b?)' with the closest candidates, or ''."""
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(value.lower(), list(by_lower), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(by_lower[c] for c in close)}?)" if close else ""


@dataclass(frozen=True)
class ApiPrice:
    """One hosted API's prices, able to price a request (tiers by prompt length included)."""
    name: str
    standard: Any            # genai_prices.types.ModelPrice
    batch: Any | None        # the batch price, None where the API has none
    source: str
    price_date: date
    data: str                # where the numbers come from: "genai-prices 0.2.3" or a user file
    data_date: date          # the date of those numbers (a user row's `checked`)
    tier: str | None = None
    tier_checked: date | None = None

    def request_usd(self, input_tokens: int, output_tokens: int, cached_input_share: float,
                    batch_share: float) -> float:
        """$ for one request, cached input and batch shares blended (model.api_usd_per_request)."""
        batch = self.batch if self.batch is not None else self.standard
        return api_usd_per_request(
            self._usd(self.standard, input_tokens, output_tokens, cached=False),
            self._usd(self.standard, input_tokens, output_tokens, cached=True),
            self._usd(batch, input_tokens, output_tokens, cached=False),
            self._usd(batch, input_tokens, output_tokens, cached=True),
            cached_input_share, batch_share)

    @staticmethod
    def _usd(price: Any, input_tokens: int, output_tokens: int, cached: bool) -> float:
        usage = _genai().Usage(input_tokens=input_tokens, output_tokens=output_tokens,
                               cache_read_tokens=input_tokens if cached else 0)
        return float(price.calc_price(usage)["total_price"])

    def per_mtok(self, field: str, batch: bool = False) -> float | None:
        """A listed price in $/Mtok (the base price where it is tiered by prompt length)."""
        price = self.batch if batch else self.standard
        value = getattr(price, field, None) if price is not None else None
        value = getattr(value, "base", value)
        return float(value) if value is not None else None

    @property
    def tiered(self) -> bool:
        return any(not isinstance(getattr(self.standard, f, None), (Decimal, type(None)))
                   for f in ("input_mtok", "output_mtok"))


@dataclass
class PriceBook:
    gpus: list[GpuPrice]
    tiers: dict[str, Tier]
    user_apis: dict[str, ApiRow]
    price_date: date
    user_file: Path | None = None
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    max_age_days: int = 90

    def age_days(self, data_date: date) -> int:
        """How old a price's data is on the date it is applied for (today or --price-date)."""
        return (max(self.price_date, self.today) - data_date).days

    def stale(self, data_date: date) -> bool:
        return self.age_days(data_date) > self.max_age_days

    # --- GPU rental --------------------------------------------------------------------

    def gpu_names(self) -> list[str]:
        return sorted({row.gpu for row in self.gpus})

    def gpu_price(self, gpu: str, provider: str | None = None,
                  tier: str = "on-demand") -> GpuPrice:
        """The cheapest row for this GPU (and provider, if given) at this tier, in force on the
        price date: checked by then, and not expired unless its provider is named."""
        rows = [r for r in self.gpus if _key(r.gpu) == _key(gpu)]
        if not rows:
            raise PriceError(f"unknown GPU {gpu!r}{did_you_mean(gpu, self.gpu_names())}; "
                             f"known: {', '.join(self.gpu_names())}")
        if provider is not None:
            known = sorted({r.provider for r in rows})
            rows = [r for r in rows if _key(r.provider) == _key(provider)]
            if not rows:
                raise PriceError(f"no {gpu} price from provider {provider!r}"
                                 f"{did_you_mean(provider, known)}; known: {', '.join(known)}")
        known_tiers = sorted({r.tier for r in rows})
        rows = [r for r in rows if _key(r.tier) == _key(tier)]
        if not rows:
            raise PriceError(f"no {gpu} price at tier {tier!r}{did_you_mean(tier, known_tiers)}"
                             f"; known: {', '.join(known_tiers)}")
        known = [r for r in rows if r.checked <= self.price_date]
        if not known:
            earliest = min(r.checked for r in rows).isoformat()
            raise PriceError(f"--price-date {self.price_date.isoformat()}: before any {gpu} "
                             f"{tier} price (the earliest was checked {earliest})")
        current = known if provider is not None else [r for r in known
                                                      if not r.expired(self.price_date)]
        if not current:
            raise PriceError(f"every {gpu} {tier} price has expired by "
                             f"{self.price_date.isoformat()}: name its provider (rent.provider) "
                             "to use one anyway, or add a current row with --prices FILE")
        return min(current, key=lambda r: r.usd_per_gpu_hour)

    # --- hosted APIs -------------------------------------------------------------------

    def tier_for_model(self, model: str) -> str | None:
        """The tier whose `models` patterns match a served model name, if any."""
        name = model.lower()
        for tier_name, tier in self.tiers.items():
            if any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in tier.models):
                return tier_name
        return None

    def api_prices(self, names: list[str]) -> list[ApiPrice]:
        """Tier names and API names, expanded to API prices, each API once."""
        found: dict[str, ApiPrice] = {}
        for name in names:
            if name in self.tiers:
                tier = self.tiers[name]
                prices = [self.api_price(ref, name, tier.checked) for ref in tier.apis]
            else:
                prices = [self.api_price(name)]
            for price in prices:
                found.setdefault(price.name, price)
        return list(found.values())

    def api_price(self, ref: str, tier: str | None = None,
                  tier_checked: date | None = None) -> ApiPrice:
        if ref in self.user_apis:
            return self._user_api_price(self.user_apis[ref], tier, tier_checked)
        return self._genai_api_price(ref, tier, tier_checked)

    def _user_api_price(self, row: ApiRow, tier: str | None,
                        tier_checked: date | None) -> ApiPrice:
        model_price = _genai().types.ModelPrice

        def price(scale: float) -> Any:
            cached = row.cached_input_mtok
            return model_price(
                input_mtok=Decimal(str(row.input_mtok * scale)),
                output_mtok=Decimal(str(row.output_mtok * scale)),
                cache_read_mtok=None if cached is None else Decimal(str(cached * scale)))

        if row.checked > self.price_date:
            raise PriceError(f"--price-date {self.price_date.isoformat()}: before any price of "
                             f"{row.name} (its price in {self.user_file} was checked "
                             f"{row.checked.isoformat()})")
        batch = price(row.batch_discount) if row.batch_discount < 1 else None
        return ApiPrice(name=row.name, standard=price(1.0), batch=batch, source=row.source,
                        price_date=row.checked, data=f"price file {self.user_file}",
                        data_date=row.checked, tier=tier, tier_checked=tier_checked)

    def _genai_api_price(self, ref: str, tier: str | None,
                         tier_checked: date | None) -> ApiPrice:
        genai = _genai()
        provider, info = self._genai_model(ref)
        when = datetime(self.price_date.year, self.price_date.month, self.price_date.day, 12,
                        tzinfo=UTC)
        probe = genai.Usage(input_tokens=1, output_tokens=1)
        standard = info.calc_price(probe, provider, genai_request_timestamp=when)
        batch = info.calc_price(probe, provider, genai_request_timestamp=when, price_context=BATCH)
        has_batch = any(v.when == BATCH for v in info.price_variants or [])
        urls = provider.pricing_urls or []
        return ApiPrice(
            name=f"{provider.id}:{info.id}", standard=standard.model_price,
            batch=batch.model_price if has_batch else None,
            source=urls[0] if urls else provider.name, price_date=self.price_date,
            data=genai_version(), data_date=genai_data_date(self.today), tier=tier,
            tier_checked=tier_checked)

    def _genai_model(self, ref: str) -> tuple[Any, Any]:
        """genai-prices' (provider, model) for `provider:model` (or a bare model name).

        Its own matching first (the names an API call would use), then the model's id.
        """
        snapshot = _genai().data_snapshot.get_snapshot()
        provider_id, model_ref = ref.split(":", 1) if ":" in ref else (None, ref)
        try:
            return snapshot.find_provider_model(model_ref, None, provider_id, None)
        except LookupError:
            pass
        for provider in snapshot.providers:
            if provider_id is None or provider.id == provider_id.lower():
                for info in provider.models:
                    if info.id.lower() == model_ref.lower():
                        return provider, info
        raise PriceError(f"unknown API {ref!r}{did_you_mean(ref, self.api_names())}; give a tier "
                         "from `harness prices` or a provider:model name of genai-prices")

    def api_names(self) -> list[str]:
        """Every name an API can be given by: tiers, the user's APIs, genai-prices models."""
        snapshot = _genai().data_snapshot.get_snapshot()
        refs = [f"{p.id}:{m.id}" for p in snapshot.providers for m in p.models]
        return [*self.tiers, *self.user_apis, *refs]


def load_price_book(user_file: Path | None = None, price_date: date | None = None,
                    max_age_days: int = 90) -> PriceBook:
    """The packaged price data, with a user price file's rows added on top."""
    gpus = load_model(GPU_PRICES_FILE, GpuPriceFile, "GPU price").gpus
    tiers = dict(load_model(API_TIERS_FILE, TierFile, "API tier").tiers)
    user_apis: dict[str, ApiRow] = {}
    if user_file is not None:
        user = load_model(user_file, UserPrices, "price")
        replaced = {(_key(r.gpu), _key(r.provider), _key(r.tier)) for r in user.gpus}
        gpus = [r for r in gpus if (_key(r.gpu), _key(r.provider), _key(r.tier)) not in replaced]
        gpus = [*gpus, *user.gpus]
        tiers.update(user.tiers)
        user_apis = {row.name: row for row in user.apis}
    today = datetime.now(UTC).date()
    return PriceBook(gpus=gpus, tiers=tiers, user_apis=user_apis,
                     price_date=price_date or today, user_file=user_file, today=today,
                     max_age_days=max_age_days)


# --- listings (`harness prices`) ----------------------------------------------------------

def gpu_price_frame(book: PriceBook, gpu: str | None = None) -> pd.DataFrame:
    rows = book.gpus
    if gpu is not None:
        rows = [r for r in rows if _key(r.gpu) == _key(gpu)]
        if not rows:
            book.gpu_price(gpu)  # raises with the closest names
    frame = pd.DataFrame([{**r.model_dump(mode="json"), "data_date": r.data_date.isoformat(),
                           "age_days": book.age_days(r.data_date),
                           "stale": book.stale(r.data_date)} for r in rows])
    return frame.sort_values(["gpu", "tier", "usd_per_gpu_hour"], kind="stable",
                             ignore_index=True)


def api_price_frame(book: PriceBook, names: list[str] | None = None) -> pd.DataFrame:
    rows = []
    for price in book.api_prices(names or list(book.tiers)):
        rows.append({
            "tier": price.tier, "api": price.name,
            "input_usd_per_mtok": price.per_mtok("input_mtok"),
            "cached_input_usd_per_mtok": price.per_mtok("cache_read_mtok"),
            "output_usd_per_mtok": price.per_mtok("output_mtok"),
            "batch_input_usd_per_mtok": price.per_mtok("input_mtok", batch=True),
            "batch_output_usd_per_mtok": price.per_mtok("output_mtok", batch=True),
            "tiered_by_prompt_length": price.tiered,
            "prices_as_of": price.price_date.isoformat(), "data": price.data,
            "data_date": price.data_date.isoformat(),
            "age_days": book.age_days(price.data_date),
            "stale": book.stale(price.data_date),
            "tier_checked": price.tier_checked.isoformat() if price.tier_checked else None,
            "source": price.source})
    return pd.DataFrame(rows)
