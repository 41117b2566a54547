"""Shared test helpers: tiny random model builders and empty full-size components."""
