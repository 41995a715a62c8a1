"""Helpers for tests that use real components: SMTP servers, brokers, workers, databases."""
