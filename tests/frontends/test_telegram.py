"""The Telegram bot end to end: fake Bot API + fake model server on loopback, real modelyard in between."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from modelyard.frontends.session import NO_MODEL
from modelyard.tokens import estimate_tokens
from tests.fakes import Fault, OpenAIServer, TelegramServer
from tests.frontends.conftest import (
    ALICE,
    BOB,
    MALLORY,
    REPLY,
    bot_config,
    db,
    eventually,
    final_message,
    replies_to,
    running_bot,
)
from tests.helpers import make_config


def plain(message: dict) -> str:
    """Message content without the thinking switch another layer may append for Qwen over OpenAI."""
    return message["content"].removesuffix("/no_think").removesuffix("/think").strip()


async def ask(tg: TelegramServer, text: str, user: int = ALICE) -> dict:
    """Send ``text`` as ``user`` and wait for the answer that carries the rating buttons."""
    before = len([c for c in tg.sent if c.params.get("reply_markup") and c.chat_id == user])
    tg.push_message(user, text=text)

    def done() -> dict | None:
        finals = [c for c in tg.sent if c.params.get("reply_markup") and c.chat_id == user]
        return finals[-1].result if len(finals) > before else None

    result = await eventually(done)
    return tg.message(user, result["message_id"])


async def test_allowlisted_user_gets_a_streamed_answer_with_rating_buttons(tmp_path, tg, llm):
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        final = await ask(tg, "hello there")

    calls = [c for c in tg.sent if c.chat_id == ALICE]
    placeholder = calls[0]
    assert placeholder.method == "sendMessage" and placeholder.text == "…"
    assert placeholder.params.get("reply_to_message_id") or placeholder.params.get("reply_parameters")
    edits = [c for c in calls if c.method == "editMessageText"]
    partial = [e for e in edits if not e.params.get("reply_markup")]
    assert partial, "the answer should stream through intermediate edits"
    assert all(REPLY.startswith(e.text) for e in partial)  # each edit carries the text so far
    assert final["text"].startswith(REPLY) and "chat · local" in final["text"]
    buttons = final["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["👍", "👎"]
    assert [b["callback_data"] for b in buttons] == ["rate:1", "rate:0"]
    assert final["message_id"] == placeholder.result["message_id"]  # the placeholder became the answer

    with db(config) as conn:
        row = conn.execute("SELECT id, agent, model, outcome FROM requests").fetchone()
        link = conn.execute("SELECT * FROM message_requests").fetchone()
    assert (row["agent"], row["model"], row["outcome"]) == ("chat", "local", "ok")
    assert (link["request_id"], link["user_id"], link["chat_id"]) == (row["id"], str(ALICE), str(ALICE))


async def test_stranger_gets_no_answer_and_runs_nothing(tmp_path, tg, llm, caplog):
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(MALLORY, text="secret plan: please answer me")
        await eventually(lambda: not tg.pending_updates)
        await asyncio.sleep(0.3)
    assert replies_to(tg, MALLORY) == []
    assert not tg.calls_to("editMessageText")
    assert llm.requests == []
    with db(config) as conn:
        assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0
    assert str(MALLORY) in caplog.text
    assert "secret plan" not in caplog.text


async def test_thumbs_up_marks_the_request_acceptable(tmp_path, tg, llm):
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        final = await ask(tg, "rate me")
        tg.push_callback(ALICE, final["message_id"], data="rate:1")
        answer = await eventually(lambda: tg.calls_to("answerCallbackQuery"))
    assert answer[0].ok and "👍" in answer[0].params.get("text", "")
    with db(config) as conn:
        row = conn.execute("SELECT acceptable, rated_at FROM requests").fetchone()
    assert row["acceptable"] == 1 and row["rated_at"]


async def test_a_tap_that_comes_before_the_bot_hears_back_from_its_final_edit_still_rates(tmp_path, tg, llm):
    """The buttons are on screen as soon as Telegram has the final edit; the bot links the message to its
    request only when Telegram's reply arrives. A tap in between was refused as 'not your answer'."""
    config = bot_config(tmp_path, tg, llm)
    tg.faults.set_default("delay:0.5")  # every send and edit answers late
    async with running_bot(config, tg):
        final = await ask(tg, "rate me")
        tg.push_callback(ALICE, final["message_id"], data="rate:1")
        answer = await eventually(lambda: tg.calls_to("answerCallbackQuery"), timeout=10)
    assert "👍" in answer[0].params.get("text", "")
    with db(config) as conn:
        assert conn.execute("SELECT acceptable FROM requests").fetchone()[0] == 1


