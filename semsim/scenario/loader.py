"""Reading scenario files: YAML -> profile applied -> validated :class:`ResolvedScenario`.

Every problem in a file is reported at once, one line each, as
``FILE: field.path: what is wrong (got VALUE)``; :class:`ScenarioError` carries them.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any

import pydantic
import yaml

from semsim.scenario import SCENARIOS_DIR as SCENARIOS_DIR  # re-exported
from semsim.scenario.schema import (
    Scenario,
    ScenarioFileHeader,
    merge_train,
)
from semsim.systems.registry import system_types

_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.*)$", re.DOTALL)
_UNION_TAGS = {"int", "float", "str", "bool", "none", "dict", "list", "tuple"}


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem of a scenario file: ``path`` (e.g. ``systems[1].params.C``, empty for
    the whole file), ``message`` and, when it only shows under a profile, ``profile``."""

    path: str
    message: str
    profile: str | None = None

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{text} [profile {self.profile}]" if self.profile else text


class ScenarioError(ValueError):
    """A scenario file is invalid; ``problems`` lists every problem found."""

    def __init__(self, source: str | Path, problems: list[Problem]):
        self.source = str(source)
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.source}: {p}" for p in self.problems]


@dataclasses.dataclass
class ResolvedScenario:
    """A validated scenario with its profile applied. ``params``: each system's
    validated parameter model, by system name."""

    scenario: Scenario
    profile: str | None
    source: Path
    params: dict[str, pydantic.BaseModel]

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as plain data (loadable again as a scenario file)."""
        return self.scenario.model_dump(mode="json")

    def to_yaml(self) -> str:
        header = (f"# Resolved from {self.source} with profile {self.profile or '(none)'}.\n"
                  "# Written by semsim; loadable as a scenario file.\n")
        return header + yaml.safe_dump(self.to_dict(), sort_keys=False)


def _format_loc(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _clean_loc(loc: tuple) -> tuple:
    """Drop the union-member tags pydantic inserts (``float``, ``literal['noise']``...)."""
    return tuple(p for p in loc if isinstance(p, int)
                 or not ("[" in p or "-" in p or p in _UNION_TAGS))


def _structured(annotation) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return (isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)) or \
        typing.get_origin(annotation) in (list, dict)


def _strip_type(annotation):
    """Unwrap ``Annotated`` and optional/union types (preferring a model, list or dict)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = ([m for m in members if _structured(m)] or members)[0]
        else:
            return annotation


