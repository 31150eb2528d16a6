"""Round 28: how a long paste is read and what a long message's request asks (figures in
benchmarks/routing_eval/ROUNDS.md, round 28).

Three changes, each keyed on the ask rather than on the pasted text: a line that is a link (alone or after a short
label) is pasted material, and what an ask's label introduces ("Query: …", "Question: …") is the request
(agents/request.py); a blank line between an instruction and its input marks given material for the chore cue; a
composition asked for in a long message's request leans to writer with its own size (agents/cues.py,
:data:`~modelyard.agents.cues.LONG_COMPOSE`).

The probes are lines of tuning sets, labelled before anything routed them, not held-out lines: ShareGPT first
messages (longdev*.jsonl, mksharegpt.py) — among them messages the WebChatGPT browser extension built, whose
template is "Web search results:\\n\\n[1] \\"…\\"\\nURL: …\\n\\nCurrent date: …\\n\\nInstructions: Using the
provided web search results, write a comprehensive reply to the given query. …\\nQuery: ${query}" (a fork's copy:
M-kasinski/chatGpt-online src/content-script/promptWebResponseGpt.tsx; farfalle's backend/prompts.py ends its
prompt the same way, "Query: {my_query}") — and self-instruct's app-style tasks (dev.jsonl). On main before round 28
the fast path sent every probe below to another agent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.agents import cues
from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.request import request
from modelyard.agents.roles import Role
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"


def find(name: str, *pieces: str) -> str:
    """The one line of a tuning set that holds every piece."""
    lines = (EVAL / name).read_text(encoding="utf-8").splitlines()
    found = [row["text"] for row in map(json.loads, filter(str.strip, lines))
             if all(piece in row["text"] for piece in pieces)]
    assert len(found) == 1, (name, pieces, len(found))
    return found[0]


#: a WebChatGPT message asking a price (longdev3.jsonl; labelled research, utility)
SEARCH = find("longdev3.jsonl", "Web search results:", "\nQuery: today's tesla price")


def test_a_search_results_links_are_pasted_and_the_query_is_the_request() -> None:
    read = request(SEARCH)
    assert read.endswith("Query: today's tesla price")  # before: "Query: (pasted text)" — it asks nothing by itself
    assert "http" not in read and "URL:" not in read  # before: each result's "URL:" was kept as an introduction


def test_a_one_word_query_is_the_request() -> None:
    """"Query: Hi" alone on its line was read as a key: value line (data) before any sentence was judged, so the
    ask's label did not reach it — found after round 28's held-out read, left to round 29 (longdev2.jsonl)."""
    assert request(find("longdev2.jsonl", "Web search results:", "\nQuery: Hi")).endswith("Query: Hi")


def test_an_indented_label_in_pasted_config_is_still_data() -> None:
    """Guard (passes on the old code too): round 29 reads an unindented "Query: Hi" as the ask; an indented
    "prompt: …" or "task: …" is a key of pasted YAML and stays material (a promptfoo-style test config)."""
    pasted = ("tests:\n  - vars:\n      topic: bananas\n    prompt: summarize\n    task: build\n"
              "    request: retry\n  - vars:\n      topic: apples\n")
    read = request(f"why does this config fail to load?\n\n{pasted}")
    assert "summarize" not in read and "build" not in read and "retry" not in read


@pytest.mark.parametrize("label", ["Query:", "Question:", "Task:", "My question:"])
def test_what_an_ask_label_introduces_is_kept(label: str) -> None:
    pasted = "\n\n".join(["Some notes I pasted from a page, none of which asks for anything at all."] * 12)
    read = request(f"{pasted}\n\n{label} the tesla model 3 price in 2023")
    assert read.endswith(f"{label} the tesla model 3 price in 2023")


def test_a_link_line_is_material_and_other_introductions_still_introduce_it() -> None:
    """The line alone or after a short label is pasted; "here is the transcript:" still introduces material."""
    pasted = "\n\n".join(["Some notes I pasted from a page, none of which asks for anything at all."] * 12)
    read = request(f"here is the transcript:\n{pasted}\n\nSource: https://example.org/a?b=c\n\n"
                   "https://example.org/page")
    assert read == "here is the transcript: (pasted text)"


#: self-instruct's extraction task with its input after a blank line (dev.jsonl; labelled utility)
LISTING = find("dev.jsonl", "Given a real estate listing description, extract")
#: a writing brief with the writer's notes pasted below (longdev3.jsonl; labelled writer)
BRIEF = find("longdev3.jsonl", "Can you please write an 3-4 paragraph article using the information")


def test_an_instruction_then_its_input_after_a_blank_line_is_a_chore_on_given_material() -> None:
    assert cues.nudges(LISTING) == {Role.UTILITY: cues.NUDGE}
    assert cues.nudges("Extract the dates.") == {}  # guard: a chore with nothing given, as before round 28


def test_a_composition_in_a_long_messages_request_has_its_own_size() -> None:
    assert cues.nudges("write an article about my notes", long=True) == {Role.WRITER: cues.LONG_COMPOSE}
    assert cues.nudges("write an article about my notes") == {Role.WRITER: cues.NUDGE}


@pytest.mark.parametrize(("text", "expected"), [
    (LISTING, "utility"),
    (BRIEF, "writer"),
    (find("longdev.jsonl", "Query: Write YouTube script about"), "writer"),  # labelled writer, research
    (find("longdev3.jsonl", "Query: Make a research proposal title about esp32"), "writer"),  # writer, research
])
def test_the_round28_probes_reach_their_agents(text: str, expected: str) -> None:
    orchestrator = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert orchestrator is not None
    assert orchestrator.decide_fast(text).agent == expected
