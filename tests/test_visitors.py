"""mnist_core.visitors: a visitor from a browser token, stable and unguessable from what others see."""

import pytest

from mnist_core.visitors import (
    Visitor,
    admin_password_matches,
    checked_token,
    new_token,
    visitor_from_token,
)


def test_the_same_token_is_the_same_visitor_and_the_name_does_not_reveal_the_token():
    token = new_token()
    assert checked_token(token) == token
    visitor = visitor_from_token(token)
    assert visitor == visitor_from_token(token) and not visitor.admin
    assert visitor.name.startswith("visitor-") and len(visitor.id) == 16
    assert token not in visitor.id and token not in visitor.name  # derived by a one-way hash, not a slice
    assert visitor_from_token(new_token()).id != visitor.id


@pytest.mark.parametrize("value", [None, "", "abc", "A" * 32, "g" * 32, "0" * 33, 123, "0" * 31 + "\n",
                                   "../../etc/passwd", "0" * 16 + "' OR 1=1 --"])
def test_anything_but_a_token_the_app_made_means_a_new_visitor(value):
    assert checked_token(value) is None
    if isinstance(value, str):
        with pytest.raises(ValueError):
            visitor_from_token(value)


def test_ownership_and_admin():
    alice = Visitor("a" * 16, "visitor-aaaa")
    bob = Visitor("b" * 16, "visitor-bbbb")
    assert alice.owns(alice.id) and not alice.owns(bob.id)
    assert not alice.owns("") and not alice.owns(None)  # nothing is owned by an empty id
    assert not alice.may_manage(bob.id) and alice.as_admin().may_manage(bob.id) and alice.as_admin().may_manage("")


def test_the_admin_password_only_matches_itself_and_only_when_one_is_set():
    assert admin_password_matches("teach", "teach")
    assert not admin_password_matches("teach ", "teach") and not admin_password_matches("", "teach")
    assert not admin_password_matches(None, "teach")
    assert not admin_password_matches("anything", "") and not admin_password_matches("anything", None)
