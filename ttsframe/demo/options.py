"""A family's sampling options as page controls: one `OptionField` per dataclass field, and the
values of the controls back to the frozen options dataclass.

The kind of control follows the field's default: bool -> checkbox, int / float -> number,
str -> dropdown when the options' module has a `<FIELD>S` tuple (or dict) of the valid strings
holding the default (DiTAR's `SOLVERS`, CosyVoice's `FLOW_SCHEDULES`), else a textbox. The help text of
a control is the field's entry under `Attributes:` of the dataclass docstring.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass
from typing import Any

from ttsframe.demo.inputs import InputError


@dataclass(frozen=True)
class OptionField:
    """One control. kind: "bool" | "int" | "float" | "choice" | "text"; choices only for "choice"."""

    name: str
    kind: str
    default: Any
    help: str = ""
    choices: tuple[str, ...] = ()


def attribute_help(cls: type) -> dict[str, str]:
    """{field: its description} from the `Attributes:` section of `cls`'s docstring; an entry
    naming several fields ("a, b: ...") describes each."""
    doc = (cls.__doc__ or "").expandtabs()
    section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    helps: dict[str, str] = {}
    names: list[str] = []
    for line in section.splitlines():
        entry = re.match(r"^\s{4,}([a-z_][a-z0-9_]*(?:\s*,\s*[a-z_][a-z0-9_]*)*):\s*(.*)$", line)
        if entry:
            names = [n.strip() for n in entry.group(1).split(",")]
            for name in names:
                helps[name] = entry.group(2).strip()
        elif line.strip() and names:
            for name in names:
                helps[name] = f"{helps[name]} {line.strip()}"
        elif not line.strip() and helps:
            names = []
    return helps


def option_fields(options) -> list[OptionField]:
    """The controls of an options dataclass, in field order, with its defaults; given an instance
    (a release's `default_options`), with that instance's values as the defaults."""
    cls = options if isinstance(options, type) else type(options)
    module = vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {}
    helps = attribute_help(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        kind, choices = "text", ()
        if isinstance(default, bool):
            kind = "bool"
        elif isinstance(default, int):
            kind = "int"
        elif isinstance(default, float):
            kind = "float"
        elif isinstance(default, str):
            valid = module.get(f"{f.name.upper()}S")  # a tuple, or a dict keyed by the valid names
            if isinstance(valid, (tuple, list, dict)) and default in valid and all(isinstance(v, str) for v in valid):
                kind, choices = "choice", tuple(valid)
        if not isinstance(options, type):  # the kind is the class default's; the value the instance's
            default = getattr(options, f.name)
        out.append(OptionField(f.name, kind, default, helps.get(f.name, ""), tuple(choices)))
    return out


def build_options(options, fields: list[OptionField], values: list[Any]):
    """The options dataclass (`options`: the class, or an instance whose values are the defaults)
    from the controls' values (None or "" keeps a field's default).

    Raises:
        InputError: a value of the wrong kind, or one the dataclass refuses (its message).
    """
    given = {}
    for field, value in zip(fields, values):
        if value is None or (isinstance(value, str) and not value.strip() and field.kind != "text"):
            continue
        try:
            if field.kind == "int":
                if float(value) != int(float(value)):
                    raise ValueError
                value = int(float(value))
            elif field.kind == "float":
                value = float(value)
            elif field.kind == "bool":
                value = bool(value)
            elif field.kind == "text" and field.default is None:
                value = value.strip() or None
        except (TypeError, ValueError):
            raise InputError(f"option {field.name}: {value!r} is not {'a whole number' if field.kind == 'int' else 'a number'}") from None
        given[field.name] = value
    try:
        return options(**given) if isinstance(options, type) else dataclasses.replace(options, **given)
    except (TypeError, ValueError) as e:
        raise InputError(f"sampling options: {e}") from None
