"""Building a submission's architecture (no weights) from its manifest's ``model`` section.

Team code is imported as written: with ``model.root`` first on ``sys.path``, a model file inside the
root is imported under its dotted package name (``models/team09/architecture.py`` ->
``models.team09.architecture``), so both absolute (``from models.basicblock import ...``) and relative
(``from . import block``) imports work. Every failure names the manifest and the field.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import sysconfig
import traceback
from pathlib import Path
from types import ModuleType

from torch import nn

from harness.errors import HarnessError
from harness.submissions.manifest import Submission

# Import name -> pip package, for dependencies some submissions need and the harness does not.
KNOWN_OPTIONAL_DEPENDENCIES: dict[str, str] = {
    "einops": "einops",
    "timm": "timm",
    "torchvision": "torchvision",
    "cv2": "opencv-python-headless",
    "scipy": "scipy",
    "thop": "thop",
    "mmcv": "mmcv-lite",
    "mmengine": "mmengine",
    "basicsr": "basicsr",
}
# Packages that compile CUDA kernels when installed: there is no install for a machine without CUDA.
CUDA_ONLY_PACKAGES: dict[str, str] = {"mamba_ssm": "mamba-ssm", "selective_scan": "selective-scan"}
# Modules that an installed package imports but a newer release of another package removed.
REMOVED_MODULES: dict[str, str] = {
    "torchvision.transforms.functional_tensor": "basicsr 1.4.2 (the newest on PyPI) imports "
    "torchvision.transforms.functional_tensor, which torchvision 0.17 removed: basicsr cannot be "
    "imported with this torchvision",
}
_LIBRARY_ROOTS = tuple(
    {Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")}
)
# Those installed by the harness's own `zoo` extra.
_ZOO_EXTRA = {"einops", "timm", "torchvision", "mmcv", "mmengine", "basicsr"}


def build_model(submission: Submission) -> nn.Module:
    """Import the submission's model class and construct it with its kwargs, in eval mode."""
    module = import_model_module(submission)
    model_class = _find_class(submission, module)
    kwargs = dict(submission.model.kwargs)
    call = f"{submission.model.class_name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    try:
        inspect.signature(model_class).bind(**kwargs)
    except TypeError as error:
        raise submission.error("model.kwargs", f"{call} is not a valid call: {error}") from None
    except ValueError:
        pass  # no introspectable signature: the call below reports any problem
    try:
        model = model_class(**kwargs)
    except Exception as error:
        raise submission.error("model.class", f"{call} failed: {summarise_exception(error)}") from error
    if not isinstance(model, nn.Module):
        returned = type(model).__name__
        raise submission.error("model.class", f"{call} returned {returned}, not a torch.nn.Module")
    if submission.model.before_load is not None:
        _call_method(submission, model, submission.model.before_load, "model.before_load")
    return model.eval()


def run_after_load(submission: Submission, model: nn.Module) -> nn.Module:
    """Call the methods the official script calls after loading (``model.after_load`` on the model,
    ``model.after_load_modules`` on every submodule that has it); they may change the structure."""
    spec = submission.model
    calls: list[tuple[str, nn.Module]] = []
    if spec.after_load is not None:
        calls.append((spec.after_load, model))
    if spec.after_load_modules is not None:
        found = [m for m in model.modules() if callable(getattr(m, spec.after_load_modules, None))]
        if not found:
            raise submission.error(
                "model.after_load_modules", f"no submodule has {spec.after_load_modules}()"
            )
        calls += [(spec.after_load_modules, module) for module in found]
    for method, owner in calls:
        _call_method(submission, owner, method, "model.after_load")
    return model.eval()


def _call_method(submission: Submission, owner: nn.Module, method: str, field_name: str) -> None:
    """Call ``owner.<method>()``; a missing or failing method is an error naming the field."""
    function = getattr(owner, method, None)
    if not callable(function):
        raise submission.error(field_name, f"{type(owner).__name__} has no method {method}()")
    try:
        function()
    except Exception as error:
        message = f"{type(owner).__name__}.{method}() failed: {summarise_exception(error)}"
        raise submission.error(field_name, message) from error


def import_model_module(submission: Submission) -> ModuleType:
    """Import the module that defines the submission's model (``model.module`` or ``model.file``)."""
    spec = submission.model
    if spec.root is not None:
        _put_first_on_path(spec.root)
    field_name = "model.module" if spec.module else "model.file"
    try:
        if spec.module:
            if spec.root is not None:
                _check_package_source(submission, spec.module.split(".")[0], spec.root)
            return importlib.import_module(spec.module)
        assert spec.file is not None
        return _import_file(submission, spec.file, spec.root)
    except HarnessError:
        raise
    except ModuleNotFoundError as error:
        if spec.module and error.name and (spec.module + ".").startswith(error.name + "."):
            raise submission.error("model.module", f"no module named {error.name!r}") from None
        message = f"importing {spec.module or spec.file} failed: {summarise_exception(error)}"
        raise submission.error(field_name, message + _missing_module_hint(submission, error.name)) from error
    except Exception as error:
        message = f"importing {spec.module or spec.file} failed: {summarise_exception(error)}"
        raise submission.error(field_name, message) from error


