"""Builds a tiny, randomly initialised LAION-CLAP checkpoint with no network.

laion-clap asks Hugging Face for ``roberta-base``; we write a tiny RoBERTa (hidden size 768, as
CLAP's text projection expects, one layer) and a byte-level BPE tokenizer under that name into
the Hugging Face cache that ``HF_HOME`` points at, then save a CLAP state dict the way LAION's
releases are laid out (``{"state_dict": {"module.<key>": tensor}}``).
"""

import os

import torch

SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"
CORPUS = [
    "a dog barking in the distance",
    "the sound of a siren on the street",
    "birds chirping in the morning",
    "someone playing the violin and piano",
    "rain falling on a roof with wind",
    "a car engine humming while people talk",
]


def write_tiny_roberta(hf_home: str) -> str:
    """Write a tiny ``roberta-base`` (model and tokenizer) into ``<hf_home>/hub``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    repo = os.path.join(hf_home, "hub", "models--roberta-base")
    snapshot = os.path.join(repo, "snapshots", SNAPSHOT)
    os.makedirs(snapshot, exist_ok=True)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w") as ref:
        ref.write(SNAPSHOT)

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS * 4,
        vocab_size=400,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    bpe.save_model(snapshot)
    tokenizer = RobertaTokenizer(
        os.path.join(snapshot, "vocab.json"), os.path.join(snapshot, "merges.txt")
    )
    tokenizer.save_pretrained(snapshot)

    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=768,
        num_hidden_layers=1,
        num_attention_heads=12,
        intermediate_size=64,
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    RobertaModel(config).save_pretrained(snapshot)
    return snapshot


def write_tiny_clap_checkpoint(path: str, amodel: str = "HTSAT-base") -> str:
    """Save a randomly initialised CLAP (audio tower ``amodel``, RoBERTa text tower) as a
    LAION-style checkpoint."""
    import laion_clap

    torch.manual_seed(0)
    clap = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel, device="cpu")
    state = {"module." + key: value for key, value in clap.model.state_dict().items()}
    # Real LAION checkpoints carry this buffer and load_ckpt deletes it unconditionally.
    state.setdefault(
        "module.text_branch.embeddings.position_ids", torch.arange(514).expand((1, -1))
    )
    torch.save({"state_dict": state, "epoch": 0}, path)
    return path
