"""Keeps the visitor's token in a browser cookie, so a reload (or a new tab) is the same visitor.

Streamlit reads cookies (`st.context.cookies`, from the request that opened the session) but cannot set them;
this components-v2 widget (in the page, no iframe) sets the cookie from JavaScript when a session starts without
one. Nothing is shown and nothing is sent back.
"""

from __future__ import annotations

import streamlit as st

from mnist_core.visitors import COOKIE_NAME, checked_token

_JS = """
export default function (component) {
  const { data } = component;
  // Only a token the server made (32 hex digits): nothing else is ever written into the cookie.
  if (!/^[0-9a-f]{32}$/.test(data.token)) return;
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${data.name}=${data.token}; Path=/; Max-Age=${data.maxAge}; SameSite=Lax${secure}`;
}
"""
_component = st.components.v2.component("mnist_lab.visitor_cookie", js=_JS)
MAX_AGE_S = 365 * 24 * 3600


def keep_token(token: str) -> None:
    """Write `token` into the browser's cookie (call while the browser does not have it yet)."""
    if checked_token(token) is None:
        raise ValueError("not a visitor token")
    _component(data={"name": COOKIE_NAME, "token": token, "maxAge": MAX_AGE_S}, key="visitor_cookie")
