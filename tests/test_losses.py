"""Training objectives and metrics against independent truths: brute force over permutations,
closed-form SNR values, exact oracle masks."""

import itertools

import numpy as np
import pytest
import torch

from asteroid_lass.losses import (
    assigned_loss,
    brute_force_min,
    build_objective,
    grouped_assignment,
    hungarian_assignment,
    neg_sisdr,
    neg_snr,
    neg_snr_capped,
    pairwise,
)
from asteroid_lass.metrics import energy_sdr, ideal_ratio_mask, match_to_references, score


@pytest.mark.parametrize("n_est, n_ref", [(2, 2), (3, 3), (4, 4), (4, 2), (3, 1)])
def test_hungarian_equals_brute_force(n_est, n_ref):
    generator = torch.Generator().manual_seed(n_est * 10 + n_ref)
    matrices = torch.rand(20, n_est, n_ref, generator=generator)
    order = hungarian_assignment(matrices)
    for matrix, chosen in zip(matrices, order):
        assert len(set(chosen.tolist())) == n_ref
        value = float(matrix[chosen, torch.arange(n_ref)].mean())
        assert value == pytest.approx(brute_force_min(matrix), abs=1e-6)


def test_grouped_assignment_permutes_only_within_a_prompt():
    generator = torch.Generator().manual_seed(1)
    groups = torch.tensor([[0, 1, 0, 2], [3, 3, 3, 1]])
    matrices = torch.rand(2, 4, 4, generator=generator)
    order = grouped_assignment(matrices, groups)
    for matrix, chosen, ids in zip(matrices, order, groups.tolist()):
        assert all(ids[e] == ids[r] for r, e in enumerate(chosen.tolist()))
        value = float(matrix[chosen, torch.arange(4)].mean())
        assert value == pytest.approx(brute_force_min(matrix, groups=ids), abs=1e-6)
        assert value >= brute_force_min(matrix) - 1e-6  # never better than unconstrained


def test_pit_and_hungarian_agree_and_fixed_does_not_permute():
    torch.manual_seed(0)
    targets = torch.randn(3, 3, 1, 400)
    estimates = targets[:, [2, 0, 1]] + 0.01 * torch.randn(3, 3, 1, 400)
    pit = assigned_loss(neg_sisdr, estimates, targets, "pit")
    hungarian = assigned_loss(neg_sisdr, estimates, targets, "hungarian")
    fixed = assigned_loss(neg_sisdr, estimates, targets, "fixed")
    torch.testing.assert_close(pit, hungarian, rtol=1e-5, atol=1e-4)
    assert (hungarian < -30).all() and (fixed > 0).all()  # ~40 dB when matched, noise if not


def test_prompt_assignment_ignores_swaps_of_identical_prompts_only():
    torch.manual_seed(0)
    targets = torch.randn(1, 3, 1, 400)
    swapped = targets[:, [2, 1, 0]]
    same = torch.tensor([[5, 1, 5]])  # outputs 0 and 2 share a prompt
    different = torch.tensor([[5, 1, 6]])
    matched = assigned_loss(neg_snr, swapped, targets, "prompt", same)
    unmatched = assigned_loss(neg_snr, swapped, targets, "prompt", different)
    # Unmatched, two of the three outputs are wrong (about +3 dB each) and pull the mean up.
    assert matched.item() < -100 and unmatched.item() > -60


def test_snr_losses_match_closed_forms():
    target = torch.randn(1, 1000, generator=torch.Generator().manual_seed(0))
    target = target - target.mean()  # Asteroid's SNR is computed on zero-mean signals
    estimate = 0.9 * target  # error energy 1 % of the target's: SNR 20 dB
    assert neg_snr(estimate, target).item() == pytest.approx(-20.0, abs=1e-3)
    assert neg_sisdr(-estimate, target).item() < -100  # SI-SDR ignores gain and sign
    # The soft cap: SNR can never exceed snr_max, however good the estimate.
    assert neg_snr_capped(target, target, snr_max=30.0).item() == pytest.approx(-30.0, abs=1e-3)
    expected = -10 * np.log10(1 / (0.01 + 1e-3))
    assert neg_snr_capped(estimate, target, snr_max=30.0).item() == pytest.approx(
        expected, abs=1e-3
    )


def test_pairwise_matrix_orientation():
    generator = torch.Generator().manual_seed(0)
    targets = torch.randn(1, 2, 1, 100, generator=generator)
    estimates = targets[:, [1, 0]]
    matrix = pairwise(neg_snr, estimates, targets)[0]
    assert matrix[0, 1] < -90 and matrix[1, 0] < -90  # estimate 0 answers reference 1
    assert matrix[0, 0] > -10


def test_waveform_objective_with_sisdr_term():
    torch.manual_seed(0)
    batch = {"targets": torch.randn(2, 2, 1, 300)}
    outputs = {"estimates": batch["targets"] * 0.5}
    terms = build_objective(dict(objective="waveform", loss="l1_wav", sisdr_weight=1.0))(
        outputs, batch
    )
    expected_l1 = (0.5 * batch["targets"]).abs().mean()
    assert terms["neg_sisdr"].item() < -90
    assert terms["loss"].item() == pytest.approx(expected_l1.item() + terms["neg_sisdr"].item())
    with pytest.raises(ValueError, match="Unknown objective"):
        build_objective(dict(objective="nope"))


def test_energy_sdr_and_improvements():
    rng = np.random.default_rng(0)
    target = rng.standard_normal(8000)
    noise = rng.standard_normal(8000)
    assert energy_sdr(target, target + 0.1 * noise) == pytest.approx(
        10 * np.log10(np.sum(target**2) / np.sum((0.1 * noise) ** 2))
    )
    mixture = target + noise
    row = score(mixture, target, target + 0.1 * noise, 8000)
    for name in ("si_sdr", "sdr", "energy_sdr"):
        assert row[f"{name}_imp"] == pytest.approx(row[name] - row[f"input_{name}"])
    assert row["input_energy_sdr"] == pytest.approx(energy_sdr(target, mixture))


def test_oracle_mask_is_exact_for_sources_in_disjoint_bands():
    rate, n = 8000, 8000
    t = np.arange(n) / rate
    low = torch.tensor(np.sin(2 * np.pi * 250 * t), dtype=torch.float32)[None]
    high = torch.tensor(0.5 * np.sin(2 * np.pi * 3000 * t), dtype=torch.float32)[None]
    estimates = ideal_ratio_mask(low + high, torch.stack([low, high]), n_fft=512, hop_length=128)
    for estimate, reference in zip(estimates, (low, high)):
        assert energy_sdr(reference.numpy(), estimate.numpy()) > 40


def test_blind_outputs_are_matched_to_references():
    torch.manual_seed(0)
    targets = torch.randn(2, 2, 1, 200)
    estimates = torch.cat([targets[:, [1, 0]], torch.zeros(2, 1, 1, 200)], dim=1)  # one extra
    for perm in itertools.permutations(range(3)):
        matched = match_to_references(estimates[:, list(perm)], targets)
        torch.testing.assert_close(matched, targets)
