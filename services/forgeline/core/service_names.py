"""The names of Forgeline's service apps, importable without loading the settings model.

`forgeline --help` builds its `--service` choice from these; the settings module reads
the same tuple, so the command line and the server cannot disagree.
"""

SERVICE_NAMES = ("repo", "build", "deploy", "pipeline")