def _model_at(model: type[pydantic.BaseModel], loc: tuple) -> type[pydantic.BaseModel] | None:
    """The model class a ``loc`` (as pydantic reports it) points into, if any."""
    annotation: Any = model
    for part in loc:
        annotation = _strip_type(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            if part not in annotation.model_fields:
                return None
            annotation = annotation.model_fields[part].annotation
        elif origin is list and isinstance(part, int):
            annotation = typing.get_args(annotation)[0]
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return None
    annotation = _strip_type(annotation)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def problems_from_validation(error: pydantic.ValidationError, model: type[pydantic.BaseModel],
                             prefix: tuple = ()) -> list[Problem]:
    """One :class:`Problem` per field of a pydantic error (union alternatives merged)."""
    merged: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        loc = _clean_loc(tuple(item["loc"]))
        kind = item["type"]
        if kind == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            allowed = ", ".join(parent.model_fields) if parent else "?"
            path, message = _format_loc(prefix + loc[:-1]), \
                f"unknown key {loc[-1]!r} (allowed: {allowed})"
        elif kind == "missing":
            path, message = _format_loc(prefix + loc), "required field is missing"
        elif kind == "value_error" and isinstance(item.get("input"), dict):
            # A model validator: its message starts with the field it is about.
            message = item["msg"].removeprefix("Value error, ")
            path = _format_loc(prefix + loc)
            field = _FIELD_PREFIX.match(message)
            if field:
                path = f"{path}.{field[1]}" if path else field[1]
                message = field[2]
        else:
            message = item["msg"].removeprefix("Value error, ")
            message = f"{message} (got {_short(item.get('input'))})"
            path = _format_loc(prefix + loc)
        merged.setdefault(path, [])
        if message not in merged[path]:
            merged[path].append(message)
    return [Problem(path, "; or ".join(messages)) for path, messages in merged.items()]


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (``yaml.safe_load``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ScenarioError(path, [Problem("", f"cannot read the file: {err.strerror}")]) from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ScenarioError(path, [Problem("", f"YAML syntax error: {where}{problem}")]) from err
    if not isinstance(data, dict):
        raise ScenarioError(path, [Problem("", "the file must hold a mapping of scenario keys, "
                                               f"got {type(data).__name__}")])
    return data


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _apply_profile(raw: dict, profile_name: str, header: ScenarioFileHeader) -> tuple[dict, list]:
    override = header.profiles[profile_name]
    problems: list[Problem] = []
    data = copy.deepcopy(raw)
    for section in ("train", "data", "eval", "snr", "link"):
        part = getattr(override, section)
        if section == "train" and part and isinstance(data.get("train"), dict):
            data["train"] = merge_train(data["train"], part)
        elif part is not None:
            current = data.get(section, {})
            data[section] = _merge(current, part) if isinstance(current, dict) else part
    systems = data.get("systems")
    for name, change in (override.systems or {}).items():
        entries = [e for e in systems if isinstance(e, dict) and e.get("name") == name] \
            if isinstance(systems, list) else []
        if not entries:
            problems.append(Problem(f"profiles.{profile_name}.systems.{name}",
                                    f"no system named {name!r} in this scenario"))
            continue
        entry = entries[0]
        if change.params is not None:
            params = entry.get("params") or {}
            entry["params"] = _merge(params, change.params) if isinstance(params, dict) \
                else change.params
        if change.train_snr_db is not None:
            entry["train_snr_db"] = change.train_snr_db
        if change.match_cr_of is not None:
            entry["match_cr_of"] = change.match_cr_of
        if change.train is not None:
            train = entry.get("train") or {}
            entry["train"] = merge_train(train, change.train) if isinstance(train, dict) \
                else change.train
    return data, problems


def _system_problems(raw: dict) -> tuple[list[Problem], dict[str, pydantic.BaseModel]]:
    """Check each system's ``type`` and ``params`` against the registry."""
    problems: list[Problem] = []
    models: dict[str, pydantic.BaseModel] = {}
    systems = raw.get("systems")
    if not isinstance(systems, list):
        return problems, models
    types = system_types()
    for i, entry in enumerate(systems):
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            continue
        if entry["type"] not in types:
            known = ", ".join(sorted(types)) or "none registered"
            problems.append(Problem(f"systems[{i}].type",
                                    f"unknown system type {entry['type']!r} (known: {known})"))
            continue
        params = entry.get("params") or {}
        if not isinstance(params, dict):
            continue
        params_model = types[entry["type"]].params
        try:
            model = params_model.model_validate(params)
        except pydantic.ValidationError as err:
            problems += problems_from_validation(err, params_model, ("systems", i, "params"))
            continue
        models[str(entry.get("name"))] = model
    return problems, models


def _resolve(raw: dict, source: Path, profile: str | None) -> ResolvedScenario:
    problems, models = _system_problems(raw)
    try:
        scenario = Scenario.model_validate(raw)
    except pydantic.ValidationError as err:
        problems = problems_from_validation(err, Scenario) + problems
        scenario = None
    if problems:
        raise ScenarioError(source, [dataclasses.replace(p, profile=profile) for p in problems])
    for entry in scenario.systems:
        entry.params = models[entry.name].model_dump(mode="json")
    return ResolvedScenario(scenario, profile, source, models)


def _header(raw: dict, source: Path) -> ScenarioFileHeader:
    keys = {k: raw.pop(k) for k in ("profile", "profiles") if k in raw}
    try:
        return ScenarioFileHeader.model_validate(keys)
    except pydantic.ValidationError as err:
        raise ScenarioError(source, problems_from_validation(err, ScenarioFileHeader)) from None


def _read_source(source: dict | str | Path) -> tuple[dict, Path]:
    """``(raw mapping, source path)`` of a scenario given as a mapping, YAML text (a
    string holding a newline) or a file path."""
    if isinstance(source, dict):
        return copy.deepcopy(source), Path("<dict>")
    if isinstance(source, str) and "\n" in source:
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise ScenarioError("<text>", [Problem("", f"YAML syntax error: {where}{problem}")]) \
                from err
        if not isinstance(data, dict):
            raise ScenarioError("<text>", [Problem("", "the text must hold a mapping of scenario "
                                                       f"keys, got {type(data).__name__}")])
        return data, Path("<text>")
    if isinstance(source, str | Path):
        return read_yaml(source), Path(source)
    raise TypeError(f"a scenario is a mapping, YAML text or a file path, got "
                    f"{type(source).__name__}")


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.steps=2000"`` -> ``("train.steps", 2000)``: the value is read as a YAML
    scalar or flow collection (``8``, ``1e-3``, ``true``, ``[0, 5]``, ``{mode: ls}``).
    Raises ``ValueError`` naming the override."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", key):
        raise ValueError(f"--set {text!r}: expected KEY=VALUE with a dotted key, "
                         "e.g. train.steps=2000")
    try:
        return key, yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as err:
        raise ValueError(f"--set {key}: cannot read the value {value!r} as YAML") from err


def apply_overrides(raw: dict, overrides: dict[str, Any]) -> dict:
    """A copy of the scenario mapping ``raw`` with each dotted ``key: value`` of
    ``overrides`` set. ``systems.<name>.<field>`` addresses the system named ``<name>``;
    setting ``train.steps`` (``train.epochs``) drops the other budget, as a profile does. Raises
    :class:`ScenarioError` (path = the key) when a key cannot be placed; the values are
    validated with the rest of the scenario."""
    data = copy.deepcopy(raw)
    problems = []
    for key, value in overrides.items():
        parts = key.split(".")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                named = [e for e in node if isinstance(e, dict) and e.get("name") == part]
                if not named:
                    names = ", ".join(str(e.get("name")) for e in node if isinstance(e, dict))
                    problems.append(Problem(key, f"no entry named {part!r} under "
                                                 f"{'.'.join(parts[:i])} (names: {names})"))
                    break
                node = named[0]
            else:
                child = node.get(part)
                if child is None:
                    child = node[part] = {}
                if not isinstance(child, dict | list):
                    problems.append(Problem(key, f"{'.'.join(parts[:i + 1])} is "
                                                 f"{type(child).__name__}, not a mapping"))
                    break
                node = child
        else:
            if isinstance(node, list):
                problems.append(Problem(key, "name a system: systems.<name>.<field>"))
                continue
            if parts == ["train", "steps"]:
                node.pop("epochs", None)
            elif parts == ["train", "epochs"]:
                node.pop("steps", None)
            node[parts[-1]] = value
    if problems:
        raise ScenarioError("--set", problems)
    return data


def load_scenario(source: dict | str | Path, profile: str | None = None,
                  overrides: dict[str, Any] | None = None) -> ResolvedScenario:
    """Read, resolve and validate a scenario.

    ``source``: a mapping (as a YAML file would give), YAML text (a string holding a
    newline) or a file path. ``profile``: the profile to apply (any name the file defines);
    ``None`` applies the file's own ``profile:`` key, if any. ``overrides``: dotted keys
    set after the profile (:func:`apply_overrides`; the ``--set`` of the command line).
    Raises :class:`ScenarioError`.
    """
    raw, source = _read_source(source)
    header = _header(raw, source)
    chosen = profile if profile is not None else header.profile
    if chosen is not None:
        if chosen not in header.profiles:
            defined = ", ".join(header.profiles) or "none"
            raise ScenarioError(source, [Problem(
                "profile", f"profile {chosen!r} is not defined in this file (profiles: {defined}; "
                           "names: letters, digits, '_' and '-')")])
        raw, problems = _apply_profile(raw, chosen, header)
        if problems:
            raise ScenarioError(source, problems)
    if overrides:
        raw = apply_overrides(raw, overrides)
    return _resolve(raw, source, chosen)


def validate_file(path: str | Path) -> tuple[list[Problem], list[str]]:
    """Every problem of a file: as written and under each of its profiles (a problem
    that shows only under a profile is tagged with it). Returns ``(problems, profiles)``."""
    source = Path(path)
    try:
        raw = read_yaml(source)
        header = _header(raw, source)
    except ScenarioError as err:
        return err.problems, []
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    variants: list[str | None] = [None, *header.profiles]
    for name in variants:
        try:
            if name is None:
                _resolve(copy.deepcopy(raw), source, None)
            else:
                data, found = _apply_profile(raw, name, header)
                if found:
                    raise ScenarioError(source, found)
                _resolve(data, source, name)
        except ScenarioError as err:
            for p in err.problems:
                if (p.path, p.message) not in seen:
                    seen.add((p.path, p.message))
                    problems.append(dataclasses.replace(p, profile=name))
    if header.profile is not None and header.profile not in header.profiles:
        problems.append(Problem("profile", f"{header.profile!r} is not defined under profiles"))
    return problems, list(header.profiles)
