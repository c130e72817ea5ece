"""A model whose package cannot be installed here says why in one line: CUDA-only, or broken by a removal."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.submissions import build_model, resolve_submission


def _submission(folder: Path, source: str):  # noqa: ANN202 - a Submission
    folder.mkdir()
    (folder / "model.py").write_text(source + "\nclass M:\n    pass\n")
    (folder / "submission.yaml").write_text(
        f"name: {folder.name}\nteam: test\ndescription: imports a package\n"
        "model:\n  file: model.py\n  class: M\n  kwargs: {}\ninput_range: 1.0\nscale: 4\n"
    )
    return resolve_submission(str(folder))


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import mamba_ssm", "needs mamba-ssm, which builds CUDA kernels on install (a CUDA machine only)"),
        (
            "import torchvision.transforms.functional_tensor",
            "torchvision.transforms.functional_tensor, which torchvision 0.17 removed",
        ),
    ],
)
def test_an_uninstallable_package_is_named_with_why(tmp_path: Path, source: str, reason: str) -> None:
    if "torchvision" in source:
        pytest.importorskip("torchvision")  # without it the hint is to install torchvision
    submission = _submission(tmp_path / "needs_package", source)
    with pytest.raises(HarnessError) as raised:
        build_model(submission)
    message = str(raised.value)
    assert reason in message and "\n" not in message
