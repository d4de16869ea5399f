"""What a process consumes, counted in memory for the cost report (docs/cost.md).

The request path only adds to dicts here (no I/O, no lock: one event loop per process, and
the batch's threads only count between awaits); each service's meter task
(`mgrecs.store.usage.metering`) takes the counts every `usage_flush_seconds` and adds them to
`usage_hourly`. A crash loses at most that interval's counts.
"""

import time
from dataclasses import dataclass, field

from mgrecs.common.settings import Settings

PUT_EVENTS_CALLS = "put_events_calls"
"""PutEvents calls, or the calls a self-hosted bulk request stands for."""
EVENTS = "events"
GET_RECOMMENDATIONS = "get_recommendations"
GET_PERSONALIZED_RANKING = "get_personalized_ranking"
PEAK_TPS = "peak_tps"
"""Most calls to one campaign in one second (the hour's greatest)."""
PEAK_TPS_5MIN = "peak_tps_5min"
"""Most calls to one campaign in one 5-minute window, per second: what AWS bills."""
TRAINING_HOURS = "training_hours"
BATCH_JOBS = "batch_inference_jobs"
BATCH_INPUTS = "batch_inference_inputs"
"""Users or items a batch job recommends for (AWS bills batch recommendations per input)."""
STORED_BYTES = "stored_bytes"
"""Bytes written to the artifact store (S3 in AWS mode)."""
DATASET_BYTES = "dataset_bytes"
"""Bytes of the exported datasets (what a bulk import into Personalize ingests)."""
CPU_SECONDS = "cpu_seconds"
PEAKS = frozenset({PEAK_TPS, PEAK_TPS_5MIN})
"""Metrics kept as the greatest value rather than added."""
WINDOW_SECONDS = 300


def mode_of(settings: Settings) -> str:
    """`aws` when the runtime and events clients talk to AWS (no engine URL), else
    `self-hosted`."""
    return "self-hosted" if settings.personalize_endpoint_url else "aws"


@dataclass
class _Rate:
    """Calls in the current second and 5-minute window, and the greatest so far."""

    second: int = 0
    in_second: int = 0
    window: int = 0
    in_window: int = 0
    peak_second: int = 0
    peak_window: int = 0

    def tick(self, now: float) -> None:
        second, window = int(now), int(now // WINDOW_SECONDS)
        if second != self.second:
            self.second, self.in_second = second, 0
        if window != self.window:
            self.window, self.in_window = window, 0
        self.in_second += 1
        self.in_window += 1
        self.peak_second = max(self.peak_second, self.in_second)
        self.peak_window = max(self.peak_window, self.in_window)


@dataclass
class Taken:
    """Counts since the last take: `(metric, campaign) -> value`."""

    counts: dict[tuple[str, str], float] = field(default_factory=dict)


class Meter:
    """A process's counts, keyed by service (a tracker runs several sinks, one process)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str], float] = {}
        self._rates: dict[tuple[str, str], _Rate] = {}

    def add(self, service: str, metric: str, value: float = 1.0, campaign: str = "") -> None:
        key = (service, metric, campaign)
        self._counts[key] = self._counts.get(key, 0.0) + value

    def call(self, service: str, metric: str, campaign: str, now: float | None = None) -> None:
        """One runtime call to `campaign`: counted, and its rate tallied for the peaks."""
        self.add(service, metric, 1.0, campaign)
        rate = self._rates.get((service, campaign))
        if rate is None:
            rate = self._rates[(service, campaign)] = _Rate()
        rate.tick(time.time() if now is None else now)

    def take(self, service: str) -> Taken:
        """`service`'s counts and peaks since the last take, which start again from zero
        (a second or window under way keeps counting: its next call reports it whole)."""
        taken = Taken()
        for key in [k for k in self._counts if k[0] == service]:
            taken.counts[(key[1], key[2])] = self._counts.pop(key)
        for (owner, campaign), rate in self._rates.items():
            if owner != service:
                continue
            for metric, peak in (
                (PEAK_TPS, float(rate.peak_second)),
                (PEAK_TPS_5MIN, rate.peak_window / WINDOW_SECONDS),
            ):
                pair = (metric, campaign)
                if peak > 0:
                    taken.counts[pair] = max(taken.counts.get(pair, 0.0), peak)
            rate.peak_second = rate.peak_window = 0  # the next call raises them again
        return taken

    def put_back(self, service: str, taken: Taken) -> None:
        """Counts a failed flush could not write, kept for the next one (peaks: the greater)."""
        for (metric, campaign), value in taken.counts.items():
            key = (service, metric, campaign)
            if metric in PEAKS:
                self._counts[key] = max(self._counts.get(key, 0.0), value)
            else:
                self._counts[key] = self._counts.get(key, 0.0) + value


METER = Meter()
"""The process's meter."""
