from __future__ import annotations

import pytest

from distilabel_nb.fields import Fielded, RuntimeParameter, Secret


class Client(Fielded):
    model: str
    temperature: RuntimeParameter[float] = 0.7
    api_key: str | None = None
    token: Secret[str] = None
    stop: list[str] = []


def test_fields_are_set_by_keyword_with_defaults_copied() -> None:
    a = Client(model="m")
    b = Client(model="m")
    a.stop.append("x")
    assert b.stop == []
    assert a.temperature == 0.7
    assert Client._fields["temperature"].runtime
    assert not Client._fields["model"].runtime


def test_unknown_and_missing_parameters_are_refused_with_the_known_ones() -> None:
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) tempreature; its parameters "
                                        "are: api_key, model, stop, temperature, token"):
        Client(model="m", tempreature=0.1)
    with pytest.raises(TypeError, match="needs the parameter 'model'"):
        Client()


def test_secrets_are_marked_and_never_shown() -> None:
    client = Client(model="m", api_key="sk-very-secret", token="tok-secret")
    assert Client._fields["api_key"].secret
    assert Client._fields["token"].secret
    text = repr(client)
    assert "sk-very-secret" not in text and "tok-secret" not in text
    assert "api_key=<redacted>" in text
