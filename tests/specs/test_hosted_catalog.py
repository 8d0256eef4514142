"""Both connectors offer exactly the hosted catalog's tools, each accepting every parameter the
hosted catalog names for it: same name, same required flag, same JSON type.

The hosted catalog (``hosted-discord-catalog.md``) is parsed here, not copied into code: a copy
of the reference sits in ``tests/specs/data`` so the test runs anywhere, and when the shared
reference is present (``../shared/reference`` from the repository root, or beside the folder
of ``$TOKENWARD_DISCORD_OPENAPI``) the copy must equal it.
Parameters we add beyond the hosted ones (``audit_log_reason``, filters Discord offers) are
allowed, but never required: a hosted caller's input must stay valid.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tokenward.providers.models import ToolSpec
from tokenward.tools.catalog import Catalog

ROOT = Path(__file__).resolve().parents[2]
COPY = Path(__file__).resolve().parent / "data" / "hosted-discord-catalog.md"
_SPEC = os.environ.get("TOKENWARD_DISCORD_OPENAPI")
SHARED = (
    Path(_SPEC).resolve().parent.parent if _SPEC else ROOT.parent / "shared" / "reference"
) / "hosted-discord-catalog.md"
ROW = re.compile(r"^\| `(discord(?:bot)?_[a-z0-9_]+)` \| (.*) \|$", re.M)
PARAM = re.compile(r"`([a-z0-9_]+)`(\*?) (string|integer|number|boolean|array|object)")

Hosted = dict[str, dict[str, tuple[bool, str]]]


def parse(text: str) -> Hosted:
    tools: Hosted = {}
    for name, cell in ROW.findall(text):
        assert name not in tools, f"{name} listed twice"
        params = {p: (star == "*", kind) for p, star, kind in PARAM.findall(cell)}
        assert cell.strip() == "—" or len(params) == cell.count("`") // 2, name
        tools[name] = params
    return tools


HOSTED = parse(COPY.read_text(encoding="utf-8"))
CATALOGS = Catalog.load_all()


def test_the_copy_is_the_shared_reference() -> None:
    if not SHARED.is_file():
        pytest.skip(f"the shared reference is not at {SHARED}")
    assert COPY.read_text(encoding="utf-8") == SHARED.read_text(encoding="utf-8")


def test_the_parser_reads_the_whole_table() -> None:
    assert sum(n.startswith("discord_") for n in HOSTED) == 34
    assert sum(n.startswith("discordbot_") for n in HOSTED) == 221
    assert HOSTED["discord_get_gateway"] == {}
    assert HOSTED["discordbot_create_reaction"] == {
        "channel_id": (True, "string"),
        "emoji": (True, "string"),
        "message_id": (True, "string"),
    }


def test_the_tool_names_are_exactly_the_hosted_ones() -> None:
    assert sorted(CATALOGS.catalog("discord").names()) == sorted(
        n for n in HOSTED if n.startswith("discord_")
    )
    assert sorted(CATALOGS.catalog("discordbot").names()) == sorted(
        n for n in HOSTED if n.startswith("discordbot_")
    )
    assert len(CATALOGS.names()) == 255


@pytest.mark.parametrize("tool", CATALOGS.tools(), ids=lambda t: t.name)
def test_every_hosted_parameter_is_accepted_as_the_hosted_catalog_says(tool: ToolSpec) -> None:
    hosted = HOSTED[tool.name]
    ours = {p.name: p for p in tool.params}
    for name, (required, kind) in hosted.items():
        assert name in ours, f"{tool.name} lacks the hosted parameter {name}"
        param = ours[name]
        assert param.required == required, f"{tool.name}.{name}: required flag differs"
        assert tool.param_type(param) == kind, f"{tool.name}.{name}: type differs"
    for name, param in ours.items():
        if name not in hosted:
            assert not param.required, f"{tool.name}.{name} is ours and must stay optional"


def test_a_mismatch_would_be_caught() -> None:
    tool = CATALOGS.get("discordbot_create_reaction")
    emoji = tool.param("emoji")
    assert emoji is not None
    broken = tool.model_copy(update={"params": tuple(p for p in tool.params if p.name != "emoji")})
    with pytest.raises(AssertionError, match="lacks the hosted parameter emoji"):
        test_every_hosted_parameter_is_accepted_as_the_hosted_catalog_says(broken)
    optional = emoji.model_copy(update={"required": False})
    flipped = tool.model_copy(
        update={"params": tuple(optional if p.name == "emoji" else p for p in tool.params)}
    )
    with pytest.raises(AssertionError, match="required flag differs"):
        test_every_hosted_parameter_is_accepted_as_the_hosted_catalog_says(flipped)
