"""The loss terms of recipe B (issue 14) on hand-made inputs: the critic's activation statistics pull generated
windows towards the asked style's real windows and nowhere else; the roughness term spares real motion."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rsmt_studio.training import rollout as Ro
from rsmt_studio.training import style_critic as SC


def _trainer_with_two_styles() -> tuple[SC.CriticTrainer, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    critic = SC.StyleCritic(channels=6, n_styles=3, hidden=8)
    trainer = SC.CriticTrainer(critic, crop=12)
    calm = torch.randn(16, 12, 6) * 0.2
    lively = torch.randn(16, 12, 6) * 2.0 + 1.0
    trainer.remember(calm, 0)
    trainer.remember(lively, 1)
    return trainer, calm, lively


def test_statistics_loss_is_zero_on_a_style_s_own_windows_and_large_on_another_s():
    trainer, calm, lively = _trainer_with_two_styles()
    calm_asks_calm = trainer.statistics_loss(calm, torch.zeros(16, dtype=torch.long))
    lively_asks_calm = trainer.statistics_loss(lively, torch.zeros(16, dtype=torch.long))
    # each row's statistics differ from the style's mean a little, so "own" is small, not exactly zero
    assert float(calm_asks_calm) < 0.5 * float(lively_asks_calm)
    table, present, scale = trainer.style_statistics()
    assert present.tolist() == [True, True, False] and table.shape == (3, 16) and bool((scale > 0).all())


def test_statistics_loss_skips_styles_missing_from_the_buffer_and_trains_only_its_input():
    trainer, calm, _ = _trainer_with_two_styles()
    trainer.learn()  # as in training: one step on real windows, after which the critic's weights are frozen
    trainer.critic.zero_grad(set_to_none=True)
    feats = calm.clone().requires_grad_(True)
    missing = trainer.statistics_loss(feats, torch.full((16,), 2, dtype=torch.long))
    assert float(missing) == 0.0
    loss = trainer.statistics_loss(feats, torch.ones(16, dtype=torch.long))
    loss.backward()
    assert feats.grad is not None and float(feats.grad.abs().sum()) > 0
    assert all(p.grad is None for p in trainer.critic.parameters())


def test_excess_acceleration_spares_the_ground_truth_and_penalises_jitter():
    torch.manual_seed(1)
    t, n_past, length = 30, 10, 16
    steps = torch.cumsum(torch.randn(2, t, 4, 3) * 0.1, 1)
    gt = torch.cumsum(steps, 1)  # smooth-ish trajectories
    own = gt[:, n_past : n_past + length]
    assert float(Ro.excess_acceleration(own, gt, length, n_past)) == pytest.approx(0.0, abs=1e-6)
    jitter = own + torch.randn_like(own) * 0.5
    assert float(Ro.excess_acceleration(jitter, gt, length, n_past)) > 0.1


def test_excess_head_motion_spares_the_ground_truth_and_penalises_a_wobbling_head():
    torch.manual_seed(2)
    b, t, j, n_past, length, neck, head = 3, 30, 5, 10, 12, 3, 4
    angles = torch.linspace(0, 0.3, t)  # the head turns slowly and smoothly on the neck
    rot = torch.zeros(b, t, j, 3, 3)
    rot[..., :, :] = torch.eye(3)
    c, s = torch.cos(angles), torch.sin(angles)
    rot[:, :, head, 0, 0], rot[:, :, head, 0, 1], rot[:, :, head, 1, 0], rot[:, :, head, 1, 1] = c, -s, s, c
    r_gt = torch.cat([rot[..., :, 0], rot[..., :, 1]], -1)  # 6D: the first two columns
    own = r_gt[:, n_past : n_past + length]
    assert float(Ro.excess_head_motion(own, r_gt, head, neck, length, n_past)) == pytest.approx(0.0, abs=1e-6)
    wobble = own.clone()
    wobble[:, ::2, head] = r_gt[:, n_past - 1, head].unsqueeze(1)  # every other frame snaps back
    assert float(Ro.excess_head_motion(wobble, r_gt, head, neck, length, n_past)) > 0.01


def test_excess_seam_motion_spares_the_ground_truth_and_penalises_a_pop_at_either_seam():
    b, t, j, n_past, length = 2, 30, 4, 10, 12
    parents = torch.tensor([-1, 0, 1, 1])
    angles = torch.linspace(0, 0.4, t)  # every joint turns slowly about y, each on its parent
    c, s = torch.cos(angles), torch.sin(angles)
    local = torch.zeros(t, 3, 3)
    local[:, 0, 0], local[:, 0, 2], local[:, 1, 1], local[:, 2, 0], local[:, 2, 2] = c, s, 1.0, -s, c
    glob = torch.zeros(t, j, 3, 3)
    glob[:, 0] = local
    for k in range(1, j):
        glob[:, k] = glob[:, int(parents[k])] @ local
    r_gt = torch.cat([glob[..., :, 0], glob[..., :, 1]], -1).expand(b, t, j, 6).clone()
    own = r_gt[:, n_past : n_past + length]
    assert float(Ro.excess_seam_motion(own, r_gt, parents, length, n_past)) == pytest.approx(0.0, abs=1e-6)
    # the hips pop at the first generated frame: every child keeps its own local rotation, the root's jumps
    pop = torch.tensor([[0.966, 0.0, 0.259], [0.0, 1.0, 0.0], [-0.259, 0.0, 0.966]])  # 15 degrees about y
    first = glob[n_past : n_past + length].clone()
    first[0] = pop @ first[0]
    gen = torch.cat([first[..., :, 0], first[..., :, 1]], -1).expand(b, length, j, 6)
    assert float(Ro.excess_seam_motion(gen, r_gt, parents, length, n_past)) > 0.01
    # the spine's twist misses the keyframe: the last generated frame's local rotation of joint 1 is off
    last = glob[n_past : n_past + length].clone()
    last[-1, 1:] = last[-1, 1:] @ pop
    gen = torch.cat([last[..., :, 0], last[..., :, 1]], -1).expand(b, length, j, 6)
    assert float(Ro.excess_seam_motion(gen, r_gt, parents, length, n_past)) > 0.01


def _head_turning(angles: torch.Tensor, b: int, j: int, head: int) -> torch.Tensor:
    """(b, T, j, 6) global rotations: identity everywhere but the head, which turns about z by `angles` (T,)."""
    rot = torch.zeros(b, angles.shape[0], j, 3, 3)
    rot[..., :, :] = torch.eye(3)
    c, s = torch.cos(angles), torch.sin(angles)
    rot[:, :, head, 0, 0], rot[:, :, head, 0, 1], rot[:, :, head, 1, 0], rot[:, :, head, 1, 1] = c, -s, s, c
    return torch.cat([rot[..., :, 0], rot[..., :, 1]], -1)


def test_excess_head_turn_spares_the_ground_truth_and_penalises_a_head_that_settles_turned_away():
    b, t, j, n_past, length, neck, head = 2, 30, 5, 10, 12, 3, 4
    r_gt = _head_turning(torch.linspace(0, 0.1, t), b, j, head)
    own = r_gt[:, n_past : n_past + length]
    assert float(Ro.excess_head_turn(own, r_gt, head, neck, length, n_past)) == pytest.approx(0.0, abs=1e-6)
    # a smooth head that jumps 0.3 rad at the seam and stays there: no wobble, but turned away
    settled = _head_turning(torch.linspace(0, 0.1, t) + 0.3 * (torch.arange(t) >= n_past), b, j, head)
    turn = float(Ro.excess_head_turn(settled[:, n_past : n_past + length], r_gt, head, neck, length, n_past))
    assert turn > 0.2
    # holding the last context frame's head (turning *less* than the truth) costs nothing: the term caps the turn,
    # it does not copy the truth's pose
    held = torch.linspace(0, 0.1, t)[n_past - 1]
    still = _head_turning(torch.full((t,), float(held)), b, j, head)[:, n_past : n_past + length]
    assert float(Ro.excess_head_turn(still, r_gt, head, neck, length, n_past)) == pytest.approx(0.0, abs=1e-6)


def test_excess_head_peak_counts_only_turning_farther_than_the_truth_ever_does():
    b, t, j, n_past, length, neck, head = 2, 30, 5, 10, 12, 3, 4
    r_gt = _head_turning(torch.linspace(0, 0.2, t), b, j, head)  # the truth turns steadily to its farthest at the end
    # a head that turns early to the truth's farthest and comes back: the frame-by-frame cap charges it, the peak
    # term does not
    early = torch.linspace(0, 0.2, t).clone()
    early[n_past : n_past + 4] = float(early[n_past + length - 1])
    gen = _head_turning(early, b, j, head)[:, n_past : n_past + length]
    assert float(Ro.excess_head_turn(gen, r_gt, head, neck, length, n_past)) > 0.01
    assert float(Ro.excess_head_peak(gen, r_gt, head, neck, length, n_past)) == pytest.approx(0.0, abs=1e-6)
    # turning 0.3 rad beyond the truth's farthest at any one frame is charged, about 2*sqrt(2)*sin(0.15)
    over = torch.linspace(0, 0.2, t).clone()
    over[n_past + 2] += 0.3
    gen = _head_turning(over, b, j, head)[:, n_past : n_past + length]
    peak = float(Ro.excess_head_peak(gen, r_gt, head, neck, length, n_past))
    assert 0.25 < peak < 0.45


def test_chain_rotation_error_sees_a_twist_the_global_rotation_of_the_child_hides():
    b, t, j, n_past, length = 2, 30, 3, 10, 8
    parents, chain = torch.tensor([-1, 0, 1]), torch.tensor([1, 2])
    r_gt = _head_turning(torch.zeros(t), b, j, 0)
    own = r_gt[:, n_past : n_past + length]
    assert float(Ro.chain_rotation_error(own, r_gt, parents, chain, length, n_past)) == pytest.approx(0.0, abs=1e-6)
    # joint 1 turns 0.4 rad in the world while joint 2 keeps its global rotation: 2 has twisted on 1, and 1 is off
    gen = own.clone()
    gen[:, :, 1] = _head_turning(torch.full((length,), 0.4), b, j, 1)[:, :, 1]
    err = float(Ro.chain_rotation_error(gen, r_gt, parents, chain, length, n_past))
    assert err > 0.05


def test_excess_foot_skate_is_eval_s_skate_beyond_the_truth_s_and_spares_lifted_feet():
    import numpy as np
    from rsmt_studio.motion import metrics as M

    n_past, length, feet = 10, 8, torch.tensor([1, 2])
    planted = torch.tensor([4.0, 4.0])
    gt = torch.zeros(3, n_past + length + 2, 3, 3)
    gt[..., 1] = 4.0  # both feet planted, still: the truth does not skate
    own = gt[:, n_past : n_past + length].clone()
    assert float(Ro.excess_foot_skate(own, gt, feet, planted, length, n_past)) == pytest.approx(0.0, abs=1e-3)
    sliding = own.clone()
    sliding[..., 0] += torch.arange(1, length + 1, dtype=torch.float32)[None, :, None] * 1.5  # 1.5 cm a frame
    sliding[:, :, 2, 1] += torch.linspace(0.0, 2.0, length)  # one foot rising, still under the 2.5 cm ceiling
    expected = M.foot_skate(sliding.numpy(), gt[:, n_past - 1].numpy(), np.array([1, 2]), planted.numpy())
    got = float(Ro.excess_foot_skate(sliding, gt, feet, planted, length, n_past))
    assert got == pytest.approx(expected, rel=1e-3) and got > 0.5
    lifted = sliding.clone()
    lifted[..., 1] += 10.0  # the same slide 10 cm up is a swing, not a skate
    assert float(Ro.excess_foot_skate(lifted, gt, feet, planted, length, n_past)) == pytest.approx(0.0, abs=1e-3)


def test_foot_height_error_is_eval_s_mean_lowest_foot_gap_either_way():
    import numpy as np
    from rsmt_studio.motion import metrics as M

    torch.manual_seed(4)
    n_past, length, feet = 10, 8, torch.tensor([1, 2])
    gt = torch.randn(3, n_past + length + 2, 4, 3)
    own = gt[:, n_past : n_past + length].clone()
    assert float(Ro.foot_height_error(own, gt, feet, length, n_past)) == pytest.approx(0.0, abs=1e-6)
    for lift in (1.5, -0.7):  # lifted or sunk feet count alike
        moved = own.clone()
        moved[..., 1] += lift
        gap = M.lowest_foot_cm(moved.numpy(), np.array([1, 2])) - M.lowest_foot_cm(own.numpy(), np.array([1, 2]))
        assert float(Ro.foot_height_error(moved, gt, feet, length, n_past)) == pytest.approx(abs(lift), rel=1e-5)
        assert np.allclose(gap, lift, atol=1e-5)
    one_up_one_down = own.clone()
    one_up_one_down[0, ..., 1] += 1.0
    one_up_one_down[1, ..., 1] -= 1.0  # rows of other step timings: only the batch's mean gap counts
    assert float(Ro.foot_height_error(one_up_one_down, gt, feet, length, n_past)) == pytest.approx(0.0, abs=1e-5)


def test_excess_head_landing_charges_a_head_that_misses_the_keyframe_only_at_the_last_frames():
    b, t, j, n_past, length, neck, head = 2, 30, 5, 10, 12, 3, 4
    r_gt = _head_turning(torch.linspace(0, 0.2, t), b, j, head)  # the truth turns steadily into the keyframe's head
    own = r_gt[:, n_past : n_past + length]
    assert float(Ro.excess_head_landing(own, r_gt, head, neck, length, n_past)) == pytest.approx(0.0, abs=1e-6)
    # a head that wanders 0.3 rad early and lands as the truth does: not charged
    wander = torch.linspace(0, 0.2, t).clone()
    wander[n_past + 2 : n_past + 5] += 0.3
    gen = _head_turning(wander, b, j, head)[:, n_past : n_past + length]
    assert float(Ro.excess_head_landing(gen, r_gt, head, neck, length, n_past)) == pytest.approx(0.0, abs=1e-6)
    # held back 0.3 rad over the last three frames: charged about 2*sqrt(2)*sin(0.15) beyond the truth's own distance
    short = torch.linspace(0, 0.2, t).clone()
    short[n_past + length - 3 : n_past + length] -= 0.3
    gen = _head_turning(short, b, j, head)[:, n_past : n_past + length]
    landing = float(Ro.excess_head_landing(gen, r_gt, head, neck, length, n_past))
    assert 0.35 < landing < 0.5
    # closer to the keyframe than the truth is: nothing to pay
    early_land = torch.linspace(0, 0.2, t).clone()
    early_land[n_past + length - 3 : n_past + length] = float(early_land[n_past + length])
    gen = _head_turning(early_land, b, j, head)[:, n_past : n_past + length]
    assert float(Ro.excess_head_landing(gen, r_gt, head, neck, length, n_past)) == pytest.approx(0.0, abs=1e-6)


def test_excess_head_departure_charges_only_a_fast_first_step_out_of_the_context():
    import math

    b, t, j, n_past, length, neck, head = 2, 30, 5, 10, 12, 3, 4
    r_gt = _head_turning(torch.linspace(0, 0.2, t), b, j, head)
    own = r_gt[:, n_past : n_past + length]
    assert float(Ro.excess_head_departure(own, r_gt, head, neck, length, n_past)) == pytest.approx(0.0, abs=1e-6)
    # a pop of 0.1 rad at the first generated frame that stays: one of the three steps is 0.1 rad too fast
    pop = torch.linspace(0, 0.2, t).clone()
    pop[n_past:] += 0.1
    gen = _head_turning(pop, b, j, head)[:, n_past : n_past + length]
    dep = float(Ro.excess_head_departure(gen, r_gt, head, neck, length, n_past))
    assert dep == pytest.approx(2 * math.sqrt(2) * math.sin(0.05) / 3, rel=0.1)
    # the same jump five frames in is not the departure's business
    late = torch.linspace(0, 0.2, t).clone()
    late[n_past + 5 :] += 0.1
    gen = _head_turning(late, b, j, head)[:, n_past : n_past + length]
    assert float(Ro.excess_head_departure(gen, r_gt, head, neck, length, n_past)) == pytest.approx(0.0, abs=1e-6)
