"""Settings of the training commands: a YAML file of defaults, overridden by command-line flags.

Each command describes its settings as a dataclass whose fields carry a ``help`` text. :func:`add_arguments`
turns every field into a flag (``learning_rate`` -> ``--learning-rate``; booleans get ``--x/--no-x``; lists
take several values, or one per repetition of the flag with ``repeat``), with ``None`` as the flag default so
that only flags actually given override the YAML file named by ``--config``. A field's metadata may also say
``group`` (a help section), ``choices``, ``nargs``, ``metavar`` and ``flag``; the help shows the field's default.
:func:`resolve` merges dataclass defaults < YAML < flags and validates the keys.
A free-form ``trl`` mapping (YAML, or ``--trl KEY=VALUE`` repeated, values parsed as YAML) is passed to
TRL's ``SFTConfig``/``GRPOConfig`` unchanged, for any of their options not named here.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml

from actial_ros.errors import ConfigError

__all__ = ['add_arguments', 'describe', 'field_default', 'resolve', 'setting']

T = TypeVar('T')


def setting(
    help_text: str,
    *,
    group: str | None = None,
    repeat: bool = False,
    choices: Sequence[str] | None = None,
    nargs: int | None = None,
    metavar: str | tuple[str, ...] | None = None,
    flag: str | None = None,
) -> dict[str, Any]:
    """The metadata of a settings field (``field(default=..., metadata=setting('...'))``).

    Args:
        help_text: the flag's help.
        group: the help section the flag is listed under (default: the parser's options).
        repeat: a list field filled by repeating the flag (``--camera A --camera B``), not by several values.
        choices: the values the flag accepts.
        nargs: exactly this many values (list fields; default: one or more).
        metavar: the value's name in the help.
        flag: the flag, where ``--field-name`` cannot be it (e.g. ``--3dsrbench``: a name cannot start with a
            digit).
    """
    meta: dict[str, Any] = {'help': help_text}
    for key, value in (('group', group), ('choices', choices), ('nargs', nargs), ('metavar', metavar), ('flag', flag)):
        if value is not None:
            meta[key] = value
    if repeat:
        meta['repeat'] = True
    return meta


def field_default(settings_cls: type[Any], name: str) -> Any:
    """The default of field ``name`` of the dataclass ``settings_cls`` (so that another settings class can
    take it over instead of repeating the value).

    Raises:
        KeyError: no such field, or it has no plain default.
    """
    default = {f.name: f.default for f in dataclasses.fields(settings_cls)}[name]
    if default is dataclasses.MISSING:
        raise KeyError(f'{settings_cls.__name__}.{name} has no plain default')
    return default


def _default_text(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return ' (required)'
    if value is None or value == '' or value == [] or value == {}:
        return ''
    if isinstance(value, bool):
        return ''  # the --x/--no-x pair says it
    shown = ' '.join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    return f' (default: {shown})'


def _flag(name: str) -> str:
    return '--' + name.replace('_', '-')


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional) of an annotation such as ``int | None`` or ``list[str]``."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), True
    return annotation, False


def _parse_pair(text: str) -> tuple[str, Any]:
    if '=' not in text:
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE, got {text!r}')
    key, value = text.split('=', 1)
    return key.strip(), yaml.safe_load(value)


def add_arguments(parser: argparse.ArgumentParser, settings_cls: type[Any]) -> None:
    """Add ``--config`` and one flag per field of the dataclass ``settings_cls`` to ``parser``."""
    parser.add_argument('--config', type=Path, help='YAML file of settings (flags override it)')
    hints = typing.get_type_hints(settings_cls)
    groups: dict[str, Any] = {}
    for field in dataclasses.fields(settings_cls):
        meta = field.metadata
        group_name = meta.get('group')
        target: Any = parser
        if group_name is not None:
            target = groups.get(group_name) or groups.setdefault(group_name, parser.add_argument_group(group_name))
        if field.name == 'trl':
            target.add_argument(
                '--trl',
                action='append',
                type=_parse_pair,
                metavar='KEY=VALUE',
                help='extra TRL config option (value parsed as YAML); repeatable',
            )
            continue
        options: dict[str, Any] = {'default': None, 'help': meta.get('help', '') + _default_text(field)}
        for key in ('choices', 'metavar'):
            if key in meta:
                options[key] = meta[key]
        kind, _ = _base_type(hints[field.name])
        if kind is bool:
            options['action'] = argparse.BooleanOptionalAction
        elif get_origin(kind) is list:
            (item,) = get_args(kind) or (str,)
            options['type'] = item
            if meta.get('repeat'):
                options['action'] = 'append'
            else:
                options['nargs'] = meta.get('nargs', '+')
        elif kind in (int, float, str):
            options['type'] = kind
        else:
            options['type'] = yaml.safe_load
        if 'flag' in meta:
            options['dest'] = field.name
        target.add_argument(meta.get('flag', _flag(field.name)), **options)


def resolve(settings_cls: type[T], args: argparse.Namespace) -> T:
    """Build the settings: dataclass defaults, then the YAML file (``args.config``), then the flags given.

    Raises:
        ConfigError: unreadable YAML, an unknown key in it, or a missing required setting.
    """
    names = {f.name for f in dataclasses.fields(settings_cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    config_path = getattr(args, 'config', None)
    if config_path is not None:
        try:
            loaded = yaml.safe_load(Path(config_path).read_text(encoding='utf-8')) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f'cannot read settings file {config_path}: {exc}') from None
        if not isinstance(loaded, dict):
            raise ConfigError(f'{config_path} must hold a mapping of settings')
        unknown = sorted(set(loaded) - names)
        if unknown:
            raise ConfigError(f'unknown setting(s) in {config_path}: {", ".join(unknown)}')
        values.update(loaded)
    for name in names:
        given = getattr(args, name, None)
        if name == 'trl':
            if given:
                merged = dict(values.get('trl') or {})
                merged.update(dict(given))
                values['trl'] = merged
        elif given is not None:
            values[name] = given
    try:
        return settings_cls(**values)
    except TypeError as exc:
        raise ConfigError(f'invalid settings: {exc}') from None


def describe(settings: Any) -> dict[str, Any]:
    """The settings as a plain dict (for logs and for saving next to a run)."""
    return dataclasses.asdict(settings)
