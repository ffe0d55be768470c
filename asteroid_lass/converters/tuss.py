"""Convert a released TUSS checkpoint (``model.pth`` + ``hparams.yaml``) into a ``TUSS`` model file.

The released ``model.pth`` is a flat ``{name: tensor}`` dict saved from the training module;
the network's tensors are under ``model.separator.``. Released name -> ``TUSS`` name:

- ``band_split_module.band_split_module.{b}.{0,1}`` -> ``encoder.bands.{b}.{norm,proj}``
- ``band_split_module.bandwise_decoding_module.{b}.{0,1,3,5}`` ->
  ``decoder.bands.{b}.{norm,fc1,fc2,fc3}``
- ``cross_prompt_module.{k}`` / ``cond_tse_module.{k}`` -> ``cross_prompt.{k}`` /
  ``extraction.{k}``, and in each block ``freq_path`` / ``frame_path`` -> ``band_path`` /
  ``time_path``;
- in each path, the feed-forward layer *before* attention is index 1 and the one *after* it
  index 0: ``ffn.1`` / ``ffn_norm.1.gamma`` -> ``ffn_before`` / ``ffn_before_norm.weight``,
  ``ffn.0`` / ``ffn_norm.0.gamma`` -> ``ffn_after`` / ``ffn_after_norm.weight``, with
  ``conv1d`` / ``deconv1d`` -> ``conv`` / ``deconv``;
- ``attn_norm.gamma`` -> ``attn_norm.weight``, ``attn.aggregate_heads.0`` -> ``attn.out``,
  ``attn.qkv`` unchanged; ``attn.rope.freqs`` (not trained) is checked against ``TUSS``'s
  rotary frequencies, not copied;
- ``prompts.{name}`` (dim, 1, 1) -> row ``name`` of ``prompt_embeddings`` (n_prompts, dim);
  ``sos_token`` (dim, 1, 1) -> ``start_token`` (dim,).

Tensor layouts are the same on both sides: the encoder reads each band bin by bin with real
and imaginary parts adjacent, the decoder writes every real part, then every imaginary part.
"""

from typing import Dict, List, Optional, Tuple

import torch

from ..models.base import save_model_file
from . import load_weights_only, raise_if_mismatched
from ..models.tuss import PRESETS, TUSS

SEPARATOR_PREFIX = "model.separator."

_PATHS = {"band_path": "freq_path", "time_path": "frame_path"}
_STAGES = {"cross_prompt": "cross_prompt_module", "extraction": "cond_tse_module"}
_PATH_PARTS = {
    "ffn_before_norm.weight": "ffn_norm.1.gamma",
    "ffn_after_norm.weight": "ffn_norm.0.gamma",
    "attn_norm.weight": "attn_norm.gamma",
    "attn.qkv.weight": "attn.qkv.weight",
    "attn.out.weight": "attn.aggregate_heads.0.weight",
}
_FFN = {"ffn_before": "ffn.1", "ffn_after": "ffn.0"}
_FFN_CONV = {"conv": "conv1d", "deconv": "deconv1d"}
_DECODER_LAYERS = {"norm": "0", "fc1": "1", "fc2": "3", "fc3": "5"}
_ENCODER_LAYERS = {"norm": "0", "proj": "1"}

# What a released tensor becomes: ("copy", tuss_key), ("prompt", row), ("start", None) or
# ("rope", attention module name).
Target = Tuple[str, object]


def released_name(tuss_key: str) -> str:
    """The released checkpoint's name (without ``model.separator.``) of a ``TUSS`` parameter
    other than ``prompt_embeddings`` and ``start_token``.

    Raises:
        KeyError: ``tuss_key`` is not a ``TUSS`` network tensor.
    """
    parts = tuss_key.split(".")
    if parts[0] in ("encoder", "decoder") and parts[1] == "bands" and len(parts) == 5:
        layers = _ENCODER_LAYERS if parts[0] == "encoder" else _DECODER_LAYERS
        module = "band_split_module" if parts[0] == "encoder" else "bandwise_decoding_module"
        if parts[3] in layers:
            return f"band_split_module.{module}.{parts[2]}.{layers[parts[3]]}.{parts[4]}"
    if parts[0] in _STAGES and len(parts) >= 5 and parts[2] in _PATHS:
        head = f"{_STAGES[parts[0]]}.{parts[1]}.{_PATHS[parts[2]]}"
        rest = ".".join(parts[3:])
        if rest in _PATH_PARTS:
            return f"{head}.{_PATH_PARTS[rest]}"
        if len(parts) == 6 and parts[3] in _FFN and parts[4] in _FFN_CONV:
            return f"{head}.{_FFN[parts[3]]}.{_FFN_CONV[parts[4]]}.{parts[5]}"
    raise KeyError(tuss_key)


