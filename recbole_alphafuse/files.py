"""Writing files so that a reader never sees one half-written."""

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def written_atomically(path, mode="wb"):
    """Open a temp file beside ``path`` for writing and rename it to ``path`` once the block has
    finished; if the block fails (or the process is interrupted), ``path`` is left as it was and
    the temp file is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
