"""Built-in backends. Each module imports its heavy library only inside ``load``."""
