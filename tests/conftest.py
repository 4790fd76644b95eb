"""Test-session settings: one math thread per pytest worker (the suite runs with ``-n 2`` on 2 cores).

Oversubscribed OpenMP threads spin and can slow a 2-core machine down by an order of
magnitude; child processes (notebook kernels, Ray workers) inherit the environment.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", os.environ.get("NUMBA_NUM_THREADS", "2"))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

torch.set_num_threads(1)
