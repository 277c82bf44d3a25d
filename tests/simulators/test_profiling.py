"""The bench's py-spy summary: self and inclusive shares from collapsed stacks."""

from __future__ import annotations

from simulators.profiling import summarise


def test_summary_adds_up_lines_of_one_function_and_counts_a_frame_once_per_stack() -> None:
    collapsed = "\n".join(
        [
            "run (a.py:1);process (a.py:10);commit (b.py:5) 6",
            "run (a.py:1);process (a.py:12);parse (c.py:7) 3",
            "run (a.py:2);run (a.py:3) 1",  # recursion: run counts once in that stack
            "not a sample line",
        ]
    )
    text = summarise(collapsed)
    assert text.startswith("10 samples")
    self_part, inclusive_part = text.split("inclusive:")
    assert " 60.0%  commit (b.py)" in self_part
    assert " 30.0%  parse (c.py)" in self_part
    assert "100.0%  run (a.py)" in inclusive_part
    assert " 90.0%  process (a.py)" in inclusive_part
