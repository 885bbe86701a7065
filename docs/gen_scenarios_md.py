"""Generate ``docs/scenarios.md`` from the scenario schema and the system registry.

The reference of every scenario field is rendered from the pydantic models of
:mod:`semsim.scenario.schema` and :mod:`semsim.scenario.schema_link` (types, defaults,
constraints, the models' docstrings) and from the parameter model each system type
registered (:mod:`semsim.systems.registry`), so it cannot drift from the code:
``tests/docs/test_docs.py`` checks that the committed file equals :func:`render`.

Usage::

    python docs/gen_scenarios_md.py            # rewrite docs/scenarios.md
    python docs/gen_scenarios_md.py --check    # exit 1 if docs/scenarios.md is stale
"""

from __future__ import annotations

import argparse
import enum
import inspect
import sys
import types
import typing
from pathlib import Path

import annotated_types
import pydantic
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

#: The generated file.
OUTPUT = Path(__file__).resolve().parent / "scenarios.md"
#: The command that regenerates it (printed in the file and in test failures).
COMMAND = "python docs/gen_scenarios_md.py"


def _constraints(metadata: list) -> list[str]:
    """``annotated_types`` / pydantic constraint objects as ``> 0``, ``<= 60``, ... text."""
    out: list[str] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            out += _constraints(item.metadata)
        elif isinstance(item, annotated_types.Gt):
            out.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Ge):
            out.append(f">= {item.ge}")
        elif isinstance(item, annotated_types.Lt):
            out.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.Le):
            out.append(f"<= {item.le}")
        elif isinstance(item, annotated_types.MinLen):
            out.append(f"length >= {item.min_length}")
        elif isinstance(item, annotated_types.MaxLen):
            out.append(f"length <= {item.max_length}")
        elif hasattr(item, "pattern") and item.pattern is not None:
            out.append(f"matches `{item.pattern}`")
    return out


def _anchor(model: type[pydantic.BaseModel]) -> str:
    return model.__name__.lower()


