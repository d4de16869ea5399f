"""The A/B experiment the api's experiment and feedback tests run: two arms, half each."""

from mgrecs.common.experiments import Arm, Experiment

EXPERIMENT = Experiment(
    id="ab1",
    arms=[
        Arm(name="control", model_version="v1", share=0.5),
        Arm(name="treatment", model_version="v2", share=0.5),
    ],
)