async def test_thumbs_down_marks_the_request_unacceptable(tmp_path, tg, llm):
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        final = await ask(tg, "rate me")
        tg.push_callback(ALICE, final["message_id"], data="rate:0")
        await eventually(lambda: tg.calls_to("answerCallbackQuery"))
    with db(config) as conn:
        assert conn.execute("SELECT acceptable FROM requests").fetchone()[0] == 0


async def test_forged_callbacks_change_nothing_and_are_all_answered(tmp_path, tg, llm):
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        final = await ask(tg, "mine")
        mid = final["message_id"]
        tg.push_callback(MALLORY, mid, chat_id=ALICE, data="rate:1")  # stranger in Alice's chat
        tg.push_callback(BOB, mid, chat_id=ALICE, data="rate:1")      # allowed, but not Bob's answer
        tg.push_callback(BOB, mid, chat_id=BOB, data="rate:1")        # same id, Bob's own chat: no such answer
        tg.push_callback(ALICE, mid, data="rate:9")                   # unknown button data
        answers = await eventually(lambda: len(tg.calls_to("answerCallbackQuery")) >= 4 and
                                   tg.calls_to("answerCallbackQuery"))
    assert all(a.ok for a in answers)
    with db(config) as conn:
        assert conn.execute("SELECT acceptable FROM requests").fetchone()[0] is None
    assert llm.requests and len(llm.requests) == 1


async def test_agent_command_switches_and_returns_to_automatic(tmp_path, tg, llm):
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="/agent engineer")
        await eventually(lambda: any("engineer" in r for r in replies_to(tg, ALICE)))
        final = await ask(tg, "fix my code")
        assert "engineer · local" in final["text"]

        tg.push_message(ALICE, text="/agent wizard")
        unknown = await eventually(lambda: [r for r in replies_to(tg, ALICE) if "Unknown agent" in r])
        assert "wizard" in unknown[0] and "chat" in unknown[0] and "engineer" in unknown[0]

        tg.push_message(ALICE, text="/agent")
        await eventually(lambda: any("Back to automatic routing" in r for r in replies_to(tg, ALICE)))
        await ask(tg, "and now?")
    with db(config) as conn:
        agents = [r[0] for r in conn.execute("SELECT agent FROM requests ORDER BY ts")]
    assert agents[0] == "engineer" and len(agents) == 2  # the unknown agent ran nothing


async def test_status_lists_models_and_queues(tmp_path, tg, llm):
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="/status")
        status = await eventually(lambda: [r for r in replies_to(tg, ALICE) if "Models" in r])
    assert "local (openai, local)" in status[0] and "0/1 busy, 0 waiting" in status[0]
    assert "automatic routing" in status[0]


async def test_reset_clears_history(tmp_path, tg, llm):
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        await ask(tg, "first question")
        tg.push_message(ALICE, text="/reset")
        await eventually(lambda: any("History cleared" in r for r in replies_to(tg, ALICE)))
        await ask(tg, "second question")
    last = llm.requests[-1].json["messages"]
    assert [m["role"] for m in last] == ["system", "user"] and plain(last[-1]) == "second question"


async def test_empty_and_huge_messages_get_a_clear_reply_and_run_nothing(tmp_path, tg, llm, caplog):
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="   ")
        await eventually(lambda: any("text" in r for r in replies_to(tg, ALICE)))
        tg.push_message(ALICE, text="word " * 10_000)
        refusal = await eventually(lambda: [r for r in replies_to(tg, ALICE) if "too long" in r])
    assert "tokens" in refusal[0]
    assert llm.requests == []
    assert "empty" in caplog.text and "refused" in caplog.text
    assert "word word" not in caplog.text


