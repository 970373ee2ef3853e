"""Cost formulas, each written once (docs/cost-model.md states them too).

Units: dollars, tokens per second, hours; $/Mtok is dollars per million tokens. A month is
8760 / 12 = 730 hours. Functions refuse values outside their range with ValueError.
"""

from __future__ import annotations

import math

HOURS_PER_YEAR = 8760.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0
TOKENS_PER_MTOK = 1e6
# Relative slack for float noise when a load exactly fills whole replicas.
_FILL_SLACK = 1e-9


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


# --- cost per million tokens at full load ------------------------------------------------

def usd_per_mtok(usd_per_hour: float | None, tokens_per_s: float) -> float | None:
    """$ per million tokens at full load: hourly cost / (tokens/s x 3600 / 1e6).

    The InferenceX convention: the whole machine-hour is charged to the tokens counted, so
    the per-output and per-total figures are each "if all tokens were of this kind".
    """
    if usd_per_hour is None or tokens_per_s <= 0:
        return None
    return usd_per_hour / (tokens_per_s * SECONDS_PER_HOUR / TOKENS_PER_MTOK)


def split_usd_per_mtok(usd_per_hour: float, input_tokens_per_s: float,
                       output_tokens_per_s: float, cost_ratio: float) -> tuple[float, float]:
    """(input, output) $/Mtok that add up exactly to the hourly cost (GKE's split).

    output = hourly cost / 3600 / (input tok/s / R + output tok/s) x 1e6; input = output / R,
    where R (cost_ratio) is how many times an output token costs an input token.
    """
    _require(usd_per_hour >= 0, "hourly cost must not be negative")
    _require(cost_ratio > 0, "the input:output cost ratio must be positive")
    weighted = input_tokens_per_s / cost_ratio + output_tokens_per_s
    _require(weighted > 0, "throughput must be positive")
    output = usd_per_hour / SECONDS_PER_HOUR / weighted * TOKENS_PER_MTOK
    return output / cost_ratio, output


def throughput_at_mix(input_tokens_per_s: float, output_tokens_per_s: float,
                      input_per_output: float, cost_ratio: float) -> float:
    """Total tokens/s the measured throughput is worth at another input:output mix.

    Weighs tokens as the split does (an input token is 1/R of an output token), so
    weighted = T_in / R + T_out is kept and spread over tokens of the new mix x:1:
    total = weighted x (x + 1) / (x / R + 1). At the measured mix it is T_in + T_out.
    """
    _require(input_per_output >= 0, "the input:output token ratio must not be negative")
    _require(cost_ratio > 0, "the input:output cost ratio must be positive")
    weighted = input_tokens_per_s / cost_ratio + output_tokens_per_s
    return weighted * (input_per_output + 1) / (input_per_output / cost_ratio + 1)


# --- hosting cost per hour ---------------------------------------------------------------

def rented_usd_per_hour(usd_per_gpu_hour: float, gpus: int) -> float:
    """Rented: $/GPU-hour x GPUs."""
    _require(usd_per_gpu_hour > 0, "a GPU-hour price must be positive")
    _require(gpus >= 1, "at least one GPU")
    return usd_per_gpu_hour * gpus


def capital_recovery_factor(rate: float, years: float) -> float:
    """Share of a capital sum to pay each year to repay it with interest over `years`.

    CRF(r, n) = r (1 + r)^n / ((1 + r)^n - 1); with r = 0 it is straight-line, 1 / n.
    """
    _require(0 <= rate < 1, f"cost of capital {rate} must be in [0, 1)")
    _require(0 < years <= 50, f"amortization years {years} must be in (0, 50]")
    if rate == 0:
        return 1 / years
    growth = (1 + rate) ** years
    return rate * growth / (growth - 1)


