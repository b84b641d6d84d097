"""``module:factory`` text (``--teacher-arch``, ``--student-arch``) -> the callable it names (torch-free)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable

from .errors import EdgeKDError, first_line


def import_factory(text: str, option: str, error: type[EdgeKDError]) -> Callable[..., Any]:
    """Import ``module:function``; the working directory is searched too (as ``python -m`` does). Errors name
    ``option`` and are raised as ``error``."""
    mod_name, _, fn_name = str(text).partition(":")
    if not mod_name or not fn_name:
        raise error(f"bad {option} {text!r}", "write module:factory, e.g. mypkg.models:resnet8")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as e:
        raise error(f"{option} {text} cannot be imported: {first_line(e)}",
                    "check the module is on PYTHONPATH (or in the working directory) and defines the factory") from None
    if not callable(fn):
        raise error(f"{option} {text} is not callable", "name a function that returns the model")
    return fn