async def test_no_model_answers_user_told_briefly_without_internals(tmp_path, tg, llm):
    llm.set_default(Fault.status(500))
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="anyone?")
        shown = await eventually(lambda: [c for c in tg.calls_to("editMessageText") if c.text == NO_MODEL])
    assert shown
    assert all("500" not in (c.text or "") and "server_error" not in (c.text or "") for c in tg.sent)
    with db(config) as conn:
        assert conn.execute("SELECT outcome FROM requests").fetchone()[0] == "failed"
        assert conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 0


async def test_long_answer_is_split_across_messages(tmp_path, tg):
    long_text = " ".join(f"word{i}" for i in range(1400))  # ~9,000 characters
    with OpenAIServer(reply_text=long_text) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            final = await ask(tg, "write a lot")
    ids = sorted({c.result["message_id"] for c in tg.sent if c.chat_id == ALICE and isinstance(c.result, dict)
                  and c.result.get("from", {}).get("is_bot")})
    texts = [tg.message(ALICE, i)["text"] for i in ids]
    assert len(texts) >= 3 and all(len(t) <= 4096 for t in texts)
    assert " ".join(texts).split()[:1400] == long_text.split()
    assert final["message_id"] == ids[-1] and "reply_markup" in final
    with db(config) as conn:
        linked = {int(r[0]) for r in conn.execute("SELECT message_id FROM message_requests")}
    assert linked == set(ids)


async def test_history_is_trimmed_to_budget_and_survives_a_restart(tmp_path, tg, llm):
    config = bot_config(tmp_path, tg, llm, history_tokens=120)
    async with running_bot(config, tg):
        for n in range(1, 6):
            await ask(tg, f"question number {n}")
    sent = [m for m in llm.requests[-1].json["messages"] if m["role"] != "system"]
    assert plain(sent[-1]) == "question number 5"
    assert sum(estimate_tokens(plain(m)) + 4 for m in sent) <= 120
    assert "question number 1" not in [plain(m) for m in sent]
    assert sent[0]["role"] == "user"
    with db(config) as conn:
        stored = conn.execute("SELECT role, content, tokens FROM turns ORDER BY seq").fetchall()
    assert sum(r["tokens"] for r in stored) <= 120 and stored[-1]["role"] == "assistant"

    async with running_bot(config, tg):  # a new process-worth of state, same database
        await ask(tg, "question number 6")
    after = [plain(m) for m in llm.requests[-1].json["messages"]]
    assert "question number 5" in after and after[-1] == "question number 6"


async def test_token_never_reaches_the_logs(tmp_path, tg, llm, caplog):
    caplog.set_level(logging.DEBUG)
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        await ask(tg, "hi")
    assert tg.token not in caplog.text
    assert tg.token.split(":")[1] not in caplog.text


@pytest.mark.model
async def test_real_local_model_answers_through_telegram(tmp_path, tg, default_model):
    from modelyard.config import Config

    config = Config.model_validate({
        "default_agent": "chat",
        "log": {"path": str(tmp_path / "log.sqlite")},
        "telegram": {"base_url": tg.base_url, "allowed_users": [ALICE], "edit_interval": 0.2},
        "models": {"qwen-coder-0.5b": {"provider": "llamacpp", "context": 2048, "max_concurrent": 1}},
        "agents": {"chat": {"description": "Answers briefly.", "primary": "qwen-coder-0.5b", "max_tokens": 12}},
    })
    async with running_bot(config, tg) as bot:
        tg.push_message(ALICE, text="Say hello in one word.")
        final = await eventually(final_message(tg, ALICE), timeout=120)
    assert final["text"].strip() and "chat · qwen-coder-0.5b" in final["text"]
    assert bot.replies[0].first_edit_at is not None
    with db(config) as conn:
        assert conn.execute("SELECT outcome FROM requests").fetchone()[0] == "ok"


