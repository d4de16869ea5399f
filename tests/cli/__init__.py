"""Tests of the operator CLI (services/cli, mgrecs.cli), run through typer as an operator would."""