def capital_usd_per_hour(capex_usd: float, rate: float, years: float,
                         availability: float) -> float:
    """capex x CRF(r, n) / (8760 x A): the capital charged to each hour the hardware serves."""
    _require(capex_usd > 0, "capex must be positive")
    _require(0 < availability <= 1, f"availability {availability} must be in (0, 1]")
    return capex_usd * capital_recovery_factor(rate, years) / (HOURS_PER_YEAR * availability)


def energy_usd_per_hour(power_w: float, pue: float, usd_per_kwh: float) -> float:
    """power (W) / 1000 x PUE x $/kWh."""
    _require(power_w >= 0, "power must not be negative")
    _require(1 <= pue <= 3, f"PUE {pue} must be in [1, 3]")
    _require(usd_per_kwh > 0, "an electricity price must be positive")
    return power_w / 1000 * pue * usd_per_kwh


def owned_usd_per_hour(capital_per_hour: float, energy_per_hour: float,
                       overhead_share: float) -> float:
    """(capital + energy) x (1 + overhead share)."""
    _require(overhead_share >= 0, "the overhead share must not be negative")
    return (capital_per_hour + energy_per_hour) * (1 + overhead_share)


# --- traffic, provisioning and monthly bills ---------------------------------------------

def replicas_for_peak(peak_tokens_per_s: float, capacity_tokens_per_s: float) -> int:
    """ceil(peak / capacity per replica): provisioned for peak, never fewer than one."""
    _require(capacity_tokens_per_s > 0, "capacity must be positive")
    _require(peak_tokens_per_s >= 0, "peak load must not be negative")
    return max(1, math.ceil(peak_tokens_per_s / capacity_tokens_per_s - _FILL_SLACK))


def utilization(average_tokens_per_s: float, replicas: int,
                capacity_tokens_per_s: float) -> float:
    """Average load / provisioned capacity."""
    _require(replicas >= 1 and capacity_tokens_per_s > 0, "provisioned capacity must be positive")
    return average_tokens_per_s / (replicas * capacity_tokens_per_s)


def mtok_per_month(tokens_per_s: float) -> float:
    """tokens/s x 3600 x 730 / 1e6."""
    return tokens_per_s * SECONDS_PER_HOUR * HOURS_PER_MONTH / TOKENS_PER_MTOK


def tokens_per_s_for(mtok_month: float) -> float:
    """The average tokens/s of a monthly volume (inverse of mtok_per_month)."""
    return mtok_month * TOKENS_PER_MTOK / (SECONDS_PER_HOUR * HOURS_PER_MONTH)


def self_hosted_monthly_usd(average_tokens_per_s: float, peak_to_average: float,
                            capacity_tokens_per_s: float, usd_per_replica_hour: float) -> float:
    """replicas for peak x $/replica-hour x 730: every provisioned hour is paid."""
    _require(peak_to_average >= 1, "peak-to-average must be at least 1")
    replicas = replicas_for_peak(average_tokens_per_s * peak_to_average, capacity_tokens_per_s)
    return replicas * usd_per_replica_hour * HOURS_PER_MONTH


def api_monthly_usd(average_tokens_per_s: float, api_usd_per_mtok: float) -> float:
    """Mtok a month x the API's $/Mtok for this traffic."""
    return mtok_per_month(average_tokens_per_s) * api_usd_per_mtok


def api_usd_per_request(standard_uncached: float, standard_cached: float,
                        batch_uncached: float, batch_cached: float,
                        cached_input_share: float, batch_share: float) -> float:
    """A request's API price with a share h of its input cached and a share b sent by batch.

    (1 - b) [(1 - h) standard + h standard-with-cache] + b [(1 - h) batch + h batch-with-cache]
    """
    _require(0 <= cached_input_share <= 1, "cached-input share must be in [0, 1]")
    _require(0 <= batch_share <= 1, "batch share must be in [0, 1]")
    h, b = cached_input_share, batch_share
    standard = (1 - h) * standard_uncached + h * standard_cached
    batch = (1 - h) * batch_uncached + h * batch_cached
    return (1 - b) * standard + b * batch


