"""The scale benchmark's peak-memory figure is the measured command's own."""

import os
import sys
from pathlib import Path

from bench.scale import run

ALLOCATE = "import numpy as np; a = np.ones(200 * 2**20 // 8); print(a.sum())"


def test_a_child_s_peak_is_its_own_not_the_benchmark_s(tmp_path: Path) -> None:
    held = bytearray(600 * 2**20)  # the benchmark holding a big book, touched so it is resident
    held[::4096] = b"\x01" * len(held[::4096])
    ran = run([sys.executable, "-c", ALLOCATE], dict(os.environ), tmp_path)
    assert ran.stdout.strip() == str(float(200 * 2**20 // 8))
    # ~200 MB of array plus the interpreter and NumPy; nothing of the 600 MB held here.
    assert 200 < ran.peak_mb < 450, ran.peak_mb
    del held
