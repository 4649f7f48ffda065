"""A Flask application written for CERN's old Shibboleth/ADFS single sign-on.

Apache with mod_shib put the user's attributes in the request, and the application read them
from the WSGI environment as HTTP_ADFS_LOGIN, HTTP_ADFS_EMAIL and so on, the way Flask-SSO's
SSO_ATTRIBUTE_MAP did. Nothing here knows about OpenID Connect: behind
`ssokit proxy --header-preset shibboleth-adfs` it works unchanged.
"""

import functools

from flask import Flask, abort, jsonify, request
from markupsafe import escape

app = Flask(__name__)

# Flask-SSO's attribute map: environment key -> (required, name in the user dict).
SSO_ATTRIBUTE_MAP = {
    "HTTP_ADFS_LOGIN": (True, "username"),
    "HTTP_ADFS_EMAIL": (False, "email"),
    "HTTP_ADFS_FULLNAME": (False, "fullname"),
    "HTTP_ADFS_GROUP": (False, "groups"),
}


def current_user():
    """The user Shibboleth (now ssokit proxy) vouched for, or None."""
    user = {}
    for key, (required, name) in SSO_ATTRIBUTE_MAP.items():
        value = request.environ.get(key)
        if value is None and required:
            return None
        user[name] = value
    # ADFS sent the groups separated by ";".
    user["groups"] = [g for g in (user["groups"] or "").split(";") if g]
    return user


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None:
            abort(401)
        return view(user, *args, **kwargs)

    return wrapped


@app.route("/")
@login_required
def index(user):
    groups = "".join(f"<li>{escape(g)}</li>" for g in user["groups"])
    return (
        "<!doctype html><title>Legacy app</title>"
        f'<h1>Hello, <span id="fullname">{escape(user["fullname"] or "")}</span></h1>'
        f'<p>Login <b id="login">{escape(user["username"])}</b>, '
        f'e-mail <b id="email">{escape(user["email"] or "")}</b></p>'
        f'<p>Groups:</p><ul id="groups">{groups}</ul>'
    )


@app.route("/whoami")
@login_required
def whoami(user):
    return jsonify(user)
