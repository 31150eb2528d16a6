"""A small team's first hour: the shared log's URL and Ollama's address, as other tools' users write them.

Each case is what a newcomer copies from another tool or from a password manager, run through the CLI against the
real PostgreSQL; each says the file, the line, the key and what to write instead — never the password.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli import app

runner = CliRunner()


def _team(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "team.yaml"
    config.write_text("models:\n  small: {provider: ollama, model: 'llama3.2:3b', endpoint: 'http://127.0.0.1:9'}\n"
                      "agents:\n  chat: {primary: small}\n"
                      f"log:\n  path: {tmp_path / 'spool.sqlite3'}\n  url: '{url}'\n")
    return config


@pytest.mark.parametrize(("char", "encoded"), [("@", "%40"), ("/", "%2F"), ("?", "%3F"), ("#", "%23")])
def test_a_password_with_a_url_character_says_how_to_write_it(tmp_path: Path, pg_url: str, char: str,
                                                              encoded: str) -> None:
    """A generated password ('Secret@2811') pasted into log.url: libpq reads the user and password up to the first
    '@', so modelyard said `failed to resolve host '2811@127.0.0.1'` — half the password on the screen, at the first
    read, without the file or the key; a '/', '?' or '#' in it said 'the port must be a number'. The fix users of
    other tools were given is percent-encoding (dify#6667, langfuse-k8s#339, open-webui/docs#588:
    https://github.com/langgenius/dify/issues/6667, https://github.com/langfuse/langfuse-k8s/issues/339)."""
    host_part = pg_url.split("://", 1)[1].split("@", 1)[1]  # 127.0.0.1:5432/db?options=…
    out = runner.invoke(app, ["--config", str(_team(tmp_path, f"postgresql://postgres:Sec{char}2811@{host_part}")),
                              "log"])
    said = " ".join(out.output.split())
    assert out.exit_code == 2, out.output
    assert f"team.yaml:7: log.url: the user or password holds '{char}'" in said, said
    assert f"'{char}' as {encoded}" in said and "PGPASSWORD" in said, said
    assert "2811" not in said and "Sec" not in said.replace("Secret", ""), said
    # written as it says, the same password signs in (trust here: the user and host are what count)
    fixed = runner.invoke(app, ["--config", str(_team(tmp_path, f"postgresql://postgres:Sec{encoded}2811@{host_part}")),
                                "log"])
    assert fixed.exit_code == 0 and "no requests yet" in fixed.output, fixed.output
    assert "2811" not in fixed.output


@pytest.mark.parametrize(("query", "said"), [
    # libpq: 'invalid sslmode value: "required"', at the first read, no file or key
    ("sslmode=required", "log.url: sslmode 'required' is not one of libpq's: disable, allow, prefer, require, "
                         "verify-ca, verify-full (did you mean 'require'?)"),
    # Prisma's and JDBC's schema parameters: libpq said 'invalid URI query parameter: "schema"'
    ("schema=team", "log.url: libpq takes no 'schema' parameter (another tool's): write options=-csearch_path%3Dteam"),
    ("currentSchema=team", "log.url: libpq takes no 'currentSchema' parameter (another tool's): write "
                           "options=-csearch_path%3Dteam"),
])
def test_another_tools_url_parameter_is_said_at_load(tmp_path: Path, query: str, said: str) -> None:
    """Parameters that libpq refuses only when it connects were accepted at load and failed at the first `log`,
    `report` or forwarder connection, naming neither the file nor what to write (Prisma writes `?schema=`, JDBC
    `?currentSchema=`: https://www.prisma.io/docs/orm/overview/databases/postgresql#connection-url)."""
    out = runner.invoke(app, ["--config", str(_team(tmp_path, f"postgresql://postgres@127.0.0.1:5432/test?{query}")),
                              "log"])
    text = " ".join(out.output.split())
    assert out.exit_code == 2 and f"team.yaml:7: {said}" in text, text


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql+asyncpg", "jdbc:postgresql"])
def test_an_orm_url_says_the_scheme_to_write(tmp_path: Path, scheme: str) -> None:
    """SQLAlchemy's `postgresql+psycopg://` (LiteLLM, Open WebUI and most Python apps take it) and JDBC's URL were
    'must be a postgresql:// URL' — true, but with the rest to guess; now it names the form and what to write."""
    out = runner.invoke(app, ["--config", str(_team(tmp_path, f"{scheme}://postgres:hunter2@db:5432/test")), "log"])
    text = " ".join(out.output.split())
    assert out.exit_code == 2, text
    assert f"team.yaml:7: log.url: '{scheme}://' is" in text and "write postgresql:// and the rest as it is" in text
    assert "hunter2" not in text


def test_ollama_host_elsewhere_is_named_when_a_model_without_endpoint_is_unreachable(tmp_path: Path) -> None:
    """Ollama moved to another port with `OLLAMA_HOST=127.0.0.1:11500` (the ollama CLI and ollama-python read it:
    https://github.com/ollama/ollama-python/issues/27, https://github.com/ollama/ollama/issues/9145 — 'set
    OLLAMA_HOST in the client environment as well'): `ollama list` answered, and `models` said only 'nothing
    listening on 127.0.0.1:11434' for a model without `endpoint:` — `init --detect` had read the variable, the model
    never does. Now `models` and a failed `ask` name the variable and the line to write; written, it answers."""
    from tests.fakes.ollama import OllamaServer

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 11434)) == 0:
            pytest.fail("something listens on 127.0.0.1:11434 here: this test needs Ollama's default port free")
    config = tmp_path / "c.yaml"
    model = "  small: {provider: ollama, model: 'llama3.2:3b'%s}\n"
    body = "agents:\n  chat: {primary: small}\nlog: {path: log.sqlite3}\n"
    config.write_text("models:\n" + model % "" + body)
    with OllamaServer(["llama3.2:3b"]) as ollama:
        env = {"OLLAMA_HOST": f"127.0.0.1:{ollama.port}", "COLUMNS": "300"}
        write = f"write endpoint: http://127.0.0.1:{ollama.port} under models.small in {config}"
        shown = runner.invoke(app, ["--config", str(config), "models"], env=env)
        said = " ".join(shown.output.split())
        assert "small: unreachable: nothing listening on 127.0.0.1:11434" in said, said
        assert (f"small: no endpoint, so modelyard asks Ollama's default address http://127.0.0.1:11434; OLLAMA_HOST "
                f"says http://127.0.0.1:{ollama.port}") in said and write in said, said
        asked = runner.invoke(app, ["--config", str(config), "ask", "--agent", "chat", "hi"], env=env)
        assert asked.exit_code == 1 and write in " ".join(asked.output.split()), asked.output
        # where the server listens (`OLLAMA_HOST=0.0.0.0`) is the default address: nothing to say
        quiet = runner.invoke(app, ["--config", str(config), "models"], env={**env, "OLLAMA_HOST": "0.0.0.0"})
        assert "OLLAMA_HOST" not in quiet.output, quiet.output
        # nor this config's own gateway (it speaks Ollama's API: the variable set for Ollama's clients to use it) —
        # an endpoint there would send modelyard's requests back to itself
        quiet = runner.invoke(app, ["--config", str(config), "models"], env={**env, "OLLAMA_HOST": "127.0.0.1:8765"})
        assert "OLLAMA_HOST" not in quiet.output, quiet.output
        config.write_text("models:\n" + model % f", endpoint: 'http://127.0.0.1:{ollama.port}'" + body)
        fixed = runner.invoke(app, ["--config", str(config), "ask", "--agent", "chat", "hi"], env=env)
        assert fixed.exit_code == 0 and "Hello from the fake server." in fixed.output, fixed.output


