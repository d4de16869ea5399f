"""The self-hosted stand-in for AWS Personalize: its events and runtime HTTP APIs."""