async def test_embedded_default_topology_routes_automatically(tmp_path, tg, llm):
    """The shipped default config (orchestrator and specialists), with its local model served by the fake."""
    from importlib.resources import files

    import yaml

    from modelyard.config import Config

    data = yaml.safe_load(files("modelyard").joinpath("examples/default.yaml").read_text())
    data["models"]["qwen-coder-0.5b"] = {"provider": "openai", "model": "qwen", "endpoint": f"{llm.url}/v1",
                                         "context": 4096, "max_concurrent": 1}
    data["log"] = {"path": str(tmp_path / "log.sqlite")}
    data["telegram"] = {"base_url": tg.base_url, "allowed_users": [ALICE], "edit_interval": 0.05}
    config = Config.model_validate(data)
    from modelyard.agents.turn import prepare_routing
    async with running_bot(config, tg) as bot:
        await prepare_routing(bot.runtime)  # train the classifier before the bot's first 5 s wait starts
        final = await ask(tg, "Fix the failing unit test in my Python module and explain the bug.")
        tg.push_callback(ALICE, final["message_id"], data="rate:1")
        await eventually(lambda: tg.calls_to("answerCallbackQuery"))
    assert final["text"].startswith(REPLY)
    agent = final["text"].rsplit("— ", 1)[1].split(" · ")[0]
    assert agent in config.agents and agent != "orchestrator"
    # the runtime's log writer (requests and decisions: one thread) was flushed when the bot's runtime closed
    with db(config) as conn:
        rated = conn.execute("SELECT agent FROM requests WHERE acceptable = 1").fetchall()
        decisions = conn.execute("SELECT agent, method FROM routing_decisions").fetchall()
    assert [r["agent"] for r in rated] == [agent]
    assert decisions, "automatic routing should log the orchestrator's decision"


async def test_answer_cut_midstream_keeps_the_partial_text_and_says_so(tmp_path, tg, llm):
    llm.set_default(Fault.drop_midstream(after_chunks=4))
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="go on")
        cut = await eventually(lambda: [c for c in tg.calls_to("editMessageText") if "interrupted" in (c.text or "")])
    assert REPLY.startswith(cut[-1].text.split("\n\n")[0])
    assert not cut[-1].params.get("reply_markup")


async def test_thumbs_down_then_agent_command_teaches_routing(tmp_path, tg, llm):
    """👎 on a routed answer followed by /agent NAME is a correction: a label for `routing learn`."""
    from importlib.resources import files

    import yaml

    from modelyard.agents.turn import prepare_routing
    from modelyard.config import Config

    data = yaml.safe_load(files("modelyard").joinpath("examples/default.yaml").read_text())
    data["models"]["qwen-coder-0.5b"] = {"provider": "openai", "model": "qwen", "endpoint": f"{llm.url}/v1",
                                         "context": 4096, "max_concurrent": 1}
    data["orchestration"]["threshold"] = 0.0  # the fast path decides: this test is about the correction
    data["log"] = {"path": str(tmp_path / "log.sqlite")}
    data["telegram"] = {"base_url": tg.base_url, "allowed_users": [ALICE], "edit_interval": 0.05}
    config = Config.model_validate(data)
    text = "Please sort these names alphabetically: Zoe, Adam, Mia"
    async with running_bot(config, tg) as bot:
        await prepare_routing(bot.runtime)  # train the classifier before the bot's first 5 s wait starts
        first = await ask(tg, text)
        routed = first["text"].rsplit("— ", 1)[1].split(" · ")[0]
        later = await ask(tg, "thanks!")  # the correction still targets the 👎'd answer, not the last one
        tg.push_callback(ALICE, first["message_id"], data="rate:0")
        await eventually(lambda: tg.calls_to("answerCallbackQuery"))
        wanted = "research" if routed != "research" else "writer"
        tg.push_message(ALICE, text=f"/agent {wanted}")
        await eventually(lambda: any("routing will learn" in r for r in replies_to(tg, ALICE)))
    assert later["message_id"] != first["message_id"]
    with db(config) as conn:
        labels = conn.execute("SELECT text, agent, source, previous FROM routing_labels").fetchall()
    assert [tuple(r) for r in labels] == [(text, wanted, "telegram", routed)]


