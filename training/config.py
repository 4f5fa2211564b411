"""Settings of the training commands: a YAML file of defaults, overridden by command-line flags.

Each command describes its settings as dataclasses whose fields carry a ``help`` text. :func:`add_arguments`
turns every such field into a flag (``learning_rate`` -> ``--learning-rate``; booleans get ``--x/--no-x``; lists
take several values, or one per repetition of the flag with ``repeat``), with ``None`` as the flag default so
that only flags actually given override the YAML file named by ``--config``. A field's metadata may also say
``group`` (a help section), ``choices``, ``nargs``, ``metavar``, ``flag``, ``key`` (its YAML key and flag
where these are not the field's name), ``parse`` (from the flag's value to the field's) and ``command_default``
(the command's default where it is not the dataclass's); the help shows the default. A field marked
:func:`part` holds a dataclass whose own settings fields are the command's too, flat (so a structured config,
e.g. the dataset builder's ``BuildConfig`` with its pair policy and bag options, is the one declaration of its
flags and YAML keys); fields without a ``help`` are not settings (the command fills them from others).
:func:`resolve` merges dataclass defaults < YAML < flags and validates the keys (:func:`resolve_values` and
:func:`construct` are its two halves, for commands that combine several dataclasses).
A free-form ``trl`` mapping (YAML, or ``--trl KEY=VALUE`` repeated, values parsed as YAML) is passed to
TRL's ``SFTConfig``/``GRPOConfig`` unchanged, for any of their options not named here.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml

from actial_ros.errors import ConfigError

__all__ = ['add_arguments', 'construct', 'describe', 'field_default', 'part', 'resolve', 'resolve_values', 'setting']

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
    key: str | None = None,
    parse: Callable[[Any], Any] | None = None,
    command_default: Any = dataclasses.MISSING,
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
        key: the YAML key (and ``--key`` the flag) where it is not the field's name (a part's field named in
            its command's terms: ``PairConfig.min_yaw_deg`` is ``min_yaw``).
        parse: turns the flag's or YAML's value into the field's (e.g. ``0`` -> ``None``: no cap).
        command_default: the command's default where it is not the dataclass's (a value, or a function of
            none called each time: e.g. the CPU count).
    """
    meta: dict[str, Any] = {'help': help_text}
    options = (('group', group), ('choices', choices), ('nargs', nargs), ('metavar', metavar), ('flag', flag))
    for name, value in (*options, ('key', key), ('parse', parse)):
        if value is not None:
            meta[name] = value
    if repeat:
        meta['repeat'] = True
    if command_default is not dataclasses.MISSING:
        meta['command_default'] = command_default
    return meta


def part(*, group: str | None = None) -> dict[str, Any]:
    """The metadata of a field holding a dataclass whose settings fields are the command's settings too (flat
    flags and YAML keys, each by its ``key``), listed under ``group`` unless they name their own."""
    return {'part': True, **({'group': group} if group is not None else {})}


@dataclasses.dataclass(frozen=True)
class _Setting:
    """One flag / YAML key: the field that declares it and its type hint, its help section."""

    key: str
    field: dataclasses.Field[Any]
    hint: Any
    group: str | None


def _settings(settings_cls: type[Any], group: str | None = None) -> Iterator[_Setting]:
    """The settings declared by ``settings_cls`` and its parts, in declaration order."""
    hints = typing.get_type_hints(settings_cls)
    for field in dataclasses.fields(settings_cls):
        meta = field.metadata
        if meta.get('part'):
            yield from _settings(_base_type(hints[field.name])[0], meta.get('group', group))
        elif 'help' in meta:
            yield _Setting(meta.get('key', field.name), field, hints[field.name], meta.get('group', group))


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


def _command_default(meta: typing.Mapping[str, Any]) -> Any:
    default = meta['command_default']
    return default() if callable(default) else default


def _default_text(field: dataclasses.Field[Any]) -> str:
    if 'command_default' in field.metadata:
        value = _command_default(field.metadata)
    elif field.default is not dataclasses.MISSING:
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


def add_arguments(parser: argparse.ArgumentParser, *settings_classes: type[Any]) -> None:
    """Add ``--config`` and one flag per setting of the dataclasses ``settings_classes`` (and of their parts) to
    ``parser``.

    Raises:
        ValueError: two settings share a key.
    """
    parser.add_argument('--config', type=Path, help='YAML file of settings (flags override it)')
    groups: dict[str, Any] = {}
    seen: set[str] = set()
    for settings_cls in settings_classes:
        for entry in _settings(settings_cls):
            if entry.key in seen:
                raise ValueError(f'two settings named {entry.key!r}')
            seen.add(entry.key)
            target: Any = parser
            if entry.group is not None:
                if entry.group not in groups:
                    groups[entry.group] = parser.add_argument_group(entry.group)
                target = groups[entry.group]
            _add_flag(target, entry)