def released_layout(model: TUSS) -> Dict[str, Target]:
    """Every tensor the released checkpoint of ``model``'s configuration holds (names
    without ``model.separator.``), and what becomes of it."""
    layout: Dict[str, Target] = {}
    for key in model.state_dict():
        if key == "prompt_embeddings":
            for row, name in enumerate(model.vocabulary):
                layout[f"prompts.{name}"] = ("prompt", row)
        elif key == "start_token":
            layout["sos_token"] = ("start", None)
        else:
            layout[released_name(key)] = ("copy", key)
    for name, module in model.named_modules():
        if name.endswith(".attn") and name.split(".")[0] in _STAGES:
            layout[released_name(name + ".qkv.weight").replace("qkv.weight", "rope.freqs")] = (
                "rope",
                name,
            )
    return layout


def map_released_state_dict(
    separator_state: Dict[str, torch.Tensor], model: TUSS
) -> Dict[str, torch.Tensor]:
    """Rename and reshape released tensors into a complete state dict for ``model``.

    Args:
        separator_state: The released tensors, names without ``model.separator.``.
        model: A ``TUSS`` of the checkpoint's configuration.

    Returns:
        dict: ``model``'s state dict, filled from the checkpoint.

    Raises:
        ValueError: Listing every unexpected, missing or misshapen tensor (and any rotary
            frequencies that differ from ``TUSS``'s) at once.
    """
    layout = released_layout(model)
    expected = model.state_dict()
    modules = dict(model.named_modules())
    mapped = {key: value.clone() for key, value in expected.items()}
    unexpected = sorted(SEPARATOR_PREFIX + key for key in separator_state if key not in layout)
    missing = sorted(SEPARATOR_PREFIX + key for key in layout if key not in separator_state)
    mismatched: List[str] = []
    for key, (kind, where) in layout.items():
        if key not in separator_state:
            continue
        tensor = separator_state[key]
        if kind == "copy":
            shape = tuple(expected[where].shape)
        elif kind == "rope":
            shape = tuple(modules[where].rope.inv_freq.shape)
        else:
            shape = (model.emb_dim, 1, 1)
        if tuple(tensor.shape) != shape:
            mismatched.append(f"{SEPARATOR_PREFIX}{key}: {tuple(tensor.shape)}, expected {shape}")
            continue
        if kind == "copy":
            mapped[where] = tensor.to(expected[where].dtype)
        elif kind == "prompt":
            mapped["prompt_embeddings"][where] = tensor.reshape(-1)
        elif kind == "start":
            mapped["start_token"] = tensor.reshape(-1).to(expected["start_token"].dtype)
        elif not torch.allclose(tensor.float(), modules[where].rope.inv_freq, rtol=1e-5):
            mismatched.append(
                f"{SEPARATOR_PREFIX}{key}: rotary frequencies differ from TUSS's "
                f"(base 10000 over {2 * shape[0]} features)"
            )
    raise_if_mismatched(
        "The checkpoint does not match the TUSS configuration", unexpected, missing, mismatched
    )
    return mapped


