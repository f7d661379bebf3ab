"""Tests of the emergency-wording detector (workers/triage)."""
