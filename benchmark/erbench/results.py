"""Results: two Parquet tables with a versioned schema, provenance on every row, atomic writes.

``summary.parquet``: one row per (submission, protocol, condition, parameters, seed).
``per_image.parquet``: one row per (submission, protocol, condition, parameters, seed, image).
The schema below is the single source; docs/results_schema.md is generated from it
(``erbench schema --results``) and a test keeps the two equal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = "3"  # 2: per-image queries, summary noop; 3: corruption_source, corruption_sha256

_STR, _F64, _I64, _BOOL = pa.string(), pa.float64(), pa.int64(), pa.bool_()

PROVENANCE = [
    ("schema_version", _STR, "version of this results schema"),
    ("protocol", _STR, "protocol name, e.g. erbench-v1"),
    ("protocol_quick", _BOOL, "true for a reduced smoke-test protocol: not comparable with the full one"),
    ("erbench_version", _STR, "erbench package version"),
    ("git_sha", _STR, "git commit of the erbench checkout when the run that computed the cell started ('-dirty' "
                        "if modified, 'unknown' outside git)"),
    ("weights_sha256", _STR, "sha256 of the weights file"),
    ("manifest_sha256", _STR, "sha256 of the data manifest file"),
    ("dataset_sha256", _STR, "sha256 of the evaluated split (images + labels)"),
    ("corruption_sha256", _STR, "what a pre-rendered corruption cell read: CIFAR-10-C, the sha256 of its <corruption>.npy; "
                                "ImageNet-C, the sha256 of the sha256sum listing of the cell's JPEGs in image order "
                                "(docs/real_scale.md); null for every other cell"),
    ("torch_version", _STR, "torch version"),
    ("compressai_version", _STR, "compressai version"),
    ("device", _STR, "device the model ran on (cpu, cuda, ...)"),
    ("created_utc", _STR, "UTC time the run that computed the cell started, ISO 8601"),
]
SUBMISSION = [
    ("submission_id", _STR, "submission id (YAML file name)"),
    ("dataset", _STR, "data manifest id"),
    ("architecture", _STR, "registered architecture"),
    ("entropy_model", _STR, "factorized | hyperprior"),
    ("beta", _F64, "rate weight the model was trained with"),
    ("defense", _STR, "input defense run before encoding: 'none', or its name and every parameter, e.g. "
                      "likelihood_tv(weight=0.1,iterations=100,step=0.25,object_weight=0.1) (docs/defense.md)"),
]
CELL = [
    ("condition", _STR, "canonical condition id: clean, corruption.<name>, attack.<name>, or the aggregate "
                        "attack.worst_rate (per image, the rate attack with the most coded bits at that norm and eps)"),
    ("kind", _STR, "clean | corruption | attack | aggregate"),
    ("severity", _I64, "corruption severity 1-5 (null otherwise)"),
    ("norm", _STR, "perturbation norm: linf | l2 (null otherwise)"),
    ("eps", _F64, "perturbation budget in [0, 1] pixel units (8/255 = 0.0314 for L-inf 8)"),
    ("variant", _STR, "attack variant, e.g. paper | strong | fgsm (null otherwise)"),
    ("steps", _I64, "attack iterations (null otherwise)"),
    ("seed", _I64, "seed of the condition's randomness"),
    ("corruption_source", _STR, "where a corruption cell's images come from: imagecorruptions (rendered by erbench, "
                                "seeded) | CIFAR-10-C | ImageNet-C (the published pre-rendered files); null for clean, "
                                "attack and aggregate rows. Cells of different sources are different cells"),
]
PER_IMAGE = [
    ("image_index", _I64, "index of the image in the dataset split"),
    ("label", _I64, "true class"),
    ("pred", _I64, "class predicted by the tail from the DECODED bitstream"),
    ("correct", _BOOL, "pred == label"),
    ("prediction_kept", _BOOL, "pred equals the prediction on the clean image"),
    ("bits_coded", _I64, "8 x bytes written by the range coder, all latents (y and z)"),
    ("bits_coded_hyper", _I64, "the hyper-latent z part of bits_coded (0 for factorized)"),
    ("bits_estimated", _F64, "-sum log2 likelihood of the rounded latents, all latents"),
    ("bits_estimated_hyper", _F64, "the z part of bits_estimated (0 for factorized)"),
    ("decode_ok", _BOOL, "decoded latent equals the rounded latent the tail sees"),
    ("perturbation_linf", _F64, "max |x - x_clean| of the coded 8-bit image, [0, 1] units"),
    ("perturbation_l2", _F64, "||x - x_clean||_2 of the coded 8-bit image, [0, 1] units"),
    ("queries", _I64, "coded-size queries a black-box attack made for this image (null for other conditions)"),
]
SUMMARY = [
    ("n_images", _I64, "images in the cell"),
    ("accuracy", _F64, "top-1 accuracy from the decoded bitstream"),
    ("accuracy_ci_low", _F64, "95% bootstrap CI of accuracy, low"),
    ("accuracy_ci_high", _F64, "95% bootstrap CI of accuracy, high"),
    ("accuracy_delta", _F64, "accuracy - clean accuracy (same images)"),
    ("accuracy_delta_ci_low", _F64, "95% paired bootstrap CI of accuracy_delta, low"),
    ("accuracy_delta_ci_high", _F64, "95% paired bootstrap CI of accuracy_delta, high"),
    ("bits_coded_mean", _F64, "mean coded bits per image (the ranked quantity)"),
    ("bits_coded_median", _F64, "median coded bits per image"),
    ("bits_coded_hyper_mean", _F64, "mean coded bits of z per image"),
    ("bits_estimated_mean", _F64, "mean estimated bits per image"),
    ("extra_bits", _F64, "bits_coded_mean - clean bits_coded_mean, bits per image"),
    ("overhead", _F64, "bits_coded_mean / clean bits_coded_mean - 1"),
    ("overhead_ci_low", _F64, "95% paired bootstrap CI of overhead, low"),
    ("overhead_ci_high", _F64, "95% paired bootstrap CI of overhead, high"),
    ("decode_ok_all", _BOOL, "every image decoded losslessly"),
    ("prediction_kept_rate", _F64, "share of images whose prediction equals the clean one"),
    ("perturbation_linf_max", _F64, "largest L-inf perturbation of a coded image, [0, 1] units"),
    ("perturbation_l2_max", _F64, "largest L2 perturbation of a coded image, [0, 1] units"),
    ("noop", _BOOL, "the condition left every image unchanged (e.g. saturate 1-3 on grey digits): excluded from "
                    "every aggregate (always false for clean)"),
    ("degenerate", _BOOL, "the model collapsed (near-chance accuracy or rate collapse): never read it as robust"),
    ("degenerate_reason", _STR, "why it is degenerate (null otherwise)"),
]

SUMMARY_COLUMNS = SUBMISSION + CELL + SUMMARY + PROVENANCE
PER_IMAGE_COLUMNS = SUBMISSION + CELL + PER_IMAGE + PROVENANCE
SUMMARY_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in SUMMARY_COLUMNS], metadata={"erbench_schema": SCHEMA_VERSION})
PER_IMAGE_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in PER_IMAGE_COLUMNS], metadata={"erbench_schema": SCHEMA_VERSION})
SUMMARY_FILE, PER_IMAGE_FILE = "summary.parquet", "per_image.parquet"


def git_sha() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def provenance(*, protocol: str, quick: bool, weights_sha256: str, manifest_sha256: str, dataset_sha256: str,
               device: str) -> dict:
    import compressai
    import torch

    import erbench

    return {
        "schema_version": SCHEMA_VERSION, "protocol": protocol, "protocol_quick": quick,
        "erbench_version": erbench.__version__, "git_sha": git_sha(),
        "weights_sha256": weights_sha256, "manifest_sha256": manifest_sha256, "dataset_sha256": dataset_sha256,
        "torch_version": torch.__version__, "compressai_version": compressai.__version__,
        "device": device, "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def to_table(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Order and type the columns exactly as the schema says (missing or extra columns are a bug)."""
    missing = set(schema.names) - set(df.columns)
    extra = set(df.columns) - set(schema.names)
    if missing or extra:
        raise ValueError(f"results columns do not match the schema: missing {sorted(missing)}, extra {sorted(extra)}")
    return pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)