# --- break-even --------------------------------------------------------------------------

def break_even_utilization(full_load_usd_per_mtok: float,
                           api_usd_per_mtok: float) -> float | None:
    """U* = full-load $/Mtok / API $/Mtok; None when above 1 (the API wins even at full load)."""
    _require(api_usd_per_mtok > 0, "an API price must be positive")
    share = full_load_usd_per_mtok / api_usd_per_mtok
    return share if share <= 1 + _FILL_SLACK else None


def break_even_monthly_mtok(usd_per_replica_hour: float, capacity_tokens_per_s: float,
                            api_usd_per_mtok: float, peak_to_average: float) -> float | None:
    """The smallest monthly volume at which the self-hosted bill is no more than the API's.

    One replica costs $/replica-hour x 730 a month whatever it serves, the API bill grows with
    the volume, so they meet at V* = replica bill / API $/Mtok, if one replica provisioned for
    the peak (peak-to-average x V*) can carry it. If it cannot, every further replica adds more
    than the API would charge for the traffic it carries: None, the API is cheaper at any volume.
    """
    _require(api_usd_per_mtok > 0, "an API price must be positive")
    _require(peak_to_average >= 1, "peak-to-average must be at least 1")
    volume = usd_per_replica_hour * HOURS_PER_MONTH / api_usd_per_mtok
    fits = peak_to_average * volume <= mtok_per_month(capacity_tokens_per_s) * (1 + _FILL_SLACK)
    return volume if fits else None


def break_even_ranges(usd_per_replica_hour: float, capacity_tokens_per_s: float,
                      api_usd_per_mtok: float,
                      peak_to_average: float,
                      max_ranges: int = 20) -> list[tuple[float, float | None]]:
    """Every range of monthly volume (served Mtok) where the self-hosted bill is no more than
    the API's: [(from, to), ...], the last `to` None when self-hosting wins from there on.

    With n replicas (volumes V in ((n-1) K, n K], K = the monthly volume one replica carries at
    this peak-to-average) the bill is n x B (B = $/replica-hour x 730) against the API's V x a,
    so self-hosting wins on [max(n B / a, (n-1) K), n K] wherever n B / a <= n K, i.e. in every
    step or in none. The ranges are disjoint while n B / a > (n-1) K and merge into one open
    range from the first n where n B / a <= (n-1) K, i.e. n >= K / (K - B / a). At most
    `max_ranges` are listed (a list that long whose last range is closed goes on above it).
    """
    _require(api_usd_per_mtok > 0, "an API price must be positive")
    _require(peak_to_average >= 1, "peak-to-average must be at least 1")
    _require(capacity_tokens_per_s > 0, "capacity must be positive")
    bill = usd_per_replica_hour * HOURS_PER_MONTH
    per_replica = mtok_per_month(capacity_tokens_per_s) / peak_to_average
    even = bill / api_usd_per_mtok           # the volume one replica's bill buys from the API
    if even > per_replica * (1 + _FILL_SLACK):
        return []
    ranges: list[tuple[float, float | None]] = []
    for n in range(1, max_ranges + 1):
        if n > 1 and n * even <= (n - 1) * per_replica * (1 + _FILL_SLACK):
            return [*ranges[:-1], (ranges[-1][0], None)]  # contiguous from here on
        ranges.append((n * even, n * per_replica))
    return ranges


def monthly_difference(volume_mtok: float, usd_per_replica_hour: float,
                       capacity_tokens_per_s: float, api_usd_per_mtok: float,
                       peak_to_average: float) -> float:
    """Self-hosted minus API bill for a month of `volume_mtok` (served): negative, self wins."""
    average = tokens_per_s_for(volume_mtok)
    own = self_hosted_monthly_usd(average, peak_to_average, capacity_tokens_per_s,
                                  usd_per_replica_hour)
    return own - volume_mtok * api_usd_per_mtok
