"""The registries of the NTIRE ESR model zoos: facts about each released model, read from YAML.

One registry per edition (``ntire2022.yaml`` ... ``ntire2026.yaml`` beside this file) says, for every
model the official repository releases, how its own test script builds and loads it: module and class
in the checkout, constructor arguments, weights file and sha256, state-dict quirks (nested key,
prefix, ``strict=False``, methods called before or after loading), input range and tiling, and why a model
cannot run (a GPU, a package, a custom operator). The 2022 registry also keeps two sets of complexity
numbers: those printed in the official results table, and those the organisers' counter
(``utils/model_summary.py`` of the checkout) gives for the released code, so that the two can be
compared without the checkout at hand. ``not_released`` lists ids whose branch of the test script
builds no model (2025's ``pass`` branch). The YAML is parsed once into frozen dataclasses; an unknown or
missing field fails at once with one line naming the file and the field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.complexity import Complexity
from harness.errors import HarnessError
from harness.submissions.manifest import (
    DEFAULT_TILE_OVERLAP,
    VALID_INPUT_RANGES,
    ZOO_EDITIONS,
    ZOO_PREFIX,
    FrozenDict,
)
from harness.yaml_schema import YamlMapping, read_yaml

DEFAULT_REGISTRY = Path(__file__).with_name("ntire2022.yaml")


@dataclass(frozen=True)
class PublishedComplexity:
    """Complexity as printed in the official table: millions, billions (FLOPs), and a count."""

    params_m: float
    flops_g: float
    acts_m: float
    num_conv: int


@dataclass(frozen=True)
class ZooEntry:
    """One released model, as the official test script builds and loads it.

    ``class_name`` names a class or a factory function of ``module`` (the Dragon team's model is made
    by ``make_model(level)``). ``weights`` is relative to the checkout and identified by its sha256,
    or, where the registry's authors had no copy of the file to hash, by its git blob id in the
    official repository (``git_blob``, a SHA-1 that anyone can recompute from the file).
    ``extra_requires`` lists the import names of packages that the team's code imports and the
    harness does not install.
    """

    official_model_id: int
    team: str
    model_name: str
    module: str
    class_name: str
    weights: str
    sha256: str | None
    git_blob: str | None
    input_range: float
    published: PublishedComplexity | None = None
    official_counter: Complexity | None = None
    kwargs: Mapping[str, Any] = field(default_factory=FrozenDict, hash=False)
    state_dict_key: str | None = None
    strip_prefix: str | None = None
    strict: bool = True
    before_load: str | None = None
    after_load: str | None = None
    after_load_modules: str | None = None
    tile: int | None = None
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    extra_requires: tuple[str, ...] = ()
    needs_cuda: bool = False
    unsupported: str | None = None
    note: str | None = None

    @property
    def slug(self) -> str:
        """The team name usable in a submission name: spaces become underscores."""
        return self.team.replace(" ", "_")

    @property
    def submission_name(self) -> str:
        """The entry's name in the NTIRE 2022 zoo (see :meth:`Registry.submission_name`)."""
        return f"{ZOO_PREFIX}{self.slug}"


