"""Fixtures of the integration tests: a real SLURM cluster on this machine (`tests/slurm_cluster.py`)."""

import os
import subprocess

import pytest
from slurm_cluster import ClusterUnavailable, SlurmCluster


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running two-node SLURM cluster (n1, n2) with SLURM_CONF pointing at it, for the session.

    Skips where none can start (not root, no apt-get, the install fails, the daemons do not come
    up); under CI=true that is a failure instead: CI runs as root and must run these tests.
    """
    try:
        cluster = SlurmCluster.start()
    except (ClusterUnavailable, OSError, subprocess.SubprocessError) as e:
        if in_ci():
            pytest.fail(f"CI is set, but no SLURM cluster could start: {e}", pytrace=False)
        pytest.skip(f"no SLURM cluster on this machine: {e}")
    saved = {key: os.environ.get(key) for key in cluster.env}
    os.environ.update(cluster.env)  # sbatch, called by the launcher in this process, finds the cluster
    try:
        yield cluster
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        cluster.stop()
