"""Fixtures of the street office's desk tests."""

from tests.voted import PDF_BYTES, build_open_round, build_voted_round, tamper, voted_round  # noqa: F401
