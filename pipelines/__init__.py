"""Beam pipelines, the Sample record, shard I/O and the vlforge CLI."""
