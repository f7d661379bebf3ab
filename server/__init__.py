"""Colloque: secure messaging between patients and their medical practice."""
