"""PresentationTracker: one check-in per presentation of a code, whatever the frame count.

The tracker is pure: every observation carries its own time, so these tests step a clock
by hand instead of sleeping. Frames come every 0.1 s unless a test says otherwise.
"""

from collections.abc import Sequence

import pytest

from gate.presentation import PresentationConfig, PresentationTracker, Sighting

A = b"001090123456|012345678|Nguyen Van An|01011990|Nam|Ha Noi|15042021"
B = b"034303012345||Nguyen Thi Hoa|21032003|Nu|Thai Binh|14082021"
FRAME_S = 0.1


def tracker(confirm_frames: int = 1, cooldown_s: float = 10.0, leave_after_s: float = 0.7):
    return PresentationTracker(
        PresentationConfig(
            confirm_frames=confirm_frames, cooldown_s=cooldown_s, leave_after_s=leave_after_s
        )
    )


def present(t: PresentationTracker, payloads: Sequence[bytes], at: float) -> list[Sighting]:
    """One frame, each new sighting then stored as a check-in, as the pipeline does."""
    sightings = list(t.observe(payloads, at))
    for sighting in sightings:
        if not sighting.duplicate:
            t.checked_in(sighting.payload, at)
    return sightings


def hold(
    t: PresentationTracker, payloads: Sequence[bytes], start: float, frames: int
) -> list[Sighting]:
    """Show the same payloads in `frames` consecutive frames from `start`; all sightings."""
    found: list[Sighting] = []
    for i in range(frames):
        found.extend(present(t, payloads, start + i * FRAME_S))
    return found


def test_with_confirm_frames_1_the_first_frame_counts():
    t = tracker(confirm_frames=1)

    assert list(present(t, [A], 0.0)) == [Sighting(A, duplicate=False)]


@pytest.mark.parametrize("confirm_frames", [2, 3, 5])
def test_a_code_counts_in_its_nth_frame_not_before(confirm_frames):
    t = tracker(confirm_frames=confirm_frames)

    assert hold(t, [A], 0.0, confirm_frames - 1) == []
    assert list(present(t, [A], (confirm_frames - 1) * FRAME_S)) == [Sighting(A, False)]


def test_a_code_held_for_many_frames_is_one_sighting():
    t = tracker(confirm_frames=3, cooldown_s=1.0)

    # 10 s in view: far longer than the cooldown, still one presentation.
    assert hold(t, [A], 0.0, 100) == [Sighting(A, False)]


def test_confirmation_frames_need_not_be_consecutive_while_the_code_stays_in_view():
    t = tracker(confirm_frames=2, leave_after_s=0.7)

    assert list(present(t, [A], 0.0)) == []
    assert list(present(t, [], 0.3)) == []  # a missed read, not a departure
    assert list(present(t, [A], 0.6)) == [Sighting(A, False)]


def test_a_code_that_left_before_confirming_starts_counting_again():
    t = tracker(confirm_frames=2, leave_after_s=0.5)

    assert list(present(t, [A], 0.0)) == []
    assert list(present(t, [A], 0.6)) == []  # gap > leave_after_s: frame count restarted
    assert list(present(t, [A], 0.7)) == [Sighting(A, False)]


def test_a_gap_longer_than_leave_after_s_starts_a_new_presentation():
    t = tracker(cooldown_s=0.0, leave_after_s=0.5)

    assert hold(t, [A], 0.0, 5) == [Sighting(A, False)]  # last seen at 0.4
    assert list(present(t, [A], 0.95)) == [Sighting(A, False)]


def test_a_gap_of_exactly_leave_after_s_is_still_the_same_presentation():
    t = tracker(cooldown_s=0.0, leave_after_s=0.5)

    assert list(present(t, [A], 1.0)) == [Sighting(A, False)]
    assert list(present(t, [A], 1.5)) == []


def test_empty_frames_are_how_a_departure_is_noticed():
    t = tracker(cooldown_s=0.0, leave_after_s=0.5)

    present(t, [A], 0.0)
    present(t, [], 0.6)  # the code has left
    assert list(present(t, [A], 0.7)) == [Sighting(A, False)]


def test_presented_again_within_the_cooldown_is_a_duplicate():
    t = tracker(cooldown_s=10.0, leave_after_s=0.5)

    assert list(present(t, [A], 0.0)) == [Sighting(A, False)]
    assert list(present(t, [A], 5.0)) == [Sighting(A, duplicate=True)]