async def test_a_message_too_long_for_the_small_model_is_answered_by_the_larger_one(tmp_path, tg, llm):
    """One rule with the router (router/fit.py): the bot refuses only what no model can take. It used to
    refuse anything over the smallest context in the config, though a fallback could have answered."""
    config = make_config(
        {"local": {"provider": "openai", "model": "qwen", "endpoint": f"{llm.url}/v1", "context": 1024},
         "large": {"provider": "openai", "model": "qwen-large", "endpoint": f"{llm.url}/v1", "context": 8192}},
        {"chat": {"description": "Talks with the user.", "primary": "local", "fallbacks": ["large"],
                  "max_tokens": 256}},
        log={"path": str(tmp_path / "log.sqlite")},
        telegram={"base_url": tg.base_url, "allowed_users": [ALICE], "edit_interval": 0.05})
    async with running_bot(config, tg):
        final = await ask(tg, "word " * 720)  # ~900 tokens, within Telegram's 4096 characters
        assert final["text"].endswith("— chat · large")
        assert [r.json["model"] for r in llm.requests] == ["qwen-large"]
        await ask(tg, "a short one")
        assert llm.requests[-1].json["model"] == "qwen"  # short messages stay on the small primary


async def test_stopping_the_bot_mid_answer_says_so_in_the_message(tmp_path, tg):
    """serve's SIGTERM (or Ctrl-C on `modelyard telegram`) stops the bot: an answer being written ends
    with what was shown and a note, not mid-sentence; its request is logged cancelled."""
    from modelyard.frontends.telegram import STOPPED_NOTE

    slow = " ".join(f"word{i}" for i in range(400))
    with OpenAIServer(reply_text=slow, chunk_interval=0.02) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="tell me a long story")
            await eventually(lambda: [c for c in tg.calls_to("editMessageText") if "word5" in (c.text or "")])
        # leaving the block stopped the bot (and closed the runtime)
    final = [c for c in tg.calls_to("editMessageText") if c.chat_id == ALICE][-1].text
    assert final.startswith("word0 word1") and final.endswith(STOPPED_NOTE)
    assert "word399" not in final
    with db(config) as conn:
        assert conn.execute("SELECT outcome FROM requests").fetchone()[0] == "cancelled"


async def test_the_fast_path_is_trained_when_the_bot_starts(tmp_path, tg, llm):
    """The first routed message must not pay for training (seconds on a busy machine)."""
    from modelyard.agents.turn import _Routing

    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg) as bot:
        await eventually(lambda: bot.runtime.derived_if_built(_Routing) is not None, timeout=30)


@pytest.mark.parametrize("fault", [Fault.status(429, retry_after=1), Fault.status(502), Fault.status(504),
                                   Fault.drop_midstream()], ids=["429_flood", "502", "504", "reset"])
async def test_a_refused_placeholder_still_gets_the_answer_through(tmp_path, tg, llm, caplog, fault):
    """The Bot API refuses the placeholder (flood control, its front's 502/504, a reset): the model still
    answers, the answer arrives as a new message with its buttons, the request has its row, no traceback."""
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push(fault)  # the first call that can fail: the placeholder's sendMessage
        final = await ask(tg, "hello there")
    assert final["text"].startswith(REPLY)
    with db(config) as conn:
        rows = conn.execute("SELECT outcome FROM requests").fetchall()
        links = conn.execute("SELECT COUNT(*) FROM message_requests").fetchone()[0]
    assert [r["outcome"] for r in rows] == ["ok"] and links == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(("fault", "said"), [(Fault.status(409), "another process is polling with this bot token"),
                                             (Fault.status(502, html=True), "polling for updates failed")],
                         ids=["409_conflict", "502_html"])
async def test_a_failed_poll_is_one_clear_line_and_the_bot_goes_on(tmp_path, llm, caplog, fault, said):
    """getUpdates answered 409 (a second instance with the same token) or a proxy's 502: python-telegram-bot
    retries, and logged a full traceback each time by default; one warning line now, then the answer."""
    with TelegramServer(fault_methods=["getUpdates"]) as tg:
        config = bot_config(tmp_path, tg, llm)
        tg.push(fault)
        async with running_bot(config, tg):
            final = await ask(tg, "hello there")
    assert final["text"].startswith(REPLY)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and said in warnings[0], warnings
    assert not [r for r in caplog.records if r.exc_info] and tg.token not in caplog.text


# the Bot API's words for an edit of a message that is gone: "message to edit not found" (tdlib/telegram-bot-api#400,
# TelegramBotAPI/errors#7), and "MESSAGE_ID_INVALID" (python-telegram-bot#2733: editMessageText answered 400 'Bad
# Request: MESSAGE_ID_INVALID'; chelaxian/tg-ytdlp-bot#453: so when the person deleted the message being edited)
@pytest.mark.parametrize("said", ["Bad Request: message to edit not found", "Bad Request: MESSAGE_ID_INVALID"],
                         ids=["not_found", "message_id_invalid"])
