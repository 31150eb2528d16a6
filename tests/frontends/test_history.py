"""Conversation history in the routing-log database, and message splitting for Telegram."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.frontends.history import ConversationStore
from modelyard.frontends.telegram_format import Formatted, split, utf16_len
from modelyard.tokens import estimate_tokens, message_tokens


def test_turns_persist_and_load_within_budget(tmp_path):
    store = ConversationStore(tmp_path / "log.sqlite")
    conv = store.conversation("cli", "default")
    for n in range(10):
        store.append(conv, "user", f"question {n} " + "x" * 40)
        store.append(conv, "assistant", f"answer {n} " + "y" * 40)
    store.close()

    store = ConversationStore(tmp_path / "log.sqlite")
    again = store.conversation("cli", "default")
    assert again.id == conv.id
    loaded = store.load(again, 80)
    assert sum(message_tokens(m.content) for m in loaded) <= 80
    assert loaded[0].role == "user" and loaded[-1].content.startswith("answer 9")
    assert len(store.load(again, 10_000)) == 20


def test_load_never_starts_with_an_answer(tmp_path):
    store = ConversationStore(tmp_path / "log.sqlite")
    conv = store.conversation("telegram", 5)
    store.append(conv, "user", "q" * 400)
    store.append(conv, "assistant", "short")
    assert store.load(conv, 20) == []  # the answer fits, its question does not: drop both


def test_prune_deletes_what_no_longer_fits_and_reset_clears(tmp_path):
    store = ConversationStore(tmp_path / "log.sqlite")
    conv = store.conversation("telegram", 7)
    for n in range(6):
        store.append(conv, "user", f"q{n} " + "z" * 80, keep_tokens=100)
        store.append(conv, "assistant", f"a{n} " + "z" * 80, keep_tokens=100)
    turns = store.turns(conv)
    assert sum(t.tokens for t in turns) <= 100 and turns[0].role == "user"
    assert turns[-1].content.startswith("a5")
    assert store.reset(conv) == len(turns) and store.turns(conv) == []


def test_agent_choice_and_message_links(tmp_path):
    store = ConversationStore(tmp_path / "log.sqlite")
    conv = store.conversation("telegram", 9)
    store.set_agent(conv, "engineer")
    assert store.conversation("telegram", 9).agent == "engineer"
    assert store.conversation("cli", 9).agent is None  # frontends do not share conversations
    store.link_message("telegram", 9, 42, "abc123", 9)
    link = store.message_link("telegram", 9, 42)
    assert link is not None and (link.request_id, link.user_id) == ("abc123", "9")
    assert store.message_link("telegram", 10, 42) is None
    assert store.rate("abc123", True) is False  # no such request row: nothing written


def test_token_estimate_weighs_other_scripts_heavier():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd" * 25) == 25
    assert estimate_tokens("привет мир") > len("привет мир") / 4
    assert estimate_tokens("你好世界") >= 2


@given(st.text(alphabet=st.sampled_from(["a", "b", " ", "\n", "é", "😀"]), max_size=400),
       st.integers(min_value=8, max_value=64))
def test_split_text_respects_the_limit_and_keeps_the_text(text, limit):
    parts = [p.text for p in split(Formatted(text), limit)]
    assert all(utf16_len(p) <= limit for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())  # nothing lost but whitespace at cuts


def test_cli_without_token_exits_2_with_the_variable_name(tmp_path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text("log: {path: %s}\ntelegram: {token_env: MY_BOT_TOKEN}\n"
                      "models: {m: {provider: ollama}}\nagents: {a: {primary: m}}\n" % (tmp_path / "l.sqlite"))
    monkeypatch.delenv("MY_BOT_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["telegram", "--config", str(config)])
    assert result.exit_code == 2
    assert "MY_BOT_TOKEN" in result.output


def _chat_config(tmp_path, url):
    """One agent on the fake, its log in tmp_path."""
    config = tmp_path / "c.yaml"
    config.write_text(f"log: {{path: {tmp_path / 'l.sqlite'}}}\n"
                      f"models: {{m: {{provider: openai, endpoint: '{url}/v1'}}}}\nagents: {{a: {{primary: m}}}}\n")
    return config


def test_chat_command_resumes_history_from_the_database(tmp_path):
    from tests.fakes import OpenAIServer

    with OpenAIServer(reply_text="noted") as llm:
        config = _chat_config(tmp_path, llm.url)
        first = CliRunner().invoke(app, ["chat", "--config", str(config)], input="my name is Ada\n/quit\n")
        assert first.exit_code == 0, first.output
        second = CliRunner().invoke(app, ["chat", "--config", str(config)], input="what is my name?\n/quit\n")
        assert second.exit_code == 0 and "resuming: 2 earlier messages" in second.output
        contents = [m["content"] for m in llm.requests[-1].json["messages"]]
        assert any(c.startswith("my name is Ada") for c in contents)
        third = CliRunner().invoke(app, ["chat", "--config", str(config)], input="/reset\nhi\n/quit\n")
        assert third.exit_code == 0 and "history cleared" in third.output
        assert [m["role"] for m in llm.requests[-1].json["messages"]] in (["user"], ["system", "user"])


def test_chat_resumes_only_its_own_configs_conversation(tmp_path):
    """Two configs sharing one log (as every config without ``log.path`` shares the default one): chat with config B
    said "resuming: 2 earlier messages" and sent config A's conversation to B's agents. Each config file has its
    own conversation; the other one is named with how to go on with it."""
    from tests.fakes import OpenAIServer

    with OpenAIServer(reply_text="noted") as llm:
        first, second = tmp_path / "a", tmp_path / "b"
        first.mkdir()
        second.mkdir()
        config_a = _chat_config(first, llm.url)
        config_b = _chat_config(second, llm.url)
        config_b.write_text(config_b.read_text().replace(str(second / "l.sqlite"), str(first / "l.sqlite")))
        a = CliRunner().invoke(app, ["chat", "--config", str(config_a)], input="my name is Ada\n/quit\n")
        assert a.exit_code == 0, a.output
        b = CliRunner().invoke(app, ["chat", "--config", str(config_b)], input="what is my name?\n/quit\n",
                               terminal_width=300)
        assert b.exit_code == 0, b.output
        assert "resuming" not in b.output
        assert (f"not resumed: 2 messages of a chat with another config ({config_a.resolve()}); "
                f"`modelyard chat --config {config_a.resolve()}` goes on with it") in b.output
        assert [m["content"] for m in llm.requests[-1].json["messages"] if m["role"] != "system"] == [
            "what is my name?"]
        again = CliRunner().invoke(app, ["chat", "--config", str(config_a)], input="and now?\n/quit\n",
                                   terminal_width=300)
        assert again.exit_code == 0 and "resuming: 2 earlier messages" in again.output, again.output
        assert "not resumed: 2 messages of a chat with another config" in again.output
        assert any("my name is Ada" in m["content"] for m in llm.requests[-1].json["messages"])


def test_chat_answers_help_and_a_mistyped_command_itself(tmp_path):
    """'/help' and '/agnet utility' went to the model as messages; a path ('/etc/hosts …') still does."""
    from tests.fakes import OpenAIServer

    with OpenAIServer(reply_text="noted") as llm:
        config = _chat_config(tmp_path, llm.url)
        out = CliRunner().invoke(app, ["chat", "--config", str(config)],
                                 input="/help\n/agnet a\n/etc/hosts holds what?\n/quit\n")
        assert out.exit_code == 0, out.output
        assert "commands: /agent NAME, /agent auto, /retry, /reset, /help, /quit" in out.output  # /help lists itself
        assert "unknown command /agnet (did you mean '/agent'?)" in out.output
        assert [m["content"] for r in llm.requests for m in r.json["messages"] if m["role"] == "user"] == [
            "/etc/hosts holds what?"]


def test_telegram_that_cannot_be_reached_says_so_instead_of_a_traceback(tmp_path, monkeypatch):
    """No network, DNS or proxy: the bot printed python-telegram-bot's traceback (146 lines) and exit 1."""
    result = _telegram_unreachable(tmp_path, monkeypatch, "allowed_users: [1], ")
    assert result.exit_code == 1, result.output
    assert "cannot reach Telegram (NetworkError" in result.output


