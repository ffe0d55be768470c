"""Code shared by the recipes in ``egs/<dataset>/<model>/``: configuration, training,
evaluation and publishing, for any separator of the package.

A recipe's scripts only say what is specific to it (its data); everything else is here, so
that no recipe imports another's scripts.
"""
