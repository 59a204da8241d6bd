"""Steady-rate load generator for the lab (see loadgen.py)."""

from .loadgen import Config, Record, format_summary, run, summarize

__all__ = ["Config", "Record", "format_summary", "run", "summarize"]
