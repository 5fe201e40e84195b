"""Files from the Hugging Face hub, fast to fail: the local cache first; then, unless
``HF_HUB_OFFLINE`` is set, one quick request to the hub before downloading. Left to itself,
``hf_hub_download`` retries an unreachable hub for ~25 s, printing each retry, before it
says the file is not cached; here an unreachable hub, a missing file or repository and a
gated repository each fail within seconds with one message that says what to do."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from ..errors import SourceNotFound
from .gguf_split import part_names

PROBE_TIMEOUT_S = 5.0
TOKEN_HINT = "the HF_TOKEN environment variable, or `hf auth login` (huggingface-cli login)"


def hub_file(
    repo_id: str, filename: str, revision: str | None, what: str, download: bool = True
) -> Path:
    """The local path of ``filename`` (with the other parts of a split GGUF next to it);
    ``download=False`` looks in the cache only."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    def fetch(name: str, local_only: bool) -> Path:
        return Path(hf_hub_download(repo_id, name, revision=revision, local_files_only=local_only))

    def probe() -> None:
        url = hf_hub_url(repo_id, filename, revision=revision)
        get_hf_file_metadata(url, timeout=PROBE_TIMEOUT_S)

    paths = []
    for name in part_names(filename):
        with _hub_errors(repo_id, what if name == filename else f"{what} (its part {name})"):
            paths.append(
                _cached_or(partial(fetch, name, True), probe, partial(fetch, name, False), download)
            )
    return paths[0]


def hub_snapshot(repo_id: str, revision: str | None, what: str, download: bool = True) -> Path:
    """The local folder of a whole repository (snapshot_download fails fast by itself);
    ``download=False`` looks in the cache only."""
    from huggingface_hub import snapshot_download

    def fetch(local_only: bool) -> Path:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=local_only))

    with _hub_errors(repo_id, what):
        return _cached_or(partial(fetch, True), lambda: None, partial(fetch, False), download)


def _cached_or(
    cached: Callable[[], Path],
    probe: Callable[[], None],
    fetch: Callable[[], Path],
    download: bool,
) -> Path:
    """From the cache; else, online and allowed to download, ``probe`` then ``fetch``."""
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return cached()
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE or not download:
            raise
    probe()
    return fetch()


@contextmanager
def _hub_errors(repo_id: str, what: str) -> Iterator[None]:
    """Turn what huggingface_hub raises into one SourceNotFound that says what to do."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except GatedRepoError:
        message = (
            f"{what} is in a gated repository: accept its terms on the hub's page of {repo_id}, "
            f"then give this kernel a token: {TOKEN_HINT}."
        )
    except RepositoryNotFoundError:
        message = (
            f"The hub has no repository {repo_id!r}, or it is private: check the name, or give "
            f"this kernel a token: {TOKEN_HINT}."
        )
    except RevisionNotFoundError:
        message = f"{what}: the repository has no such revision; check --revision."
    except LocalEntryNotFoundError as error:
        if not constants.HF_HUB_OFFLINE:
            message = _unreachable(what, error)
        else:
            message = (
                f"{what} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: unset it "
                "to download, or copy the cache from a machine that has the file."
            )
    except EntryNotFoundError:
        message = f"{what}: the repository has no such file; check --file."
    except Exception as error:  # the network's many kinds of failure: one message
        message = _unreachable(what, error)
    else:
        return
    raise SourceNotFound(message) from None


def _unreachable(what: str, error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (
        f"Could not get {what} from the Hugging Face hub or its cache "
        f"({type(error).__name__}: {lines[0] if lines else ''}). Check the repo and file "
        "names, or download it where the hub is reachable and copy the cache."
    )