async def test_a_deleted_placeholder_gets_the_answer_as_a_new_message(tmp_path, llm, said):
    """The person deleted the "…" while the answer streamed: editing it is 'message to edit not found'. The
    answer used to be lost (every edit, then three final edits, failed), while the log said it was answered. Said
    as MESSAGE_ID_INVALID, the answer was still kept for the next start, which met the same refusal."""
    with TelegramServer(fault_methods=["editMessageText"]) as tg:
        config = bot_config(tmp_path, tg, llm)
        tg.push(Fault.status(400, message=said))
        async with running_bot(config, tg):
            final = await ask(tg, "hello there")
    assert final["text"].startswith(REPLY) and final["reply_markup"]
    sent = [c.text for c in tg.calls_to("sendMessage")]
    assert len(sent) == 2 and sent[0] == "…"
    with db(config) as conn:
        link = conn.execute("SELECT message_id FROM message_requests").fetchone()
    assert int(link["message_id"]) == final["message_id"]  # the rating buttons rate this answer


def test_a_log_handler_that_outlives_one_bot_scrubs_the_next_bots_token_too() -> None:
    """Each bot's token gets its filter: a handler kept across bots (pytest's, a long-lived process's) once
    held only the first token's filter, and the next bot's token reached the log in its URLs."""
    from modelyard.frontends.telegram import quiet_http_logs

    handler = logging.Handler()
    seen: list[str] = []
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("modelyard.test.tokens")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        quiet_http_logs("111:FIRST-TOKEN", [handler])
        quiet_http_logs("222:SECOND-TOKEN", [handler])
        quiet_http_logs("222:SECOND-TOKEN", [handler])  # the same token again adds nothing
        logger.debug("Set Bot API URL: http://127.0.0.1:1/bot%s", "222:SECOND-TOKEN")
        logger.debug("Set Bot API URL: http://127.0.0.1:1/bot%s", "111:FIRST-TOKEN")
    finally:
        logger.removeHandler(handler)
    assert seen == ["Set Bot API URL: http://127.0.0.1:1/bot***"] * 2
    assert len(handler.filters) == 2


async def test_a_long_running_bot_keeps_only_its_last_replies(tmp_path, tg, llm, monkeypatch):
    """A bot runs for weeks: it kept every finished turn's StreamingReply (its whole text, its formatted pieces)
    in a list that only grew. It keeps the last ``REPLIES_KEPT`` now (3 here, 32 by default)."""
    from modelyard.frontends import telegram

    monkeypatch.setattr(telegram, "REPLIES_KEPT", 3, raising=False)
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg) as bot:
        answers = [await ask(tg, f"question number {n}") for n in range(6)]
        kept = list(bot.replies)
    assert [r.message_ids for r in kept] == [[a["message_id"]] for a in answers[-3:]]  # the newest three


