"""Validate a config against what the models were measured to do (the latest ``probe`` run).

The config can only *claim* a model does tools; the probe knows. An agent with tools enabled
whose primary does not produce structured tool calls would run, answer, and never call a tool —
a silent failure — so that is an error here, with a model that passed suggested instead.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

from modelyard.agents.tools import beside_config, missing_workspace, workspace_path
from modelyard.config.schema import IN_PROCESS_SETTINGS, AgentConfig, Config, redact_url
from modelyard.ledger.probes import verdicts
from modelyard.ops.probe import ProbeResult
from modelyard.providers import Provider, ThinkingSwitch, build_provider

Level = Literal["error", "warning", "info"]


@dataclass
class Finding:
    level: Level
    message: str
    agent: str | None = None
    model: str | None = None
    suggestion: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def needs_tools(agent: AgentConfig) -> bool:
    t = agent.tools
    return t.files != "off" or bool(t.commands) or t.fetch or bool(t.mcp)


def _when(ts: float) -> str:
    """A probe's time in UTC, and saying so (the machine's local clock, unnamed, read as another zone's)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


_TEXT_ONLY = "answers tool requests with plain-text JSON instead of a structured tool call"


def _tool_problem(probe: ProbeResult) -> str | None:
    """Why this model cannot serve a tool-using agent, or None if it passed."""
    check = probe.get("tools")
    if check is None:
        return None
    if check.status == "pass":
        return None
    if check.status == "text-only":
        return _TEXT_ONLY
    if check.status == "skipped":
        return f"could not be tested ({check.detail})"
    return check.detail or "failed the tool-calling probe"


def tool_capable(config: Config, probes: dict[str, ProbeResult]) -> list[str]:
    """Models whose latest probe made a correct structured tool call; local ones first."""
    passed = [m for m, p in probes.items() if m in config.models and (c := p.get("tools")) and c.status == "pass"]
    return sorted(passed, key=lambda m: (not config.models[m].is_local, m))


class LoggedAttempt(NamedTuple):
    """A model's latest attempt in the routing log that reached its server (ledger.queries.last_attempt)."""

    ts: float
    reason: str
    detail: str
    #: the row says which server it went to (this config's model's); False for rows logged before servers were kept
    server_known: bool = True


class Missing(NamedTuple):
    """A model its server said it does not have, when, and whether that was surely this config's server."""

    why: str
    server_known: bool


def missing_on_server(config: Config, probes: dict[str, ProbeResult],
                      last_attempts: dict[str, LoggedAttempt]) -> dict[str, Missing]:
    """Models whose server said, the last time it was asked, that it does not have them: from the
    routing log (``last_attempts``: this config's model on this config's server, or a row of unknown server) and from
    the latest probe, whichever is newer."""
    out: dict[str, Missing] = {}
    for name in config.models:
        seen: list[LoggedAttempt] = []
        if name in last_attempts:
            seen.append(last_attempts[name])
        if (p := probes.get(name)) and (c := p.get("reachable")) is not None:
            seen.append(LoggedAttempt(p.ts, "model_missing" if c.detail.startswith("model_missing") else "", c.detail))
        if seen:
            last = max(seen)
            if last.reason == "model_missing":
                out[name] = Missing(f"{last.detail} ({_when(last.ts)})", last.server_known)
    return out


