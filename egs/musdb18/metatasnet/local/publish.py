"""Stage 3: a publishable Meta-TasNet and its model card (licence from the conf's publish
group).

The conf is the one training wrote to ``exp_dir/conf.yml``: what the model was trained with.
"""

from asteroid_lass.recipes.publishing import publish_stage

if __name__ == "__main__":
    publish_stage(__doc__, results="compare.md")
