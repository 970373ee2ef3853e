"""What every stored shape shares: strict models (a hand-edited file with an unknown key is
caught) and one schema version for the whole results directory."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 2


class Stored(BaseModel):
    """A stored shape: unknown keys are refused, so a hand-edited file is caught."""

    model_config = ConfigDict(extra="forbid")
