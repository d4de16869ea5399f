"""AWS mode (`batch_mode = "aws"`): the same retrain, refresh and infer jobs, with AWS
Personalize doing the training and the scoring (docs/aws.md)."""