@pytest.mark.parametrize(("char", "encoded"), [("#", "%23"), ("/", "%2F"), ("?", "%3F")])
def test_a_redis_password_with_a_url_character_is_refused_without_showing_it(tmp_path: Path, char: str,
                                                                              encoded: str) -> None:
    """`MODELYARD_STATE="redis://:$REDIS_PASSWORD@10.0.0.5:6379/0"`, the README's own step, with a generated password
    holding '#', '/' or '?': Python's URL reading (redis-py's too) ends the password there, and the error quoted the
    whole URL — the password in clear on the screen ('expected a Redis URL like …, got 'redis://:Sec#2811@…'') —
    under '<config>:', a file no one wrote. Now it names the character and the encoding, never the password; written
    so, the real Redis is reached (passwordless here: the user and host are what count)."""
    config = tmp_path / "c.yaml"
    config.write_text("models:\n  a: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                      f"agents:\n  chat: {{primary: a}}\nlog: {{path: {tmp_path / 'log.sqlite3'}}}\n")
    for command in (["models", "--no-reach"], ["ask", "--agent", "chat", "hi"]):
        out = runner.invoke(app, ["--config", str(config), *command],
                            env={"MODELYARD_STATE": f"redis://:Sec{char}2811@127.0.0.1:6379/0", "COLUMNS": "300"})
        said = " ".join(out.output.split())
        assert out.exit_code == 2, said
        assert said.startswith(f"error: MODELYARD_STATE: the password holds '{char}'"), said
        assert f"'{char}' as {encoded}" in said and "2811" not in said and "<config>" not in said, said
    fixed = runner.invoke(app, ["--config", str(config), "models", "--no-reach"],
                          env={"MODELYARD_STATE": f"redis://:Sec{encoded}2811@127.0.0.1:6379/0", "COLUMNS": "300"})
    assert "shared state redis://:***@127.0.0.1:6379/0 (prefix modelyard)" in fixed.output, fixed.output
    assert "2811" not in fixed.output


def test_a_tls_parameter_on_plain_redis_is_said_at_load_not_a_traceback(tmp_path: Path) -> None:
    """`?ssl_cert_reqs=none` copied from a TLS setup (redis-py's documented URL parameter for rediss://) onto
    redis:// loaded, then every command that touched Redis ended in redis-py's TypeError traceback ('unexpected
    keyword argument'). Now the file, line and key, and what to write (https://redis-py.readthedocs.io/en/stable/
    connections.html#redis.Redis.from_url)."""
    config = tmp_path / "c.yaml"
    config.write_text("models:\n  a: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                      f"agents:\n  chat: {{primary: a}}\nlog: {{path: {tmp_path / 'log.sqlite3'}}}\n"
                      "state: 'redis://127.0.0.1:6379/0?ssl_cert_reqs=none'\n")
    out = runner.invoke(app, ["--config", str(config), "models", "--no-reach"])
    said = " ".join(out.output.split())
    assert isinstance(out.exception, SystemExit) and out.exit_code == 2, said
    assert (f"{config}:6: state.url: 'ssl_cert_reqs' is a TLS setting, which redis:// does not use: write rediss:// "
            "for TLS, or take it out") in said, said


@pytest.mark.parametrize(("value", "key"), [("postgresql://modelyard:hunter2@10.0.0.5:5432/modelyard", "url"),
                                            ("/srv/modelyard/routing.sqlite3", "path")])
def test_the_log_section_written_as_its_url_or_file_says_the_key(tmp_path: Path, value: str, key: str) -> None:
    """`state: redis://…` may be written on one line, so a team wrote `log: postgresql://…` beside it: it said 'got
    text (a key needs a space after its colon: 'postgresql: …')' — a fix that makes it worse. Now it names the key
    the URL (or file) goes under, without repeating the value (a URL may hold a password)."""
    config = tmp_path / "team.yaml"
    config.write_text("models:\n  a: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                      f"agents:\n  chat: {{primary: a}}\nstate: redis://127.0.0.1:6379/0\nlog: {value}\n")
    out = runner.invoke(app, ["--config", str(config), "log"])
    said = " ".join(out.output.split())
    assert out.exit_code == 2 and "team.yaml:6: log: expected keys and values here" in said, said
    assert f"goes under '{key}:' — write log: {{{key}: …}}, or '{key}: …' on a line of its own under 'log:'" in said
    assert "a key needs a space" not in said and "hunter2" not in said, said
