"""Asset builders: the style bank, the default scene and the shipped compiled models (`python -m
rsmt_studio.inference.builders.<name>`; not imported by the app)."""
