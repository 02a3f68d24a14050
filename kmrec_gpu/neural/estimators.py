"""Estimators around the networks: ``fit(train)``, ``predict(test)``, save and load.

Each follows the conventions of the other models here (scikit-learn's): parameters in
``__init__``, fitted state in attributes ending in ``_``, ``fit`` sees only the training
ratings it is given (plus, optionally, a validation set carved out of them). Codes of
users and movies with no training rating are sent to the networks' zero padding rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from kmrec_gpu import backends, seeding
from kmrec_gpu.errors import MalformedInput
from kmrec_gpu.estimator import Estimator
from kmrec_gpu.neural.nets import AttentionMLP, HybridNet, PublishedMLP
from kmrec_gpu.neural.train import Batches, History, predict_batches, seeded
from kmrec_gpu.neural.train import train as train_net
from kmrec_gpu.ratings import Ratings, RatingScale
from kmrec_gpu.results import atomic_path
from kmrec_gpu.splits import validation_split

# The 19 genre columns seed 000's code one-hot encodes (its ``all_genres``): ml-latest-small's
# labels without IMAX. "The dataset consists of 19 movie genres" in the text is this list.
SEED000_GENRES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western", "(no genres listed)",
)

# The metadata key (and format version) of a saved model: its value is the JSON of
# everything that is not a tensor.
MODEL_FORMAT = "kmrec_gpu.neural.model/1"


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA when the one-time probe found it usable through torch, else CPU;
    ``"cuda"`` without a usable GPU raises :class:`BackendUnavailable` (the backends' rule)."""
    if isinstance(device, torch.device):
        return device
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return backends.get_backend(device, library="torch").device


def genre_columns(r: Ratings, genres: str | tuple[str, ...]) -> tuple[str, ...]:
    """The genre columns a model reads: ``"all"`` of the dataset's, ``"seed000"``'s 19,
    ``"seed000_or_all"`` (seed 000's 19 where the dataset has every one of them, as
    ml-latest-small does, else all of the dataset's: what the former seed-000 script ran),
    ``"none"``, or an explicit tuple of names."""
    if genres == "seed000_or_all":
        genres = "seed000" if set(SEED000_GENRES) <= set(r.genre_names) else "all"
    if genres == "all":
        return tuple(r.genre_names)
    if genres == "none":
        return ()
    names = SEED000_GENRES if genres == "seed000" else tuple(genres)
    missing = [g for g in names if g not in r.genre_names]
    if missing:
        raise ValueError(f"{r.name}: genre columns {missing} are not among its genres "
                         f"{list(r.genre_names)}; use genres='all'")
    return names


class SparseDenseAdam:
    """Two optimisers stepped as one: ``SparseAdam`` for the sparse-gradient embedding
    tables (moments of the batch's rows only: "lazy" Adam) and Adam/AdamW for the dense
    rest. ``param_groups`` lists both, so ``GradScaler`` can unscale them."""

    def __init__(self, *parts: torch.optim.Optimizer) -> None:
        self.parts = parts

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for o in self.parts for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.parts:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.parts:
            o.step()


