"""Stage 4: a publishable AudioSlots and its model card (licence from the conf's publish
group), with the AudioSlots-against-ConvTasNet table of stage 3.

The conf is the one training wrote to ``exp_dir/conf.yml``: what the model was trained with.
"""

from asteroid_lass.recipes.publishing import publish_stage

if __name__ == "__main__":
    publish_stage(
        __doc__,
        results="compare.md",
        card_section="compare.md",
        section_heading="#",  # the comparison's own title becomes a section of the card
    )
