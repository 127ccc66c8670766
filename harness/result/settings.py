"""The one settings type for how a cell is sampled: runs, warm-ups, timeout.

matrix.yaml, the command line (``--runs``, ``--warmups``, ``--timeout``), the noxfile's
``-- --runs N`` and every report's ``settings`` block check these numbers with the same
:class:`Bound`, so a value is refused in the same words wherever it is written, and a
value that passes can never overflow later (``timeout: .inf``, ``runs: 1e9``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import msgspec

MAX_RUNS = 10_000
MAX_TIMEOUT_S = 86_400.0  # one day
MAX_ENCODE_REPEATS = 10_000
DEFAULT_RUNS = 5
DEFAULT_WARMUPS = 1
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_ENCODE_REPEATS = 10
DEFAULT_SENTENCE = "The quick brown fox jumps over the lazy dog."
# What every sample encodes after its timing ends, to check that its embeddings still agree
# with the torch float32 model's (embedding_cosine_min): short and long, questions, numbers,
# code, other languages and scripts, so that a backend or dtype that drifts on one shows.
AGREEMENT_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "How long does it take to load an embedding model from a cold start?",
    "Interest rates rose by 0.25 percentage points to 5.5% in March 2024.",
    "def load(path): return SentenceTransformer(path, device='cpu')",
    "Der Zug nach Berlin hat heute zwanzig Minuten Verspätung.",
    "東京は日本の首都であり、世界最大の都市圏の一つです。",
    "ok",
    "A long sentence that keeps going, clause after clause, about rivers, mountains, the weather "
    "in late autumn, the price of bread, and whether any of it matters to the person reading it, "
    "so that the model sees many tokens and its pooling is tested on more than a few words.",
)


@dataclass(frozen=True)
class Bound:
    """A number's rule: whole or not, its lowest and highest allowed value."""

    whole: bool
    low: float
    high: float
    low_inclusive: bool = True

    def problem(self, value: object) -> str | None:
        """Why ``value`` breaks the rule (one phrase), or None when it is fine."""
        shown = _show(value)
        kind = "whole number" if self.whole else "number"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{shown} is not a {kind}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{shown} must be a finite {kind}"
        if self.whole and not float(value).is_integer():
            return f"{shown} is not a whole number"
        if value < self.low or (value == self.low and not self.low_inclusive):
            return f"{shown} must be {self._low_words()}"
        if value > self.high:
            return f"{shown} must be {self.high:g} or less"
        return None

    def _low_words(self) -> str:
        return f"{self.low:g} or more" if self.low_inclusive else f"above {self.low:g}"

    def parse(self, text: str) -> int | float:
        """A command-line value; ValueError with the one phrase on a bad one."""
        try:
            value: int | float = int(text) if self.whole else float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a {'whole number' if self.whole else 'number'}") from None
        problem = self.problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def checked(self, value: object) -> int | float:
        problem = self.problem(value)
        if problem or not isinstance(value, (int, float)):  # problem() names any other type
            raise ValueError(problem)
        return int(value) if self.whole else float(value)


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else f"{value}"


RUNS = Bound(whole=True, low=1, high=MAX_RUNS)
WARMUPS = Bound(whole=True, low=0, high=MAX_RUNS)
TIMEOUT = Bound(whole=False, low=0, high=MAX_TIMEOUT_S, low_inclusive=False)
ENCODE_REPEATS = Bound(whole=True, low=0, high=MAX_ENCODE_REPEATS)

# The bound of each settings key, as matrix.yaml and the command line spell it.
BOUNDS = {"runs": RUNS, "warmups": WARMUPS, "timeout": TIMEOUT}


class Settings(msgspec.Struct, kw_only=True):
    """How one cell is sampled; a report's ``settings`` block."""

    runs: Annotated[int, msgspec.Meta(ge=0, le=MAX_RUNS)]  # 0 only in a cell that never ran
    warmups: Annotated[int, msgspec.Meta(ge=0, le=MAX_RUNS)]
    timeout_s: Annotated[float, msgspec.Meta(ge=0, le=MAX_TIMEOUT_S)]
    encode_repeats: Annotated[int, msgspec.Meta(ge=0, le=MAX_ENCODE_REPEATS)] = DEFAULT_ENCODE_REPEATS
    sentence: str = DEFAULT_SENTENCE

    @classmethod
    def checked(
        cls,
        runs: object = DEFAULT_RUNS,
        warmups: object = DEFAULT_WARMUPS,
        timeout_s: object = DEFAULT_TIMEOUT_S,
        **rest,
    ) -> Settings:
        """Settings from user values; ValueError naming the first bad one."""
        values: dict[str, int | float] = {}
        for key, bound, value in (
            ("runs", RUNS, runs),
            ("warmups", WARMUPS, warmups),
            ("timeout", TIMEOUT, timeout_s),
        ):
            problem = bound.problem(value)
            if problem:
                raise ValueError(f"{key}: {problem}")
            values[key] = bound.checked(value)
        return cls(
            runs=int(values["runs"]), warmups=int(values["warmups"]), timeout_s=values["timeout"], **rest
        )

    @property
    def samples(self) -> int:
        return self.runs + self.warmups
