"""Stage 4: a publishable AudioSlots and its model card (licence from the conf's publish
group), with the AudioSlots-against-ConvTasNet table of stage 3.

The conf is the one training wrote to ``exp_dir/conf.yml``: what the model was trained with.
"""

import argparse
import os

from asteroid_lass.recipes.config import read_conf
from asteroid_lass.recipes.publishing import publish


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", required=True)
    args = parser.parse_args(argv)
    with open(os.path.join(args.exp_dir, "compare.md")) as compare:
        # The comparison's own title becomes a section of the card.
        extra = "#" + compare.read()
    model_path = publish(args.exp_dir, read_conf(os.path.join(args.exp_dir, "conf.yml")), extra)
    print(f"Model:       {model_path}")
    print(f"Model card:  {os.path.join(os.path.dirname(model_path), 'README.md')}")
    print(f"Comparison:  {os.path.join(args.exp_dir, 'compare.md')}")


if __name__ == "__main__":
    main()
