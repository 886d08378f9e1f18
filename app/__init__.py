"""rsmt_studio.app: what a user runs. `cli/` the `rsmt-studio` command line, `eval/` the eval command's
benchmark and judges, `models/` the studio's state in plain Python, `qt/` the studio window (the only folder
that imports Qt). Map: docs/app.md."""
