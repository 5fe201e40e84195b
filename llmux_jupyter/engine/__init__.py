"""The engine: the multiplexer (manager, memory budgets, keep-alive timers, events) and the
jobs it runs (chat, transcription, speech) over conversations. It drives the backends and
knows nothing of IPython."""