@dataclass(frozen=True)
class Registry:
    """All released models of one challenge, plus named groups of official model ids.

    ``not_released`` maps official ids whose branch of the test script builds no model to why.
    """

    path: Path
    repository: str
    commit: str
    entries: tuple[ZooEntry, ...]
    groups: Mapping[str, tuple[int, ...]]
    not_released: Mapping[int, str] = field(default_factory=dict)
    prefix: str = ZOO_PREFIX

    def submission_name(self, entry: ZooEntry) -> str:
        """``<edition>:<team>``, the name a model of this zoo is evaluated and reported under."""
        return f"{self.prefix}{entry.slug}"

    def by_id(self, official_model_id: int) -> ZooEntry:
        for entry in self.entries:
            if entry.official_model_id == official_model_id:
                return entry
        raise KeyError(official_model_id)

    def lookup(self, key: str) -> list[ZooEntry]:
        """Entries named by ``key``: ``all``, a group, an official model id, or a team name.

        Team names match case-insensitively, with or without spaces turned into underscores (the
        form a submission name uses). An unknown key is an error that suggests close names.
        """
        folded = key.casefold()
        if folded == "all":
            return list(self.entries)
        if folded in self.groups:
            return [self.by_id(i) for i in self.groups[folded]]
        if _is_integer(key):
            if int(key) in self.not_released:
                raise HarnessError(f"{self.prefix}{key}: {self.not_released[int(key)]}")
            try:
                return [self.by_id(int(key))]
            except KeyError:
                ids = ", ".join(str(e.official_model_id) for e in self.entries)
                raise HarnessError(
                    f"{self.prefix}{key}: no released model has official id {key} (released: {ids})"
                ) from None
        for entry in self.entries:
            if folded in (entry.team.casefold(), entry.slug.casefold()):
                return [entry]
        names = ["all", *self.groups, *(e.team for e in self.entries)]
        by_fold = {name.casefold(): name for name in names}
        close = [by_fold[c] for c in difflib.get_close_matches(folded, list(by_fold), n=3, cutoff=0.5)]
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise HarnessError(
            f"{self.prefix}{key}: unknown team or model id; {hint}"
            f"the {len(self.entries)} released models are listed in {self.path}"
        )


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit() and text.count("-") <= 1


_ENTRY_REQUIRED = (
    "official_model_id",
    "team",
    "model_name",
    "module",
    "class",
    "weights",
    "input_range",
)
_ENTRY_OPTIONAL = (
    "published",
    "official_counter",
    "sha256",
    "git_blob",
    "kwargs",
    "state_dict_key",
    "strip_prefix",
    "strict",
    "before_load",
    "after_load",
    "after_load_modules",
    "tile",
    "tile_overlap",
    "extra_requires",
    "needs_cuda",
    "unsupported",
    "note",
)


def _published(fields: YamlMapping) -> PublishedComplexity | None:
    if fields.data.get("published") is None:
        return None
    published = YamlMapping(
        fields.source,
        fields.name("published"),
        fields.data["published"],
        required=("params_m", "flops_g", "acts_m", "num_conv"),
    )
    return PublishedComplexity(
        params_m=float(published.get("params_m", (int, float))),
        flops_g=float(published.get("flops_g", (int, float))),
        acts_m=float(published.get("acts_m", (int, float))),
        num_conv=published.get("num_conv", int),
    )


def _official_counter(fields: YamlMapping) -> Complexity | None:
    if fields.data.get("official_counter") is None:
        return None
    counted = YamlMapping(
        fields.source,
        fields.name("official_counter"),
        fields.data["official_counter"],
        required=("params", "flops", "activations", "num_conv"),
    )
    return Complexity(**{key: counted.get(key, int) for key in counted.data})


def _parse_entry(path: Path, index: int, data: object) -> ZooEntry:
    fields = YamlMapping(path, f"models[{index}]", data, required=_ENTRY_REQUIRED, optional=_ENTRY_OPTIONAL)
    extra = fields.get("extra_requires", list, [])
    if not all(isinstance(name, str) and name.isidentifier() for name in extra):
        fields.fail(fields.name("extra_requires"), "must be a list of import names")
    sha256, git_blob = fields.get("sha256", str), fields.get("git_blob", str)
    if (sha256 is None) == (git_blob is None):
        fields.fail(fields.name("sha256"), "give exactly one of 'sha256' or 'git_blob' for the weights file")
    if not re.fullmatch(r"[0-9a-f]{64}" if sha256 else r"[0-9a-f]{40}", sha256 or git_blob):
        fields.fail(
            fields.name("sha256" if sha256 else "git_blob"), "must be lower-case hex (64 or 40 digits)"
        )
    input_range = fields.get("input_range", (int, float))
    if float(input_range) not in VALID_INPUT_RANGES:
        fields.fail(fields.name("input_range"), f"must be 1 or 255, got {input_range!r}")
    return ZooEntry(
        official_model_id=fields.get("official_model_id", int),
        team=fields.get("team", str),
        model_name=fields.get("model_name", str),
        module=fields.get("module", str),
        class_name=fields.get("class", str),
        kwargs=FrozenDict(fields.get("kwargs", dict, {})),
        weights=fields.get("weights", str),
        sha256=sha256,
        git_blob=git_blob,
        input_range=float(input_range),
        state_dict_key=fields.get("state_dict_key", str),
        strip_prefix=fields.get("strip_prefix", str),
        strict=fields.get("strict", bool, True),
        before_load=fields.text("before_load"),
        after_load=fields.text("after_load"),
        after_load_modules=fields.text("after_load_modules"),
        tile=fields.get("tile", int),
        tile_overlap=fields.get("tile_overlap", int, DEFAULT_TILE_OVERLAP),
        extra_requires=tuple(extra),
        needs_cuda=fields.get("needs_cuda", bool, False),
        unsupported=fields.text("unsupported"),
        note=fields.get("note", str),
        published=_published(fields),
        official_counter=_official_counter(fields),
    )


