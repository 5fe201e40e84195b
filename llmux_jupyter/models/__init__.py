"""What a model is and where it comes from: specs, sources, the catalog, readers of GGUF and
safetensors headers, the cache folder and API-key lookup."""
