"""`rsmt-studio eval`'s judges (no Qt): `benchmark.py` (held-out windows, the model runner, metrics against the
baselines), `style.py` (the style scenarios, scored by the independent judges), `clips.py` (`--clips`: a user's
own clips on any rig). The command's arguments and run are `app/cli/eval.py`."""
