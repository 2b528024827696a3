import glob
import importlib
import itertools
import os
import sys

import pytest

from modules import build_module_in

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml")))
SPEC_NAMES = [os.path.splitext(os.path.basename(p))[0] for p in SPECS]


def generated(name: str):
    """The committed module of a catalog spec (test_build checks it is what the spec builds)."""
    return importlib.import_module(f"generated.{name}")


def small_dims(module) -> dict[str, int]:
    """Small sizes for every dim of a generated cell (clockwork's `modules` must divide hidden)."""
    return {d: 4 if d == "modules" else 3 if d == "proj" else 5 for d in module.Cell.DIMS}


@pytest.fixture(params=SPEC_NAMES)
def catalog_module(request):
    return generated(request.param)


@pytest.fixture
def build_module(tmp_path):
    """build_module(text_or_path, name=None) -> (built, module): the spec compiled and its module
    imported from a fresh folder under tmp_path (tests/modules.py)."""
    folders = itertools.count()

    def build(text_or_path, name=None):
        return build_module_in(tmp_path / f"module{next(folders)}", text_or_path, name)

    return build
