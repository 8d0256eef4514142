"""``/docs`` renders with no network: every asset it names is on this origin and served."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from .conftest import ApiEnv


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1


def test_docs_names_only_same_origin_assets_and_they_are_served(api: ApiEnv) -> None:
    page = api.get("/docs", auth=False)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    parser = _Assets()
    parser.feed(page.text)
    assert parser.inline_scripts == 0
    assert len(parser.urls) >= 4, parser.urls
    for url in parser.urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = api.get(url, auth=False)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0, url
    assert re.search(r"/static/swagger-ui/swagger-ui-bundle\.js", page.text)
    # The browser is told to load nothing from elsewhere.
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    # The licence travels with the vendored files.
    licence = api.get("/static/swagger-ui/LICENSE", auth=False)
    assert licence.status_code == 200
    assert "Apache License" in licence.text
    # The script that starts Swagger UI points it at this server's document.
    assert 'data-openapi="/openapi.json"' in page.text


def test_static_refuses_paths_outside_its_folder(api: ApiEnv) -> None:
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/nope.js"):
        assert api.get(path, auth=False).status_code == 404, path
    # Every file shares one metrics label, so file names cannot grow the series.
    metrics = api.get("/metrics", auth=False).text
    assert 'route="/static/{path}"' in metrics
    assert "nope.js" not in metrics