def write_results(out_dir: Path, submission_id: str, summary: pd.DataFrame, per_image: pd.DataFrame) -> Path:
    """Write ``out_dir/<id>/{summary,per_image}.parquet`` atomically: a complete directory or nothing."""
    tables = {SUMMARY_FILE: to_table(summary, SUMMARY_SCHEMA), PER_IMAGE_FILE: to_table(per_image, PER_IMAGE_SCHEMA)}
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / submission_id
    staging = Path(tempfile.mkdtemp(prefix=f".{submission_id}.", dir=out_dir))
    try:
        for name, table in tables.items():
            pq.write_table(table, staging / name)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{submission_id}.old.", dir=out_dir))
            os.replace(final, old / "x")
            os.replace(staging, final)
            shutil.rmtree(old)
        else:
            os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return final


def upgrade(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of an older schema in this one: schema 2 had no pre-rendered corruptions, so its corruption rows
    get ``corruption_source`` 'imagecorruptions', every row a null ``corruption_sha256`` and schema_version 3."""
    if "corruption_source" in frame.columns:
        return frame
    from erbench.cells import RENDERED

    frame = frame.copy()
    frame["corruption_source"] = pd.Series(RENDERED, index=frame.index, dtype=object).where(
        frame["kind"] == "corruption", None)
    frame["corruption_sha256"] = pd.Series(None, index=frame.index, dtype=object)
    frame["schema_version"] = SCHEMA_VERSION
    return frame


def read_results(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables, in this schema (older results upgraded: ``upgrade``)."""
    return (upgrade(pq.read_table(path / SUMMARY_FILE).to_pandas()),
            upgrade(pq.read_table(path / PER_IMAGE_FILE).to_pandas()))


def schema_markdown() -> str:
    lines = [
        "# erbench results schema", "",
        f"Schema version **{SCHEMA_VERSION}**. Generated by `erbench schema --results` from",
        "`benchmark/erbench/results.py`; a test keeps this file equal to the code.", "",
        "`erbench evaluate` commits each cell as it finishes, as `RESULTS_DIR/<submission_id>/parts/*.parquet`",
        "(the per-image columns below but `prediction_kept`; docs/engine.md), and derives",
        "`summary.parquet` and `per_image.parquet` from the parts once every planned cell is committed, each",
        "by an atomic rename. Every row carries the provenance columns, those of the run that computed its cell.",
        "The leaderboard ranks **real coded bits** (`bits_coded*`), never estimated bits.", "",
    ]
    for title, cols in (("summary.parquet", SUMMARY_COLUMNS), ("per_image.parquet", PER_IMAGE_COLUMNS)):
        lines += [f"## {title}", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{n}` | {t} | {d} |" for n, t, d in cols]
        lines.append("")
    return "\n".join(lines)