def type_text(annotation) -> str:
    """A short human-readable rendering of a field's type (constraints included)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        inner, *metadata = args
        cons = _constraints(metadata)
        return type_text(inner) + (f" ({', '.join(cons)})" if cons else "")
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        text = " \\| ".join(type_text(m) for m in members)
        return text + (" \\| null" if len(members) < len(args) else "")
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" if isinstance(a, str) else f"`{a!r}`" for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {type_text(args[0])}"
        return "[" + ", ".join(type_text(a) for a in args) + "]"
    if origin is list:
        return f"list of {type_text(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping {type_text(args[0])} -> {type_text(args[1])}" if args else "mapping"
    if annotation is typing.Any:
        return "any"
    if inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel):
        if annotation.__module__ in ("semsim.scenario.schema", "semsim.scenario.schema_link"):
            # sections rendered below
            return f"[{annotation.__name__}](#{_anchor(annotation)})"
        return f"`{annotation.__name__}`"
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if inspect.isclass(annotation):
        return {"int": "integer", "float": "number", "str": "string", "bool": "boolean",
                "NoneType": "null"}.get(annotation.__name__, annotation.__name__)
    return str(annotation).replace("typing.", "")


def _value_text(value) -> str:
    if isinstance(value, pydantic.BaseModel):
        changed = value.model_dump(mode="json", exclude_defaults=True)
        if not changed:
            return f"the defaults of [{type(value).__name__}](#{_anchor(type(value))})"
        return "`" + _flow(changed) + "`"
    if isinstance(value, enum.Enum):
        value = value.value
    return f"`{_flow(value)}`"


def _flow(value) -> str:
    """YAML flow style of plain data (``{a: 1}``, ``[0, 20]``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return str(value)


def default_text(field: FieldInfo) -> str:
    """``required``, or the default value (a factory is called to show its value)."""
    if field.default_factory is not None:
        return _value_text(field.default_factory())
    if field.default is PydanticUndefined:
        return "**required**"
    return _value_text(field.default)


def _doc(model: type[pydantic.BaseModel]) -> str:
    return inspect.cleandoc(model.__doc__ or "").strip()


def model_table(model: type[pydantic.BaseModel]) -> list[str]:
    """The Markdown table of one model's fields."""
    lines = ["| field | type | default |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        annotation = field.annotation
        cons = _constraints(field.metadata)
        text = type_text(annotation) + (f" ({', '.join(cons)})" if cons else "")
        lines.append(f"| `{name}` | {text} | {default_text(field)} |")
    return lines


def _section(title: str, model: type[pydantic.BaseModel], key: str | None) -> list[str]:
    lines = [f"### {title}", "", f'<a id="{_anchor(model)}"></a>', ""]
    if key:
        lines += [f"Key: `{key}`. Model: `{model.__module__}.{model.__name__}`.", ""]
    else:
        lines += [f"Model: `{model.__module__}.{model.__name__}`.", ""]
    doc = _doc(model)
    if doc:
        lines += [doc, ""]
    return lines + model_table(model) + [""]


def _shipped() -> list[str]:
    from semsim.scenario.loader import SCENARIOS_DIR, read_yaml

    lines = ["| file | name | systems (type) | description |", "|---|---|---|---|"]
    for path in sorted(SCENARIOS_DIR.glob("*.yaml")):
        raw = read_yaml(path)
        systems = ", ".join(f"{s.get('name')} ({s.get('type')})" for s in raw.get("systems", []))
        description = " ".join(str(raw.get("description", "")).split())
        lines.append(f"| [`scenarios/{path.name}`](../scenarios/{path.name}) | `{raw.get('name')}` "
                     f"| {systems} | {description} |")
    return lines


def _standard_weights() -> list[str]:
    """Per shipped scenario with a ``standard`` profile, each learned system's budget there
    and its shipped checkpoint (read from the manifest, with its convergence verdict), or
    that it trains on its first run."""
    from semsim.scenario.loader import SCENARIOS_DIR, load_scenario
    from semsim.weights import WEIGHTS_DIR
    from semsim.weights.manifest import (
        checkpoint_paths,
        convergence_text,
        learned_systems,
        read_manifest,
    )

    lines = ["| scenario | learned system (type) | `standard` budget | weights |",
             "|---|---|---|---|"]
    for path in sorted(SCENARIOS_DIR.glob("*.yaml")):
        resolved = load_scenario(path, "standard")
        scenario = resolved.scenario
        for name in learned_systems(resolved):
            cfg = scenario.train_for(name)
            budget = (f"{cfg.steps:,} steps" if cfg.steps is not None
                      else f"{cfg.epochs} epochs") + f" x batch {cfg.batch_size}"
            _, manifest_file = checkpoint_paths(scenario.name, "standard", name, WEIGHTS_DIR)
            if manifest_file.exists():
                manifest = read_manifest(manifest_file)
                verdict = convergence_text(manifest.get("convergence")) or \
                    "convergence not measured"
                weights = (f"shipped: `{manifest['id']}`, {manifest['steps_done']:,} steps; "
                           f"{verdict}")
            else:
                weights = "not shipped: trains on its first run"
            lines.append(f"| `{scenario.name}` | {name} ({scenario.system(name).type}) "
                         f"| {budget} | {weights} |")
    return lines


def render() -> str:
    """The whole ``docs/scenarios.md`` text."""
    import semsim.scenario as scenario_pkg
    from semsim.scenario import schema, schema_link
    from semsim.systems.registry import shipped_system_types

    example = inspect.cleandoc(scenario_pkg.__doc__ or "").split("::", 1)[1]
    example = inspect.cleandoc(example.split("\n:mod:")[0])
    out = [
        "<!-- Generated by docs/gen_scenarios_md.py from semsim.scenario.schema and the system",
        f"     registry. Do not edit by hand: run `{COMMAND}`. -->",
        "",
        "# Scenario files",
        "",
        "A scenario is a YAML file (read with `yaml.safe_load`) describing one comparison: the",
        "link, the SNRs, the data, the systems and their training and evaluation budgets.",
        "`semsim validate FILE` checks it (as written and under each profile) and prints every",
        "problem on its own line (a directory stands for its `*.yaml` files; `semsim validate",
        "--all` checks every shipped scenario); `semsim run FILE` runs it. From Python:",
        "`semsim.scenario.loader.load_scenario(path, profile=None)` and",
        "`semsim.scenario.runner.run_scenario(resolved, RunOptions(out_dir=...))`.",
        "",
        "Unknown keys are errors everywhere. Units: SNRs in dB (per-receive-antenna average",
        "SNR, see [phy.md](phy.md)), correlations are exponential-model coefficients,",
        "`max_seconds` is wall-clock seconds.",
        "",
        "## A complete example",
        "",
        "```yaml",
        example,
        "```",
        "",
        "## Shipped scenarios",
        "",
        *_shipped(),
        "",
        "### Trained weights of the `standard` profiles",
        "",
        "`semsim run FILE --profile standard` evaluates a shipped checkpoint when one matches",
        "the resolved config ([weights.md](weights.md)); the others train first (up to an",
        "hour per system on 2 CPU cores). A verdict is the manifest's: the change of held-out",
        "validation PSNR when the training steps are doubled; converged below 0.3 dB",
        "([weights.md](weights.md), \"Convergence of the `standard` profiles\"). Systems",
        "trained in stages around a codec (`scsc`, and the classifier of `classified`) ship",
        "no weights and are not listed (an SCSC run prints the trend of its PPEN stage;",
        "`scsc_2x2`'s stages are converged at 3,000 steps by doubling: [scsc.md](scsc.md),",
        "\"Convergence of the stages\").",
        "",
        *_standard_weights(),
        "",
        "## Profiles",
        "",
        "A file may define the profiles `quick` (CPU-sized: few steps, tiny models, the",
        "embedded data) and `paper` (the papers' data and budgets). `profile:` names the one",
        "applied when the command line gives no `--profile`. A profile is a partial",
        "override merged over the file: mappings key by key, lists replaced; in `train`,",
        "naming `steps` drops the file's `epochs` and vice versa. A system may train with",
        "its own budget: `systems[].train` (or `profiles.<p>.systems.<name>.train`) holds the",
        "keys of `train` that differ for it, e.g. `{steps: 28000}`, merged the same way.",
        "",
        *_section("File header", schema.ScenarioFileHeader, "profile, profiles"),
        *_section("A profile", schema.ProfileOverride, "profiles.<quick|paper>"),
        *_section("Overrides of one system", schema.SystemOverride,
                  "profiles.<profile>.systems.<system name>"),
        "## Sections",
        "",
        *_section("Scenario (top level)", schema.Scenario, None),
        *_section("link", schema_link.LinkConfig, "link"),
        *_section("link.csi", schema_link.CSIConfig, "link.csi"),
        *_section("snr", schema_link.SNRConfig, "snr"),
        *_section("data", schema.DataConfig, "data"),
        *_section("systems[]", schema.SystemConfig, "systems"),
        *_section("train", schema.TrainConfig, "train"),
        *_section("eval", schema.EvalConfig, "eval"),
        "## System types and their `params`",
        "",
        "Each entry of `systems:` has a registered `type`; its `params` are checked against",
        "the type's parameter model (unknown keys are errors). The systems themselves are",
        "described in [systems.md](systems.md).",
        "",
    ]
    for name, stype in sorted(shipped_system_types().items()):
        model = stype.params
        summary = " ".join(inspect.cleandoc(stype.description).split())
        out += [f"### `{name}`", "",
                f"{summary}", "",
                f"Parameter model: `{model.__module__}.{model.__name__}`.", ""]
        doc = _doc(model)
        if doc:
            out += [doc, ""]
        out += model_table(model) + [""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed file differs from the generated text")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        print(f"{OUTPUT} is up to date")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
