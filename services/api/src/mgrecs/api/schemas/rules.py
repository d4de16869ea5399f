"""The requests and answers of `routes.rules`: a rule as written (`mgrecs.common.rules`,
shared with `mgrecs rules`), and as stored, with who made and changed it and when."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from mgrecs.common.rules import RuleFields, RulePatch

__all__ = ["Rule", "RuleFields", "RuleList", "RulePatch"]


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
