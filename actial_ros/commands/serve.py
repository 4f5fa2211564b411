"""``actial-ros serve MODEL``: print (or start, with ``--run``) the ``vllm serve`` command that serves a
Qwen2.5-VL checkpoint the way the spatial_reasoner node expects (two images per prompt, served model name,
context length, API key from a variable). See docs/serving.md; the command is built by
:mod:`actial_ros.serving`.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from actial_ros.backends.defaults import DEFAULT_MODEL
from actial_ros.errors import ConfigError

__all__ = ['DESCRIPTION', 'configure_parser', 'run']

DESCRIPTION = (
    'Print the vllm serve command that serves MODEL the way the spatial_reasoner node '
    'expects (two images per prompt, served model name, context length, API key from a variable); '
    'with --run, start it. See docs/serving.md.'
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``actial-ros serve``."""
    parser.description = DESCRIPTION
    parser.add_argument('model', help='Qwen2.5-VL checkpoint directory or hub id')
    parser.add_argument(
        '--served-model-name', default=DEFAULT_MODEL, help=f"the node's vllm_model (default {DEFAULT_MODEL})"
    )
    parser.add_argument('--host', default='127.0.0.1', help='listen address (0.0.0.0: all interfaces)')
    parser.add_argument('--port', type=int, default=8000)
    parser.add_argument(
        '--api-key-env',
        default=None,
        metavar='VAR',
        help='environment variable holding the API key; passed as VLLM_API_KEY, never echoed',
    )
    parser.add_argument('--max-model-len', type=int, default=8192, help='context length (tokens)')
    parser.add_argument(
        '--limit-mm-per-prompt', default='image=2,video=0', help='items per prompt (image=2,video=0 or JSON)'
    )
    parser.add_argument('--dtype', default='auto', help='auto, bfloat16, float16 or float32')
    parser.add_argument('--gpu-memory-utilization', type=float, default=None)
    parser.add_argument('--tensor-parallel-size', type=int, default=None)
    parser.add_argument('--max-num-seqs', type=int, default=None)
    parser.add_argument('--enforce-eager', action='store_true', help='no graph capture (faster start; CPU)')
    parser.add_argument('--cpu-kv-cache-gib', type=int, default=None, help='CPU builds: KV cache size (GiB)')
    parser.add_argument('--vllm', default='vllm', help='the vllm executable (default: vllm on PATH)')
    parser.add_argument('--run', action='store_true', help='start the server instead of printing the command')
    parser.add_argument(
        '--vllm-args',
        action='append',
        default=[],
        metavar='ARGS',
        help="further vllm serve arguments, shell-quoted in one string (repeatable), e.g. '--max-num-seqs 8'",
    )


def run(args: argparse.Namespace) -> int:
    """Print the command (0), or replace this process with the server (``--run``); 2 on a settings error."""
    from actial_ros.recipe import read_recipe, sent_system_prompt
    from actial_ros.serving import exec_server, format_serve_command, options_from_args

    try:
        options = options_from_args(
            args.model,
            served_model_name=args.served_model_name,
            host=args.host,
            port=args.port,
            api_key_env=args.api_key_env,
            max_model_len=args.max_model_len,
            limit_mm_per_prompt=args.limit_mm_per_prompt,
            dtype=args.dtype,
            gpu_memory_utilization=args.gpu_memory_utilization,
            tensor_parallel_size=args.tensor_parallel_size,
            max_num_seqs=args.max_num_seqs,
            enforce_eager=args.enforce_eager,
            cpu_kv_cache_gib=args.cpu_kv_cache_gib,
            extra_args=[arg for text in args.vllm_args for arg in shlex.split(text)],
            executable=args.vllm,
        )
        recipe = read_recipe(args.model)  # the prompt the checkpoint was trained with is sent by the client
        prompt = f' -p system_prompt:={shlex.quote(sent_system_prompt(recipe))}' if recipe is not None else ''
        if not args.run:
            print(format_serve_command(options))
            print(
                f'# node: -p backend:=vllm -p vllm_base_url:={options.base_url} '
                f'-p vllm_model:={options.served_model_name}'
                + (f' -p vllm_api_key_env:={options.api_key_env}' if options.api_key_env else '')
                + prompt,
                file=sys.stderr,
            )
            return 0
        if recipe is not None:
            print(f'# the checkpoint was trained with this system prompt; node:{prompt}', file=sys.stderr)
        print(format_serve_command(options), file=sys.stderr, flush=True)
        exec_server(options)
    except ConfigError as error:
        print(f'actial-ros serve: {error}', file=sys.stderr)
        return 2
    return 0  # not reached: exec_server replaces the process
