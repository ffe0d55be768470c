"""Window-to-window alignment of interchangeable outputs (asteroid_lass.alignment)."""

import numpy as np

from asteroid_lass.alignment import SourceTracker, match_outputs

RATE = 8000


def test_window_matching_follows_the_sources_and_keeps_the_order_on_ties():
    rng = np.random.default_rng(3)
    a, b, c = rng.standard_normal((3, 1, 400))
    previous = np.stack([a, b, c])
    # The same sources come out in another order (and at other levels): found again.
    assert list(match_outputs(previous, np.stack([1.2 * c, a, 0.8 * b]))) == [1, 2, 0]
    # Outputs nothing tells apart (one waveform three times): the order is kept.
    same = np.stack([a, a, a])
    assert list(match_outputs(same, same[[2, 0, 1]])) == [0, 1, 2]


def test_window_matching_does_not_take_a_sources_leakage_for_the_source():
    """One source pauses over the overlap; the other output holds only a quiet copy of the
    active source (leakage). Correlation alone scores both outputs alike."""
    active = np.random.default_rng(0).standard_normal((1, 400))
    previous = np.stack([active, 0.1 * active])
    assert list(match_outputs(previous, np.stack([0.1 * active, active]))) == [1, 0]
    assert list(match_outputs(previous, previous)) == [0, 1]


def _tone(freq: float, seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_tracker_orders_a_window_without_shared_sound_by_the_tracks_envelopes():
    tracker = SourceTracker([np.arange(2)], RATE)
    first = np.stack([_tone(200, 1.0), _tone(2500, 1.0)])[:, None]
    assert list(tracker.order(first, None, 0)) == [0, 1]
    # Next window: the sources come back in the other order after a shared silence.
    second = first[[1, 0]].copy()
    second[..., :2000] = 0.0
    tail = np.zeros((2, 1, 2000), dtype=np.float32)
    assert list(tracker.order(second, tail, 2000)) == [1, 0]
    # Louder or quieter, a source keeps its track.
    assert list(tracker.order(np.stack([3 * first[1], 0.2 * first[0]]), None, 0)) == [1, 0]


def test_tracker_keeps_every_order_without_interchangeable_outputs():
    tracker = SourceTracker([], RATE)
    window = np.stack([_tone(200, 1.0), _tone(2500, 1.0)])[:, None]
    assert list(tracker.order(window[[1, 0]], window, 8000)) == [0, 1]


def test_tracker_leaves_outputs_outside_the_groups_in_place():
    """Outputs 0 and 2 are one repeated prompt; output 1 is a distinct prompt."""
    tracker = SourceTracker([np.array([0, 2])], RATE)
    low, mid, high = _tone(200, 1.0), _tone(800, 1.0), _tone(2500, 1.0)
    tracker.order(np.stack([low, mid, high])[:, None], None, 0)
    order = tracker.order(np.stack([high, mid, low])[:, None], None, 0)
    assert list(order) == [2, 1, 0]


def _meet(tracker, tail, window, overlap):
    order = tracker.order(window, tail, overlap)
    return order, window[order][..., window.shape[-1] - overlap :]


def test_a_model_that_keeps_its_order_keeps_it_where_one_meeting_is_ambiguous():
    """The shared samples of one meeting lean slightly towards a swap (both outputs hold a
    blend of the two tones); a model whose order held at every earlier meeting keeps it, a
    model never seen before follows that meeting."""
    overlap = 2000
    window = np.stack([_tone(200, 1.0), _tone(2500, 1.0)])[:, None]
    blurred = window.copy()
    blurred[0, :, :overlap] = 0.45 * window[0, :, :overlap] + 0.55 * window[1, :, :overlap]
    blurred[1, :, :overlap] = 0.45 * window[1, :, :overlap] + 0.55 * window[0, :, :overlap]
    assert list(match_outputs(window[..., -overlap:], blurred[..., :overlap])) == [1, 0]

    consistent = SourceTracker([np.arange(2)], RATE)
    tail = None
    for _ in range(10):
        order, tail = _meet(consistent, tail, window, overlap)
        assert list(order) == [0, 1]
    assert list(consistent.order(blurred, tail, overlap)) == [0, 1]

    fresh = SourceTracker([np.arange(2)], RATE)
    _, tail = _meet(fresh, None, window, overlap)
    assert list(fresh.order(blurred, tail, overlap)) == [1, 0]
