"""Stage 4: a publishable model and its model card (licence from the conf's publish group),
with the per-task test table of stage 3.

The conf is the one training wrote to ``exp_dir/conf.yml``: what the model was trained with.
"""

import os

from asteroid_lass.recipes.publishing import publish_stage

if __name__ == "__main__":
    publish_stage(
        __doc__,
        card_section=os.path.join("eval", "per_task.md"),
        section_heading=(
            "## Test metrics per task (dB, mean over outputs; prompts in the task's order)\n\n"
        ),
    )
