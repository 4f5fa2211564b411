"""The model server's default endpoint and key variable: one home for the node, the demo and the CLI
(no client imported here, so reading a default costs nothing)."""

from __future__ import annotations

__all__ = ['DEFAULT_API_KEY_ENV', 'DEFAULT_BASE_URL', 'DEFAULT_MODEL']

DEFAULT_BASE_URL = 'http://127.0.0.1:8000/v1'
"""Where ``vllm serve`` listens by default (its OpenAI-compatible API)."""

DEFAULT_API_KEY_ENV = 'ACTIAL_API_KEY'
"""Environment variable holding the API key (``vllm serve --api-key``)."""

DEFAULT_MODEL = 'actial-7b'
"""The served model name the node asks for by default (``vllm serve --served-model-name``)."""
