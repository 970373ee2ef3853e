"""What an hour of self-hosting costs: rented (a listed GPU price, or the run's own machine
price) and owned (capital recovered over the hardware's life, energy, overhead)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from harness.cost import formulas
from harness.cost.inputs.prices import PriceBook
from harness.cost.inputs.profile import Profile
from harness.cost.measured import MeasuredRun


@dataclass(frozen=True)
class HourlyPrice:
    usd_per_hour: float
    per_gpu: bool          # per GPU-hour, or for the whole machine that served a cell
    label: str
    source: str
    dated: str             # "checked 2026-11-26", or when the run's own price was set
    data_date: date        # the date the price is known from
    expired: bool = False  # its source said it changes before the price date
    user_input: bool = False  # the user's own figure (the config's), not a listed price

    def per_replica(self, gpus_per_replica: int) -> float:
        if not self.per_gpu:
            return self.usd_per_hour
        return formulas.rented_usd_per_hour(self.usd_per_hour, gpus_per_replica)


def rented_price(run: MeasuredRun, profile: Profile, book: PriceBook) -> HourlyPrice | None:
    if profile.gpu is not None:
        row = book.gpu_price(profile.gpu, profile.rent.provider, profile.rent.tier)
        note = f"; {row.note}" if row.note else ""
        own_date = f", price of {row.source_date}" if row.source_date else ""
        return HourlyPrice(row.usd_per_gpu_hour, True, f"{row.gpu} {row.provider} {row.tier}",
                           f"{row.source}{own_date}{note}", f"checked {row.checked.isoformat()}",
                           row.data_date, row.expired(book.price_date))
    if run.usd_per_hour is None:
        return None
    return HourlyPrice(run.usd_per_hour, False, "the run's machine",
                       f"cost.usd_per_hour in {run.manifest.config_file}",
                       f"the price set for the run of {run.manifest.run_date}",
                       date.fromisoformat(run.manifest.run_date), user_input=True)


def owned_usd_per_gpu_hour(profile: Profile, power_w: float, capex_scale: float = 1.0,
                           usd_per_kwh: float | None = None) -> float:
    """Owned $ per hour of one GPU (or machine, with own.per: machine); the scale and price
    arguments move one input for the sensitivity table."""
    own = profile.own
    capex = (own.capex_per_gpu_usd + own.server_share_per_gpu_usd) * capex_scale
    capital = formulas.capital_usd_per_hour(capex, own.cost_of_capital, own.years, own.availability)
    energy = formulas.energy_usd_per_hour(power_w, own.pue, usd_per_kwh or own.usd_per_kwh)
    return formulas.owned_usd_per_hour(capital, energy, own.overhead_share)


def owned_applies(profile: Profile, run: MeasuredRun) -> bool:
    """Owned hardware is priced per GPU where there are GPUs (measured or named), and per
    machine only from per-machine inputs (own.per: machine)."""
    if profile.own is None:
        return False
    has_gpus = profile.gpu is not None or bool(run.manifest.gpu_names)
    return has_gpus or profile.own.per == "machine"


def owned_units(gpus_per_replica: int, profile: Profile) -> int:
    """How many of the `own` inputs' units one replica is: its GPUs, or one machine."""
    return 1 if profile.own.per == "machine" else gpus_per_replica