def _add_flag(target: Any, entry: _Setting) -> None:
    field, meta = entry.field, entry.field.metadata
    if entry.key == 'trl':
        target.add_argument(
            '--trl',
            action='append',
            type=_parse_pair,
            metavar='KEY=VALUE',
            help='extra TRL config option (value parsed as YAML); repeatable',
        )
        return
    options: dict[str, Any] = {'default': None, 'help': meta.get('help', '') + _default_text(field)}
    for name in ('choices', 'metavar'):
        if name in meta:
            options[name] = meta[name]
    kind, _ = _base_type(entry.hint)
    if kind is bool:
        options['action'] = argparse.BooleanOptionalAction
    elif get_origin(kind) in (list, tuple):
        item = (get_args(kind) or (str,))[0]
        options['type'] = item
        if meta.get('repeat'):
            options['action'] = 'append'
        else:
            options['nargs'] = meta.get('nargs', '+')
    elif kind in (int, float, str):
        options['type'] = kind
    elif kind is Path:
        options['type'] = str
    else:
        options['type'] = yaml.safe_load
    if 'flag' in meta or entry.key != field.name:
        options['dest'] = entry.key
    target.add_argument(meta.get('flag', _flag(entry.key)), **options)


def resolve(settings_cls: type[T], args: argparse.Namespace) -> T:
    """Build the settings: dataclass defaults, then the YAML file (``args.config``), then the flags given.

    Raises:
        ConfigError: unreadable YAML, an unknown key in it, or a missing required setting.
    """
    return construct(settings_cls, resolve_values(args, settings_cls))


def resolve_values(args: argparse.Namespace, *settings_classes: type[Any]) -> dict[str, Any]:
    """The settings given, by key: the YAML file's (``args.config``), then the flags given over them (the
    dataclasses' defaults are :func:`construct`'s).

    Raises:
        ConfigError: unreadable YAML or a key in it that none of ``settings_classes`` declares.
    """
    keys = [entry.key for settings_cls in settings_classes for entry in _settings(settings_cls)]
    values: dict[str, Any] = {}
    config_path = getattr(args, 'config', None)
    if config_path is not None:
        try:
            loaded = yaml.safe_load(Path(config_path).read_text(encoding='utf-8')) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f'cannot read settings file {config_path}: {exc}') from None
        if not isinstance(loaded, dict):
            raise ConfigError(f'{config_path} must hold a mapping of settings')
        unknown = sorted(set(loaded) - set(keys))
        if unknown:
            raise ConfigError(f'unknown setting(s) in {config_path}: {", ".join(unknown)}')
        values.update(loaded)
    for key in keys:
        given = getattr(args, key, None)
        if key == 'trl':
            if given:
                merged = dict(values.get('trl') or {})
                merged.update(dict(given))
                values['trl'] = merged
        elif given is not None:
            values[key] = given
    return values


def construct(settings_cls: type[T], values: typing.Mapping[str, Any], **given: Any) -> T:
    """``settings_cls`` from the settings ``values`` (by key, see :func:`resolve_values`): each setting's
    value parsed (its ``parse``), else its ``command_default``, else the dataclass default; each part built the
    same way from the same values. ``given`` sets fields directly (those the command computes from others).

    Raises:
        ConfigError: a missing required setting or a value the dataclass refuses with a ``TypeError``.
    """
    hints = typing.get_type_hints(settings_cls)
    arguments: dict[str, Any] = {}
    for field in dataclasses.fields(settings_cls):  # type: ignore[arg-type]
        meta = field.metadata
        if field.name in given:
            arguments[field.name] = given[field.name]
        elif meta.get('part'):
            arguments[field.name] = construct(_base_type(hints[field.name])[0], values)
        elif 'help' in meta:
            key = meta.get('key', field.name)
            if key in values:
                arguments[field.name] = meta['parse'](values[key]) if 'parse' in meta else values[key]
            elif 'command_default' in meta:
                arguments[field.name] = _command_default(meta)
    try:
        return settings_cls(**arguments)
    except TypeError as exc:
        raise ConfigError(f'invalid settings: {exc}') from None


def describe(settings: Any) -> dict[str, Any]:
    """The settings as a plain dict (for logs and for saving next to a run)."""
    return dataclasses.asdict(settings)
