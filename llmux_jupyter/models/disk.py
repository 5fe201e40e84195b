"""What the disk holds for llmux: each model's own files, and the caches of files derived from
models (e.g. GGUF files converted for transformers, the Hugging Face hub's downloads of
registered models), entry by entry, with the registered models each entry belongs to.

A cache plugs in with one declaration, ``register_cache(FolderCache("map results", "map"))``:
every entry of ``<llmux cache>/map`` is then listed by ``%llm du`` and cleared by
``%llm cache clear --all``; give ``owners`` to tie entries to models (then an entry no model
owns is an orphan, and ``%llm cache clear NAME`` clears that model's entries).

Clearing never deletes a model's own files: not an entry that holds a registered model's file
or folder, and a Hugging Face hub entry only when every registered model using it is named.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CacheError
from .cache import cache_root
from .gguf_split import gguf_parts
from .sources import FileSource, HuggingFaceSource
from .spec import ModelSpec

# Maps the entries a cache holds for the given models to their owners' names.
Owners = Callable[[Sequence[ModelSpec]], dict[Path, list[str]]]


@dataclass(frozen=True)
class ModelDisk:
    """A model's own files: where they are and their size (None: not on this machine)."""

    name: str
    source: str
    kind: str  # file, package, hf, joined or remote (the source's kind)
    path: Path | None
    size: int | None
    in_cache: bool = False  # the files are a cache entry (counted under the caches)


@dataclass(frozen=True)
class CacheEntry:
    """One deletable item of a cache (a folder or file), with the models it belongs to.

    ``shared``: it belongs to no one model by design (a result cache); ``named_only``: only
    ``%llm cache clear`` naming every one of its models deletes it (the hub's downloads);
    ``keeps``: a registered model's own files lie in it, so it is never deleted."""

    cache: str
    path: Path
    size: int
    models: tuple[str, ...] = ()
    shared: bool = False
    named_only: bool = False
    keeps: str | None = None

    @property
    def orphan(self) -> bool:
        """It belongs to no registered model (any more): safe to delete."""
        return not self.models and not self.shared and self.keeps is None


@dataclass(frozen=True)
class DiskUsage:
    """Every model's files and every cache entry."""

    models: list[ModelDisk]
    entries: list[CacheEntry]

    @property
    def model_bytes(self) -> int:
        """The models' own files on this machine, each file once (two models may share one;
        a hub download or a joined file counts under its cache)."""
        sizes = {m.path: m.size or 0 for m in self.models if not m.in_cache}
        return sum(sizes.values())

    @property
    def cache_bytes(self) -> int:
        return sum(entry.size for entry in self.entries)

    @property
    def orphan_bytes(self) -> int:
        return sum(entry.size for entry in self.entries if entry.orphan)

    def cached_for(self, name: str) -> int:
        """Bytes of the cache entries that belong to model ``name``."""
        return sum(entry.size for entry in self.entries if name in entry.models)


@dataclass
class Clearing:
    """What ``clear`` deleted, and what it kept and why."""

    freed: list[CacheEntry] = field(default_factory=list)
    kept: list[tuple[CacheEntry, str]] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return sum(entry.size for entry in self.freed)


class Cache(ABC):
    """A place where llmux (or a library it drives) keeps files derived from models."""

    name: str

    @abstractmethod
    def entries(self, specs: Sequence[ModelSpec]) -> list[CacheEntry]:
        """The entries now on disk, with their owners among ``specs``."""

    def delete(self, entry: CacheEntry) -> None:
        """Remove one entry from the disk."""
        if entry.path.is_dir() and not entry.path.is_symlink():
            shutil.rmtree(entry.path)
        else:
            entry.path.unlink(missing_ok=True)


@dataclass
class FolderCache(Cache):
    """Each file or folder inside ``<llmux cache>/<folder>`` is an entry; ``owners`` ties
    entries to models (None: the entries are shared, no model owns them)."""

    name: str
    folder: str
    owners: Owners | None = None

    def entries(self, specs: Sequence[ModelSpec]) -> list[CacheEntry]:
        root = cache_root() / self.folder
        if not root.is_dir():
            return []
        owners = self.owners(specs) if self.owners is not None else {}
        own_files = _own_files(specs)
        found = []
        for path in sorted(root.iterdir()):
            real = path.resolve()
            users = [
                name
                for name, file in own_files
                if file == real or real in file.parents or file in real.parents
            ]
            models = set(owners.get(path, ()))
            found.append(
                CacheEntry(
                    self.name,
                    path,
                    _entry_size(path),
                    tuple(sorted(models | set(users))),
                    shared=self.owners is None,
                    keeps=f"{', '.join(users)}'s own files" if users else None,
                )
            )
        return found


