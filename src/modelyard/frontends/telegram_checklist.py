"""A checklist a person sends or forwards to the bot (Bot API 9.1: Message.checklist, its title and tasks).

It carries no ``text`` nor ``caption``: it was answered "I can only read text messages", though all it holds is text
— a title and its tasks, each done or not (core.telegram.org/bots/api#checklist, #checklisttask). Other bots drop it
without a word (NousResearch/hermes-agent#78749: "a checklist shared with the bot … produces no event and no log
line"; eternnoir/pyTelegramBotAPI#2500: "Checklist updates aren't handled"). The model gets it as text, marked as a
checklist, each task's state shown.
"""

from __future__ import annotations

from telegram import Checklist, Message


def checklist_text(checklist: Checklist | None) -> str | None:
    """The checklist as the model reads it: its title, then a line per task ("[x]" done, "[ ]" not); None for none."""
    if checklist is None:
        return None
    lines = [f"[Checklist: {checklist.title}]"]
    for task in checklist.tasks:
        done = task.completion_date is not None or task.completed_by_user is not None \
            or task.completed_by_chat is not None
        lines.append(f"- [{'x' if done else ' '}] {task.text}")
    return "\n".join(lines)


def written(message: Message) -> str:
    """What the message says in words: its text, its caption, else its checklist ("" for none of them)."""
    return message.text or message.caption or checklist_text(message.checklist) or ""
