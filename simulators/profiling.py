"""``riverguard bench --profile DIR``: py-spy on the hub and the edges under load.

Each process is sampled for the length of one load run (only while it holds
the GIL, so waiting threads do not count) and leaves two files per rate:
``NAME-RATE.txt``, the collapsed stacks (input to flamegraph.pl or
speedscope), and ``NAME-RATE-top.txt``, the functions with the most samples,
self and inclusive: what to read first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from riverguard.services import ManagedProcess

SAMPLES_PER_S = 250
TOP = 40


class Profiler:
    """Samples the given processes with py-spy for ``duration`` seconds."""

    def __init__(
        self, processes: dict[str, list[ManagedProcess]], directory: Path, label: str
    ) -> None:
        self.processes = processes
        self.directory = directory
        self.label = label
        self.running: list[tuple[Path, subprocess.Popen[bytes]]] = []

    def start(self, duration: float) -> None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, group in self.processes.items():
            for index, process in enumerate(group):
                if process.pid is None:
                    continue
                suffix = f"-{index}" if len(group) > 1 else ""
                out = self.directory / f"{name}{suffix}-{self.label}.txt"
                argv = [
                    py_spy,
                    "record",
                    "--pid",
                    str(process.pid),
                    "--duration",
                    str(max(1, int(duration))),
                    "--rate",
                    str(SAMPLES_PER_S),
                    "--gil",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    str(out),
                ]
                log = (self.directory / f"{out.stem}.log").open("wb")
                self.running.append((out, subprocess.Popen(argv, stdout=log, stderr=log)))

    def finish(self) -> list[Path]:
        """Wait for the samplers and write the summaries; returns the summary files."""
        summaries = []
        for out, sampler in self.running:
            sampler.wait(timeout=60)
            if out.exists():
                summary = out.with_name(f"{out.stem}-top.txt")
                summary.write_text(summarise(out.read_text(encoding="utf-8")), encoding="utf-8")
                summaries.append(summary)
        self.running.clear()
        return summaries


def summarise(collapsed: str) -> str:
    """The functions with the most samples, self and inclusive, from collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_function(frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for function in set(frames):
            inclusive[function] += samples
    lines = [f"{total} samples ({SAMPLES_PER_S}/s while holding the GIL)", "", "self:"]
    lines += [f"{100 * n / max(1, total):5.1f}%  {f}" for f, n in own.most_common(TOP)]
    lines += ["", "inclusive:"]
    lines += [f"{100 * n / max(1, total):5.1f}%  {f}" for f, n in inclusive.most_common(TOP)]
    return "\n".join(lines) + "\n"


def _function(frame: str) -> str:
    """``name (path:line)`` -> ``name (path)``: lines of one function add up."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name
