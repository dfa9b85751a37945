"""What the benchmark scripts share: the machine they ran on and how they write their table."""

import platform
from pathlib import Path

import torch


def machine():
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def write_report(path, lines):
    """Write the markdown ``lines`` to ``path`` and print them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