async def test_in_a_group_one_persons_agent_command_does_not_correct_anothers_answer(tmp_path, tg, llm):
    """The 👎 was remembered per chat: in a group, Alice's 👎 and then Bob's /agent NAME (Bob choosing an agent for
    himself) labelled Alice's question as belonging to Bob's agent — and so did Bob's /agent right after any answer
    to Alice. Now a correction is the disputing person's own: Alice's /agent after her 👎 still labels it."""
    from importlib.resources import files

    import yaml

    from modelyard.agents.turn import prepare_routing
    from modelyard.config import Config

    group = -4_012_345
    data = yaml.safe_load(files("modelyard").joinpath("examples/default.yaml").read_text())
    data["models"]["qwen-coder-0.5b"] = {"provider": "openai", "model": "qwen", "endpoint": f"{llm.url}/v1",
                                         "context": 4096, "max_concurrent": 1}
    data["orchestration"]["threshold"] = 0.0
    data["log"] = {"path": str(tmp_path / "log.sqlite")}
    data["telegram"] = {"base_url": tg.base_url, "allowed_users": [ALICE, BOB], "edit_interval": 0.05}
    config = Config.model_validate(data)
    text = "Please sort these names alphabetically: Zoe, Adam, Mia"

    def group_replies() -> list[str]:
        return replies_to(tg, group)

    async with running_bot(config, tg) as bot:
        await prepare_routing(bot.runtime)
        tg.push_message(ALICE, chat_id=group, text=f"@{tg.bot_user['username']} {text}")
        final = await eventually(final_message(tg, group), timeout=10)
        routed = final["text"].rsplit("— ", 1)[1].split(" · ")[0]
        wanted = "research" if routed != "research" else "writer"
        tg.push_message(BOB, chat_id=group, text=f"/agent {wanted}")  # right after Alice's answer
        await eventually(lambda: sum("Now talking to" in r for r in group_replies()) == 1)
        tg.push_callback(ALICE, final["message_id"], chat_id=group, data="rate:0")
        await eventually(lambda: tg.calls_to("answerCallbackQuery"))
        tg.push_message(BOB, chat_id=group, text=f"/agent {wanted}")  # after Alice's 👎
        await eventually(lambda: sum("Now talking to" in r for r in group_replies()) == 2)
        assert not any("routing will learn" in r for r in group_replies())
        with db(config) as conn:
            assert conn.execute("SELECT COUNT(*) FROM routing_labels").fetchone()[0] == 0
        tg.push_message(ALICE, chat_id=group, text=f"/agent {wanted}")  # Alice's own correction counts
        await eventually(lambda: any("routing will learn" in r for r in group_replies()))
    with db(config) as conn:
        labels = conn.execute("SELECT text, agent, source, previous FROM routing_labels").fetchall()
    assert [tuple(r) for r in labels] == [(text, wanted, "telegram", routed)]


async def test_a_status_longer_than_a_message_comes_in_several(tmp_path, tg, llm):
    """/status lists every model with its state and last error: with many models (or their long errors) it passed
    Telegram's 4,096 characters (core.telegram.org/bots/api#sendmessage: 'Text of the message to be sent, 1-4096
    characters') and was refused 400 "message is too long" — a warning in the log, nothing in the chat. It comes
    in as many messages as it needs now, all of it."""
    names = [f"model-{i:02d}-{'x' * 70}" for i in range(40)]
    config = make_config(
        {name: {"provider": "openai", "model": "qwen", "endpoint": f"{llm.url}/v1", "context": 4096,
                "max_concurrent": 1} for name in names},
        {"chat": {"description": "Talks with the user.", "primary": names[0], "max_tokens": 256}},
        default_agent="chat", log={"path": str(tmp_path / "log.sqlite")},
        telegram={"base_url": tg.base_url, "allowed_users": [ALICE], "edit_interval": 0.05})
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="/status")
        with contextlib.suppress(TimeoutError):
            await eventually(lambda: any("finished and waiting" in r for r in replies_to(tg, ALICE)), 10)
    refused = [c.error for c in tg.calls_to("sendMessage") if not c.ok]
    assert not refused, refused
    shown = "\n".join(replies_to(tg, ALICE))
    assert len(shown) > 4096 and all(f"• {name} (openai" in shown for name in names)
    assert shown.startswith("Agent: automatic routing")


def test_the_librarys_failed_last_poll_at_stop_is_one_warning_line(caplog) -> None:
    """python-telegram-bot's last getUpdates at stop (it confirms the updates taken) met 'Pool timeout' on a loaded
    machine (a clean-clone CI, 2026-12-01) and logged an ERROR with a traceback; nothing is lost — the inbox knows an
    update Telegram sends again —, so it is one warning saying that."""
    from telegram.error import TimedOut

    from modelyard.frontends.telegram import _quiet_library_lines

    _quiet_library_lines()
    updater = logging.getLogger("telegram.ext.Updater")
    try:
        raise TimedOut("Pool timeout: All connections in the connection pool are occupied.")
    except TimedOut:
        updater.exception("Error while calling `get_updates` one more time to mark all fetched updates. Suppressing "
                          "error to ensure graceful shutdown.")
    records = [r for r in caplog.records if r.name == "telegram.ext.Updater"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING and records[0].exc_info is None, records
    assert "Pool timeout" in records[0].getMessage() and "inbox recognises them" in records[0].getMessage()