def check_config(config: Config, probes: dict[str, ProbeResult],
                 missing: dict[str, Missing] | None = None, base_dir: Path | None = None) -> list[Finding]:
    """``missing``: :func:`missing_on_server`'s answer (models their server says it does not have); ``base_dir``:
    the config file's directory, which its relative paths are read from."""
    findings: list[Finding] = []
    for name, (why, known) in (missing or {}).items():
        model_id = config.models[name].model or name
        # a URL's password or ?key= must not reach the terminal (or a pasted bug report)
        where = redact_url(config.models[name].endpoint or "") or "its server"
        if known:
            findings.append(Finding("error", f"model '{name}' is not on its server: {why}", model=name,
                                    suggestion=f"install '{model_id}' on {where} "
                                               "(for Ollama: ollama pull) or fix its `model:` in the config"))
        else:  # logged before the log kept servers: maybe another config's model of the same name, elsewhere
            findings.append(Finding("warning", f"model '{name}' was last logged as not found on an unknown server "
                                    f"(a row from before the log kept which server; maybe another config's "
                                    f"'{name}'): {why}", model=name,
                                    suggestion=f"run `modelyard probe {name}` to ask {where}"))
    findings += _unseen(config, probes)
    capable = tool_capable(config, probes)
    providers = {name: build_provider(name, m) for name, m in config.models.items()}
    findings += _ignored_settings(providers)
    for name, probe in probes.items():
        if name in providers:
            providers[name].learn(verdicts({c.name: c.status for c in probe.checks.values()}))
    unavailable = {name: p.unavailable_reason() for name, p in providers.items()}

    for agent_name, agent in config.agents.items():
        chain = agent.chain
        if not chain:
            findings.append(Finding("error", f"agent '{agent_name}' has no models", agent_name,
                                    suggestion="set a primary"))
            continue
        reasons = [unavailable.get(m) for m in chain]
        if all(reasons):
            detail = "; ".join(f"{m}: {r}" for m, r in zip(chain, reasons, strict=True))
            findings.append(Finding("warning", f"agent '{agent_name}': no model in its chain is available ({detail})",
                                    agent_name, suggestion="set the missing credentials or add an available fallback"))
        if needs_tools(agent):
            findings += _tool_findings(config, agent_name, agent, probes, capable)
        findings += _mcp_credentials(agent_name, agent)
        findings += _tool_paths(agent_name, agent, base_dir)
        if agent.thinking and (p := probes.get(chain[0])) and (c := p.get("thinking")) and c.ok is False:
            findings.append(Finding("warning", f"agent '{agent_name}' asks for thinking, but its primary "
                                    f"'{chain[0]}' showed none when probed ({c.detail})", agent_name, chain[0]))
        if agent.thinking is not None and (unsent := _unsent_thinking(providers[chain[0]])):
            findings.append(Finding("warning", f"agent '{agent_name}' sets thinking {'on' if agent.thinking else 'off'}"
                                    f", but no switch is sent to its primary '{chain[0]}': {unsent}", agent_name,
                                    chain[0], suggestion=f"if it thinks, list `thinking` in the capabilities of "
                                    f"model '{chain[0]}', or run `modelyard probe {chain[0]}`"))
    return findings


def _ignored_settings(providers: dict[str, Provider]) -> list[Finding]:
    """An in-process setting (threads, GPU layers, a GGUF path) on a model served elsewhere is silently
    ignored at run time: say so here."""
    out: list[Finding] = []
    for name, provider in providers.items():
        if provider.runs_in_process:
            continue
        given = [key for key in IN_PROCESS_SETTINGS if key in provider.config.model_fields_set]
        if given:
            out.append(Finding("warning", f"model '{name}' sets {', '.join(given)}, which only a model run in this "
                               f"process uses: no effect on provider {provider.config.provider}", model=name,
                               suggestion="set threads and GPU layers on the model's server (Ollama: num_thread "
                                          "and num_gpu in a Modelfile), or remove the keys"))
    for name, provider in providers.items():
        # `keep_alive: 30m` is Ollama's (a Modelfile's or its API's): a backend that does not say how long it keeps
        # a model loaded sends it nowhere — a model moved from Ollama to llama-server or vLLM kept it, and nothing
        # said that the server now decides (it keeps its one model loaded while it runs)
        if "keep_alive" in provider.config.model_fields_set and \
                type(provider).keep_alive_seconds is Provider.keep_alive_seconds:
            out.append(Finding("warning", f"model '{name}' sets keep_alive, which provider {provider.config.provider} "
                               "sends nowhere: only Ollama loads and unloads a model by it", model=name,
                               suggestion="remove keep_alive: this server keeps its model loaded as long as it runs "
                                          "(or as its own settings say)"))
    return out


def never_probed(config: Config, probes: dict[str, ProbeResult]) -> list[str]:
    return [m for m in config.models if m not in probes]


def _unseen(config: Config, probes: dict[str, ProbeResult]) -> list[Finding]:
    """What ``check`` cannot vouch for: models never probed, and models whose latest probe could not
    reach them — so "0 errors" never reads as "all measured and fine"."""
    out = []
    if never := never_probed(config, probes):
        out.append(Finding("warning", f"never probed: {', '.join(never)} — their reachability, tool calls and "
                           "thinking are unchecked here", suggestion=f"run `modelyard probe {' '.join(never)}`"))
    for name, probe in probes.items():
        reach = probe.get("reachable")
        if name in config.models and reach is not None and reach.status == "fail" and not reach.error:
            # skipped, never called (no key): `check` listed it among the probes, as if it had been measured
            out.append(Finding("warning", f"model '{name}' was not tried when last probed ({_when(probe.ts)}): "
                               f"{reach.detail}; nothing about it was measured", model=name,
                               suggestion=f"fix that, then run `modelyard probe {name}`"))
        elif name in config.models and reach is not None and reach.error:
            out.append(Finding("warning", f"model '{name}' could not be reached when last probed "
                               f"({_when(probe.ts)}): {reach.detail}; nothing else about it was measured", model=name,
                               suggestion=f"start its server, then run `modelyard probe {name}`"))
    return out