class NeuralRegressor(Estimator):
    """Shared fit / predict / save / load for the three networks (subclasses set ``net_class``)."""

    net_class: ClassVar[type[nn.Module]]
    net_keys: ClassVar[tuple[str, ...]]
    name: ClassVar[str]

    _fitted_attr = "net_"

    def __init__(self, *, epochs: int, batch_size: int, lr: float, weight_decay: float,
                 optimizer: str, patience: int | None, valid_fraction: float,
                 genres: str | tuple[str, ...], clip: bool, random_state: int,
                 device: str, amp: bool, **net_params: Any) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.patience = patience
        self.valid_fraction = valid_fraction
        self.genres = genres
        self.clip = clip
        self.random_state = random_state
        self.device = device
        self.amp = amp
        for k in self.net_keys:
            setattr(self, k, net_params.pop(k))
        if net_params:
            raise TypeError(f"{type(self).__name__} got unknown parameters {sorted(net_params)}")

    def _net_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.net_keys}

    # -- fitting -----------------------------------------------------------------------------

    def _codes(self, users: np.ndarray, items: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        u = np.asarray(users, dtype=np.int64)
        i = np.asarray(items, dtype=np.int64)
        for what, c, n in (("user", u, self.n_users_), ("item", i, self.n_items_)):
            if c.size and (c.min() < 0 or c.max() >= n):
                raise ValueError(f"{what} codes must lie in [0, {n}), got "
                                 f"[{c.min()}, {c.max()}]")
        u = np.where(self.seen_users_[u], u, self.n_users_)
        i = np.where(self.seen_items_[i], i, self.n_items_)
        return (torch.from_numpy(u).to(self.device_), torch.from_numpy(i).to(self.device_))

    def _batches(self, r: Ratings) -> Batches:
        u, i = self._codes(r.users, r.items)
        y = torch.from_numpy(r.ratings.astype(np.float32)).to(self.device_)
        return Batches(u, i, y)

    def _optimizer(self, net: nn.Module) -> torch.optim.Optimizer | SparseDenseAdam:
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.AdamW
        sparse = [m.weight for m in net.modules() if isinstance(m, nn.Embedding) and m.sparse]
        # torch's fused step: one pass over each parameter instead of ~10 foreach kernels
        # (2-3 ms of a batch-1,024 step of the attention network on one CPU thread)
        fused = next(net.parameters()).device.type in ("cpu", "cuda")
        if not sparse:
            return cls(net.parameters(), lr=self.lr, weight_decay=self.weight_decay,
                       fused=fused)
        if self.weight_decay:
            raise ValueError(f"{type(self).__name__}: sparse embeddings are updated by "
                             f"SparseAdam, which has no weight decay; got weight_decay="
                             f"{self.weight_decay} (use sparse=False for decay)")
        ids = {id(p) for p in sparse}
        dense = [p for p in net.parameters() if id(p) not in ids]
        # raises on a negative lr, as the dense path does
        dense_opt = cls(dense, lr=self.lr, fused=fused)
        # SparseAdam refuses lr=0, which moves nothing anyway
        return SparseDenseAdam(*([torch.optim.SparseAdam(sparse, lr=self.lr)] if self.lr
                                 else []), dense_opt)

    def _amp_dtype(self) -> torch.dtype | None:
        if not self.amp or self.device_.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def _setup(self, train_set: Ratings) -> None:
        self.device_ = resolve_device(self.device)
        self.n_users_, self.n_items_ = train_set.n_users, train_set.n_items
        self.genre_names_ = genre_columns(train_set, self.genres)
        idx = [train_set.genre_names.index(g) for g in self.genre_names_]
        flags = (np.zeros((self.n_items_, 0), np.float32) if train_set.genres is None or not idx
                 else train_set.genres[:, idx].astype(np.float32))
        # one more row for the padding code: a cold movie has no genre flags either
        self.genre_table_ = torch.from_numpy(
            np.vstack([flags, np.zeros((1, flags.shape[1]), np.float32)])).to(self.device_)
        # the clip bound is a training statistic: a Ratings' declared scale can have been
        # computed on every row (seed 000's adjusted target stretches to the largest value
        # of train and test), so the bound is the training ratings' own range
        y = train_set.ratings
        self.scale_ = RatingScale(float(y.min()), float(y.max()), train_set.scale.step)
        self.global_mean_ = float(train_set.ratings.astype(np.float64).mean())
        self.seen_users_ = np.bincount(train_set.users, minlength=self.n_users_) > 0
        self.seen_items_ = np.bincount(train_set.items, minlength=self.n_items_) > 0

    def _build(self) -> nn.Module:
        net = self.net_class(self.n_users_, self.n_items_, len(self.genre_names_),
                             **self._net_params())
        if hasattr(net, "offset"):
            net.offset.fill_(self.global_mean_)
        return net.to(self.device_)

    def fit(self, train: Ratings, valid: Ratings | None = None,
            on_epoch: Any = None) -> NeuralRegressor:
        """Fit on ``train``. Early stopping (``patience``) watches ``valid`` when given,
        else a ``valid_fraction`` carved out of ``train`` (never the test set)."""
        if not isinstance(train, Ratings):
            raise TypeError(f"fit expects a Ratings, got {type(train).__name__}")
        if len(train) == 0:
            raise ValueError("cannot fit on an empty training set")
        if valid is not None and (valid.n_users, valid.n_items) != (train.n_users, train.n_items):
            raise ValueError("valid must share the training set's vocabularies (carve it "
                             "with splits.validation_split)")
        fit_rows = train
        if valid is None and self.patience is not None and self.valid_fraction > 0:
            vs = validation_split(train, self.valid_fraction,
                                  seed=seeding.int_seed(self.random_state, "nn", "valid"))
            fit_rows, valid = vs.train, vs.test
        self._setup(fit_rows)
        with seeded(seeding.int_seed(self.random_state, "nn", "init"), self.device_):
            self.net_ = self._build()
            self.history_: History = train_net(
                self.net_, self._batches(fit_rows), self.genre_table_,
                epochs=self.epochs, batch_size=self.batch_size,
                optimizer=self._optimizer(self.net_),
                shuffle_seed=seeding.int_seed(self.random_state, "nn", "shuffle"),
                valid=None if valid is None else self._batches(valid),
                patience=self.patience, amp_dtype=self._amp_dtype(), on_epoch=on_epoch,
                clip=(self.scale_.minimum, self.scale_.maximum) if self.clip else None)
        self.n_train_ = len(fit_rows)
        self.n_valid_ = 0 if valid is None else len(valid)
        return self

    # -- prediction --------------------------------------------------------------------------

    def _finish(self, p: torch.Tensor) -> np.ndarray:
        out = p.detach().to("cpu", torch.float64).numpy()
        if self.clip:
            out = np.clip(out, self.scale_.minimum, self.scale_.maximum)
        return out

    def predict_pairs(self, users: np.ndarray, items: np.ndarray,
                      batch_size: int | None = None) -> np.ndarray:
        """Predictions for code pairs; ``batch_size`` defaults to 65,536 rows on CUDA and
        1,024 on the CPU (the attention network scores 2.5x faster in cache-sized batches)."""
        self._check_fitted()
        if batch_size is None:
            batch_size = 65536 if self.device_.type == "cuda" else 1024
        if np.shape(users) != np.shape(items):
            raise ValueError(f"users and items must have one shape, got {np.shape(users)} "
                             f"and {np.shape(items)}")
        u, i = self._codes(users, items)
        return self._finish(predict_batches(self.net_, u, i, self.genre_table_, batch_size,
                                            self._amp_dtype()))

    def predict(self, X: Ratings) -> np.ndarray:
        self._check_fitted()
        if X.n_users != self.n_users_ or X.n_items != self.n_items_:
            raise ValueError("X must share the training set's vocabularies (use a TTSplit)")
        return self.predict_pairs(X.users, X.items)

    def predict_with_genres(self, users: np.ndarray, items: np.ndarray,
                            genres: np.ndarray) -> np.ndarray:
        """Predictions for explicit genre feature rows instead of the movies' own flags
        (how seed 000 scored its one pair, with a mis-sliced feature row)."""
        self._check_fitted()
        g = np.asarray(genres, dtype=np.float32)
        if g.ndim != 2 or g.shape != (len(users), len(self.genre_names_)):
            raise ValueError(f"genres must have shape ({len(users)}, {len(self.genre_names_)}), "
                             f"got {g.shape}")
        u, i = self._codes(users, items)
        p = predict_batches(self.net_, u, i, self.genre_table_, amp_dtype=self._amp_dtype(),
                            genre_rows=torch.from_numpy(g).to(self.device_))
        return self._finish(p)

    # -- persistence -------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the fitted model through a CPU copy (atomically: temporary file, rename).

        The file is safetensors: raw tensors plus a JSON string in its metadata (class name,
        parameters, fitted scalars), so :meth:`load` never unpickles and so runs no code."""
        self._check_fitted()
        path = Path(path)
        tensors = {f"net.{k}": v.detach().cpu().contiguous()
                   for k, v in self.net_.state_dict().items()}
        tensors.update(genre_table=self.genre_table_.cpu().contiguous(),
                       seen_users=torch.from_numpy(np.ascontiguousarray(self.seen_users_)),
                       seen_items=torch.from_numpy(np.ascontiguousarray(self.seen_items_)))
        meta = {
            "format": MODEL_FORMAT, "class": type(self).__name__, "params": self.get_params(),
            "fitted": {
                "n_users": int(self.n_users_), "n_items": int(self.n_items_),
                "genre_names": list(self.genre_names_), "scale": self.scale_.as_dict(),
                "global_mean": self.global_mean_, "history": self.history_.as_dict(),
                "n_train": self.n_train_, "n_valid": self.n_valid_,
            },
        }
        with atomic_path(path) as tmp:
            save_file(tensors, tmp, metadata={MODEL_FORMAT: json.dumps(meta, sort_keys=True)})
        return path

    @staticmethod
    def load(path: str | Path, device: str = "auto") -> NeuralRegressor:
        """A model saved by :meth:`save`, moved to ``device``. Reads tensors and JSON only
        and rebuilds only the classes of :data:`ESTIMATORS`; anything else (a pickle, an
        older ``torch.save`` file, a truncated file) is a :class:`MalformedInput`."""
        path = Path(path)
        expected = (f"expected a model written by NeuralRegressor.save (a safetensors file "
                    f"with {MODEL_FORMAT!r} metadata)")
        try:
            with safe_open(path, framework="pt", device="cpu") as f:
                meta = json.loads((f.metadata() or {})[MODEL_FORMAT])
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, KeyError, ValueError) as e:
            raise MalformedInput(f"{path}: not a kmrec model file ({type(e).__name__}: {e}); "
                                 f"{expected}") from None
        name = meta.get("class") if isinstance(meta, dict) else None
        cls = ESTIMATORS.get(name) if isinstance(name, str) else None
        if cls is None:  # never an import path from the file: the allow-list only
            raise MalformedInput(f"{path}: class {name!r} is not one of {sorted(ESTIMATORS)}")
        try:
            return cls._from_state(meta, tensors, device)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
            raise MalformedInput(f"{path}: inconsistent {name} model ({type(e).__name__}: "
                                 f"{e}); {expected}") from None

    @classmethod
    def _from_state(cls, meta: dict, tensors: dict[str, torch.Tensor],
                    device: str) -> NeuralRegressor:
        # JSON has no tuples: the list-valued parameters (hidden, genres) were tuples
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"].items()}
        model = cls(**{**params, "device": device})
        f = meta["fitted"]
        model.device_ = resolve_device(device)
        model.n_users_, model.n_items_ = int(f["n_users"]), int(f["n_items"])
        model.genre_names_ = tuple(f["genre_names"])
        model.genre_table_ = tensors["genre_table"].to(model.device_)
        s = f["scale"]
        model.scale_ = RatingScale(s["min"], s["max"], s["step"])
        model.global_mean_ = float(f["global_mean"])
        model.seen_users_ = tensors["seen_users"].numpy()
        model.seen_items_ = tensors["seen_items"].numpy()
        shapes = (model.seen_users_.shape, model.seen_items_.shape,
                  tuple(model.genre_table_.shape))
        want = ((model.n_users_,), (model.n_items_,),
                (model.n_items_ + 1, len(model.genre_names_)))
        if shapes != want:
            raise ValueError(f"tensor shapes {shapes}, expected {want}")
        model.history_ = History(**f["history"])
        model.n_train_, model.n_valid_ = f["n_train"], f["n_valid"]
        net = model.net_class(model.n_users_, model.n_items_, len(model.genre_names_),
                              **model._net_params())
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        model.net_ = net.to(model.device_).eval()
        return model


class PublishedMLP000(NeuralRegressor):
    """Seed 000's network with the settings its code uses (10 epochs of batch 32, Adam 1e-3,
    no early stopping, no clipping, the 19 genre columns)."""

    net_class = PublishedMLP
    net_keys = ("user_dim", "hidden")
    name = "seed000_published_mlp"

    def __init__(self, *, epochs: int = 10, batch_size: int = 32, lr: float = 1e-3,
                 weight_decay: float = 0.0, optimizer: str = "adam",
                 patience: int | None = None, valid_fraction: float = 0.0,
                 genres: str | tuple[str, ...] = "seed000", clip: bool = False,
                 random_state: int = 0, device: str = "auto", amp: bool = False,
                 user_dim: int = 8, hidden: tuple[int, ...] = (64, 32)) -> None:
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, optimizer=optimizer, patience=patience,
                         valid_fraction=valid_fraction, genres=genres, clip=clip,
                         random_state=random_state, device=device, amp=amp,
                         user_dim=user_dim, hidden=hidden)


class AttentionMLP000(NeuralRegressor):
    """Seed 000's network as described: embeddings, self-attention, attention pooling,
    three LeakyReLU layers, dropout and weight decay; early stopping on validation RMSE."""

    net_class = AttentionMLP
    net_keys = ("dim", "heads", "hidden", "dropout")
    name = "seed000_attention_mlp"

    def __init__(self, *, epochs: int = 40, batch_size: int = 1024, lr: float = 2e-3,
                 weight_decay: float = 1e-2, optimizer: str = "adamw", patience: int | None = 3,
                 valid_fraction: float = 0.1, genres: str | tuple[str, ...] = "all",
                 clip: bool = True, random_state: int = 0, device: str = "auto",
                 amp: bool = False, dim: int = 32, heads: int = 4,
                 hidden: tuple[int, ...] = (128, 64), dropout: float = 0.1) -> None:
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, optimizer=optimizer, patience=patience,
                         valid_fraction=valid_fraction, genres=genres, clip=clip,
                         random_state=random_state, device=device, amp=amp, dim=dim,
                         heads=heads, hidden=hidden, dropout=dropout)


class HybridNN003(NeuralRegressor):
    """Seed 003's hybrid of matrix factorisation and an MLP over [user, movie, genres].

    ``sparse=True``: embedding gradients are sparse and updated by ``SparseAdam`` (lazy
    Adam: a row's moments move only in batches that contain it), the MLP by Adam;
    ``sparse=False`` is one dense Adam over everything. ``"auto"`` (default) chooses
    sparse when the tables have more than 64 rows per batch row (users + movies >
    64·batch_size): measured per epoch on one CPU thread, sparse was faster on
    ml-latest-small (10.4k rows) at batch 32–128 and slower from 256, and slower on ml-100k
    (2.6k rows) from batch 64 (``bench/bench_peers.py --cases hybrid-32``; the harness's
    batch 1,024 stays dense)."""

    SPARSE_ROWS_PER_BATCH_ROW: ClassVar[int] = 64

    def _sparse(self) -> bool:
        if self.sparse == "auto":
            return self.n_users_ + self.n_items_ > self.SPARSE_ROWS_PER_BATCH_ROW * self.batch_size
        if isinstance(self.sparse, bool):
            return self.sparse
        raise ValueError(f"sparse must be True, False or 'auto', got {self.sparse!r}")

    def _net_params(self) -> dict[str, Any]:
        return {**super()._net_params(), "sparse": self._sparse()}

    net_class = HybridNet
    net_keys = ("mf_dim", "mlp_dim", "hidden", "dropout", "sparse")
    name = "seed003_hybrid_nn"

    def __init__(self, *, epochs: int = 40, batch_size: int = 1024, lr: float = 2e-3,
                 weight_decay: float = 0.0, optimizer: str = "adam", patience: int | None = 3,
                 valid_fraction: float = 0.1, genres: str | tuple[str, ...] = "all",
                 clip: bool = True, random_state: int = 0, device: str = "auto",
                 amp: bool = False, mf_dim: int = 32, mlp_dim: int = 16,
                 hidden: tuple[int, ...] = (64, 32), dropout: float = 0.0,
                 sparse: bool | str = "auto") -> None:
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, optimizer=optimizer, patience=patience,
                         valid_fraction=valid_fraction, genres=genres, clip=clip,
                         random_state=random_state, device=device, amp=amp, mf_dim=mf_dim,
                         mlp_dim=mlp_dim, hidden=hidden, dropout=dropout, sparse=sparse)


ESTIMATORS: dict[str, type[NeuralRegressor]] = {
    c.__name__: c for c in (PublishedMLP000, AttentionMLP000, HybridNN003)
}