def load_released_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The separator tensors of a released ``model.pth`` (names without the prefix), read
    with ``weights_only=True``. A Lightning checkpoint (tensors under ``state_dict``) works too.
    """
    checkpoint = load_weights_only(path, "TUSS checkpoint")
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} is not a dict of tensors.")
    state = {
        key[len(SEPARATOR_PREFIX) :]: value
        for key, value in checkpoint.items()
        if key.startswith(SEPARATOR_PREFIX)
    }
    if not state:
        raise ValueError(
            f"{path} has no '{SEPARATOR_PREFIX}' tensors: is it a released TUSS model.pth?"
        )
    return state


def _stage_from_hparams(name: str, conf: dict, n_blocks: int) -> dict:
    stage = dict(
        n_blocks=int(n_blocks),
        attention_dim=int(conf["attention_dim"]),
        n_heads=int(conf["n_heads"]),
        n_groups=int(conf.get("num_groups", 4)),
    )
    if conf.get("tf_order", "ft") != "ft":
        raise ValueError(f"{name}: only tf_order 'ft' (bands, then time) is supported.")
    ffn = {}
    for axis, key in (("band", "freq_ffn_config"), ("time", "frame_ffn_config")):
        layers = [dict(entry["conf"]) for entry in conf.get(key, [])]
        if len(layers) != 2:
            raise ValueError(f"{name}.{key}: TUSS needs 2 feed-forward layers, got {len(layers)}.")
        if any(layer != layers[0] for layer in layers):
            raise ValueError(f"{name}.{key}: both feed-forward layers must be alike: {layers}.")
        if int(layers[0].get("conv1d_shift", 1)) != 1:
            raise ValueError(f"{name}.{key}: only conv1d_shift 1 is supported.")
        ffn[axis] = (int(layers[0]["dim_inner"]), int(layers[0].get("conv1d_kernel", 4)))
    if ffn["band"][0] != ffn["time"][0]:
        raise ValueError(f"{name}: band and time feed-forward sizes differ: {ffn}.")
    stage.update(ffn_dim=ffn["band"][0], band_kernel=ffn["band"][1], time_kernel=ffn["time"][1])
    return stage


def model_args_from_hparams(hparams_yaml: str) -> dict:
    """``TUSS`` arguments from the released ``hparams.yaml``.

    Raises:
        ValueError: A setting TUSS does not implement (another window, no start token, ...).
    """
    import yaml

    with open(hparams_yaml) as handle:
        hparams = yaml.safe_load(handle)
    if hparams.get("model_name", "tuss") != "tuss":
        raise ValueError(f"{hparams_yaml}: model_name is {hparams['model_name']!r}, not 'tuss'.")
    conf = hparams["model_conf"]
    stft = hparams.get("encoder_conf", {})
    checks = {
        "encoder_conf.window_type": (stft.get("window_type", "sqrt_hann"), "sqrt_hann"),
        "encoder_conf.normalize": (stft.get("normalize"), None),
        "variance_normalization": (hparams.get("variance_normalization", True), True),
        "model_conf.use_sos_token": (conf.get("use_sos_token", True), True),
        "model_conf.prompt_size": (conf.get("prompt_size", 1), 1),
    }
    n_fft = int(conf.get("stft_size", 2048))
    checks["encoder_conf.fft_size"] = (int(stft.get("fft_size", n_fft)), n_fft)
    checks["encoder_conf.window_length"] = (int(stft.get("window_length", n_fft)), n_fft)
    for name, (value, wanted) in checks.items():
        if value != wanted:
            raise ValueError(f"{hparams_yaml}: {name} is {value!r}; TUSS implements {wanted!r}.")
    cross, tse = conf["conf_cross_prompt_module"], conf["conf_cond_tse_module"]
    if cross["emb_dim"] != tse["emb_dim"]:
        raise ValueError(f"{hparams_yaml}: the two modules' emb_dim differ.")
    return dict(
        preset=None,
        prompts=list(conf["prompts"]),
        sample_rate=int(conf.get("sample_rate", 48000)),
        n_fft=n_fft,
        hop_length=int(stft.get("hop_length", n_fft // 4)),
        emb_dim=int(cross["emb_dim"]),
        cross_prompt=_stage_from_hparams(
            "conf_cross_prompt_module", cross, conf.get("nblocks_cross_prompt_module", 4)
        ),
        extraction=_stage_from_hparams(
            "conf_cond_tse_module", tse, conf.get("nblocks_cond_tse_module", 2)
        ),
        eps=float(conf.get("eps", 1e-5)),
    )


def convert_tuss(
    state_dict_path: str,
    out_path: Optional[str] = None,
    hparams_yaml: Optional[str] = None,
    preset: str = "medium",
    prompts: Optional[List[str]] = None,
) -> TUSS:
    """Build a ``TUSS`` from a released checkpoint.

    Args:
        state_dict_path: The released ``model.pth``.
        out_path: If given, write the serialized model there (atomically).
        hparams_yaml: The ``hparams.yaml`` beside it; it defines the configuration.
        preset: Without ``hparams_yaml``: the configuration (``"medium"`` or ``"large"``).
        prompts: Without ``hparams_yaml``: the prompt vocabulary (default: the released eight,
            in their order).

    Returns:
        TUSS: The converted model, in eval mode.
    """
    state = load_released_state_dict(state_dict_path)
    if hparams_yaml is not None:
        args = model_args_from_hparams(hparams_yaml)
    else:
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}.")
        args = dict(preset=preset, prompts=prompts)
    model = TUSS(**args)
    model.load_state_dict(map_released_state_dict(state, model))
    model.eval()
    if out_path is not None:
        save_model_file(model, out_path)
    return model


__all__ = [
    "convert_tuss",
    "load_released_state_dict",
    "map_released_state_dict",
    "model_args_from_hparams",
    "released_layout",
    "released_name",
]
