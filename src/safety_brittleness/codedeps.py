"""Source files of the package that a module depends on, so rules rerun when that code changes."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "safety_brittleness"


def _module_file(package_root: Path, module: str) -> Path | None:
    parts = module.split(".")[1:]
    if not parts:
        return package_root / "__init__.py"
    relative = Path(*parts)
    for candidate in (package_root / relative.with_suffix(".py"), package_root / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith(PACKAGE))
    return found


def module_files(module: str, package_root: str | Path) -> list[str]:
    """Return the package source files that `module` imports, directly or not, itself included.

    Imports are read from the source with `ast`, so nothing is executed. The package's
    `__init__.py` is always included.
    """
    package_root = Path(package_root)
    pending = [module]
    seen: set[str] = set()
    files: set[Path] = {package_root / "__init__.py"}
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(package_root, name)
        if path is None:
            continue
        files.add(path)
        pending.extend(_imported_modules(path))
    return sorted(str(path) for path in files)
