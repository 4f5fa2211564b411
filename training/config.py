"""Settings of the training commands: a YAML file of defaults, overridden by command-line flags.

Each command describes its settings as a dataclass whose fields carry a ``help`` text. :func:`add_arguments`
turns every field into a flag (``learning_rate`` -> ``--learning-rate``; booleans get ``--x/--no-x``; lists
take several values), with ``None`` as the flag default so that only flags actually given override the YAML
file named by ``--config``. :func:`resolve` merges dataclass defaults < YAML < flags and validates the keys.
A free-form ``trl`` mapping (YAML, or ``--trl KEY=VALUE`` repeated, values parsed as YAML) is passed to
TRL's ``SFTConfig``/``GRPOConfig`` unchanged, for any of their options not named here.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml

from actial_ros.errors import ConfigError

__all__ = ['add_arguments', 'describe', 'resolve']

T = TypeVar('T')


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
    for field in dataclasses.fields(settings_cls):
        help_text = field.metadata.get('help', '')
        if field.name == 'trl':
            parser.add_argument(
                '--trl',
                action='append',
                type=_parse_pair,
                metavar='KEY=VALUE',
                help='extra TRL config option (value parsed as YAML); repeatable',
            )
            continue
        kind, _ = _base_type(hints[field.name])
        flag = _flag(field.name)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif get_origin(kind) is list:
            (item,) = get_args(kind) or (str,)
            parser.add_argument(flag, nargs='+', type=item, default=None, help=help_text)
        elif kind in (int, float, str):
            parser.add_argument(flag, type=kind, default=None, help=help_text)
        else:
            parser.add_argument(flag, type=yaml.safe_load, default=None, help=help_text)


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
