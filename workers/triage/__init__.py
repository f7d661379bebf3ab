"""Emergency-wording triage of patient messages (see detector.py and lexicon.toml)."""