def _unsent_thinking(provider: Provider) -> str | None:
    """Why an agent's thinking setting would not reach this model (None: it does, or a probe said no)."""
    profile = provider.profile
    if profile.thinking is False or profile.thinking_to_send(True) is not None:
        return None
    if profile.thinking_switch is ThinkingSwitch.NONE:
        return f"the {provider.config.provider} provider knows no thinking switch for '{provider.model_id}'"
    return "its switch is words in the prompt, sent only to models known to think (config or probe)"


def _mcp_credentials(agent_name: str, agent: AgentConfig) -> list[Finding]:
    """An MCP server whose token variable is not set fails at its first request: say so before."""
    out = []
    for server in agent.tools.mcp:
        wanted = [(env, f"headers_env.{header}") for header, env in server.headers_env.items()]
        if server.bearer_token_env:
            wanted.append((server.bearer_token_env, "bearer_token_env"))
        for env, key in wanted:
            if not os.environ.get(env):
                level: Level = "error" if server.required else "warning"
                out.append(Finding(level, f"agent '{agent_name}': MCP server '{server.label}' needs the environment "
                                   f"variable {env} (tools.mcp[].{key}), which is not set here", agent_name,
                                   suggestion="set it where modelyard runs (for the service, in its env file)"))
    return out


def _tool_paths(agent_name: str, agent: AgentConfig, base_dir: Path | None) -> list[Finding]:
    """A workspace that is no directory, an MCP server's program that is not there: the agent's first request
    failed on them (a stdio server not ``required`` is left out instead), and `check` said nothing."""
    out = []
    tools = agent.tools
    root = workspace_path(tools, base_dir.absolute() if base_dir else None)
    if root is not None and not root.is_dir():
        out.append(Finding("error", f"agent '{agent_name}': {missing_workspace(tools, root)}", agent_name))
    for server in tools.mcp:
        started = beside_config(server, base_dir.absolute() if base_dir else None).command
        if started is None or shutil.which(started) is not None:
            continue
        where = (f"{started}, read from the config file's directory" if started != server.command
                 else "not on PATH" if os.sep not in started and "/" not in started else "no such program")
        runs_without = "" if server.required else "; the agent runs without its tools"
        level: Level = "error" if server.required else "warning"
        there = Path(started)
        if ("/" in started or os.sep in started) and there.exists():  # there, but not a program this user may run
            what, fix = (("is a directory", "point tools.mcp[].command at the program in it") if there.is_dir()
                         else ("is not executable", f"make it executable (chmod +x {started}), or start it through "
                               "its interpreter (tools.mcp[].command: python3, args: [the script])"))
            out.append(Finding(level, f"agent '{agent_name}': MCP server command '{server.command}' {what} "
                               f"({where if started != server.command else started})", agent_name,
                               suggestion=fix + runs_without))
            continue
        out.append(Finding(level,
                           f"agent '{agent_name}': MCP server command '{server.command}' is not found ({where})",
                           agent_name, suggestion="install it, or correct tools.mcp[].command (a relative path is "
                           "read from the config file's directory)" + runs_without))
    return out


def _tool_findings(config: Config, agent_name: str, agent: AgentConfig, probes: dict[str, ProbeResult],
                   capable: list[str]) -> list[Finding]:
    out: list[Finding] = []
    primary = agent.chain[0]
    alternatives = [m for m in capable if m != primary]
    in_chain = [m for m in alternatives if m in agent.chain]
    suggestion = ""
    if in_chain or alternatives:
        pick = (in_chain or alternatives)[0]
        suggestion = f"use '{pick}' as primary (it passed the tool probe)"
        others = [m for m in alternatives if m != pick]
        if others:
            suggestion += f"; also passed: {', '.join(others)}"
    else:
        suggestion = "no probed model passed the tool probe: run `modelyard probe` on a tool-capable model"

    probe = probes.get(primary)
    if probe is None or probe.get("tools") is None:
        out.append(Finding("warning", f"agent '{agent_name}' uses tools, but its primary '{primary}' has never "
                           "been tool-probed", agent_name, primary, suggestion=f"run `modelyard probe {primary}`"))
    elif (problem := _tool_problem(probe)) is not None:
        text = (f"agent '{agent_name}' uses tools, but its primary '{primary}' {problem} "
                f"(probed {_when(probe.ts)}); the agent would never get a tool called")
        if config.models[primary].tool_text_fallback and _tool_problem(probe) == _TEXT_ONLY:
            text += ". tool_text_fallback recovers some such calls, but it is a workaround, not tool support"
        out.append(Finding("error", text, agent_name, primary, suggestion))
    for fallback in agent.chain[1:]:
        fp = probes.get(fallback)
        if fp is not None and (problem := _tool_problem(fp)) is not None:
            out.append(Finding("warning", f"agent '{agent_name}': fallback '{fallback}' {problem}; requests that "
                               "fall back to it lose their tools", agent_name, fallback))
    return out
