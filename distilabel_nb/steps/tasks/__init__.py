"""LLM tasks: ``Task`` (the base for custom prompts), ``TextGeneration``, ``ChatGeneration``."""

from distilabel_nb.steps.tasks.base import Task
from distilabel_nb.steps.tasks.text_generation import ChatGeneration, TextGeneration

__all__ = ["ChatGeneration", "Task", "TextGeneration"]
