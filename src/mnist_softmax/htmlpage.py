"""The HTML we write (the report, the drawing page), built one way so that no value can become markup or script.

- `render(template, **slots)` fills each `{{name}}` once; every value is HTML-escaped unless it is `Markup` (HTML
  we built from escaped parts). Filled text is never scanned again, so a value holding `{{x}}` stays text.
- `json_for_script(data)` is JSON that cannot end its `<script>` element (`<`, `>` and `&` as \\u escapes).
- `document(...)` assembles a whole page and its Content-Security-Policy: nothing may be fetched, and the only
  scripts and styles allowed are the page's own inline ones, named by their SHA-256 (no 'unsafe-inline'), so
  markup that slipped in anyway could not run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class Markup(str):
    """HTML we built ourselves from escaped parts: `render` inserts it as it is."""


def escape(value) -> Markup:
    """`value` as HTML text (quotes escaped too, so it is safe in attributes); Markup passes through."""
    return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))


def join(parts: Iterable, sep: str = "") -> Markup:
    """Concatenate escaped parts (Markup as it is)."""
    return Markup(escape(sep).join(escape(p) for p in parts))


_SLOT = re.compile(r"\{\{(\w+)\}\}")


def render(template: str, **slots) -> Markup:
    """Fill every `{{name}}` of `template` in one pass, escaping each value that is not Markup.

    A slot without a value, or a value without a slot, is a bug in the caller and raises KeyError.
    """
    used = set()

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in slots:
            raise KeyError(f"template slot {{{{{name}}}}} has no value")
        used.add(name)
        return escape(slots[name])

    text = _SLOT.sub(fill, template)
    if set(slots) - used:
        raise KeyError(f"no slot in the template for {', '.join(sorted(set(slots) - used))}")
    return Markup(text)


def json_for_script(data) -> Markup:
    """JSON text safe inside a <script> element: no `<`, `>` or `&` (escaped as \\u003c ...), ASCII only."""
    text = json.dumps(data, allow_nan=False, ensure_ascii=True, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _source_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@dataclass(frozen=True)
class Page:
    """A whole HTML page and the policy its <meta> carries."""

    html: str
    csp: str

    @property
    def header_csp(self) -> str:
        """The policy for an HTTP header, which may also forbid framing (a <meta> policy cannot)."""
        return self.csp + "; frame-ancestors 'none'"


_DOCUMENT = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{{csp}}">
<title>{{title}}</title>
{{styles}}
</head>
<body{{body_class}}>
{{body}}
{{data}}
{{scripts}}
</body>
</html>
"""


def document(*, title: str, body: Markup, styles: Iterable[str] = (), scripts: Iterable[str] = (),
             data: Mapping[str, object] | None = None, body_class: str = "") -> Page:
    """A self-contained page: `body` (Markup), inline `styles` and `scripts` (our own files' text), and `data`
    as JSON blocks `<script id="NAME" type="application/json">` that scripts read with JSON.parse.

    The CSP allows exactly these styles and scripts by hash, images from data: URLs, and nothing else.
    """
    styles, scripts = list(styles), list(scripts)
    for text, tag in [(s, "style") for s in styles] + [(s, "script") for s in scripts]:
        if f"</{tag}" in text.lower():
            raise ValueError(f"inline {tag} text must not contain '</{tag}'")
    policy = "; ".join([
        "default-src 'none'",
        "script-src " + (" ".join(_source_hash(s) for s in scripts) or "'none'"),
        "style-src " + (" ".join(_source_hash(s) for s in styles) or "'none'"),
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ])
    blocks = [render('<script id="{{id}}" type="application/json">{{json}}</script>', id=name,
                     json=json_for_script(value)) for name, value in (data or {}).items()]
    text = render(
        _DOCUMENT,
        csp=Markup(policy),  # keywords, quotes and base64 only: nothing to escape in a "-quoted attribute
        title=title,
        styles=join(Markup(f"<style>{s}</style>") for s in styles),
        body_class=render(' class="{{c}}"', c=body_class) if body_class else Markup(""),
        body=body,
        data=join(blocks, "\n"),
        scripts=join((Markup(f"<script>{s}</script>") for s in scripts), "\n"),
    )
    return Page(str(text), policy)
