"""Stage 0 of run.sh: the songs and the list of training songs held out for validation.

Without ``--musdb_root``, writes the built-in music corpus (seeded synthetic songs with
MUSDB18's four stems, in MUSDB18-HQ's layout) to ``<data_dir>/music``, and holds out its last
``n_valid_songs`` training songs. With ``--musdb_root`` the songs are the user's and the
held-out songs are the 14 that the ``musdb`` package reserves for validation. Either way the
held-out names go to ``<data_dir>/valid_tracks.txt`` (one per line).

Every data setting comes from the recipe's conf (``--conf``).
"""

import os

from asteroid_lass.data.music_synth import make_music_corpus
from asteroid_lass.data.musdb import MUSDB18Dataset, musdb_validation_tracks
from asteroid_lass.errors import LASSInputError
from asteroid_lass.recipes.config import parse_recipe_args, run_script

HERE = os.path.dirname(os.path.abspath(__file__))


def prepare(conf: dict, data_dir: str, musdb_root: str = "") -> str:
    """Write the corpus (unless ``musdb_root``) and ``valid_tracks.txt``; returns the songs'
    root folder."""
    data = conf["data"]
    os.makedirs(data_dir, exist_ok=True)
    if musdb_root:
        if not os.path.isdir(musdb_root):
            raise LASSInputError(f"--musdb_root: folder not found: {musdb_root}")
        root, held_out = musdb_root, list(musdb_validation_tracks())
        if not held_out:
            raise LASSInputError(
                "the musdb package (pip install musdb) lists MUSDB18's validation songs."
            )
    else:
        root = os.path.join(data_dir, "music")
        n_train, n_valid = int(data["n_train_songs"]), int(data["n_valid_songs"])
        if not 0 < n_valid < n_train:
            raise LASSInputError(
                f"n_valid_songs must be at least 1 and fewer than n_train_songs ({n_train}), "
                f"got {n_valid}."
            )
        make_music_corpus(
            root,
            n_train_songs=n_train,
            n_test_songs=int(data["n_test_songs"]),
            seconds=float(data["song_seconds"]),
            sample_rate=int(data["sample_rate"]),
            seed=int(data["corpus_seed"]),
            stereo=not data["mono"],
            num_workers=max(int(data["num_workers"]), 1),
        )
        songs = MUSDB18Dataset(root, split="train", validation_tracks=[]).tracks
        held_out = [track.name for track in songs[-n_valid:]]
    with open(os.path.join(data_dir, "valid_tracks.txt"), "w") as out:
        out.write("".join(f"{name}\n" for name in held_out))
    return root


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "conf.yml"),
        extra=[("--data_dir", dict(required=True)), ("--musdb_root", dict(default=""))],
        argv=argv,
    )
    root = prepare(conf, args.data_dir, args.musdb_root)
    print(f"songs: {root}")


if __name__ == "__main__":
    run_script(main)
