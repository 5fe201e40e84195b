"""The host: accelerators and device choice, RAM/VRAM and this process's memory. Shared by the
engine and the backends."""
