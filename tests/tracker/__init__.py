"""Tests of the tracker service (services/tracker, mgrecs.tracker): its sinks and their faults."""
