"""The history log: every answer in one SQLite database of the user's, searchable, with the
threads resumed from it after a restart (``log``: the kernel's side; ``store``: the database;
``records``, ``secrets``, ``export``)."""
