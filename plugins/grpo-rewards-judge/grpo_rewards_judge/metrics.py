"""What a judge reward reports: calls, cache hits, latency, abstentions, scores.

Each reward function carries one :class:`JudgeMetrics` as its
``reward_metrics`` attribute, the protocol grpo-core's reward engine reads:
``pop()`` gives the numbers since the last ``pop()`` (the engine logs them
as ``rewards/NAME/KEY`` at every logging step), ``totals()`` the numbers since
the last ``reset()`` (run.json's ``reward_metrics``, and the table of
``grpo-core score``), and ``reset()`` starts over. ``progress_keys`` names the
few keys worth a place in the progress line.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class _Window:
    calls: int = 0  #: requests sent to the judge (cache hits are not calls)
    cache_hits: int = 0
    duplicates: int = 0  #: samples that share another sample's request in the same batch (asked once)
    abstained: int = 0  #: samples scored None
    latencies: list[float] = field(default_factory=list)  #: seconds per answered call
    scores: list[float] = field(default_factory=list)  #: the judge's raw scores (or 1/0.5/0 for win/tie/loss)
    reasons: Counter = field(default_factory=Counter)  #: why samples were None

    def summary(self, detail: bool) -> dict:
        lat = sorted(self.latencies)
        out: dict = {
            "calls": float(self.calls),
            "cache_hits": float(self.cache_hits),
            "duplicates": float(self.duplicates),
            "abstained": float(self.abstained),
            "unparseable": float(sum(n for r, n in self.reasons.items() if r.startswith("unparseable"))),
            "latency_p50_ms": 1000 * _quantile(lat, 0.50) if lat else 0.0,
            "latency_p99_ms": 1000 * _quantile(lat, 0.99) if lat else 0.0,
        }
        if self.scores:
            out.update(score_mean=statistics.fmean(self.scores), score_std=statistics.pstdev(self.scores),
                       score_min=min(self.scores), score_max=max(self.scores))
        if detail:
            out["score_counts"] = {f"{s:g}": n for s, n in sorted(Counter(self.scores).items())}
            out["abstain_reasons"] = dict(self.reasons.most_common())
        return out


def _quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile (p99 of few calls is their maximum, not an interpolation)."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


class JudgeMetrics:
    """Thread-safe counters for one judge reward (see the module docstring for the protocol)."""

    progress_keys = ("calls", "cache_hits", "abstained", "latency_p50_ms")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window = _Window()
        self._total = _Window()

    def record(self, *, calls: int = 0, cache_hits: int = 0, duplicates: int = 0, latencies=(), scores=(), reasons=()) -> None:
        reasons = [r for r in reasons if r]
        with self._lock:
            for w in (self._window, self._total):
                w.calls += calls
                w.cache_hits += cache_hits
                w.duplicates += duplicates
                w.latencies.extend(latencies)
                w.scores.extend(scores)
                w.abstained += len(reasons)
                w.reasons.update(reasons)

    def pop(self) -> dict[str, float]:
        with self._lock:
            window, self._window = self._window, _Window()
        return window.summary(detail=False) if window.calls or window.cache_hits or window.abstained else {}

    def totals(self) -> dict:
        with self._lock:
            return self._total.summary(detail=True)

    def reset(self) -> None:
        with self._lock:
            self._window, self._total = _Window(), _Window()
