"""The `mgrecs` operator CLI and the embedded stack used by the demo and the tests."""
