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
        # Asteroid's wrapper over every permutation; its pairwise matrix is ours transposed.
        def loss_func(est, ref):
            return pairwise(pair_loss, est, ref).transpose(1, 2)

        wrapper = PITLossWrapper(loss_func, pit_from="pw_mtx")
        return wrapper(estimates, targets, return_est=False, reduce_kwargs=None)
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
    """Build an objective from the conf's ``loss`` group, e.g.
    ``{"name": "waveform", "loss": "neg_snr", "assignment": "fixed"}``."""
    conf = dict(conf)
    name = conf.pop("name", "waveform")
    if name not in _OBJECTIVES:
        raise ValueError(f"Unknown objective {name!r}; choose from {sorted(_OBJECTIVES)}.")
    return _OBJECTIVES[name](**conf)


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
    "waveform_objective",
]


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


register_objective("tuss", tuss_objective)
__all__ += ["silent_reference_loss", "tuss_objective"]
