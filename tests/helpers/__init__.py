"""Helpers shared by the tests: ``from helpers import seeded, servers``."""
