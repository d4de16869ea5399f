"""Where the repository is, found by its `uv.lock`, so a test reads deploy/ or docs/ the same
way from whatever folder of tests/ it lives in."""

from pathlib import Path

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "uv.lock").exists())