class HubCache(Cache):
    """The Hugging Face hub cache's repositories that registered models come from (other
    repositories there are not ours: never listed, never touched)."""

    name = "Hugging Face hub"

    def entries(self, specs: Sequence[ModelSpec]) -> list[CacheEntry]:
        users: dict[str, list[str]] = {}
        for spec in specs:
            if isinstance(spec.source, HuggingFaceSource):
                users.setdefault(spec.source.repo_id, []).append(spec.name)
        if not users:
            return []
        repos = [r for r in _hub_repos() if r.repo_type == "model" and r.repo_id in users]
        return [
            CacheEntry(
                self.name,
                repo.repo_path,
                repo.size_on_disk,
                tuple(sorted(users[repo.repo_id])),
                named_only=True,
            )
            for repo in repos
        ]

    def delete(self, entry: CacheEntry) -> None:
        """Through huggingface_hub, which keeps its cache consistent."""
        for repo in _hub_repos():
            if repo.repo_path == entry.path:
                hashes = [revision.commit_hash for revision in repo.revisions]
                _hub_scan().delete_revisions(*hashes).execute()
        if entry.path.exists():  # no revision left to name (a half-downloaded repository)
            shutil.rmtree(entry.path)


CACHES: list[Cache] = [HubCache()]


def register_cache(cache: Cache) -> Cache:
    """Make ``%llm du`` list ``cache`` and ``%llm cache clear`` clear it."""
    if all(known.name != cache.name for known in CACHES):
        CACHES.append(cache)
    return cache


def disk_usage(specs: Sequence[ModelSpec]) -> DiskUsage:
    """Every model's files and every cache entry; never touches the network."""
    models = [_model_disk(spec) for spec in specs]
    entries = [entry for cache in CACHES for entry in cache.entries(specs)]
    return DiskUsage(models, entries)


def plan_clearing(
    usage: DiskUsage,
    names: Iterable[str] = (),
    *,
    orphans: bool = False,
    everything: bool = False,
) -> Clearing:
    """Which entries a clear deletes: those of the ``names`` (an entry the hub cache shares
    with other models only when they are named too), or the orphans, or ``everything`` but the
    hub's downloads; entries holding a model's own files are kept. Nothing is deleted here."""
    named = set(names)
    plan = Clearing()
    for entry in usage.entries:
        if named:
            chosen = bool(named & set(entry.models))
        else:
            chosen = entry.orphan if orphans else everything and not entry.named_only
        if not chosen:
            continue
        others = sorted(set(entry.models) - named)
        if entry.keeps is not None:
            plan.kept.append((entry, f"it holds {entry.keeps}"))
        elif named and entry.named_only and others:
            plan.kept.append((entry, f"{', '.join(others)} use it too: name them as well"))
        else:
            plan.freed.append(entry)
    return plan


def clear(plan: Clearing) -> None:
    """Delete the planned entries; raises CacheError naming the one the system refused."""
    caches = {cache.name: cache for cache in CACHES}
    for entry in plan.freed:
        try:
            caches[entry.cache].delete(entry)
        except OSError as error:
            raise CacheError(
                f"Could not delete {entry.path} ({error.strerror or error}): check its "
                "permissions, or delete it yourself."
            ) from None


def _model_disk(spec: ModelSpec) -> ModelDisk:
    path = spec.source.local_path()
    size = _files_size(path) if path is not None else None
    source = spec.source
    return ModelDisk(spec.name, source.describe(), source.kind, path, size, source.in_cache)


def _own_files(specs: Sequence[ModelSpec]) -> list[tuple[str, Path]]:
    """The registered models whose own files are a local path (a user's file or folder)."""
    found = []
    for spec in specs:
        if isinstance(spec.source, FileSource):
            found.append((spec.name, Path(spec.source.path).expanduser().resolve()))
    return found


def _files_size(path: Path) -> int:
    """Bytes of a model's file (every part of a split GGUF), or of every file under its folder
    (links followed: the hub's snapshots link to its blobs)."""
    if path.is_file():
        return sum(part.stat().st_size for part in gguf_parts(path))
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _entry_size(path: Path) -> int:
    """Bytes a cache entry takes itself (links not followed: what deleting it frees)."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _hub_scan():  # type: ignore[no-untyped-def]
    """The hub cache where huggingface_hub looks now (HF_HOME, HF_HUB_CACHE)."""
    from huggingface_hub import constants, scan_cache_dir

    return scan_cache_dir(constants.HF_HUB_CACHE)


def _hub_repos() -> list:  # type: ignore[type-arg]
    from huggingface_hub.errors import CacheNotFound

    try:
        return list(_hub_scan().repos)
    except CacheNotFound:
        return []
