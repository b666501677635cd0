"""Keeps the visitor's chosen language in a browser cookie, so a reload (or a new tab) opens in that language.

The same kind of widget as widgets/visitor_cookie.py (components v2, in the page, nothing shown or sent back):
Streamlit reads cookies (`st.context.cookies`) but cannot set them. Written only when the visitor picks a language.
"""

from __future__ import annotations

import streamlit as st

from mnist_core.i18n import LANGUAGES, checked_language

LANGUAGE_COOKIE = "mnist_lab_language"
MAX_AGE_S = 365 * 24 * 3600

_JS = """
export default function (component) {
  const { data } = component;
  // Only one of the app's languages is ever written into the cookie.
  if (!data.allowed.includes(data.language)) return;
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${data.name}=${data.language}; Path=/; Max-Age=${data.maxAge}; SameSite=Lax${secure}`;
}
"""
_component = st.components.v2.component("mnist_lab.language_cookie", js=_JS)


def keep_language(language: str) -> None:
    """Write `language` ("en" or "zh_Hans") into the browser's cookie."""
    if checked_language(language) is None:
        raise ValueError("not one of the app's languages")
    # A key per language: choosing again mounts a new element, whose script runs again with the new value.
    _component(data={"name": LANGUAGE_COOKIE, "language": language, "allowed": list(LANGUAGES), "maxAge": MAX_AGE_S},
               key=f"language_cookie_{language}")
