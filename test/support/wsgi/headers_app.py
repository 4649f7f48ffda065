"""A WSGI application that shows the request headers it received, the way a Flask or Django
app sees them (HTTP_* keys of the WSGI environment): JSON by default, an HTML page for a
browser. `/set-cookie` also sets a cookie of the application's own. Standard library only, so
Debian's uwsgi-plugin-python3 runs it as it is."""

import html
import json


def application(environ, start_response):
    headers = {k: v for k, v in sorted(environ.items()) if k.startswith("HTTP_")}
    if "text/html" in environ.get("HTTP_ACCEPT", ""):
        rows = "".join(
            f'<tr><th>{html.escape(k)}</th><td id="{html.escape(k)}">{html.escape(v)}</td></tr>'
            for k, v in headers.items()
        )
        body = (
            "<!doctype html><html><head><title>Headers received</title></head><body>"
            f'<h1>Headers received</h1><p id="path">{html.escape(environ.get("PATH_INFO", ""))}</p>'
            f"<table>{rows}</table></body></html>"
        ).encode()
        kind = "text/html; charset=utf-8"
    else:
        body = json.dumps({"path": environ.get("PATH_INFO", ""), "headers": headers}).encode()
        kind = "application/json"
    answer = [("Content-Type", kind), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
    if environ.get("PATH_INFO") == "/set-cookie":
        answer.append(("Set-Cookie", "app_theme=dark; Path=/; HttpOnly"))
    start_response("200 OK", answer)
    return [body]
