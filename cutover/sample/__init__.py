"""The embedded sample organisation and the demo that carries it through both phases."""

from cutover.sample.demo import run_demo
from cutover.sample.writer import write_sample, write_skeleton

__all__ = ["run_demo", "write_sample", "write_skeleton"]
