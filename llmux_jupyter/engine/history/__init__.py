"""The history log: every answer in one SQLite database of the user's, searchable, with the
threads resumed from it after a restart."""

from .log import DATABASE, History, data_dir
from .records import Exchange, LoggedThread, Origin
from .secrets import SecretFilter
from .store import HistoryStore

__all__ = [
    "DATABASE",
    "Exchange",
    "History",
    "HistoryStore",
    "LoggedThread",
    "Origin",
    "SecretFilter",
    "data_dir",
]
