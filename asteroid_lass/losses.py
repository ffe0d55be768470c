"""Every training objective of the package, for estimates and targets of any number of outputs.

Shapes follow the separation contract: estimates and targets are (batch, n_outputs, channels,
time). Three layers:

- *pair losses* compare one estimate with one reference, (..., time) -> (...): ``neg_snr``,
  ``neg_sisdr``, ``l1_wav``, ``neg_snr_capped``;
- *assignment* decides which estimate answers which reference: ``"fixed"`` (in order, for
  query, label and prompt models), ``"pit"`` (every permutation, Asteroid's
  ``PITLossWrapper``), ``"hungarian"`` (scipy's ``linear_sum_assignment``, for many outputs),
  or ``"prompt"`` (permutations only among outputs that share a prompt);
- *objectives* are what a System calls: ``objective(outputs, batch) -> {"loss": scalar, ...}``,
  built by name from the conf with :func:`build_objective`.
"""

import itertools
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from asteroid.losses import PITLossWrapper, singlesrc_neg_sisdr, singlesrc_neg_snr

from .audio import STFT

EPS = 1e-8
PairLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Objective = Callable[[Dict[str, torch.Tensor], Dict[str, Any]], Dict[str, torch.Tensor]]


# ----------------------------------------------------------------------------- pair losses
def _flat(estimate: torch.Tensor, target: torch.Tensor):
    shape = torch.broadcast_shapes(estimate.shape, target.shape)
    est = estimate.expand(shape).reshape(-1, shape[-1])
    ref = target.expand(shape).reshape(-1, shape[-1])
    return est, ref, shape[:-1]