def test_telegram_with_nobody_allowed_says_how_to_find_the_user_id(tmp_path, monkeypatch):
    """'telegram.allowed_users is empty: the bot will answer nobody' — and a newcomer had no way to learn the id to
    put there; the bot's own log names it when it ignores a message."""
    result = _telegram_unreachable(tmp_path, monkeypatch, "")
    said = " ".join(result.output.split())
    assert "the bot will answer nobody — send it a message: the line 'ignored message from user N' below names your " \
           "user id; put N in telegram.allowed_users" in said, result.output


def test_chat_switch_alone_is_no_correction_and_says_how_to_make_one(tmp_path):
    """'hello there', then '/agent engineer' to start on code: chat noted 'your last message belonged to engineer'
    — a routing label for `routing learn`. A switch alone labels nothing now (frontends/reask.py); it says that
    asking again is what teaches routing."""
    from importlib.resources import files

    import yaml

    from tests.fakes import OpenAIServer

    with OpenAIServer(reply_text="hi!") as llm:
        data = yaml.safe_load(files("modelyard").joinpath("examples/default.yaml").read_text())
        data["models"]["qwen-coder-0.5b"] = {"provider": "openai", "model": "qwen", "endpoint": f"{llm.url}/v1",
                                             "context": 4096}
        data["log"] = {"path": str(tmp_path / "log.sqlite")}
        config = tmp_path / "c.yaml"
        config.write_text(yaml.safe_dump(data))
        out = CliRunner().invoke(app, ["chat", "--config", str(config), "--local"],
                                 input="hello there\n/agent engineer\n/quit\n")
    assert out.exit_code == 0, out.output
    said = " ".join(out.output.split())
    assert "belonged to" not in said, out.output
    assert "if your last message should have gone to engineer, send it again: that teaches routing" in said
    import sqlite3
    assert sqlite3.connect(tmp_path / "log.sqlite").execute("SELECT count(*) FROM routing_labels").fetchone() == (0,)


def _telegram_unreachable(tmp_path, monkeypatch, allowed: str):
    """``modelyard telegram --local`` with a Bot API address nothing listens on (``allowed``: YAML for the list)."""
    from tests.pg import free_port

    config = tmp_path / "c.yaml"
    config.write_text(f"log: {{path: {tmp_path / 'l.sqlite'}}}\ntelegram: {{token_env: MY_BOT_TOKEN, {allowed}"
                      f"base_url: 'http://127.0.0.1:{free_port()}/bot'}}\nmodels: {{m: {{provider: ollama}}}}\n"
                      "agents: {a: {primary: m}}\n")
    monkeypatch.setenv("MY_BOT_TOKEN", "123:abc")
    return CliRunner().invoke(app, ["telegram", "--config", str(config), "--local"])
