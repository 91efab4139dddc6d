"""Mailpit's chaos triggers: with BURNBOX_SINK_CHAOS on, SMTP answers an error code the
test chose, at the rate it chose, at MAIL (Sender), RCPT (Recipient) or AUTH
(Authentication). burnbox's SMTP side offers no AUTH, so that trigger is kept and
reported for the clients that set it, and never fires. No I/O."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TRIGGERS = ("Authentication", "Recipient", "Sender")
DEFAULT_CODE = 451  # Mailpit's, for a trigger that names none


class ChaosError(ValueError):
    """A trigger outside Mailpit's ranges (its text is the 400's)."""


@dataclass(frozen=True, slots=True)
class Trigger:
    error_code: int = DEFAULT_CODE
    probability: int = 0  # percent


class Chaos:
    """The triggers in force on this node; each SMTP command asks `fault`."""

    def __init__(self, chance: Callable[[], float] = random.random) -> None:
        self._chance = chance  # [0, 1): injectable so a test can pin the roll
        self.triggers = {name: Trigger() for name in TRIGGERS}

    def set(self, body: dict[str, Any]) -> None:
        """Replace every trigger: those not named go back to 0% (Mailpit's PUT). Keys match
        ignoring case, as Go's decoder does. Nothing changes if one is out of range."""
        named = {str(key).lower(): value for key, value in body.items()}
        triggers = {name: _trigger(name, named.get(name.lower())) for name in TRIGGERS}
        self.triggers = triggers

    def shape(self) -> dict[str, dict[str, int]]:
        return {
            name: {"ErrorCode": trigger.error_code, "Probability": trigger.probability}
            for name, trigger in self.triggers.items()
        }

    def fault(self, name: str) -> int | None:
        """The error code to answer instead, or None: the command goes on."""
        trigger = self.triggers[name]
        if trigger.probability and self._chance() * 100 < trigger.probability:
            return trigger.error_code
        return None


def _trigger(name: str, value: Any) -> Trigger:
    if value is None:
        return Trigger()
    if not isinstance(value, dict):
        raise ChaosError(f"{name}: expected an object with ErrorCode and Probability")
    fields = {str(key).lower(): item for key, item in value.items()}
    code = fields.get("errorcode", DEFAULT_CODE)
    chance = fields.get("probability", 0)
    if not _whole(code) or not 400 <= code <= 599:
        raise ChaosError(f"{name}: ErrorCode must be from 400 to 599")
    if not _whole(chance) or not 0 <= chance <= 100:
        raise ChaosError(f"{name}: Probability must be from 0 to 100")
    return Trigger(code, chance)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
