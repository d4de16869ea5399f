"""Checks that README.md and docs/ hold together with the code they describe."""
