"""Chat front-ends (Telegram, the terminal chat) and the conversation history they share."""

from modelyard.frontends.history import Conversation, ConversationStore
from modelyard.tokens import estimate_tokens

__all__ = ["Conversation", "ConversationStore", "estimate_tokens"]
