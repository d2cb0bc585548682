"""Loads kubernetes-asyncio class by class as it is used, not all of it at the first import.
Owns nothing else: the adapters use the library exactly as before.

The library's package initialisers (the top package, `client`, `client.api`, `client.models`)
import every API and model class it was generated with: some 850 modules and ~30 MB of a
running agent, and most of its start-up, for the handful of classes cvsync uses. Here those
four initialisers are read instead of run: each name they would import is imported the first
time it is looked up (PEP 562 module `__getattr__`). If one holds any other statement, or
cannot be read, it runs as written.
"""

from __future__ import annotations
import __future__

import ast
import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

LIBRARY = "kubernetes_asyncio"
ON_DEMAND_PACKAGES = frozenset(
    {LIBRARY, f"{LIBRARY}.client", f"{LIBRARY}.client.api", f"{LIBRARY}.client.models"}
)


@dataclass
class Exports:
    """What a package initialiser makes available: names from its submodules, and constants."""

    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, attribute)
    submodules: dict[str, str] = field(default_factory=dict)  # name -> module
    constants: dict[str, Any] = field(default_factory=dict)  # __version__, __all__, ...


def read_exports(package: str, source: str) -> Exports | None:
    """The exports of `package`'s initialiser when it is made only of imports from the library
    and constants; None when it does anything else, so that it runs as written."""
    exports = Exports()
    for statement in ast.parse(source).body:
        match statement:
            case ast.Expr(value=ast.Constant(value=str())):
                pass  # the docstring
            case ast.ImportFrom(module="__future__"):
                for alias in statement.names:  # a future import binds its feature's name too
                    exports.constants[alias.asname or alias.name] = getattr(__future__, alias.name)
            case ast.ImportFrom(module=str(module), level=0) if module.startswith(f"{LIBRARY}."):
                for alias in statement.names:
                    if alias.name == "*":
                        return None
                    exports.names[alias.asname or alias.name] = (module, alias.name)
                # Importing package.child.x binds `child` on the package as well.
                if module.startswith(f"{package}."):
                    child = module.removeprefix(f"{package}.").split(".")[0]
                    exports.submodules.setdefault(child, f"{package}.{child}")
            case ast.Import(names=names) if all(a.name.startswith(f"{LIBRARY}.") for a in names):
                for alias in names:
                    exports.submodules[alias.asname or alias.name.rsplit(".", 1)[1]] = alias.name
            case ast.Assign(targets=[ast.Name(id=str(name))], value=value):
                try:
                    exports.constants[name] = ast.literal_eval(value)
                except ValueError:
                    return None
            case _:
                return None
    return exports


class OnDemandPackage(importlib.abc.Loader):
    """Makes a package whose names are imported when first looked up."""

    def __init__(self, real: importlib.machinery.ModuleSpec) -> None:
        self._real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        exports = self._exports()
        if exports is None:
            assert self._real.loader is not None
            self._real.loader.exec_module(module)
            return
        module.__dict__.update(exports.constants)
        module.__dict__["__getattr__"] = _importer(module, exports)
        module.__dict__["__dir__"] = lambda: sorted(
            {*module.__dict__, *exports.names, *exports.submodules}
        )

    def _exports(self) -> Exports | None:
        try:
            source = Path(str(self._real.origin)).read_text(encoding="utf-8")
            return read_exports(self._real.name, source)
        except (OSError, SyntaxError, UnicodeDecodeError):
            return None


def _importer(module: ModuleType, exports: Exports) -> Any:
    def look_up(name: str) -> Any:
        if name in exports.names:
            where, attribute = exports.names[name]
            value = getattr(importlib.import_module(where), attribute)
        elif name in exports.submodules:
            value = importlib.import_module(exports.submodules[name])
        else:
            raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
        setattr(module, name, value)  # looked up once: later reads skip this function
        return value

    return look_up


class OnDemandFinder(importlib.abc.MetaPathFinder):
    """Finds the library's eager packages as the path would, with the on-demand loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in ON_DEMAND_PACKAGES:
            return None
        real = importlib.machinery.PathFinder.find_spec(fullname, path)
        if real is None or real.origin is None or real.submodule_search_locations is None:
            return None
        spec = importlib.machinery.ModuleSpec(
            fullname, OnDemandPackage(real), origin=real.origin, is_package=True
        )
        spec.submodule_search_locations = real.submodule_search_locations
        spec.has_location = True
        return spec


def load_kubernetes_client_on_demand() -> None:
    """From now on, kubernetes-asyncio's packages load their classes as they are used. Has no
    effect on packages already imported, nor when called again."""
    if not any(isinstance(finder, OnDemandFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, OnDemandFinder())