def load_registry(path: str | Path | None = None, *, prefix: str = ZOO_PREFIX) -> Registry:
    """Parse and check a zoo registry file (by default the NTIRE 2022 one shipped with the harness);
    ``prefix`` is what its submission names start with (``ntire2026:``)."""
    path = Path(path) if path is not None else DEFAULT_REGISTRY
    top = YamlMapping(
        path,
        "",
        read_yaml(path),
        required=("repository", "commit", "models"),
        optional=("groups", "not_released"),
        label="registry",
    )
    raw_models = top.get("models", list)
    entries = tuple(_parse_entry(path, i, item) for i, item in enumerate(raw_models))
    seen: dict[str, int] = {}
    for entry in entries:
        for key in dict.fromkeys(
            [str(entry.official_model_id), entry.team.casefold(), entry.slug.casefold()]
        ):
            if key in seen:
                top.fail(
                    "models", f"{key!r} names both official model {seen[key]} and {entry.official_model_id}"
                )
            seen[key] = entry.official_model_id
    ids = {entry.official_model_id for entry in entries}
    groups: dict[str, tuple[int, ...]] = {}
    for name, members in top.get("groups", dict, {}).items():
        where = f"groups.{name}"
        if not isinstance(name, str) or name.casefold() != name or name == "all" or name in seen:
            top.fail(where, "group names are lower-case and differ from 'all', team names and ids")
        if not isinstance(members, list) or not all(isinstance(m, int) and m in ids for m in members):
            top.fail(where, "must be a list of official model ids present in 'models'")
        groups[name] = tuple(members)
    not_released: dict[int, str] = {}
    for item_index, item in enumerate(top.get("not_released", list, [])):
        fields = YamlMapping(
            path, f"not_released[{item_index}]", item, required=("official_model_id", "reason")
        )
        official_id = fields.get("official_model_id", int)
        if official_id in ids:
            fields.fail(fields.name("official_model_id"), f"{official_id} is also a released model")
        not_released[official_id] = fields.get("reason", str)
    return Registry(
        path=path,
        repository=top.get("repository", str),
        commit=top.get("commit", str),
        entries=entries,
        groups=groups,
        not_released=not_released,
        prefix=prefix,
    )


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The NTIRE 2022 registry shipped with the harness, parsed once."""
    return load_registry(DEFAULT_REGISTRY)


@lru_cache(maxsize=len(ZOO_EDITIONS))
def registry_for(edition: str) -> Registry:
    """The shipped registry of ``edition`` (``ntire2022`` ... ``ntire2026``), parsed once."""
    if edition not in ZOO_EDITIONS:
        raise HarnessError(f"unknown model zoo {edition!r} (known: {', '.join(ZOO_EDITIONS)})")
    if edition == "ntire2022":
        return default_registry()
    return load_registry(Path(__file__).with_name(f"{edition}.yaml"), prefix=f"{edition}:")
