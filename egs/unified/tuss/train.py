"""Stage 2: train TUSS on prompt-list mixtures of every task, then the task specialist.

The unified model sees random prompt lists (first prompt from ``init_prob``, then the
``transition`` table, 2-4 sources) and is validated on the fixed lists of every task. The
specialist (the conf's ``baseline_task``) is the same network, trained only on that task's
prompt list, on the same clips, with the same batch size and for the same number of
optimiser steps, and validated on that task.

Writes ``exp_dir/{conf.yml,checkpoints/,best_k_models.json,best_model.pth}`` and the same
under ``exp_dir/specialist/``.
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

from torch.utils.data import ConcatDataset

from asteroid_lass.data.prompt_mixing import (
    TASKS,
    FixedPromptMixtureDataset,
    PromptBatchSampler,
    PromptMixtureDataset,
    collate_prompt_mixtures,
)
from asteroid_lass.errors import LASSInputError
from asteroid_lass.recipes.config import build_model, name_list, parse_recipe_args, run_script
from asteroid_lass.recipes.training import GroupBatchSampler, train, trained_steps

HERE = os.path.dirname(os.path.abspath(__file__))


def task_chain(prompts: Sequence[str]) -> Tuple[Dict[str, float], Dict[str, Dict[str, float]]]:
    """``init_prob`` and ``transition`` that always draw exactly ``prompts``, in order.

    Raises:
        LASSInputError: A prompt is followed by different prompts at different places (such
            a list is not a Markov chain).
    """
    transition: Dict[str, Dict[str, float]] = {}
    for current, following in zip(prompts[:-1], prompts[1:]):
        if transition.setdefault(current, {following: 1.0}) != {following: 1.0}:
            raise LASSInputError(
                f"baseline_task prompts {list(prompts)}: {current!r} is followed by different "
                "prompts; a specialist needs a list where each prompt has one successor."
            )
    # The last prompt needs no successor (lists are exactly len(prompts) long).
    return {prompts[0]: 1.0}, transition


def mixture_dataset(
    conf: dict, manifest: str, prompts: Optional[Sequence[str]] = None
) -> PromptMixtureDataset:
    """Training mixtures: every task (the conf's tables), or one prompt list."""
    data = conf["data"]
    if prompts is None:
        init_prob, transition = data["init_prob"], data["transition"]
        num_sources, weights = data["num_sources"], data["num_sources_weights"]
        no_repeat = name_list(data["no_repeat"])
    else:
        init_prob, transition = task_chain(prompts)
        num_sources, weights, no_repeat = [len(prompts)], [1.0], []
    return PromptMixtureDataset(
        manifest,
        sample_rate=data["sample_rate"],
        segment_seconds=data["segment_seconds"],
        init_prob=init_prob,
        transition=transition,
        num_sources=num_sources,
        num_sources_weights=weights,
        gain_ranges=data["gain_ranges"],
        no_repeat=no_repeat,
        min_active_db=data["min_active_db"],
        items_per_epoch=data["items_per_epoch"],
        seed=conf["training"]["seed"],
    )


def validation_set(lists_dir: str, tasks: List[str], batch_size: int):
    """The fixed validation lists of ``tasks``, batched task by task."""
    sets = [FixedPromptMixtureDataset(os.path.join(lists_dir, f"valid_{t}.csv")) for t in tasks]
    groups = [task for task, fixed in zip(tasks, sets) for _ in range(len(fixed))]
    return ConcatDataset(sets), GroupBatchSampler(groups, batch_size)


def fit(conf: dict, train_set, lists_dir: str, tasks, exp_dir: str, max_steps=None) -> str:
    """Train a freshly initialised model (seeded by the conf) with prompt batching."""
    batch_size = conf["training"]["batch_size"]
    model = build_model(conf)  # seeded by the conf: the same initial weights for both models
    valid_set, valid_batches = validation_set(lists_dir, tasks, batch_size)
    batches = PromptBatchSampler(
        train_set, batch_size, shuffle=True, drop_last=True, seed=conf["training"]["seed"]
    )
    return train(
        conf,
        model,
        train_set,
        valid_set,
        exp_dir,
        max_steps=max_steps,
        train_batch_sampler=batches,
        valid_batch_sampler=valid_batches,
        collate_fn=collate_prompt_mixtures,
    )


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "local", "conf.yml"),
        extra=[
            ("--train_manifest", dict(required=True)),
            ("--lists_dir", dict(required=True)),
            ("--exp_dir", dict(required=True)),
        ],
        argv=argv,
    )
    tasks = name_list(conf["data"]["tasks"])
    train_set = mixture_dataset(conf, args.train_manifest)
    print(fit(conf, train_set, args.lists_dir, tasks, args.exp_dir))
    task = conf["baseline"].get("baseline_task") or ""
    if not task:
        return
    if task not in TASKS:
        raise LASSInputError(f"baseline_task {task!r}: choose one of {sorted(TASKS)} or ''.")
    if task not in tasks:
        raise LASSInputError(f"baseline_task {task!r} must be one of the conf's tasks {tasks}.")
    specialist_set = mixture_dataset(conf, args.train_manifest, TASKS[task])
    steps = trained_steps(args.exp_dir)
    specialist_dir = os.path.join(args.exp_dir, "specialist")
    print(f"specialist for {task} ({'+'.join(TASKS[task])}), {steps} steps like the unified model")
    print(fit(conf, specialist_set, args.lists_dir, [task], specialist_dir, max_steps=steps))


if __name__ == "__main__":
    run_script(main)