def summarise_exception(error: BaseException) -> str:
    """``Type: first line of message (at file:line)``, naming the innermost frame of the team's code.

    When the error was raised inside an installed library (torch, timm), the library's frame follows
    the team's: ``(at team.py:40, in .../torch/cuda/__init__.py:591)``.
    """
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{type(error).__name__}: {first_line} (at {error.filename}:{error.lineno})"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith("<")]
    if not frames:
        return f"{type(error).__name__}: {first_line}"
    own = [f for f in frames if not _is_library(f.filename)]
    where = f"{own[-1].filename}:{own[-1].lineno}" if own else ""
    if not own or own[-1] is not frames[-1]:
        inner = f"{frames[-1].filename}:{frames[-1].lineno}"
        where = f"{where}, in {inner}" if where else inner
    return f"{type(error).__name__}: {first_line} (at {where})"


def _is_library(filename: str) -> bool:
    """Installed packages, the standard library and the harness's own loader are not the team's code."""
    path = Path(filename).resolve()
    return path == Path(__file__).resolve() or any(path.is_relative_to(root) for root in _LIBRARY_ROOTS)


def _missing_module_hint(submission: Submission, missing: str | None) -> str:
    if not missing:
        return ""
    top = missing.split(".")[0]
    if missing in REMOVED_MODULES:
        return f"; {REMOVED_MODULES[missing]}"
    if top in CUDA_ONLY_PACKAGES:
        package = CUDA_ONLY_PACKAGES[top]
        return (
            f"; this submission needs {package}, which builds CUDA kernels on install (a CUDA machine only)"
        )
    if top in submission.extra_requires or top in KNOWN_OPTIONAL_DEPENDENCIES:
        package = KNOWN_OPTIONAL_DEPENDENCIES.get(top, top)
        extra = " (or pip install 'esr-harness[zoo]')" if top in _ZOO_EXTRA else ""
        return f"; this submission needs {package}: pip install {package}{extra}"
    if submission.model.root is None:
        return f"; if {top!r} is part of the submission's code, set model.root to the folder that contains it"
    return ""


def _put_first_on_path(root: Path) -> None:
    """Put ``root`` first on ``sys.path`` and leave it there: team code may import lazily later."""
    entry = str(root)
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)


def _dotted_name(file: Path, root: Path | None) -> str | None:
    """``models.x.y`` for ``root/models/x/y.py``; None when the file is outside root or not importable so."""
    if root is None:
        return None
    try:
        parts = file.resolve().with_suffix("").relative_to(root.resolve()).parts
    except ValueError:
        return None
    return ".".join(parts) if parts and all(part.isidentifier() for part in parts) else None


def _import_file(submission: Submission, file: Path, root: Path | None) -> ModuleType:
    if not file.is_file():
        raise submission.error("model.file", f"{file} not found")
    dotted = _dotted_name(file, root)
    if dotted is not None:
        assert root is not None
        _check_package_source(submission, dotted.split(".")[0], root)
        module = importlib.import_module(dotted)
        if module.__file__ is None or Path(module.__file__).resolve() != file.resolve():
            raise submission.error(
                "model.file", f"module {dotted!r} is already imported from {module.__file__}, not {file}"
            )
        return module
    digest = hashlib.sha1(str(file.resolve()).encode("utf-8")).hexdigest()[:12]
    name = f"esr_submission_{re.sub(r'[^0-9A-Za-z_]', '_', file.stem)}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise submission.error("model.file", f"{file} cannot be imported as Python code")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it, as a normal import does (dataclasses need it)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _check_package_source(submission: Submission, package: str, root: Path) -> None:
    """Refuse to mix two repositories that both define the same top-level package (``models``)."""
    loaded = sys.modules.get(package)
    if loaded is None or not (root / package).exists():
        return
    locations = [Path(p).resolve() for p in getattr(loaded, "__path__", [])]
    if loaded.__file__:
        locations.append(Path(loaded.__file__).resolve().parent)
    if not any(location == root.resolve() / package for location in locations):
        where = ", ".join(str(location) for location in locations) or "elsewhere"
        raise submission.error(
            "model.root",
            f"package {package!r} is already imported from {where}; "
            f"one run cannot mix two repositories that both define {package!r}",
        )


def _find_class(submission: Submission, module: ModuleType) -> type:
    name = submission.model.class_name
    found = getattr(module, name, None)
    if found is not None and callable(found):
        return found
    classes = sorted(
        attr
        for attr, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, nn.Module) and not attr.startswith("_")
    )
    close = _close_names(name, classes)
    if close:
        hint = f" (did you mean {', '.join(close)}?)"
    elif classes:
        hint = f" (its nn.Module classes: {', '.join(classes[:8])}{', ...' if len(classes) > 8 else ''})"
    else:
        hint = " (it defines no nn.Module class)"
    problem = "is not callable" if found is not None else "not found"
    place = submission.model.file or module.__name__  # a file's module has an internal, unique name
    raise submission.error("model.class", f"{name!r} {problem} in {place}{hint}")


def _close_names(name: str, candidates: list[str]) -> list[str]:
    by_case = [c for c in candidates if c.lower() == name.lower()]
    return by_case or difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
