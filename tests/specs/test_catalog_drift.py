"""The committed catalogs are exactly what the generator makes from Discord's OpenAPI description
and the overlays: a change to either without ``make catalog`` fails here.

Needs the spec (``$TOKENWARD_DISCORD_OPENAPI``, else ``../shared/reference/discord-openapi/
openapi.json`` from the repository root) and skips without it; the gateway itself never reads
it.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    path = ROOT / "scripts" / "generate_catalog.py"
    spec = importlib.util.spec_from_file_location("generate_catalog", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_catalog"] = module
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()
SPEC = GENERATOR.spec_path()
needs_spec = pytest.mark.skipif(not SPEC.is_file(), reason=f"no OpenAPI description at {SPEC}")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return data


@needs_spec
def test_the_committed_catalogs_match_the_generator() -> None:
    files = GENERATOR.outputs(SPEC)
    assert len(files) == 6
    drift = [str(p.relative_to(ROOT)) for p, text in files.items() if p.read_text("utf-8") != text]
    assert not drift, f"run `make catalog`: out of date: {drift}"


@needs_spec
def test_the_licence_of_the_spec_is_beside_each_generated_catalog() -> None:
    licence = (SPEC.parent / "LICENSE").read_text(encoding="utf-8")
    assert "MIT" in licence
    for provider in ("discord", "discordbot"):
        folder = ROOT / "src" / "tokenward" / "providers" / provider
        assert (folder / "OPENAPI-LICENSE").read_text(encoding="utf-8") == licence


@needs_spec
def test_a_changed_overlay_changes_the_output(document: dict[str, Any]) -> None:
    """The drift check can fail: a changed description shows up in the generated YAML."""
    overlay = GENERATOR.load_overlay("discord")
    shared = overlay.get("params")
    before, _ = GENERATOR.generate(document, overlay, shared)
    changed = copy.deepcopy(overlay)
    changed["tools"]["discord_get_gateway"]["description"] += " Changed."
    after, _ = GENERATOR.generate(document, changed, shared)
    assert before != after
    assert "Changed." in after


@needs_spec
def test_problems_in_the_overlay_are_all_reported(document: dict[str, Any]) -> None:
    overlay = copy.deepcopy(GENERATOR.load_overlay("discord"))
    overlay["tools"]["discord_get_gateway"]["operation"] = "no_such_operation"
    del overlay["tools"]["discord_get_my_user"]["title"]
    overlay["tools"]["discord_list_my_guilds"]["params"]["surprise"] = {"description": "x"}
    with pytest.raises(GENERATOR.GenerationError) as info:
        GENERATOR.generate(document, overlay, overlay["params"])
    message = str(info.value)
    assert "'no_such_operation' is not in the spec" in message
    assert "discord_get_my_user: the overlay gives no title" in message
    assert "parameter surprise is not in the spec operation" in message


@needs_spec
def test_spec_schemas_become_shared_defs(document: dict[str, Any]) -> None:
    tools_text, schemas_text = GENERATOR.generate(
        document, GENERATOR.load_overlay("discordbot"), GENERATOR.load_overlay("discord")["params"]
    )
    defs = json.loads(schemas_text)["$defs"]
    tools = {t["name"]: t for t in yaml.safe_load(tools_text)["tools"]}
    embeds = next(p for p in tools["discordbot_create_message"]["params"] if p["name"] == "embeds")
    assert embeds["schema"]["items"] == {"$ref": "#/$defs/RichEmbed"}
    embed = defs["RichEmbed"]
    assert embed["additionalProperties"] is False
    assert embed["properties"]["title"]["maxLength"] == 256
    # Snowflakes are a format, enumerations are inlined with their value names.
    channel = next(
        p for p in tools["discordbot_create_guild_channel"]["params"] if p["name"] == "parent_id"
    )
    assert channel["schema"]["format"] == "snowflake"
    assert "SnowflakeType" not in defs
    assert "ChannelTypes" not in defs
    # The spec's "no limit" stand-ins are gone.
    assert "152133" not in schemas_text
    assert "152133" not in tools_text


def test_the_generator_finds_the_spec_by_the_documented_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOKENWARD_DISCORD_OPENAPI", "/somewhere/openapi.json")
    assert GENERATOR.spec_path() == Path("/somewhere/openapi.json")
    monkeypatch.delenv("TOKENWARD_DISCORD_OPENAPI")
    assert (
        GENERATOR.spec_path()
        == ROOT.parent / "shared" / "reference" / "discord-openapi" / "openapi.json"
    )
    assert GENERATOR.spec_path("x.json") == Path("x.json")
