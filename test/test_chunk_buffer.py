"""ChunkBuffer: time-indexed action lookup, blending of overlapping chunks, thread safety."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from fuzz import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from robot_policy_ros.core.chunk_buffer import BlendConfig, BlendMode, ChunkBuffer

J = 3


def ramp_chunk(h: int, start: float = 0.0, step: float = 1.0, joints: int = J) -> np.ndarray:
    """Chunk whose action i is start + i*step on every joint (offset per joint by 100*j)."""
    base = start + step * np.arange(h, dtype=np.float64)[:, None]
    return base + 100.0 * np.arange(joints, dtype=np.float64)[None, :]


def const_chunk(h: int, value: float, joints: int = J) -> np.ndarray:
    return np.full((h, joints), value, dtype=np.float64)


# -- lookup by time ------------------------------------------------------------------------


def test_action_i_is_for_t_obs_plus_i_over_fps():
    buf = ChunkBuffer(J)
    chunk = ramp_chunk(10)
    buf.add(chunk, t_obs=5.0, fps=10.0)
    for i in range(10):
        np.testing.assert_allclose(buf.action_at(5.0 + i / 10.0), chunk[i])


def test_action_in_past_is_skipped():
    # Chunk predicted from an observation at t=1.0 arrives at t=1.25 (latency): the control
    # loop asks for t=1.25 and gets action 5 (not action 0).
    buf = ChunkBuffer(J)
    chunk = ramp_chunk(20)
    buf.add(chunk, t_obs=1.0, fps=20.0)
    np.testing.assert_allclose(buf.action_at(1.25), chunk[5])


def test_no_extrapolation_past_chunk_end():
    buf = ChunkBuffer(J)
    buf.add(ramp_chunk(5), t_obs=0.0, fps=10.0)  # covers [0, 0.4]
    assert buf.action_at(0.4) is not None
    assert buf.action_at(0.41) is None
    assert buf.action_at(10.0) is None


def test_time_before_first_chunk_is_not_covered():
    buf = ChunkBuffer(J)
    buf.add(ramp_chunk(5), t_obs=1.0, fps=10.0)
    assert buf.action_at(0.99) is None


def test_empty_buffer_returns_none():
    buf = ChunkBuffer(J)
    assert buf.action_at(0.0) is None
    assert buf.horizon(0.0) == 0.0
    assert len(buf) == 0


def test_interpolates_between_action_times():
    buf = ChunkBuffer(J)
    chunk = ramp_chunk(4, step=2.0)  # actions 0, 2, 4, 6 (+ joint offsets)
    buf.add(chunk, t_obs=0.0, fps=10.0)
    np.testing.assert_allclose(buf.action_at(0.05), (chunk[0] + chunk[1]) / 2)
    np.testing.assert_allclose(buf.action_at(0.125), chunk[1] + 0.25 * (chunk[2] - chunk[1]))
    # 50 Hz control against a 10 Hz policy: 5 evenly spaced targets per action period.
    got = np.array([buf.action_at(0.1 + k * 0.02)[0] for k in range(6)])
    np.testing.assert_allclose(got, [2.0, 2.4, 2.8, 3.2, 3.6, 4.0])


def test_single_action_chunk_holds_for_one_period():
    buf = ChunkBuffer(J)
    buf.add(const_chunk(1, 7.0), t_obs=2.0, fps=10.0)
    for t in (2.0, 2.05, 2.1):
        np.testing.assert_allclose(buf.action_at(t), 7.0)
    assert buf.action_at(2.11) is None
    assert buf.action_at(1.99) is None
    assert buf.horizon(2.0) == pytest.approx(0.1)


def test_boundary_tolerates_float_rounding():
    buf = ChunkBuffer(J)
    buf.add(ramp_chunk(3), t_obs=0.1, fps=30.0)
    end = 0.1 + 2 / 30.0
    assert buf.action_at(end + 1e-12) is not None
    assert buf.action_at(0.1 - 1e-12) is not None


def test_returned_action_is_a_private_copy():
    buf = ChunkBuffer(J)
    chunk = ramp_chunk(3)
    buf.add(chunk, 0.0, 10.0)
    chunk[:] = -1.0  # caller reuses its array
    a = buf.action_at(0.0)
    np.testing.assert_allclose(a, ramp_chunk(3)[0])
    a[:] = 99.0  # caller modifies the result
    np.testing.assert_allclose(buf.action_at(0.0), ramp_chunk(3)[0])


# -- blending ------------------------------------------------------------------------------


def test_replace_newest_chunk_wins():
    buf = ChunkBuffer(J, BlendConfig(mode=BlendMode.REPLACE))
    buf.add(const_chunk(10, 1.0), t_obs=0.0, fps=10.0)
    buf.add(const_chunk(10, 2.0), t_obs=0.3, fps=10.0)
    np.testing.assert_allclose(buf.action_at(0.2), 1.0)  # before the new chunk starts
    np.testing.assert_allclose(buf.action_at(0.3), 2.0)
    np.testing.assert_allclose(buf.action_at(0.8), 2.0)
    np.testing.assert_allclose(buf.action_at(1.1), 2.0)  # only the new chunk still covers


def test_replace_late_arriving_older_chunk_does_not_override_newer():
    buf = ChunkBuffer(J, BlendConfig(mode="replace"))
    buf.add(const_chunk(10, 2.0), t_obs=0.3, fps=10.0)
    buf.add(const_chunk(10, 1.0), t_obs=0.0, fps=10.0)  # older observation, added later
    assert len(buf) == 2
    np.testing.assert_allclose(buf.action_at(0.2), 1.0)
    np.testing.assert_allclose(buf.action_at(0.5), 2.0)


def test_temporal_ensemble_matches_offline_average():
    k = 0.3
    buf = ChunkBuffer(J, BlendConfig(mode=BlendMode.TEMPORAL_ENSEMBLE, ensemble_k=k))
    rng = np.random.default_rng(0)
    fps = 10.0
    chunks = [(rng.normal(size=(8, J)), i * 0.1) for i in range(4)]
    # Added out of order: the ensemble orders by observation time, not arrival.
    for idx in (2, 0, 3, 1):
        buf.add(chunks[idx][0], chunks[idx][1], fps)
    t = 0.5  # action times: chunk c predicts index (t - t_obs_c)*fps for it
    preds = [c[round((t - t0) * fps)] for c, t0 in chunks]  # oldest first
    weights = [math.exp(-k * i) for i in range(len(preds))]
    expected = sum(w * p for w, p in zip(weights, preds, strict=True)) / sum(weights)
    np.testing.assert_allclose(buf.action_at(t), expected)


def test_temporal_ensemble_only_uses_chunks_covering_t():
    buf = ChunkBuffer(J, BlendConfig(mode=BlendMode.TEMPORAL_ENSEMBLE, ensemble_k=0.5))
    buf.add(const_chunk(3, 10.0), 0.0, 10.0)  # covers [0, 0.2]
    buf.add(const_chunk(10, 1.0), 0.1, 10.0)
    buf.add(const_chunk(10, 2.0), 0.2, 10.0)
    t = 0.5  # first chunk no longer covers: i=0 is the chunk at 0.1
    w = [1.0, math.exp(-0.5)]
    np.testing.assert_allclose(buf.action_at(t), (w[0] * 1.0 + w[1] * 2.0) / sum(w))


def test_average_blends_newest_with_average_weight():
    buf = ChunkBuffer(J, BlendConfig(mode=BlendMode.AVERAGE, average_weight=0.25))
    buf.add(const_chunk(10, 0.0), 0.0, 10.0)
    buf.add(const_chunk(10, 4.0), 0.1, 10.0)
    buf.add(const_chunk(10, 8.0), 0.2, 10.0)
    # running blend oldest first: b=0 -> 0.75*0+0.25*4=1 -> 0.75*1+0.25*8=2.75
    np.testing.assert_allclose(buf.action_at(0.5), 2.75)
    np.testing.assert_allclose(buf.action_at(0.15), 1.0)  # third chunk not started yet


def test_crossfade_ramps_new_chunk_weight_linearly_over_window():
    buf = ChunkBuffer(J, BlendConfig(mode=BlendMode.CROSSFADE, crossfade_s=0.2))
    buf.add(const_chunk(20, 0.0), 0.0, 10.0)
    buf.add(const_chunk(20, 10.0), 0.5, 10.0)
    np.testing.assert_allclose(buf.action_at(0.49), 0.0)
    np.testing.assert_allclose(buf.action_at(0.5), 0.0)
    np.testing.assert_allclose(buf.action_at(0.55), 2.5)
    np.testing.assert_allclose(buf.action_at(0.6), 5.0)
    np.testing.assert_allclose(buf.action_at(0.7), 10.0)
    np.testing.assert_allclose(buf.action_at(1.5), 10.0)


def test_crossfade_starts_at_arrival_when_chunk_arrives_late():
    # Observed at 0.5, arrived 0.1 s later: the fade starts at arrival, so the command does not
    # jump by half the difference at the seam (as a window starting at t_obs would).
    buf = ChunkBuffer(J, BlendConfig(mode=BlendMode.CROSSFADE, crossfade_s=0.2))
    buf.add(const_chunk(20, 0.0), 0.0, 10.0)
    buf.add(const_chunk(20, 10.0), 0.5, 10.0, received_at=0.6)
    np.testing.assert_allclose(buf.action_at(0.6), 0.0)
    np.testing.assert_allclose(buf.action_at(0.7), 5.0)
    np.testing.assert_allclose(buf.action_at(0.8), 10.0)


def test_crossfade_zero_window_acts_like_replace():
    buf = ChunkBuffer(J, BlendConfig(mode=BlendMode.CROSSFADE, crossfade_s=0.0))
    buf.add(const_chunk(20, 0.0), 0.0, 10.0)
    buf.add(const_chunk(20, 10.0), 0.5, 10.0)
    np.testing.assert_allclose(buf.action_at(0.5), 10.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "blend"},
        {"ensemble_k": math.nan},
        {"average_weight": 1.5},
        {"average_weight": -0.1},
        {"crossfade_s": -1.0},
    ],
)
def test_invalid_blend_config_rejected(kwargs):
    with pytest.raises(ValueError):
        BlendConfig(**kwargs)


def test_blend_mode_accepts_parameter_string():
    assert BlendConfig(mode="temporal_ensemble").mode is BlendMode.TEMPORAL_ENSEMBLE


# -- horizon, prune, capacity --------------------------------------------------------------


def test_horizon_reports_time_covered_ahead():
    buf = ChunkBuffer(J)
    buf.add(ramp_chunk(11), t_obs=1.0, fps=10.0)  # covers [1, 2]
    assert buf.horizon(1.0) == pytest.approx(1.0)
    assert buf.horizon(1.75) == pytest.approx(0.25)
    assert buf.horizon(2.5) == 0.0
    assert buf.horizon(0.5) == 0.0  # t itself not covered
    buf.add(ramp_chunk(11), t_obs=1.8, fps=10.0)  # overlapping: extends to 2.8
    assert buf.horizon(1.5) == pytest.approx(1.3)
    buf.add(ramp_chunk(3), t_obs=3.5, fps=10.0)  # after a gap: not counted
    assert buf.horizon(1.5) == pytest.approx(1.3)


def test_prune_drops_past_chunks():
    buf = ChunkBuffer(J)
    buf.add(ramp_chunk(5), 0.0, 10.0)  # ends 0.4
    buf.add(ramp_chunk(5), 0.3, 10.0)  # ends 0.7
    buf.add(ramp_chunk(5), 0.6, 10.0)  # ends 1.0
    assert buf.prune(0.5) == 1
    assert len(buf) == 2
    assert buf.prune(0.5) == 0
    assert buf.prune(0.7) == 0  # a chunk ending exactly at t still covers t
    assert buf.action_at(0.7) is not None
    assert buf.prune(2.0) == 2
    assert len(buf) == 0


def test_clear_empties_buffer():
    buf = ChunkBuffer(J)
    buf.add(ramp_chunk(5), 0.0, 10.0)
    buf.clear()
    assert len(buf) == 0
    assert buf.action_at(0.1) is None


def test_max_chunks_drops_chunk_ending_first():
    buf = ChunkBuffer(J, max_chunks=2)
    buf.add(const_chunk(50, 1.0), 0.0, 10.0)  # long chunk, ends 4.9
    buf.add(const_chunk(5, 2.0), 0.1, 10.0)  # ends 0.5: dropped first
    buf.add(const_chunk(5, 3.0), 0.2, 10.0)
    assert len(buf) == 2
    np.testing.assert_allclose(buf.action_at(0.15), 1.0)
    np.testing.assert_allclose(buf.action_at(3.0), 1.0)


def test_long_old_chunk_still_found_among_many_short_ones():
    # The backward scan must not stop early while an old, long chunk can still cover t.
    buf = ChunkBuffer(J, BlendConfig(mode=BlendMode.AVERAGE, average_weight=0.5))
    buf.add(const_chunk(100, 0.0), 0.0, 10.0)  # covers [0, 9.9]
    for i in range(20):
        buf.add(const_chunk(3, 4.0), 1.0 + 0.3 * i, 10.0)
    np.testing.assert_allclose(buf.action_at(9.0), 0.0)  # only the long chunk covers 9.0
    np.testing.assert_allclose(buf.action_at(1.05), 2.0)


# -- validation ----------------------------------------------------------------------------


def test_nan_chunk_rejected():
    buf = ChunkBuffer(J)
    chunk = ramp_chunk(5)
    chunk[2, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        buf.add(chunk, 0.0, 10.0)
    assert len(buf) == 0


def test_inf_chunk_rejected():
    buf = ChunkBuffer(J)
    chunk = ramp_chunk(5)
    chunk[0, 0] = -np.inf
    with pytest.raises(ValueError, match="non-finite"):
        buf.add(chunk, 0.0, 10.0)


def test_wrong_joint_count_rejected():
    buf = ChunkBuffer(J)
    with pytest.raises(ValueError, match="joints"):
        buf.add(ramp_chunk(5, joints=J + 1), 0.0, 10.0)
    with pytest.raises(ValueError, match="shape"):
        buf.add(np.zeros(J), 0.0, 10.0)


def test_empty_chunk_rejected():
    with pytest.raises(ValueError, match="empty"):
        ChunkBuffer(J).add(np.zeros((0, J)), 0.0, 10.0)


@pytest.mark.parametrize("fps", [0.0, -10.0, math.nan, math.inf])
def test_non_positive_fps_rejected(fps):
    with pytest.raises(ValueError, match="fps"):
        ChunkBuffer(J).add(ramp_chunk(5), 0.0, fps)


def test_non_finite_t_obs_rejected():
    with pytest.raises(ValueError, match="t_obs"):
        ChunkBuffer(J).add(ramp_chunk(5), math.nan, 10.0)


def test_non_finite_query_time_returns_none():
    buf = ChunkBuffer(J)
    buf.add(ramp_chunk(5), 0.0, 10.0)
    assert buf.action_at(math.nan) is None
    assert buf.horizon(math.nan) == 0.0


# -- threads -------------------------------------------------------------------------------


def test_concurrent_add_and_query():
    """A writer adds and prunes while a reader queries; every answer is a valid blend."""
    buf = ChunkBuffer(J, BlendConfig(mode=BlendMode.TEMPORAL_ENSEMBLE), max_chunks=8)
    stop = threading.Event()
    errors: list[BaseException] = []
    answers = 0

    def writer() -> None:
        try:
            for i in range(2000):
                buf.add(const_chunk(10, float(i % 7)), t_obs=i * 0.01, fps=100.0)
                buf.prune(i * 0.01 - 0.05)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    def reader() -> None:
        nonlocal answers
        try:
            k = 0
            while not stop.is_set() or k < 100:
                t = (k % 2000) * 0.01 + 0.005
                a = buf.action_at(t)
                if a is not None:
                    assert a.shape == (J,)
                    assert np.all(np.isfinite(a))
                    # A weighted mean of constants in [0, 6] stays in [0, 6] and is uniform.
                    assert -1e-9 <= a[0] <= 6.0 + 1e-9
                    assert np.all(a == a[0])
                    answers += 1
                buf.horizon(t)
                len(buf)
                k += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert not errors, errors
    assert answers > 0
    assert len(buf) <= 8


# -- properties ----------------------------------------------------------------------------

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)


@st.composite
def chunk_sets(draw):
    n = draw(st.integers(min_value=1, max_value=5))
    out = []
    for _ in range(n):
        h = draw(st.integers(min_value=1, max_value=12))
        t_obs = draw(st.floats(min_value=0.0, max_value=2.0))
        fps = draw(st.floats(min_value=1.0, max_value=100.0))
        vals = draw(st.lists(finite, min_size=h * J, max_size=h * J))
        out.append((np.array(vals).reshape(h, J), t_obs, fps))
    return out


@fuzz_settings(60)
@given(
    chunks=chunk_sets(),
    t=st.floats(min_value=-0.5, max_value=15.0),
    mode=st.sampled_from(list(BlendMode)),
)
def test_action_is_none_exactly_when_uncovered_and_within_chunk_value_range(chunks, t, mode):
    buf = ChunkBuffer(J, BlendConfig(mode=mode, ensemble_k=0.1, crossfade_s=0.05))
    for c, t_obs, fps in chunks:
        buf.add(c, t_obs, fps)
    covering = [
        (c, t_obs, fps)
        for c, t_obs, fps in chunks
        # The buffer's own form of the TIME_EPS tolerance (t + eps >= start, end + eps >= t):
        # written as t >= start - eps, the two differ by float rounding at the boundary.
        if t + 1e-9 >= t_obs and t_obs + max(len(c) - 1, 1) / fps + 1e-9 >= t
    ]
    a = buf.action_at(t)
    if not covering:
        assert a is None
        assert buf.horizon(t) == 0.0
        return
    assert a is not None and a.shape == (J,)
    # Every blend is a convex combination of interpolated actions: never outside their range.
    lo = np.min([c.min(axis=0) for c, _, _ in covering], axis=0)
    hi = np.max([c.max(axis=0) for c, _, _ in covering], axis=0)
    assert np.all(a >= lo - 1e-6) and np.all(a <= hi + 1e-6)
    assert buf.horizon(t) >= 0.0


@fuzz_settings(40)
@given(chunks=chunk_sets(), t=st.floats(min_value=0.0, max_value=15.0))
def test_prune_never_changes_answers_at_or_after_t(chunks, t):
    buf = ChunkBuffer(J, BlendConfig(mode=BlendMode.TEMPORAL_ENSEMBLE))
    for c, t_obs, fps in chunks:
        buf.add(c, t_obs, fps)
    probes = [t, t + 0.01, t + 0.1, t + 0.5]
    before = [buf.action_at(p) for p in probes]
    horizon_before = buf.horizon(t)
    buf.prune(t)
    after = [buf.action_at(p) for p in probes]
    for b, a in zip(before, after, strict=True):
        assert (b is None) == (a is None)
        if b is not None:
            np.testing.assert_allclose(a, b)
    assert buf.horizon(t) == pytest.approx(horizon_before)
