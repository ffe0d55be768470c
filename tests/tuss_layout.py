"""The released TUSS checkpoint layout (names and shapes), written from the reference notes
and the released configuration, independently of asteroid_lass.converters.tuss, so the
converter is checked against the layout and not against itself.
"""

from typing import Dict

import torch

PREFIX = "model.separator."
PROMPTS = ["speech", "sfx", "sfxbg", "drums", "bass", "vocals", "other", "musicbg"]

# The 61 bands at 48 kHz / 2048 bins: 22 of 2 bins (0-1 kHz), 11 of 4, 8 of 12, 8 of 24, 8 of
# 48 (8-16 kHz), then the 265 remaining bins in four bands.
BANDS_48K = [2] * 22 + [4] * 11 + [12] * 8 + [24] * 8 + [48] * 8 + [66, 66, 66, 67]

# (module name, blocks, attention dim, heads, FFN inner size, freq kernel, frame kernel)
MEDIUM = dict(
    emb=64,
    modules=[
        ("cross_prompt_module", 4, 128, 4, 384, 4, 1),
        ("cond_tse_module", 2, 96, 4, 256, 4, 4),
    ],
)


def released_shapes(emb=MEDIUM["emb"], modules=MEDIUM["modules"], bands=BANDS_48K) -> Dict:
    """Every tensor under ``model.separator.`` (keys without the prefix) and its shape."""
    out: Dict[str, tuple] = {f"prompts.{name}": (emb, 1, 1) for name in PROMPTS}
    out["sos_token"] = (emb, 1, 1)
    for module, n_blocks, att, heads, inner, freq_kernel, frame_kernel in modules:
        for block in range(n_blocks):
            for path, kernel in (("freq_path", freq_kernel), ("frame_path", frame_kernel)):
                pre = f"{module}.{block}.{path}."
                for i in (0, 1):
                    out[pre + f"ffn_norm.{i}.gamma"] = (emb,)
                    out[pre + f"ffn.{i}.conv1d.weight"] = (2 * inner, emb, kernel)
                    out[pre + f"ffn.{i}.conv1d.bias"] = (2 * inner,)
                    out[pre + f"ffn.{i}.deconv1d.weight"] = (inner, emb, kernel)
                    out[pre + f"ffn.{i}.deconv1d.bias"] = (emb,)
                out[pre + "attn_norm.gamma"] = (emb,)
                out[pre + "attn.rope.freqs"] = (att // heads // 2,)
                out[pre + "attn.qkv.weight"] = (3 * att, emb)
                out[pre + "attn.aggregate_heads.0.weight"] = (emb, att)
    for b, width in enumerate(bands):
        pre = f"band_split_module.band_split_module.{b}."
        out[pre + "0.weight"] = (2 * width,)
        out[pre + "0.bias"] = (2 * width,)
        out[pre + "1.weight"] = (emb, 2 * width, 1)
        out[pre + "1.bias"] = (emb,)
    for b, width in enumerate(bands):
        pre = f"band_split_module.bandwise_decoding_module.{b}."
        out[pre + "0.weight"] = (emb,)
        out[pre + "0.bias"] = (emb,)
        out[pre + "1.weight"] = (4 * emb, emb, 1)
        out[pre + "1.bias"] = (4 * emb,)
        out[pre + "3.weight"] = (4 * emb, 4 * emb, 1)
        out[pre + "3.bias"] = (4 * emb,)
        out[pre + "5.weight"] = (4 * width, 4 * emb, 1)
        out[pre + "5.bias"] = (4 * width,)
    return out


def rope_freqs(n: int) -> torch.Tensor:
    """The rotary frequencies stored for a head of ``2n`` features: 10000^(-2i / 2n)."""
    return torch.tensor([10000.0 ** (-2 * i / (2 * n)) for i in range(n)], dtype=torch.float32)


def random_released_checkpoint(seed: int = 0) -> Dict[str, torch.Tensor]:
    """A flat released-style checkpoint, keys prefixed, random values (true rope freqs)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in released_shapes().items():
        if key.endswith("rope.freqs"):
            state[PREFIX + key] = rope_freqs(shape[0])
        else:
            state[PREFIX + key] = torch.randn(shape, generator=generator)
    return state


HPARAMS_MEDIUM = """\
model_name: tuss
variance_normalization: true
encoder_name: stft
encoder_conf: &stft
  fft_size: 2048
  hop_length: 512
  normalize: null
  window_length: 2048
  window_type: sqrt_hann
decoder_conf: *stft
model_conf:
  conf_cond_tse_module:
    attention_dim: 96
    emb_dim: 64
    flash_attention: false
    frame_ffn_config:
    - conf: {conv1d_kernel: 4, conv1d_shift: 1, dim_inner: 256}
    - conf: {conv1d_kernel: 4, conv1d_shift: 1, dim_inner: 256}
    freq_ffn_config:
    - conf: {conv1d_kernel: 4, conv1d_shift: 1, dim_inner: 256}
    - conf: {conv1d_kernel: 4, conv1d_shift: 1, dim_inner: 256}
    n_heads: 4
    num_groups: 8
    tf_order: ft
  conf_cross_prompt_module:
    attention_dim: 128
    emb_dim: 64
    flash_attention: false
    frame_ffn_config:
    - conf: {conv1d_kernel: 1, conv1d_shift: 1, dim_inner: 384}
    - conf: {conv1d_kernel: 1, conv1d_shift: 1, dim_inner: 384}
    freq_ffn_config:
    - conf: {conv1d_kernel: 4, conv1d_shift: 1, dim_inner: 384}
    - conf: {conv1d_kernel: 4, conv1d_shift: 1, dim_inner: 384}
    n_heads: 4
    num_groups: 8
    tf_order: ft
  nblocks_cond_tse_module: 2
  nblocks_cross_prompt_module: 4
  prompts: [speech, sfx, sfxbg, drums, bass, vocals, other, musicbg]
  sample_rate: 48000
  stft_size: 2048
  use_sos_token: true
"""
