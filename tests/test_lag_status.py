"""The Burrow-style status rule of SPEC §6, one case per status."""

from __future__ import annotations

from orchestrator.lag import GroupLag, OffsetSample, PartitionLag, evaluate_status, worst


def window(*points: tuple[int | None, int]) -> list[OffsetSample]:
    return [
        OffsetSample(at=float(i), committed=c, end=e, lag=e - (c or 0), time_lag_s=0.0)
        for i, (c, e) in enumerate(points)
    ]


def test_fewer_than_two_samples_is_unknown() -> None:
    assert evaluate_status([]) == "unknown"
    assert evaluate_status(window((5, 9))) == "unknown"


def test_idle_caught_up_partition_is_ok() -> None:
    assert evaluate_status(window((10, 10), (10, 10), (10, 10))) == "ok"


def test_moving_offset_with_steady_lag_is_ok() -> None:
    assert evaluate_status(window((10, 15), (20, 25), (30, 34))) == "ok"


def test_zero_lag_anywhere_in_window_is_ok() -> None:
    """A healthy consumer between two commit intervals must not read as stalled."""
    assert evaluate_status(window((10, 10), (10, 12))) == "ok"


def test_unmoved_offset_with_lag_is_stalled() -> None:
    assert evaluate_status(window((10, 15), (10, 20), (10, 30))) == "stalled"
    assert evaluate_status(window((None, 5), (None, 5))) == "stalled"


def test_moving_offset_with_growing_lag_is_lagging() -> None:
    assert evaluate_status(window((10, 15), (12, 20), (14, 30))) == "lagging"


def test_lag_that_shrank_once_is_not_lagging() -> None:
    assert evaluate_status(window((10, 15), (18, 19), (20, 30))) == "ok"


def test_group_status_is_worst_partition() -> None:
    def part(status: str) -> PartitionLag:
        return PartitionLag("t", 0, 0, 0, 0, 0.0, status)  # type: ignore[arg-type]

    assert GroupLag("g", [part("ok"), part("lagging"), part("unknown")]).status == "lagging"
    assert GroupLag("g", [part("ok"), part("stalled"), part("lagging")]).status == "stalled"
    assert worst(["ok", "ok"]) == "ok"
    assert worst([]) == "unknown"