def test_presented_again_after_the_cooldown_is_a_new_checkin():
    t = tracker(cooldown_s=10.0, leave_after_s=0.5)

    assert list(present(t, [A], 0.0)) == [Sighting(A, False)]
    assert list(present(t, [A], 10.0)) == [Sighting(A, False)]


def test_the_cooldown_runs_from_the_last_checkin_not_from_the_last_duplicate():
    t = tracker(cooldown_s=10.0, leave_after_s=0.5)

    present(t, [A], 0.0)
    assert list(present(t, [A], 6.0)) == [Sighting(A, True)]
    assert list(present(t, [A], 10.5)) == [Sighting(A, False)]


def test_a_sighting_that_was_not_stored_leaves_no_cooldown():
    t = tracker(cooldown_s=10.0, leave_after_s=0.5)

    t.observe([A], 0.0)  # e.g. the store was full: no check-in happened

    assert present(t, [A], 1.0) == [Sighting(A, False)]
    assert present(t, [A], 2.0) == [Sighting(A, True)]


def test_a_code_not_stored_is_not_recounted_while_still_in_view():
    t = tracker(cooldown_s=10.0, leave_after_s=0.5)

    t.observe([A], 0.0)

    # Still held in front of the camera: it must be taken away and shown again.
    assert hold(t, [A], 0.1, 10) == []


def test_two_codes_in_one_frame_are_independent_presentations():
    t = tracker(confirm_frames=2, cooldown_s=10.0, leave_after_s=0.5)

    assert list(present(t, [A], 0.0)) == []
    assert list(present(t, [A, B], 0.1)) == [Sighting(A, False)]
    assert list(present(t, [A, B], 0.2)) == [Sighting(B, False)]
    # A leaves and comes back (duplicate); B stays in view and is not counted again.
    assert hold(t, [B], 0.3, 6) == []  # A unseen from 0.2 to 0.8: it has left
    assert list(present(t, [A, B], 0.9)) == []
    assert list(present(t, [A, B], 1.0)) == [Sighting(A, True)]


def test_two_new_codes_confirmed_in_the_same_frame_are_both_reported_in_order():
    t = tracker()

    assert list(present(t, [B, A], 0.0)) == [Sighting(B, False), Sighting(A, False)]


def test_the_same_payload_twice_in_one_frame_counts_as_one_frame():
    t = tracker(confirm_frames=2)

    # Two symbols of one payload in view (two phones, a printed pair): one frame, not two.
    assert list(present(t, [A, A], 0.0)) == []
    assert list(present(t, [A, A], 0.1)) == [Sighting(A, False)]
    assert list(present(t, [A, A], 0.2)) == []


def test_watching_is_true_only_while_a_code_is_in_view():
    t = tracker(leave_after_s=0.5)
    assert not t.watching

    present(t, [], 0.0)
    assert not t.watching

    present(t, [A], 0.1)
    assert t.watching
    present(t, [], 0.5)  # 0.4 s unseen: may still be in view
    assert t.watching
    present(t, [], 0.7)  # 0.6 s unseen: gone
    assert not t.watching


def test_watching_starts_with_the_first_frame_even_before_confirmation():
    t = tracker(confirm_frames=3)

    present(t, [A], 0.0)

    assert t.watching


def test_memory_of_checkins_older_than_the_cooldown_is_pruned():
    t = tracker(cooldown_s=5.0, leave_after_s=0.5)
    codes = [f"code-{i}".encode() for i in range(50)]
    for i, code in enumerate(codes):
        present(t, [code], i * 1.0)

    # Only the check-ins of the last cooldown are remembered, not all 50 codes.
    assert set(t._last_checkin) == set(codes[-5:])
    # A check-in long after forgets every earlier one.
    present(t, [A], 100.0)
    assert set(t._last_checkin) == {A}


def test_codes_that_left_are_no_longer_held_in_memory():
    t = tracker(leave_after_s=0.5)
    for i in range(50):
        present(t, [f"code-{i}".encode()], i * 1.0)

    assert len(t._in_view) == 1


def test_a_zero_cooldown_never_reports_a_duplicate():
    t = tracker(cooldown_s=0.0, leave_after_s=0.5)

    sightings = [s for i in range(5) for s in present(t, [A], i * 1.0)]

    assert sightings == [Sighting(A, False)] * 5
    assert t._last_checkin == {}


def test_an_empty_frame_with_nothing_in_view_reports_nothing():
    t = tracker()

    assert list(present(t, [], 0.0)) == []
