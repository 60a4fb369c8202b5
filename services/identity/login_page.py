"""The issuer's two HTML pages: the sign-in form and the error page.

Plain, self-contained HTML (no scripts, no external assets) with labelled
fields, a described error and a language, so screen readers and keyboard users
get through it (WCAG 2.2: 1.3.1, 3.3.1, 3.3.2, 4.1.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 26rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input[type=text], input[type=password] { width: 100%; padding: .5rem; font-size: 1rem; box-sizing: border-box; }
button { margin-top: 1.5rem; padding: .6rem 1.2rem; font-size: 1rem; }
:focus-visible { outline: 3px solid #1a5fb4; outline-offset: 2px; }
.error { color: #a51d2d; border-left: 4px solid #a51d2d; padding-left: .75rem; }
"""


def login_page(
    *, action: str, client_id: str, hidden: Mapping[str, str], username: str = "", error: str | None = None
) -> str:
    fields = "\n".join(
        f'    <input type="hidden" name="{escape(name)}" value="{escape(value)}">' for name, value in hidden.items()
    )
    described_by = ' aria-describedby="sign-in-error" aria-invalid="true"' if error else ""
    alert = f'  <p id="sign-in-error" class="error" role="alert">{escape(error)}</p>\n' if error else ""
    body = f"""  <h1>Sign in</h1>
  <p>to continue to <strong>{escape(client_id)}</strong></p>
{alert}  <form method="post" action="{escape(action)}">
{fields}
    <label for="username">Username</label>
    <input type="text" id="username" name="username" value="{escape(username)}"
           autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus{described_by}>
    <label for="password">Password</label>
    <input type="password" id="password" name="password" autocomplete="current-password" required{described_by}>
    <button type="submit">Sign in</button>
  </form>"""
    return _document("Sign in", body)


def error_page(title: str, message: str) -> str:
    return _document(title, f'  <h1>{escape(title)}</h1>\n  <p role="alert">{escape(message)}</p>')


def _document(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>{escape(title)} - Image Builder</title>
  <style>{STYLE}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""
