"""Model files: skops format, a sha256 checked before every load, and an explicit type allowlist.

skops rebuilds objects without running pickled code, but it still refuses types it does
not know unless told to trust them. We never pass ``trusted=True``: the file's unknown
types are listed first and each one must be on :data:`TRUSTED_TYPES`, or loading stops.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from circuits.errors import PermanentError

log = logging.getLogger(__name__)

#: Types outside skops' default trust that our trained models are made of (the estimators
#: FLAML and the baseline engine pick). Anything else in a model file is refused.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "collections.OrderedDict",
        "numpy.dtype",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBClassifier",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.loss.HalfBinomialLoss",
    }
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(model: Any, directory: Path, stem: str) -> tuple[Path, str]:
    """Write ``model`` as ``directory/stem.skops`` atomically; return (path, sha256)."""
    import skops.io as sio

    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    os.close(fd)
    try:
        sio.dump(model, tmp)
        path = directory / f"{stem}.skops"
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path, sha256_file(path)


def load_model(path: Path, expected_sha256: str) -> Any:
    """Load a model file after checking its checksum and that every type in it is trusted."""
    import skops.io as sio

    if not path.is_file():
        raise PermanentError(f"model file {path} is missing")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise PermanentError(
            f"model file {path} fails its checksum (expected sha256 {expected_sha256[:12]}..., "
            f"found {actual[:12]}...): refusing to load a changed file"
        )
    data = path.read_bytes()  # the bytes checked are the bytes loaded
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise PermanentError(f"model file {path} changed while it was being read")
    untrusted = sio.get_untrusted_types(data=data)
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise PermanentError(f"model file {path} holds types that are not trusted: {', '.join(refused)}")
    return sio.loads(data, trusted=list(untrusted))
