"""``actial-ros serve``: the vllm serve command it prints or starts (the session server of the real-vLLM
tier is started from the same function, so the command is also proven against real vLLM there)."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from serving_support import VLLM_EXECUTABLE, VLLM_VENV

from actial_ros.cli import main
from actial_ros.errors import ConfigError
from actial_ros.serving import (
    ServeOptions,
    format_serve_command,
    options_from_args,
    parse_mm_limit,
    serve_command,
    serve_environment,
)

SECRET = 'sk-serve-test-5e1f'


def test_defaults_match_what_the_node_sends() -> None:
    command = serve_command(ServeOptions(model='/models/actial-7b'))
    assert command[:3] == ['vllm', 'serve', '/models/actial-7b']
    flags = dict(zip(command[3::2], command[4::2], strict=False))
    assert flags['--served-model-name'] == 'actial-7b'  # the node's default vllm_model
    assert json.loads(flags['--limit-mm-per-prompt']) == {'image': 2, 'video': 0}  # a pair per prompt
    assert flags['--max-model-len'] == '8192'
    assert flags['--host'] == '127.0.0.1' and flags['--port'] == '8000'
    assert flags['--dtype'] == 'auto'
    assert '--api-key' not in command
    assert ServeOptions(model='m', host='0.0.0.0', port=9000).base_url == 'http://127.0.0.1:9000/v1'


def test_every_option_reaches_the_command() -> None:
    options = options_from_args(
        'Qwen/Qwen2.5-VL-7B-Instruct',
        served_model_name='qwen-7b',
        host='0.0.0.0',
        port=8100,
        max_model_len=16384,
        limit_mm_per_prompt='image=4',
        dtype='bfloat16',
        gpu_memory_utilization=0.85,
        tensor_parallel_size=2,
        max_num_seqs=16,
        enforce_eager=True,
        extra_args=['--seed', '1'],
        executable='/opt/vllm/bin/vllm',
    )
    command = serve_command(options)
    assert command[0] == '/opt/vllm/bin/vllm'
    text = shlex.join(command)
    for expected in (
        '--served-model-name qwen-7b',
        '--host 0.0.0.0',
        '--port 8100',
        '--max-model-len 16384',
        '--limit-mm-per-prompt \'{"image":4}\'',
        '--dtype bfloat16',
        '--gpu-memory-utilization 0.85',
        '--tensor-parallel-size 2',
        '--max-num-seqs 16',
        '--enforce-eager',
        '--seed 1',
    ):
        assert expected in text, expected


@pytest.mark.parametrize(
    ('text', 'limits'),
    [
        ('image=2', {'image': 2}),
        ('image=2,video=0', {'image': 2, 'video': 0}),
        ('{"image": 3}', {'image': 3}),
    ],
)
def test_mm_limit_syntax(text: str, limits: dict[str, int]) -> None:
    assert parse_mm_limit(text) == limits


@pytest.mark.parametrize(
    'kwargs',
    [
        {'limit_mm_per_prompt': 'image=1'},  # the node sends two images
        {'limit_mm_per_prompt': 'image'},
        {'port': 0},
        {'max_model_len': 100},
        {'dtype': 'int4'},
        {'gpu_memory_utilization': 1.5},
        {'tensor_parallel_size': 0},
        {'api_key_env': 'not a name'},
        {'extra_args': ['--api-key', 'x']},  # keys never on the command line
        {'served_model_name': ' '},
    ],
)
def test_invalid_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        options_from_args('model', **kwargs)  # type: ignore[arg-type]


def test_api_key_goes_through_the_environment_only() -> None:
    options = ServeOptions(model='m', api_key_env='MY_KEY', cpu_kv_cache_gib=2)
    env = serve_environment(options, {'MY_KEY': SECRET, 'PATH': '/bin'})
    assert env['VLLM_API_KEY'] == SECRET and env['VLLM_CPU_KVCACHE_SPACE'] == '2' and env['PATH'] == '/bin'
    assert SECRET not in serve_command(options)
    printed = format_serve_command(options)
    assert printed.startswith('VLLM_CPU_KVCACHE_SPACE=2 VLLM_API_KEY="$MY_KEY" vllm serve m ')
    assert SECRET not in printed
    with pytest.raises(ConfigError, match='MY_KEY is unset or empty'):
        serve_environment(options, {'PATH': '/bin'})


def test_cli_prints_the_command_without_the_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('ACTIAL_API_KEY', SECRET)
    code = main(
        ['serve', '/models/actial', '--api-key-env', 'ACTIAL_API_KEY', '--port', '8123', '--vllm-args', '--seed 3']
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert out.strip().startswith(
        'VLLM_API_KEY="$ACTIAL_API_KEY" vllm serve /models/actial --served-model-name actial-7b'
    )
    assert '--port 8123' in out and out.strip().endswith('--seed 3')
    assert 'vllm_base_url:=http://127.0.0.1:8123/v1' in err and 'vllm_api_key_env:=ACTIAL_API_KEY' in err
    assert SECRET not in out + err


def test_cli_tells_the_node_the_prompt_the_checkpoint_was_trained_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from actial_ros.recipe import CheckpointRecipe, write_recipe

    write_recipe(CheckpointRecipe(stage='sft', system_prompt=''), tmp_path)
    assert main(['serve', str(tmp_path)]) == 0
    assert "-p system_prompt:='You are a helpful assistant.'" in capsys.readouterr().err  # the template's default
    write_recipe(CheckpointRecipe(stage='grpo', system_prompt='Be brief.'), tmp_path)
    assert main(['serve', str(tmp_path)]) == 0
    assert "-p system_prompt:='Be brief.'" in capsys.readouterr().err
    assert main(['serve', str(tmp_path / 'no_recipe')]) == 0
    assert 'system_prompt' not in capsys.readouterr().err
    (tmp_path / 'actial_recipe.json').write_text('{')
    assert main(['serve', str(tmp_path)]) == 2
    assert 'checkpoint recipe' in capsys.readouterr().err


def test_cli_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['serve', 'm', '--limit-mm-per-prompt', 'image=1']) == 2
    assert 'two images' in capsys.readouterr().err
    assert main(['serve', 'm', '--run', '--vllm', '/nonexistent/vllm']) == 2
    assert 'not found' in capsys.readouterr().err


def test_cli_run_execs_vllm_with_the_key_in_its_environment(tmp_path: Path) -> None:
    """--run replaces the process with vllm serve (here a stand-in script that records what it got)."""
    record = tmp_path / 'record.json'
    fake = tmp_path / 'vllm'
    fake.write_text(
        f'#!{sys.executable}\n'
        'import json, os, sys\n'
        f'json.dump({{"argv": sys.argv, "key": os.environ.get("VLLM_API_KEY"), "pid": os.getpid()}}, '
        f'open({str(record)!r}, "w"))\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, 'ROBOT_KEY': SECRET}
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'actial_ros.cli',
            'serve',
            '/models/actial',
            '--api-key-env',
            'ROBOT_KEY',
            '--enforce-eager',
            '--vllm',
            str(fake),
            '--run',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(record.read_text())
    assert got['key'] == SECRET
    assert got['argv'][1:4] == ['serve', '/models/actial', '--served-model-name']
    assert '--enforce-eager' in got['argv'] and SECRET not in ' '.join(got['argv'])
    assert SECRET not in result.stdout + result.stderr


def test_every_flag_exists_in_the_installed_vllm() -> None:
    """The flags the helper can emit are known to the vLLM of the test environment (its --help)."""
    if not VLLM_EXECUTABLE.exists():
        pytest.skip(f'no vLLM test environment at {VLLM_VENV}: run test/serving/setup_vllm_env.sh')
    result = subprocess.run(
        [str(VLLM_EXECUTABLE), 'serve', '--help=all'],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, 'VLLM_NO_USAGE_STATS': '1', 'HF_HUB_OFFLINE': '1'},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    options = options_from_args(
        'm', gpu_memory_utilization=0.9, tensor_parallel_size=1, max_num_seqs=4, enforce_eager=True
    )
    flags = [arg for arg in serve_command(options) if arg.startswith('--')]
    for flag in flags:
        assert f'{flag} ' in result.stdout or f'{flag},' in result.stdout or f'{flag}\n' in result.stdout, flag
