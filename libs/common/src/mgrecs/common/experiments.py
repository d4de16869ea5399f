"""A/B experiments between model versions: their configuration, as `Settings.experiments`
parses and validates it (so it lives beside the settings; the API's `experiment_serving`
splits customers between the arms).
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from mgrecs.common.schemas import ID_PATTERN

Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
SHARE_TOLERANCE = 1e-6
Serves = Literal["model", "popularity", "nothing"]
"""What an arm's customers get: its model version's list, or (a holdout) the regional
popularity list or no list at all."""


class Arm(BaseModel):
    """One group of customers and what serves them: a model version, or for a holdout arm
    popularity or nothing (then no `model_version`)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    model_version: Name | None = None
    share: float = Field(gt=0, le=1, description="fraction of the customers in this arm")
    serves: Serves = "model"
    campaign_arn: str | None = None
    """Where the engine serves `model_version` in real time; by default the user campaign
    pinned to it (`<user_campaign_arn>/<model_version>`, which the self-hosted engine takes)."""

    @model_validator(mode="after")
    def _model_or_holdout(self) -> "Arm":
        if self.serves == "model" and self.model_version is None:
            raise ValueError(f"arm {self.name}: a model arm needs a model_version")
        if self.holdout and (self.model_version is not None or self.campaign_arn is not None):
            raise ValueError(f"arm {self.name}: a holdout arm has no model_version or campaign")
        return self

    @property
    def holdout(self) -> bool:
        """Served popularity or nothing: the customers the recommender is held out from."""
        return self.serves != "model"


class Experiment(BaseModel):
    """An experiment: its arms' shares add up to 1."""

    model_config = ConfigDict(extra="forbid")

    id: Name
    arms: list[Arm] = Field(min_length=2, max_length=10)

    @model_validator(mode="after")
    def _valid_split(self) -> "Experiment":
        if abs(sum(arm.share for arm in self.arms) - 1) > SHARE_TOLERANCE:
            raise ValueError(f"experiment {self.id}: the arms' shares must add up to 1")
        if len({arm.name for arm in self.arms}) != len(self.arms):
            raise ValueError(f"experiment {self.id}: arm names must be distinct")
        return self

    def arm(self, name: str) -> Arm | None:
        return next((arm for arm in self.arms if arm.name == name), None)
