"""What an Ollama answer's durations say of the wait in Ollama's own queue (providers/ollama_queue.py).

Shapes from Ollama's source: server/routes.go sets ``total_duration = time.Since(checkpointStart)`` (from the
handler's start) and ``load_duration = checkpointLoaded.Sub(checkpointStart)`` (up to the runner being ready);
``prompt_eval_duration`` and ``eval_duration`` are the runner's own timings — all integer nanoseconds (api/types.go's
time.Duration; docs.ollama.com/api/usage)."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.providers.ollama_queue import ParallelWatch, queued_seconds

LINE = {"total_duration": 4_100_000_000, "load_duration": 100_000_000, "prompt_eval_duration": 500_000_000,
        "eval_duration": 1_500_000_000}


def test_the_rest_of_total_duration_is_the_wait_in_ollamas_queue() -> None:
    assert queued_seconds(LINE) == pytest.approx(2.0)


@pytest.mark.parametrize("broken", [
    {"total_duration": None}, {"eval_duration": "1s"}, {"load_duration": 1.5e8}, {"total_duration": True},
    {"prompt_eval_duration": [1]},
])
def test_a_duration_of_another_shape_or_missing_reads_as_no_reading(broken: dict[str, Any]) -> None:
    assert queued_seconds({**LINE, **broken}) is None
    assert queued_seconds({k: v for k, v in LINE.items() if k not in broken}) is None


def test_durations_that_add_past_the_total_read_as_no_wait() -> None:
    assert queued_seconds({**LINE, "total_duration": 1}) == 0.0


def test_the_watch_says_the_fewest_seen_ahead_and_nothing_without_a_queue() -> None:
    watch = ParallelWatch("m", 4)
    watch.answered({**LINE, "total_duration": 2_200_000_000}, 2)  # 0.1 s past the three: tokenising, not a queue
    assert watch.note() == ""
    watch.answered(LINE, 0)  # nothing of ours ahead: another client's, not our max_concurrent's
    watch.answered(LINE, 4)  # as many ahead as max_concurrent: our own limit
    assert watch.note() == ""
    watch.answered(LINE, 3)
    watch.answered(LINE, 2)
    assert watch.at_most == 2 and "past 2 at once" in watch.note()
