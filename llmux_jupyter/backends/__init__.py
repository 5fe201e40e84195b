"""Backends: the contract (``base``), the registry of backend classes by name (built-ins,
``@register_backend`` and entry points), and the built-in backends. Each imports its heavy
library only inside ``load``; none imports the engine or the front ends."""
