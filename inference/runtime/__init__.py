"""Running compiled graphs: devices, the compile cache and its child process, shipped compiled models, sessions,
captured device graphs (docs/inference.md has the map)."""
