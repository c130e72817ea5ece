"""Imports go one way: no module of the harness imports a module from a layer above its own.

The data flows dataset -> submission -> worker -> records -> constraints -> leaderboard/report, and
the command line sits on top. Every ``import`` and ``from ... import`` of every module is read from
its source (those inside functions too), mapped to the part of the harness it names, and checked
against the layer order below. Parts in one layer may import each other; a cycle between two parts
is refused as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "harness"

# Lowest first. A part may import parts of its own layer or of any layer before it.
LAYERS: list[set[str]] = [
    {"errors", "atomic", "yaml_schema", "imresize", "footnotes", "texttable"},
    {"provenance", "protocols", "data", "metrics", "timing", "integrity", "complexity", "models", "cells"},
    {"submissions"},
    {"zoo"},
    {"runner", "constraints", "verdicts", "comparison"},
    {"catalog"},
    {"leaderboard", "training"},
    {"terminal_summary", "webreport", "package"},
    {"commands", "cli"},
]
RANK = {part: index for index, layer in enumerate(LAYERS) for part in layer}

# The runner's modules, lowest first, by the same rule: each job over the ones it uses. At the
# bottom the plain parts (cache, schema, scheduling, ...); then the worker and the ways to run it
# (a process, a sandbox, lanes, Ray, in process); the entries; the steps of a run; the coordinator
# that orders them; and the package, which builds the run document.
RUNNER = HARNESS / "runner"
RUNNER_LAYERS: list[set[str]] = [
    {
        "schema",
        "cache",
        "dither",
        "forward",
        "device_sharing",
        "sandbox",
        "shared_data",
        "cpu_usage",
        "output_slot",
    },
    {"scheduling", "fan_out", "progress", "messages", "settings", "audit"},
    {"worker"},
    {"worker_main", "process", "sandboxed"},
    {"lanes", "in_process", "ray_lanes", "scorer"},
    {"entries", "executors"},
    {"timing_loop", "records", "cache_lookup", "worker_pool"},
    {"accuracy_pass", "performance_pass"},
    {"coordinator"},
    {"__init__"},
]
RUNNER_RANK = {module: index for index, layer in enumerate(RUNNER_LAYERS) for module in layer}


def _part(module: str) -> str | None:
    """``harness.x.y`` -> ``x``; None for the package itself and for other packages."""
    pieces = module.split(".")
    if pieces[0] != "harness" or len(pieces) < 2:
        return None
    return pieces[1]


def _module_name(path: Path) -> str:
    relative = path.relative_to(HARNESS.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file of ``module``, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # `from harness import zoo` names the part in the alias (REPO_ROOT is no part).
            if name == "harness":
                found += [
                    (node.lineno, f"harness.{alias.name}")
                    for alias in node.names
                    if (HARNESS / alias.name).is_dir() or (HARNESS / f"{alias.name}.py").is_file()
                ]
    return found


def _edges() -> list[tuple[str, int, str, str]]:
    """(file, line, importing part, imported part) for every import between two parts."""
    edges = []
    for path in sorted(HARNESS.rglob("*.py")):
        module = _module_name(path)
        importer = _part(module)
        for line, name in _imports(path, module):
            imported = _part(name)
            if importer and imported and imported != importer:
                edges.append((str(path.relative_to(HARNESS.parent)), line, importer, imported))
    return edges


def test_every_part_has_a_layer() -> None:
    parts = {path.stem if path.is_file() else path.name for path in HARNESS.iterdir()}
    parts = {part for part in parts if not part.startswith("_") and part != "py"}
    missing = sorted(part for part in parts if part not in RANK)
    assert not missing, f"give these parts of harness/ a layer in {__file__}: {missing}"


def test_no_import_goes_up_a_layer() -> None:
    upward = [
        f"{where}:{line}: {importer} (layer {RANK[importer]}) imports {imported} (layer {RANK[imported]})"
        for where, line, importer, imported in _edges()
        if RANK[imported] > RANK[importer]
    ]
    assert not upward, "\n".join(upward)


def test_no_two_parts_import_each_other() -> None:
    pairs = {(importer, imported) for _, _, importer, imported in _edges()}
    cycles = sorted({tuple(sorted(pair)) for pair in pairs if pair[::-1] in pairs})
    assert not cycles, f"parts that import each other: {cycles}"


def _runner_edges() -> list[tuple[str, int, str, str]]:
    """(file, line, importing module, imported module) for every import between two runner modules
    (``from harness.runner import messages`` names the module in the alias)."""
    edges = []
    for path in sorted(RUNNER.glob("*.py")):
        found = list(_imports(path, _module_name(path)))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "harness.runner":
                found += [(node.lineno, f"harness.runner.{alias.name}") for alias in node.names]
        for line, name in found:
            pieces = name.split(".")
            if pieces[:2] == ["harness", "runner"] and len(pieces) > 2 and pieces[2] in RUNNER_RANK:
                edges.append((path.name, line, path.stem, pieces[2]))
    return edges


def test_every_runner_module_has_a_layer() -> None:
    missing = sorted(path.stem for path in RUNNER.glob("*.py") if path.stem not in RUNNER_RANK)
    assert not missing, (
        f"give these modules of harness/runner/ a layer in RUNNER_LAYERS of {__file__}: {missing}"
    )


def test_no_runner_module_imports_one_above_its_layer() -> None:
    upward = [
        f"runner/{where}:{line}: {importer} (layer {RUNNER_RANK[importer]}) imports {imported} "
        f"(layer {RUNNER_RANK[imported]})"
        for where, line, importer, imported in _runner_edges()
        if RUNNER_RANK[imported] > RUNNER_RANK[importer]
    ]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from harness.zoo import resolve\n", ["harness.zoo"]),
        ("def f():\n    from harness import zoo\n", ["harness", "harness.zoo"]),
        ("from .cache import key\n", ["harness.runner.cache"]),
        ("from ..errors import HarnessError\n", ["harness.errors"]),
    ],
)
def test_imports_are_found_inside_functions_and_relative(
    tmp_path: Path, source: str, expected: list[str]
) -> None:
    # The check itself must see every kind of import it is meant to police.
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    assert [name for _, name in _imports(probe, "harness.runner.probe")] == expected
