"""rsmt_studio.inference: stylised transitions on MAX.

The API is `engine.TransitionEngine`, `worker.EngineWorker` and `batched`; `graphs/` holds the networks as MAX
graphs (one formulation per device), `runtime/` compiles and runs them, `builders/` makes the shipped assets.
docs/inference.md opens with a map of every file and the path from `generate` to the frames.
"""
