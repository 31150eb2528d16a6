"""Chat front-ends (Telegram, the terminal chat) and the conversation history they share."""

from modelyard.frontends.history import Conversation, ConversationStore, estimate_tokens

__all__ = ["Conversation", "ConversationStore", "estimate_tokens"]