def neg_snr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative plain-energy SNR in dB (AudioSep's metric): sign and scale matter."""
    est, ref, shape = _flat(estimate, target)
    return singlesrc_neg_snr(est, ref).reshape(shape)


def neg_sisdr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative scale-invariant SDR in dB; blind to the estimate's gain and sign."""
    est, ref, shape = _flat(estimate, target)
    return singlesrc_neg_sisdr(est, ref).reshape(shape)


def l1_wav(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """AudioSep's loss: mean absolute error on the waveform."""
    return (estimate - target).abs().mean(dim=-1)


def neg_snr_capped(
    estimate: torch.Tensor, target: torch.Tensor, snr_max: float = 30.0
) -> torch.Tensor:
    """Negative SNR with a soft cap at ``snr_max`` dB (TUSS's loss).

    ``-10 log10(|s|^2 / (|s - s_hat|^2 + tau |s|^2))`` with ``tau = 10^(-snr_max / 10)``: an
    estimate gains nothing beyond ``snr_max``, so well-separated examples stop dominating.
    For a silent reference this becomes ``10 log10(|s_hat|^2 + eps)``-like (it pushes the
    output towards silence); see :func:`prompt_snr_objective` for its weighting.
    """
    tau = 10.0 ** (-snr_max / 10.0)
    target_energy = target.square().sum(dim=-1)
    error = (target - estimate).square().sum(dim=-1)
    return 10 * torch.log10(error + tau * target_energy + EPS) - 10 * torch.log10(
        target_energy + EPS
    )


PAIR_LOSSES: Dict[str, PairLoss] = {
    "neg_snr": neg_snr,
    "neg_sisdr": neg_sisdr,
    "l1_wav": l1_wav,
    "neg_snr_capped": neg_snr_capped,
}


def get_pair_loss(name: str) -> PairLoss:
    """A pair loss by name; ``"a+b"`` sums two of them."""
    names = name.split("+")
    unknown = [n for n in names if n not in PAIR_LOSSES]
    if unknown:
        raise ValueError(f"Unknown loss {unknown[0]!r}; choose from {sorted(PAIR_LOSSES)}.")
    if len(names) == 1:
        return PAIR_LOSSES[name]
    losses = [PAIR_LOSSES[n] for n in names]
    return lambda estimate, target: sum(loss(estimate, target) for loss in losses)


# ----------------------------------------------------------------------------- assignment
def pairwise(pair_loss: PairLoss, estimates: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Loss of every (estimate, reference) pair, averaged over channels.

    Args:
        estimates: (batch, n_est, channels, time)
        targets: (batch, n_ref, channels, time)

    Returns:
        torch.Tensor: (batch, n_est, n_ref)
    """
    matrix = pair_loss(estimates[:, :, None], targets[:, None])
    return matrix.mean(dim=-1)


def hungarian_assignment(loss_matrix: torch.Tensor) -> torch.Tensor:
    """Best one-to-one assignment of estimates to references per example.

    Args:
        loss_matrix: (batch, n_est, n_ref) with n_est >= n_ref.

    Returns:
        torch.Tensor: (batch, n_ref) long, the estimate index answering each reference.
    """
    from scipy.optimize import linear_sum_assignment

    costs = loss_matrix.detach().float().cpu().numpy()
    rows = []
    for cost in costs:
        est_index, ref_index = linear_sum_assignment(cost)
        order = np.empty(cost.shape[1], dtype=np.int64)
        order[ref_index] = est_index
        rows.append(order)
    return torch.as_tensor(np.stack(rows), device=loss_matrix.device)


def grouped_assignment(loss_matrix: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Best assignment where an estimate may only answer a reference of its own group.

    Used for prompt models: outputs with the same prompt are interchangeable, outputs with
    different prompts are not. Each group is solved exactly (Hungarian).

    Args:
        loss_matrix: (batch, n, n), estimates by references.
        groups: (batch, n) group ids (e.g. prompt indices), the same for estimates and
            references.

    Returns:
        torch.Tensor: (batch, n) long, the estimate index answering each reference.
    """
    from scipy.optimize import linear_sum_assignment

    costs = loss_matrix.detach().float().cpu().numpy()
    group_ids = groups.detach().cpu().numpy()
    rows = []
    for cost, ids in zip(costs, group_ids):
        order = np.arange(cost.shape[1])
        for group in np.unique(ids):
            members = np.flatnonzero(ids == group)
            if len(members) > 1:
                est, ref = linear_sum_assignment(cost[np.ix_(members, members)])
                order[members[ref]] = members[est]
        rows.append(order)
    return torch.as_tensor(np.stack(rows), device=loss_matrix.device)


def reorder(estimates: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``estimates[b, order[b]]``: the estimates in the references' order."""
    index = order.reshape(*order.shape, *([1] * (estimates.ndim - 2)))
    return torch.gather(estimates, 1, index.expand(-1, -1, *estimates.shape[2:]))


def assigned_loss(
    pair_loss: PairLoss,
    estimates: torch.Tensor,
    targets: torch.Tensor,
    assignment: str = "fixed",
    groups: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Mean pair loss after assigning estimates to references.

    Args:
        pair_loss: See :data:`PAIR_LOSSES`.
        estimates: (batch, n_est, channels, time)
        targets: (batch, n_ref, channels, time)
        assignment: ``fixed``, ``pit``, ``hungarian`` or ``prompt`` (needs ``groups``).
        groups: (batch, n) prompt indices for ``prompt``.

    Returns:
        torch.Tensor: (batch,) the loss per example.
    """
    if assignment == "fixed":
        return pair_loss(estimates, targets).mean(dim=(1, 2))
    if assignment == "pit":
        # Asteroid's exhaustive search; its pairwise matrix has our (estimate, reference) layout.
        matrix = pairwise(pair_loss, estimates, targets)
        best, _ = PITLossWrapper.find_best_perm(matrix)
        return best
    matrix = pairwise(pair_loss, estimates, targets)
    if assignment == "hungarian":
        order = hungarian_assignment(matrix)
    elif assignment == "prompt":
        if groups is None:
            raise ValueError("assignment='prompt' needs the prompt of every output (groups).")
        order = grouped_assignment(matrix, groups)
    else:
        raise ValueError(
            f"Unknown assignment {assignment!r}; choose fixed, pit, hungarian or prompt."
        )
    return torch.gather(matrix, 1, order[:, None]).squeeze(1).mean(dim=-1)


def brute_force_min(loss_matrix: torch.Tensor, groups: Optional[Sequence[int]] = None) -> float:
    """Smallest mean loss over every permutation of one example (allowed within ``groups``).

    For checking assignment solvers on small cases.

    Args:
        loss_matrix: (n_est, n_ref)
        groups: Group id of each output; a permutation may only map within a group.
    """
    n_est, n_ref = loss_matrix.shape
    best = float("inf")
    for chosen in itertools.permutations(range(n_est), n_ref):
        if groups is not None and any(groups[e] != groups[r] for r, e in enumerate(chosen)):
            continue
        value = float(sum(loss_matrix[e, r] for r, e in enumerate(chosen)) / n_ref)
        best = min(best, value)
    return best


# ----------------------------------------------------------------------------- objectives
def waveform_objective(
    loss: str = "neg_snr", assignment: str = "fixed", sisdr_weight: float = 0.0
) -> Objective:
    """Objective on waveforms: a pair loss after an assignment.

    Args:
        loss: Pair loss name (see :data:`PAIR_LOSSES`); ``a+b`` sums two.
        assignment: ``fixed`` (query, label and prompt models in order), ``pit``,
            ``hungarian`` (blind models), or ``prompt``.
        sisdr_weight: Unused unless > 0: adds this times the negative SI-SDR of the assigned
            pairs.
    """
    pair_loss = get_pair_loss(loss)

    def objective(outputs, batch):
        estimates, targets = outputs["estimates"], batch["targets"]
        groups = batch.get("condition_ids")
        terms = {"loss": assigned_loss(pair_loss, estimates, targets, assignment, groups).mean()}
        if sisdr_weight > 0:
            sisdr = assigned_loss(neg_sisdr, estimates, targets, assignment, groups).mean()
            terms["neg_sisdr"] = sisdr
            terms["loss"] = terms["loss"] + sisdr_weight * sisdr
        return terms

    return objective


_OBJECTIVES: Dict[str, Callable[..., Objective]] = {"waveform": waveform_objective}


def register_objective(name: str, factory: Callable[..., Objective]) -> None:
    """Make ``build_objective({"name": name, **kwargs})`` call ``factory(**kwargs)``."""
    if name in _OBJECTIVES and _OBJECTIVES[name] is not factory:
        raise ValueError(f"An objective named {name!r} is already registered.")
    _OBJECTIVES[name] = factory


def build_objective(conf: Dict[str, Any]) -> Objective:
    """Build an objective from a recipe conf's ``objective`` group, e.g.
    ``{"objective": "waveform", "loss": "neg_snr", "assignment": "fixed"}``."""
    conf = dict(conf)
    name = conf.pop("objective", "waveform")
    if name not in _OBJECTIVES:
        raise ValueError(f"Unknown objective {name!r}; choose from {sorted(_OBJECTIVES)}.")
    return _OBJECTIVES[name](**conf)


# ----------------------------------------------------------------------------- set prediction
SPEC_LOSSES = ("mse", "l1")


def silence_padded_assignment(
    pair_costs: torch.Tensor, silence_costs: torch.Tensor, silence_weight: float = 1.0
):
    """Match K estimates to N <= K references, the K - N spare estimates to silence.

    Solved exactly as one square assignment: the N reference columns are completed with
    K - N "silence" columns where estimate k costs ``silence_weight * silence_costs[k]``. So
    which estimates are left over is chosen jointly with the matching (matching first and
    silencing the remainder afterwards can cost more).

    Args:
        pair_costs: (batch, K, N) cost of estimate k answering reference n.
        silence_costs: (batch, K) cost of estimate k being silent.
        silence_weight: Weight of the spare estimates' silence costs.

    Returns:
        tuple: ``loss`` (batch,), the total cost divided by N; ``order`` (batch, K) long,
        the estimate answering each reference in its first N entries, then the spare
        estimates.
    """
    batch, n_est, n_ref = pair_costs.shape
    if n_ref > n_est:
        raise ValueError(
            f"{n_ref} references but only {n_est} estimates: a set-prediction model needs at "
            "least as many outputs (slots) as sources."
        )
    spare = (silence_weight * silence_costs)[:, :, None].expand(-1, -1, n_est - n_ref)
    matrix = torch.cat((pair_costs, spare), dim=2)
    order = hungarian_assignment(matrix)
    loss = torch.gather(matrix, 1, order[:, None]).squeeze(1).sum(dim=-1) / n_ref
    return loss, order


def slots_objective(
    spec_loss: str = "mse",
    silence_weight: float = 1.0,
    sisdr_weight: float = 0.0,
    n_fft: Optional[int] = None,
    hop_length: Optional[int] = None,
) -> Objective:
    """Set-prediction objective for blind models (AudioSlots' loss): magnitude-spectrogram
    reconstruction after a Hungarian matching of outputs to references.

    ``spec_loss="mse"`` by default. Early in training a decoder cannot yet place energy in
    time and frequency; the squared error then pulls each output to the references' *mean*
    magnitude, while the absolute error pulls it to their per-bin *median*, which is zero
    for sparse spectrograms (tones, speech pauses): with ``l1`` a tiny AudioSlots trained on
    tones silenced every slot, with ``mse`` it kept one and silenced the spare one. The
    squared error also fits the paper's reported blurry high frequencies (regression to the
    mean). ``l1`` remains available. Costs are divided by the mixture's mean squared
    magnitude (``mse``) or mean magnitude (``l1``): the loss does not depend on the example's
    level and an output equal to the mixture, or silent, costs about 1.
    Spare outputs (more outputs than references) are matched to silence: their cost is the
    same loss against a zero spectrogram, i.e. their magnitude's energy (``mse``) or L1 norm.

    Works for any blind model. Magnitudes are taken from ``outputs["magnitudes"]`` (batch,
    K, channels, freq, frames) when present, else computed from ``outputs["estimates"]``.
    The STFT of the references is ``outputs["stft"]`` (an :class:`asteroid_lass.models.layers.
    STFT`, which AudioSlots returns) or one built from ``n_fft`` and ``hop_length``.

    Args:
        spec_loss: ``mse`` or ``l1`` on magnitudes.
        silence_weight: Weight of the spare outputs' silence cost.
        sisdr_weight: If > 0, adds this times the negative SI-SDR of the waveforms of the
            matched pairs (same matching as the spectrogram term, so both terms train the
            same output towards the same reference).
        n_fft: STFT size when the outputs do not carry their STFT.
        hop_length: STFT hop when the outputs do not carry their STFT (default n_fft // 4).

    Returns:
        An objective giving ``loss``, ``spec_loss``, ``silence`` (mean silence cost of the
        spare outputs, 0 without any) and, if used, ``neg_sisdr``.
    """
    if spec_loss not in SPEC_LOSSES:
        raise ValueError(f"spec_loss must be one of {SPEC_LOSSES}, got {spec_loss!r}.")
    power = 1 if spec_loss == "l1" else 2
    own_stft = None
    if n_fft is not None:

        own_stft = STFT(n_fft, hop_length if hop_length is not None else n_fft // 4)

    def objective(outputs, batch):
        estimates, targets, mixture = outputs["estimates"], batch["targets"], batch["mixture"]
        stft = outputs.get("stft", own_stft)
        if stft is None:
            raise ValueError(
                "slots objective: the outputs carry no 'stft'; build the objective with "
                "n_fft=... (and hop_length=...) matching the model's STFT."
            )
        stft = stft.to(targets.device)
        magnitudes = outputs.get("magnitudes")
        if magnitudes is None:
            magnitudes = stft.magnitude(estimates)
        references = stft.magnitude(targets)
        if magnitudes.shape[-2:] != references.shape[-2:]:
            raise ValueError(
                f"slots objective: predicted magnitudes have (freq, frames) "
                f"{tuple(magnitudes.shape[-2:])} but the references' STFT gives "
                f"{tuple(references.shape[-2:])}; use the model's STFT settings."
            )
        mixture_magnitude = outputs.get("mixture_magnitude")
        if mixture_magnitude is None:
            mixture_magnitude = stft.magnitude(mixture)
        norm = mixture_magnitude.detach().pow(power).mean(dim=(1, 2, 3)).clamp_min(EPS)
        error = (magnitudes[:, :, None] - references[:, None]).abs().pow(power)
        pair_costs = error.mean(dim=(3, 4, 5)) / norm[:, None, None]
        silence_costs = magnitudes.pow(power).mean(dim=(2, 3, 4)) / norm[:, None]
        loss, order = silence_padded_assignment(pair_costs, silence_costs, silence_weight)
        n_ref = targets.shape[1]
        spare = torch.gather(silence_costs, 1, order[:, n_ref:])
        terms = {
            "spec_loss": loss.mean(),
            "silence": spare.mean() if spare.numel() else loss.new_zeros(()),
        }
        terms["loss"] = terms["spec_loss"]
        if sisdr_weight > 0:
            matched = reorder(estimates, order[:, :n_ref])
            terms["neg_sisdr"] = assigned_loss(neg_sisdr, matched, targets, "fixed").mean()
            terms["loss"] = terms["loss"] + sisdr_weight * terms["neg_sisdr"]
        return terms

    return objective


register_objective("slots", slots_objective)

__all__: List[str] = [
    "PAIR_LOSSES",
    "assigned_loss",
    "brute_force_min",
    "build_objective",
    "get_pair_loss",
    "grouped_assignment",
    "hungarian_assignment",
    "neg_sisdr",
    "neg_snr",
    "neg_snr_capped",
    "pairwise",
    "register_objective",
    "reorder",
    "silence_padded_assignment",
    "slots_objective",
    "waveform_objective",
]


# ----------------------------------------------------------------------------- Meta-TasNet
_METATASNET_KEYS = (
    "stage_estimates",
    "stage_mixtures",
    "stage_reconstructions",
    "stage_references",
    "encode_stage",
)


def metatasnet_objective(
    reconstruction_weight: float = 0.05,
    similarity_weight: float = 2.0,
    dissimilarity_weight: float = 3.0,
    silence_threshold: float = 0.0,
) -> Objective:
    """Meta-TasNet's training objective (the official ``calculate_loss``), on every stage.

    Needs the outputs of :meth:`asteroid_lass.models.MetaTasNet.training_outputs`. Per stage,
    with the references resampled and scaled exactly as the mixture was:

    - SI-SNR of every output against its reference, averaged over the examples whose
      reference is not silent, summed over outputs (the loss is its negative);
    - ``- reconstruction_weight x`` SI-SNR of the decoded, unmasked mixture latent against the
      stage's input mixture;
    - ``+ dissimilarity_weight x`` the cosine similarity, per latent frame, of the absolute
      encoder latents of two different labels' references in the same example (all pairs
      of outputs with different labels, both non-silent), averaged over pairs, then frames;
    - ``- similarity_weight x`` the cosine similarity, per frame, of the encoder latents of
      the same label's references in neighbouring examples of the batch (example ``b`` and
      ``b - 1``, cyclically; both non-silent), averaged likewise.

    The latent terms use the encoder on the *references* only, as the official code does;
    they shape the encoder. Stereo channels are separate items; the similarity pairs a
    channel with the same channel of the neighbouring example. The SI-SNR is the package's
    :func:`neg_sisdr` (Asteroid's, zero-mean); the official one does not remove the mean.

    Args:
        reconstruction_weight: Weight of the mixture reconstruction term (official 0.05).
        similarity_weight: Weight of the same-label latent similarity (official 2.0).
        dissimilarity_weight: Weight of the different-label latent similarity (official 3.0).
        silence_threshold: A reference whose peak is at most this is silent and excluded
            (official: exactly zero).

    Returns:
        An objective giving ``loss`` and, averaged over stages, ``sisnr`` (per output, dB),
        ``reconstruction_sisnr``, ``similarity`` and ``dissimilarity``, plus
        ``sisnr_stage<i>``.
    """
    weights = dict(
        reconstruction_weight=reconstruction_weight,
        similarity_weight=similarity_weight,
        dissimilarity_weight=dissimilarity_weight,
    )
    for name, value in weights.items():
        if float(value) < 0:
            raise ValueError(f"{name} must be >= 0, got {value}.")
    use_latents = similarity_weight > 0 or dissimilarity_weight > 0

    def objective(outputs, batch):
        missing = [key for key in _METATASNET_KEYS if key not in outputs]
        if missing:
            raise ValueError(
                f"The metatasnet objective needs MetaTasNet.training_outputs; missing {missing}."
            )
        targets, ids = batch["targets"], batch["condition_ids"]
        active = targets.abs().amax(dim=-1) > silence_threshold  # (batch, n, channels)
        same_label = ids[:, :, None] == ids[:, None, :]
        pair_a, pair_b = torch.triu_indices(ids.shape[1], ids.shape[1], offset=1, device=ids.device)
        pair_valid = (active[:, pair_a] & active[:, pair_b]) & ~same_label[:, pair_a, pair_b, None]
        neighbour_valid = (active & active.roll(1, dims=0)) & (ids == ids.roll(1, dims=0))[
            ..., None
        ]

        loss, logs = 0.0, {k: 0.0 for k in ("sisnr", "reconstruction_sisnr", "similarity")}
        logs["dissimilarity"] = 0.0
        references = outputs["stage_references"](targets)
        stages = zip(
            outputs["stage_estimates"],
            references,
            outputs["stage_mixtures"],
            outputs["stage_reconstructions"],
        )
        n_stages = len(references)
        for index, (estimate, reference, mixture, reconstruction) in enumerate(stages):
            sisnr = torch.where(active, -neg_sisdr(estimate, reference), 0.0)
            per_output = sisnr.sum(dim=(0, 2)) / active.sum(dim=(0, 2)).clamp_min(1)
            stage_loss = -per_output.sum()
            logs[f"sisnr_stage{index}"] = per_output.mean()
            logs["sisnr"] = logs["sisnr"] + per_output.mean() / n_stages
            if reconstruction_weight > 0:
                rec = -neg_sisdr(reconstruction, mixture).mean()
                stage_loss = stage_loss - reconstruction_weight * rec
                logs["reconstruction_sisnr"] = logs["reconstruction_sisnr"] + rec / n_stages
            if use_latents:
                flat = reference.reshape(-1, 1, reference.shape[-1])
                latents = outputs["encode_stage"](index, flat)
                latents = latents.view(*reference.shape[:3], *latents.shape[1:])
                if dissimilarity_weight > 0 and len(pair_a):
                    cos = torch.nn.functional.cosine_similarity(
                        latents[:, pair_a].abs(), latents[:, pair_b].abs(), dim=3
                    )
                    dis = _masked_frame_mean(cos, pair_valid)
                    stage_loss = stage_loss + dissimilarity_weight * dis
                    logs["dissimilarity"] = logs["dissimilarity"] + dis / n_stages
                if similarity_weight > 0:
                    cos = torch.nn.functional.cosine_similarity(
                        latents, latents.roll(1, dims=0), dim=3
                    )
                    sim = _masked_frame_mean(cos, neighbour_valid)
                    stage_loss = stage_loss - similarity_weight * sim
                    logs["similarity"] = logs["similarity"] + sim / n_stages
            loss = loss + stage_loss
        terms = {"loss": loss}
        terms.update({k: torch.as_tensor(v, device=targets.device) for k, v in logs.items()})
        return terms

    return objective


# ----------------------------------------------------------------------------- TUSS
def silent_reference_loss(
    estimate: torch.Tensor, mixture_energy: torch.Tensor, snr_max: float = 30.0
) -> torch.Tensor:
    """TUSS's loss for an output whose reference is silent: the estimate's energy in dB,
    floored at ``snr_max`` dB below the mixture's energy.

    ``10 log10(|s_hat|^2 + tau |x|^2)`` with ``tau = 10^(-snr_max / 10)``: it pushes the output
    towards silence and stops once the output is ``snr_max`` dB quieter than the mixture.

    Args:
        estimate: (..., time)
        mixture_energy: ``|x|^2``, broadcastable to ``estimate.shape[:-1]``.
    """
    tau = 10.0 ** (-snr_max / 10.0)
    return 10 * torch.log10(estimate.square().sum(dim=-1) + tau * mixture_energy + EPS)


def tuss_objective(
    snr_max: float = 30.0, silent_weight: float = 0.1, assignment: str = "prompt"
) -> Objective:
    """TUSS's training objective: capped SNR per output, silent references down-weighted,
    permutations solved only among outputs that share a prompt.

    An output with an active reference costs :func:`neg_snr_capped`; one whose reference is
    exactly zero costs ``silent_weight`` times :func:`silent_reference_loss`, floored relative
    to ``batch["mixture"]``. (The released code floors it relative to the sum of the references
    *of the same prompt*, which is zero when that prompt has a single, silent reference; the
    mixture is the floor the loss is meant to have.) Losses are averaged over channels, outputs
    and examples.

    Args:
        snr_max: SNR cap in dB.
        silent_weight: Weight of the silent-reference term (high values destabilise training).
        assignment: ``prompt`` (needs ``batch["condition_ids"]``) or ``fixed``.
    """
    if assignment not in ("prompt", "fixed"):
        raise ValueError(f"assignment must be 'prompt' or 'fixed', got {assignment!r}.")

    def objective(outputs, batch):
        estimates, targets = outputs["estimates"], batch["targets"]
        groups = batch.get("condition_ids")
        if assignment == "prompt" and groups is None:
            raise ValueError("The tuss objective needs batch['condition_ids'] (the prompts).")
        mixture_energy = batch["mixture"].square().sum(dim=-1)  # (batch, channels)

        def pair_loss(estimate, target):
            loss_shape = torch.broadcast_shapes(estimate.shape, target.shape)[:-1]
            # (batch, 1, ..., channels) against the pair losses' (batch, ..., channels).
            energy = mixture_energy.view(
                mixture_energy.shape[0], *([1] * (len(loss_shape) - 2)), -1
            )
            active = neg_snr_capped(estimate, target, snr_max)
            silent = silent_weight * silent_reference_loss(estimate, energy, snr_max)
            is_silent = target.square().sum(dim=-1) == 0
            return torch.where(is_silent, silent, active)

        loss = assigned_loss(pair_loss, estimates, targets, assignment, groups).mean()
        return {"loss": loss}

    return objective


def _masked_frame_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Sum of ``values`` (..., frames) over valid items, divided by their count, averaged over
    frames (the official normalisation)."""
    valid = valid[..., None].to(values.dtype)
    per_frame = (values * valid).flatten(0, -2).sum(dim=0) / valid.sum().clamp_min(EPS)
    return per_frame.mean()


register_objective("metatasnet", metatasnet_objective)
__all__ += ["metatasnet_objective"]


register_objective("tuss", tuss_objective)
__all__ += ["silent_reference_loss", "tuss_objective"]
