"""Data: manifests, query-conditioned mixture datasets and the built-in synthetic corpus."""

from .datasets import FixedMixtureDataset, QueryMixtureDataset, write_fixed_mixtures
from .manifest import ManifestError, load_manifest, write_manifest
from .mixing import mix

__all__ = [
    "FixedMixtureDataset",
    "QueryMixtureDataset",
    "write_fixed_mixtures",
    "ManifestError",
    "load_manifest",
    "write_manifest",
    "mix",
]
