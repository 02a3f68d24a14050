"""A cell's configuration as plain data, its canonical key, and the config groups on disk.

A cell is (dataset, split, seed, model, backend, timing, evaluation). Its key hashes the
canonical JSON of exactly those parts, resolved, so the same cell gets the same key
whatever the command line looked like; results, force and progress settings are not part
of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmrec_gpu.errors import KmrecError
from kmrec_gpu.models import cold

GROUPS = ("dataset", "model", "backend", "split", "kernels", "sweep")
TASKS = ("rating", "topk", "pipeline", "probe")


class ConfigError(KmrecError, ValueError):
    """A configuration names an option that does not exist or is malformed."""


def conf_dir() -> Path:
    """``KMREC_BENCH_CONF``; else the configuration an installed wheel carries
    (``kmrec_gpu/bench_conf``); else ``bench/conf`` of this checkout."""
    env = os.environ.get("KMREC_BENCH_CONF")
    packaged = Path(__file__).resolve().parents[1] / "bench_conf"
    path = (Path(env) if env else packaged if packaged.is_dir()
            else Path(__file__).resolve().parents[2] / "bench" / "conf")
    if not (path / "config.yaml").is_file():
        raise ConfigError(f"no config.yaml in {path}: kmrec-bench needs the configuration "
                          "an installed kmrec-gpu carries, the repository's bench/conf, or "
                          "KMREC_BENCH_CONF")
    return path


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def load_option(group: str, name: str):
    """One option of a config group, as an OmegaConf node."""
    from omegaconf import OmegaConf

    path = conf_dir() / group / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{group}={name}: no {path}; expected one of {options(group)}")
    return OmegaConf.load(path)


def with_option(cfg, group: str, name: str):
    """A copy of the root config with ``group`` replaced by option ``name``."""
    from omegaconf import OmegaConf

    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    out[group] = load_option(group, name)
    return out


@dataclass(frozen=True)
class CellSpec:
    dataset: dict[str, Any]
    split: dict[str, Any]
    seed: int
    model: dict[str, Any]
    backend: dict[str, Any]
    timing: dict[str, Any]
    eval: dict[str, Any]
    sweep: str | None = None
    role: str = "model"
    peer_of: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    kernels: str = "auto"  # fused kernels: auto, on or off (models with a ``kernels`` param)

    @classmethod
    def from_config(cls, cfg, *, role: str = "model", peer_of: str | None = None) -> CellSpec:
        from omegaconf import OmegaConf

        c = OmegaConf.to_container(cfg, resolve=True)
        model = c["model"]
        for k in ("name", "task", "backends", "estimator"):
            if k not in model:
                raise ConfigError(f"model config {model.get('name', '?')!r} lacks {k!r}")
        if model["task"] not in TASKS:
            raise ConfigError(f"model {model['name']}: task {model['task']!r}; expected one "
                              f"of {TASKS}")
        if "cold_pairs" in model and (model["task"] != "rating"
                                      or model["cold_pairs"] not in cold.RULES):
            raise ConfigError(f"model {model['name']}: cold_pairs={model['cold_pairs']!r}; "
                              f"expected one of {cold.RULES}, on a rating model only")
        return cls(dataset=c["dataset"], split=c["split"], seed=int(c["seed"]), model=model,
                   backend=c["backend"], timing=c["timing"], eval=c["eval"],
                   sweep=(c.get("sweep") or {}).get("name"), role=role, peer_of=peer_of,
                   kernels=str((c.get("kernels") or {}).get("mode", "auto")))

    def canonical(self) -> dict[str, Any]:
        out = {"dataset": self._dataset_identity(),
               "split": self.split, "seed": self.seed,
               "model": {"name": self.model["name"], "estimator": self.model["estimator"],
                         # cells whose cold pairs are the bias baseline's are new cells;
                         # a model keeping its own rule keeps the key it always had
                         **({"cold_pairs": "bias_baseline"}
                            if cold.rule(self.model) == "bias_baseline" else {})},
               "backend": {"name": self.backend["name"], "library": self.backend["library"]},
               "timing": self.timing, "eval": self.eval}
        if self.kernels != "auto":  # so the keys of cells run before the switch still match
            out["kernels"] = self.kernels
        return out

    def _dataset_identity(self) -> dict[str, Any]:
        d = self.dataset
        if d.get("kind") != "csv":
            return {"name": d["name"], "path": d.get("path")}
        from kmrec_gpu.data.user_file import file_sha256, options

        # a user's file: how it is read, and its content (an edited file is a new cell)
        return {**{k: v for k, v in d.items() if k != "path"}, **options(d),
                "sha256": file_sha256(d["path"])}

    @property
    def key(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return (f"{self.model['name']} on {self.dataset['name']} "
                f"[{self.backend['id']}, {self.split['method']}, seed {self.seed}]")

    def harness_extra(self) -> dict[str, Any]:
        return {"cell_key": self.key, "sweep": self.sweep, "task": self.model["task"],
                "model_config": self.model["name"], "dataset_config": self.dataset["name"],
                "backend_config": self.backend["id"], "split_config": self.split["method"],
                "role": self.role, "peer_of": self.peer_of, "kernels": self.kernels}
