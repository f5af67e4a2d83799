"""``Task.print()``: the prompt a task sends, one panel per message, as distilabel's
(through ``rich`` when it is installed, as plain text otherwise)."""

from __future__ import annotations

from typing import Any

__all__ = ["print_prompt"]


def print_prompt(title: str, chat: list[dict[str, Any]]) -> None:
    """Print ``chat`` (a list of ``{"role", "content"}`` messages) under ``title``."""
    try:
        from rich.console import Console, Group
        from rich.panel import Panel
    except ImportError:
        print(f"Prompt: {title}")
        for message in chat:
            print(f"--- {str(message.get('role', '')).capitalize()} Message ---")
            print(message.get("content", ""))
        return
    panels = [Panel(str(message.get("content", "")),
                    title=f"[bold][magenta]{str(message.get('role', '')).capitalize()} "
                          "Message[/magenta][/bold]", border_style="light_cyan3")
              for message in chat]
    Console().print(Panel(Group(*panels), title=f"[magenta]Prompt: {title}[/magenta]",
                          border_style="light_cyan3"))
