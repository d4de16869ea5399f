"""Tests of the shared infrastructure library (libs/common, mgrecs.common)."""
