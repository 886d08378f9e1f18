"""The studio's models, plain Python (no Qt at import time): what the window shows and edits, each with events
named for what happened (`events.py`). The Qt views in `app/qt/` display them and forward the user's edits."""
