"""The embedded sample organisation: its data and the writers that lay it out as a workspace.
`cutover.operations.demo` runs the sample plans on it."""

from cutover.sample.writer import write_sample, write_skeleton

__all__ = ["write_sample", "write_skeleton"]
