"""The few HTML pages a person sees: the link's click-through page and the end of the
authorization flow, good or bad. Plain server-rendered HTML: no JavaScript, nothing loaded from
elsewhere (the pages send ``Content-Security-Policy: default-src 'none'``, see
``server/browser.py``), every value escaped."""

from __future__ import annotations

from html import escape

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;
color:#1f2328;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;max-width:30rem;width:calc(100% - 2rem);padding:2rem 2.25rem;
border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06)}
h1{font-size:1.35rem;margin:.25rem 0 1rem}p{line-height:1.5;margin:.5rem 0}
.badge{display:inline-block;font-size:.8rem;font-weight:600;padding:.2rem .6rem;border-radius:999px}
.ok{background:#dafbe1;color:#116329}.err{background:#ffebe9;color:#a40e26}
.what{color:#57606a}code{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px}
footer{margin-top:1.5rem;font-size:.8rem;color:#8c959f}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:1rem 0}
dt{color:#57606a}dd{margin:0;overflow-wrap:anywhere}ul{margin:.25rem 0 .5rem;padding-left:1.2rem}
.note{background:#fff8c5;border-radius:6px;padding:.5rem .75rem}
button{font:inherit;font-weight:600;background:#5865f2;color:#fff;border:0;border-radius:6px;
padding:.6rem 1.2rem;cursor:pointer;margin-top:.5rem}button:hover{background:#4752c4}
"""

# One line per scope a connection commonly asks for: what the application gets.
SCOPE_MEANINGS = {
    "identify": "your Discord username, avatar and user id",
    "email": "your email address",
    "guilds": "the list of servers you are in",
    "guilds.members.read": "your member details (nickname, roles) in those servers",
    "guilds.join": "adding you to servers",
    "connections": "the accounts you linked to Discord (e.g. GitHub, Steam)",
    "openid": "a sign-in identity token",
    "applications.commands": "using its commands",
    "applications.entitlements": "your purchases in applications you own",
    "role_connections.write": "updating your linked-role metadata",
    "gdm.join": "adding you to group DMs",
}


def _page(title: str, badge: str, badge_class: str, body_html: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} · tokenward</title><style>{_STYLE}</style></head><body><main>"
        f'<span class="badge {badge_class}">{escape(badge)}</span><h1>{escape(title)}</h1>'
        f"{body_html}<footer>tokenward</footer></main></body></html>"
    )


def success_page(connection_name: str, username: str | None, pending_verification: bool) -> str:
    who = f", <strong>{escape(username)}</strong>," if username else ""
    if pending_verification:
        text = (
            f"<p>Your Discord account{who} is connected. The application still has to "
            "confirm it is you; you can close this tab.</p>"
        )
    else:
        text = (
            f"<p>Your Discord account{who} is now connected to "
            f"<code>{escape(connection_name)}</code>.</p><p class=what>You can close this tab and "
            "go back to the application.</p>"
        )
    return _page("Discord connected", "Connected", "ok", text)


def error_page(title: str, what_happened: str, what_to_do: str) -> str:
    body = (
        f"<p>{escape(what_happened)}</p>"
        f"<p class=what><strong>What to do:</strong> {escape(what_to_do)}</p>"
    )
    return _page(title, "Not connected", "err", body)


def connect_page(
    *,
    connection_name: str,
    client_id: str,
    identifier: str,
    scopes: tuple[str, ...],
    expires_at_text: str,
    relink: bool,
    action_url: str,
    csrf_token: str,
    problem: str | None = None,
    notice: str | None = None,
) -> str:
    """The page ``/connect/{id}`` shows: who asks, for which account, what approving does, and a
    button (a POST form) that goes on to Discord."""
    scope_items = "".join(
        f"<li><code>{escape(scope)}</code>"
        + (f" — {escape(SCOPE_MEANINGS[scope])}" if scope in SCOPE_MEANINGS else "")
        + "</li>"
        for scope in scopes
    )
    facts = (
        "<dl>"
        f"<dt>Application</dt><dd><strong>{escape(connection_name)}</strong> "
        f"(Discord application <code>{escape(client_id)}</code>)</dd>"
        f"<dt>Account being connected</dt><dd><code>{escape(identifier)}</code></dd>"
        f"<dt>Link valid until</dt><dd>{escape(expires_at_text)}</dd>"
        "</dl>"
    )
    body = (
        (f"<p class=note>{escape(notice)}</p>" if notice else "")
        + f"<p><strong>{escape(connection_name)}</strong> asks to connect your Discord account "
        f"to its account <code>{escape(identifier)}</code>.</p>"
        + facts
        + "<p>If you continue and approve on Discord, the application gets the following, "
        "until you remove it in Discord's settings (User Settings → Authorized Apps):</p>"
        + f"<ul>{scope_items}</ul>"
        + (
            "<p class=note>This account is already connected to a Discord account; approving "
            "replaces that connection.</p>"
            if relink
            else ""
        )
        + "<p class=what>Continue only if <code>"
        + escape(identifier)
        + "</code> is <strong>your</strong> account in this application and you asked for this "
        "link. If someone sent it to you, close this page: approving would let their account "
        "act as you on Discord.</p>"
    )
    if problem is not None:
        body += f"<p class=note>{escape(problem)}</p>"
    else:
        body += (
            f'<form method=post action="{escape(action_url)}">'
            f'<input type=hidden name=csrf_token value="{escape(csrf_token)}">'
            "<button type=submit>Continue to Discord</button></form>"
        )
    return _page("Connect your Discord account", "Authorization", "ok", body)
