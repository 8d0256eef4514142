"""The few HTML pages a person sees: the end of the authorization flow, good or bad."""

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
"""


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
