import os, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run_isonb(*args, env=None, cwd=None):
    "Run the installed `isonb` command; return the CompletedProcess."
    e = {**os.environ, **(env or {})}
    return subprocess.run([str(BIN/'isonb'), *map(str, args)], capture_output=True, text=True, env=e, cwd=cwd or ROOT)


@pytest.fixture
def isonb():
    return run_isonb
