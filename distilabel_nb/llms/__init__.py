"""LLM clients: the protocol (``LLM``), ``OpenAILLM`` and the stand-in ``OfflineLLM``."""

from distilabel_nb.llms.base import LLM, ChatType, Generation
from distilabel_nb.llms.costs import token_costs
from distilabel_nb.llms.offline import OfflineLLM
from distilabel_nb.llms.openai_llm import OpenAILLM

__all__ = ["LLM", "ChatType", "Generation", "OfflineLLM", "OpenAILLM", "token_costs"]
