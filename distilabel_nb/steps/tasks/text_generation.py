"""``TextGeneration`` and ``ChatGeneration``: the two everyday LLM tasks, as in distilabel.

``TextGeneration`` sends the ``instruction`` column (or a ``template`` filled from
``columns``) as the user message, after an optional ``system_prompt``; ``ChatGeneration``
sends the ``messages`` column as the chat. Both write ``generation`` and ``model_name``.
"""

from __future__ import annotations

import re
from typing import Any

from distilabel_nb.llms.base import ChatType
from distilabel_nb.steps.tasks.base import Task

__all__ = ["ChatGeneration", "TextGeneration", "template_columns"]

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def template_columns(template: str) -> list[str]:
    """The columns a ``{{ column }}`` template reads, in order of first use."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def _render(template: str, row: dict[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: "" if row.get(m.group(1)) is None
                            else str(row[m.group(1)]), template)


class TextGeneration(Task):
    """One user message per row: ``instruction`` (or ``template``) -> ``generation``.

    ``template`` uses distilabel's ``{{ column }}`` placeholders, e.g.
    ``template="Translate to French: {{ text }}"``; ``columns`` defaults to the columns
    the template names (``instruction`` without a template).
    """

    system_prompt: str | None = None
    template: str | None = None
    columns: str | list[str] | None = None
    use_system_prompt: bool = True

    @property
    def inputs(self) -> list[str]:
        if self.columns is not None:
            return [self.columns] if isinstance(self.columns, str) else list(self.columns)
        if self.template is not None:
            return template_columns(self.template)
        return ["instruction"]

    @property
    def outputs(self) -> list[str]:
        return ["generation", "model_name"]

    def format_input(self, row: dict[str, Any]) -> ChatType:
        if self.template is not None:
            content = _render(self.template, row)
        else:
            content = str(row[self.inputs[0]])
        messages: ChatType = []
        if self.system_prompt and self.use_system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": content})
        return messages

    def format_output(self, output: str | None, row: dict[str, Any]) -> dict[str, Any]:
        return {"generation": output}


class ChatGeneration(Task):
    """A chat per row: ``messages`` (a list of ``{"role", "content"}``) -> ``generation``."""

    @property
    def inputs(self) -> list[str]:
        return ["messages"]

    @property
    def outputs(self) -> list[str]:
        return ["generation", "model_name"]

    def format_input(self, row: dict[str, Any]) -> ChatType:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            msg = (f"step {self.name!r}: the 'messages' column must hold a non-empty list of "
                   f"{{'role', 'content'}} dicts, not {type(messages).__name__}")
            raise TypeError(msg)
        return [{"role": m["role"], "content": m["content"]} for m in messages]

    def format_output(self, output: str | None, row: dict[str, Any]) -> dict[str, Any]:
        return {"generation": output}
