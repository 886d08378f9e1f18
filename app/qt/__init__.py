"""The studio window: every Qt (PySide6, pyqtgraph) widget, dock, panel, dialog, worker-thread relay and the
QSettings store. The models they display are plain Python in `app/models/`."""
