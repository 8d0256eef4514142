"""The sandbox's copy of Discord's OpenAPI description: generated, complete, licensed (contract 1).

``scripts/generate_sandbox_spec.py`` writes ``src/tokenward/sandbox/spec/``; these tests fail when
the committed copy drifts from what the script makes of the spec (skipped where the spec is
absent), when a hosted tool has no route, or when the licence is missing.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from tokenward.sandbox.openapi import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = ROOT / "src" / "tokenward" / "sandbox" / "spec"


def _generator() -> ModuleType:
    path = ROOT / "scripts" / "generate_sandbox_spec.py"
    module_spec = importlib.util.spec_from_file_location("generate_sandbox_spec", path)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_committed_copy_matches_the_generator() -> None:
    generator = _generator()
    source = generator.spec_path()
    if not source.is_file():
        pytest.skip(f"Discord's OpenAPI spec is not here ({source})")
    spec = json.loads(source.read_text(encoding="utf-8"))
    tools = generator.hosted_tools(source.parent.parent / "hosted-discord-catalog.md")
    assert len(tools) == 255
    want = generator.render(generator.build(spec, tools))
    have = (SPEC_DIR / "discord-openapi.json").read_text(encoding="utf-8")
    assert have == want, "run `make sandbox-spec` and commit the result"
    licence = (source.parent / "LICENSE").read_text(encoding="utf-8")
    assert (SPEC_DIR / "LICENSE").read_text(encoding="utf-8") == licence


def test_licence_travels_with_the_copy() -> None:
    text = (SPEC_DIR / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Discord" in text


def test_every_hosted_tool_has_a_route() -> None:
    spec = load_spec()
    tools = [tool for operation in spec.operations for tool in operation.tools]
    assert len(tools) == len(set(tools)) == 255
    assert sum(tool.startswith("discord_") for tool in tools) == 34
    assert sum(tool.startswith("discordbot_") for tool in tools) == 221
    # The spec's 242 operations plus the one the spec lacks (list SKUs).
    assert len(spec.operations) == 243
    extra = [operation for operation in spec.operations if operation.origin != "discord"]
    assert [operation.id for operation in extra] == ["list_skus"]


def test_the_runtime_never_reads_shared() -> None:
    """Nothing in the sandbox package names ``../shared`` (it ships without it)."""
    package = ROOT / "src" / "tokenward" / "sandbox"
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"shared/reference|discord-openapi/openapi", text), path
