"""The answer of `GET /v1/reports/cost`: what each mode consumed and what AWS bills for it
(docs/cost.md)."""

import math
from dataclasses import asdict

from pydantic import BaseModel, Field

from mgrecs.common.prices import Prices, Tiers
from mgrecs.store import cost_report as report


class BillLine(BaseModel):
    item: str = Field(description="what AWS bills: data ingestion, training, ...")
    quantity: float
    unit: str
    usd: float


class Period(BaseModel):
    period: str = Field(description="a UTC day (2026-12-07) or month (2026-12)")
    mode: str = Field(description="aws or self-hosted")
    counts: dict[str, float] = Field(description="every counted metric (docs/cost.md)")
    peak_tps: dict[str, float] = Field(description="per campaign, its busiest second")
    cpu_seconds: dict[str, float] = Field(description="per service")
    lines: list[BillLine]
    aws_usd: float = Field(
        description="AWS mode: the estimated bill; self-hosted: what AWS would have cost"
    )
    machine_hours: float = Field(description="self-hosted mode: hours the machines ran")
    machine_usd: float = Field(description="machine_hours x machine_hour_price")
    over_budget: bool = Field(description="a day whose aws_usd passes daily_budget")

    @classmethod
    def of(cls, period: report.Period) -> "Period":
        return cls(
            period=period.period,
            mode=period.mode,
            counts={k: round(v, 6) for k, v in sorted(period.counts.items())},
            peak_tps=period.peak_tps,
            cpu_seconds={k: round(v, 3) for k, v in period.cpu_seconds.items()},
            lines=[
                BillLine(item=x.item, quantity=round(x.quantity, 6), unit=x.unit, usd=x.usd)
                for x in period.lines
            ],
            aws_usd=round(period.aws_usd, 6),
            machine_hours=period.machine_hours,
            machine_usd=round(period.machine_usd, 6),
            over_budget=period.over_budget,
        )


def _tiers(tiers: Tiers) -> list[tuple[float | None, float]]:
    return [(None if math.isinf(up_to) else up_to, price) for up_to, price in tiers]


class PriceTable(BaseModel):
    taken: str = Field(description="the day the prices were taken (MGRECS_PRICE_DATE)")
    ingest_per_gb: float
    training_hour: float
    tps_hour: list[tuple[float | None, float]] = Field(
        description="(up to TPS-hours a month, USD per TPS-hour) tiers; null: no limit"
    )
    batch_per_1000: list[tuple[float | None, float]] = Field(
        description="(up to recommendations a month, USD per 1,000) tiers; null: no limit"
    )
    s3_gb_month: float
    min_provisioned_tps: float
    event_bytes: int
    machine_hour: float


class CostReport(BaseModel):
    prices: PriceTable
    daily_budget: float = Field(description="USD; 0: no budget")
    days: list[Period]
    months: list[Period]

    @classmethod
    def of(cls, found: report.CostReport) -> "CostReport":
        prices: Prices = found.prices
        return cls(
            prices=PriceTable(
                **{
                    **asdict(prices),
                    "tps_hour": _tiers(prices.tps_hour),
                    "batch_per_1000": _tiers(prices.batch_per_1000),
                }
            ),
            daily_budget=found.daily_budget,
            days=[Period.of(p) for p in found.days],
            months=[Period.of(p) for p in found.months],
        )
