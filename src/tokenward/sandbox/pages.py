"""HTML of the sandbox's browser pages: the consent form and the error page.

Plain forms that work without JavaScript; every interpolated value is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape

from tokenward.sandbox.fixtures import FakeUser

# One line per scope, shown on the consent page (wording after Discord's own consent screen).
SCOPE_MEANINGS: dict[str, str] = {
    "identify": "Access your username, avatar and banner",
    "email": "Access your email address",
    "guilds": "Know what servers you're in",
    "guilds.join": "Join servers for you",
    "guilds.members.read": "Read your member info (nickname, avatar, roles) in servers you're in",
    "connections": "Access your third-party connections",
    "openid": "Sign you in with OpenID Connect (shares your user id)",
    "applications.commands": "Use commands in servers and in your DMs",
    "applications.commands.permissions.update": "Update command permissions in servers",
    "applications.entitlements": "Read entitlements of applications you own",
    "applications.builds.read": "Read build data of applications you own",
    "applications.store.update": "Manage store listings of applications you own",
    "gdm.join": "Join group DMs for you",
    "role_connections.write": "Update your linked-role metadata",
    "messages.read": "Read messages from all channels you're in (local RPC)",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#313338;color:#dbdee1;
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#2b2d31;border-radius:8px;padding:24px 28px;width:100%;max-width:440px;
box-shadow:0 8px 24px rgba(0,0,0,.35)}
h1{font-size:20px;margin:0 0 4px;color:#f2f3f5}
p.sub{margin:0 0 16px;color:#b5bac1;font-size:14px}
h2{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#b5bac1;margin:18px 0 8px}
ul{list-style:none;margin:0;padding:0}
li{padding:6px 0;border-bottom:1px solid #3f4147;font-size:14px}
li code{color:#f2f3f5}
label{display:block;padding:6px 0;font-size:14px;cursor:pointer}
.buttons{display:flex;flex-direction:row-reverse;gap:12px;margin-top:20px}
button{flex:1;border:0;border-radius:4px;padding:10px;font:inherit;font-size:14px;cursor:pointer}
input[type=radio]{accent-color:#5865f2}
button.ok{background:#5865f2;color:#fff}
button.cancel{background:transparent;color:#dbdee1;border:1px solid #4e5058}
.note{font-size:12px;color:#949ba4;margin-top:14px}
"""


def _document(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def consent_page(
    *,
    application_name: str,
    scopes: Sequence[str],
    users: Iterable[FakeUser],
    selected_user_id: str | None,
    action: str,
    hidden: Mapping[str, str],
) -> str:
    """The consent form. It posts back to ``action`` with the request in hidden fields."""
    user_list = list(users)
    selected = selected_user_id
    if selected is None or all(u.id != selected for u in user_list):
        selected = user_list[0].id if user_list else None
    scope_items = "".join(
        f"<li><code>{escape(s)}</code> — {escape(SCOPE_MEANINGS.get(s, s))}</li>" for s in scopes
    )
    user_items = "".join(
        '<label><input type="radio" name="user_id" value="{id}"{checked}> {name} '
        "<small>({handle})</small></label>".format(
            id=escape(u.id),
            checked=" checked" if u.id == selected else "",
            name=escape(u.global_name or u.username),
            handle=escape(u.username),
        )
        for u in user_list
    )
    hidden_inputs = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in hidden.items()
    )
    name = escape(application_name)
    body = (
        f"<h1>{name}</h1>"
        '<p class="sub">wants to access your Discord account (sandbox)</p>'
        f'<form method="post" action="{escape(action)}">{hidden_inputs}'
        f"<h2>This will allow {name} to</h2><ul>{scope_items}</ul>"
        f"<h2>Signed in as</h2>{user_items}"
        # Authorize comes first in the markup so that Enter submits it; CSS shows it on the right.
        '<div class="buttons">'
        '<button class="ok" type="submit" name="action" value="authorize">Authorize</button>'
        '<button class="cancel" type="submit" name="action" value="cancel">Cancel</button>'
        "</div></form>"
        '<p class="note">tokenward Discord sandbox: fake users, nothing leaves this machine.</p>'
    )
    return _document(f"Authorize {application_name}", body)


def error_page(title: str, message: str) -> str:
    """A page for authorize errors that must not redirect (unknown client, bad redirect_uri)."""
    body = f'<h1>{escape(title)}</h1><p class="sub">{escape(message)}</p>'
    return _document(title, body)


def landing_page(base_url: str, params: dict[str, str], client_id: str) -> str:
    """Where the default application's second redirect URI lands: shows what Discord sent back
    and how to exchange the code, so a person can walk the whole flow by hand."""
    rows = "".join(
        f"<li><code>{escape(k)}</code> = <code>{escape(v)}</code></li>" for k, v in params.items()
    )
    if "code" in params:
        command = (
            f"curl -s -u {client_id}:CLIENT_SECRET -d grant_type=authorization_code "
            f"-d code={params['code']} "
            f"--data-urlencode redirect_uri={base_url}/_sandbox/callback "
            f"{base_url}/api/oauth2/token"
        )
        next_step = (
            "<p>Exchange the code within ten minutes (put the default application's client "
            "secret, printed by <code>tokenward sandbox</code>, in place of CLIENT_SECRET):</p>"
            f"<pre style='white-space:pre-wrap;font-size:12px'>{escape(command)}</pre>"
        )
        title = "Discord sent back a code"
    else:
        next_step = "<p>No code: the request was refused or cancelled.</p>"
        title = "Discord sent back an error"
    body = f"<h1>{escape(title)}</h1><ul>{rows}</ul>{next_step}"
    return _document(title, body)
