"""The requests and answers of `routes.rules`: a rule as written (`mgrecs.common.rules`,
shared with `mgrecs rules`), and as stored, with who made and changed it and when."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mgrecs.common.rules import CacheId, Region, RuleFields, RulePatch

__all__ = [
    "Preview",
    "PreviewList",
    "PreviewRequest",
    "Rule",
    "RuleFields",
    "RuleList",
    "RulePatch",
]


class Rule(RuleFields):
    """A stored rule: its fields, who made and last changed it, and when."""

    model_config = ConfigDict(extra="ignore")

    rule_id: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


class RuleList(BaseModel):
    rules: list[Rule]


class PreviewRequest(BaseModel):
    """Whose lists to show, and optionally a rule not stored yet (a draft)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"customer": "C00001", "region": "north", "limit": 10},
                {
                    "customer": "C00001",
                    "rule": {"kind": "filter", "target": {"categories": ["knives"]}},
                },
            ]
        },
    )

    customer: CacheId | None = None
    region: Region | None = None
    limit: int = Field(default=10, ge=1, le=100)
    rule: RuleFields | None = Field(
        default=None,
        description="a draft: before = the rules in force, after = with it too; without "
        "one, before = no rules, after = the rules in force",
    )


class PreviewItem(BaseModel):
    product_id: str
    score: float
    reason: str | None = None
    reason_product_ids: list[str] = Field(
        default_factory=list,
        description="the products `reason` names, by id, in its order (the text shows "
        "their names; docs/api.md, Scores and reasons)",
    )


class PreviewList(BaseModel):
    """One list before and after."""

    source: str = Field(description="where the list came from (as its endpoint says)")
    before: list[PreviewItem]
    after: list[PreviewItem]


class Preview(BaseModel):
    customer: PreviewList | None = None
    region: PreviewList | None = None
