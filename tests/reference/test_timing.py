"""The course's one timer (llm_foundations.timing)."""

import time

from llm_foundations.timing import synchronize, time_calls, time_ms


def test_time_calls_measures_each_candidate_and_keeps_the_fastest_round():
    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1
        time.sleep(0.002)

    seconds = time_calls({"fast": fast, "slow": slow}, rounds=3, min_seconds=0.01)
    assert set(seconds) == {"fast", "slow"}
    assert 0 < seconds["fast"] < seconds["slow"]
    assert 0.002 <= seconds["slow"] < 0.05
    assert calls["slow"] >= 2 + 3  # a warm-up, a timed count, then one or more calls per round


def test_time_ms_is_milliseconds_per_call():
    assert 3.0 <= time_ms(lambda: time.sleep(0.003), rounds=2, min_seconds=0.003) < 50.0


def test_synchronize_on_the_cpu_waits_for_nothing():
    synchronize(None)
    synchronize("cpu")
