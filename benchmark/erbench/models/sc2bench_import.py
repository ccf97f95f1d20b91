"""Convert sc2bench Entropic-Student ResNet-50 checkpoints into erbench weights (.safetensors).

sc2bench's ``splittable_resnet`` (``bottleneck_layer`` + ``layer2..4`` + ``fc``) with an
``FPBasedResNetBottleneck`` or ``MSHPBasedResNetBottleneck`` maps tensor by tensor onto
``resnet50_entropic_student_factorized`` / ``_hyperprior``; coder tables (rebuilt by ``update()``) are
dropped. sc2bench itself is not needed. The checkpoint is read with ``torch.load(weights_only=True)``
(torchdistill's ``args`` Namespace allowed); its ``model`` entry is used when present::

    python -m erbench.models.sc2bench_import CKPT.pt OUT.safetensors --family factorized
"""

from __future__ import annotations

import argparse
import pickle
import re
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from erbench.errors import ErbenchError, shorten
from erbench.models.loader import check_fit, expected_shapes, file_sha256
from erbench.models.split import DERIVED_BUFFERS

_BOTTLENECK = {
    "factorized": {"encoder": "head", "decoder": "tail.decoder", "entropy_bottleneck": "entropy.bottleneck"},
    "hyperprior": {
        "g_a": "head", "g_s": "tail.decoder", "h_a": "entropy.hyper_analysis", "h_s": "entropy.hyper_synthesis",
        "entropy_bottleneck": "entropy.bottleneck", "gaussian_conditional": "entropy.gaussian",
    },
}
_TAIL = ("layer2", "layer3", "layer4", "fc")
# CompressAI < 1.2 names of the EntropyBottleneck density parameters (_matrix0 -> matrices.0)
_OLD_DENSITY = re.compile(r"\.entropy_bottleneck\._(matrix|bias|factor)(\d+)$")
_PLURAL = {"matrix": "matrices", "bias": "biases", "factor": "factors"}


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as exc:
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        reason = next((line for line in lines if "Unsupported global" in line), lines[0]).strip()
        raise ErbenchError(f"cannot read the checkpoint with weights_only=True: {shorten(reason, 150)}",
                           file=path) from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise ErbenchError(f"expected a state dict (tensor name -> tensor), or a dict holding one under 'model'; "
                           f"got {type(state).__name__}", file=path)
    return state


def _rename(key: str, family: str) -> str | None:
    key = _OLD_DENSITY.sub(lambda m: f".entropy_bottleneck.{_PLURAL[m[1]]}.{m[2]}", key)
    module, _, rest = key.partition(".")
    if module in _TAIL:
        return f"tail.{key}"
    if module == "bottleneck_layer":
        sub, _, rest = rest.partition(".")
        if sub in _BOTTLENECK[family]:
            return f"{_BOTTLENECK[family][sub]}.{rest}"
    return None


def convert(
    state_dict: dict[str, torch.Tensor], family: str, source: str | Path | None = None
) -> dict[str, torch.Tensor]:
    """sc2bench state dict -> erbench tensor names (family: 'factorized' or 'hyperprior')."""
    tensors = {}
    for key, value in state_dict.items():
        if key.rsplit(".", 1)[-1] in DERIVED_BUFFERS:
            continue
        name = _rename(key, family)
        if name is None:
            raise ErbenchError(f"tensor '{key}' has no counterpart in the {family} Entropic Student", file=source)
        tensors[name] = value.detach().cpu().contiguous()
    return tensors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m erbench.models.sc2bench_import", description=__doc__.split("\n")[0]
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("output", type=Path, help="the .safetensors file to write")
    parser.add_argument("--family", choices=sorted(_BOTTLENECK), required=True)
    parser.add_argument("--num-classes", type=int, default=1000)
    args = parser.parse_args(argv)
    try:
        tensors = convert(read_checkpoint(args.checkpoint), args.family, args.checkpoint)
        expected = expected_shapes(f"resnet50_entropic_student_{args.family}", num_classes=args.num_classes)
        check_fit(expected, {name: tuple(t.shape) for name, t in tensors.items()}, args.checkpoint)
    except ErbenchError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return 2
    save_file(tensors, str(args.output))
    print(f"wrote {args.output} ({len(tensors)} tensors), sha256 {file_sha256(args.output)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
