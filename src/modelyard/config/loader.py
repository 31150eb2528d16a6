"""Load a YAML config and turn every problem into a :class:`ConfigError` with file, line, key.

PyYAML's composed node tree keeps the line of every key; we index it by key path so a
pydantic error location like ``("agents", "chat", "primary")`` becomes ``config.yaml:14``.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from modelyard import registry
from modelyard.config.hints import (
    foreign_file,
    foreign_list,
    foreign_setting,
    invisible_character,
    not_yaml,
    number_to_write,
    undefined_model,
)
from modelyard.config.names import did_you_mean
from modelyard.config.schema import ENV_REFERENCE, TELEGRAM_IDS_NOT_NAMES, Config, ModelConfig
from modelyard.errors import ConfigError

Loc = tuple[str | int, ...]


def line_index(node: yaml.Node, prefix: Loc = (), out: dict[Loc, int] | None = None) -> dict[Loc, int]:
    """The line of every key and list item in a composed YAML tree, by key path."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            loc = (*prefix, str(key_node.value))
            out[loc] = key_node.start_mark.line + 1
            line_index(value_node, loc, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            loc = (*prefix, i)
            out[loc] = item.start_mark.line + 1
            line_index(item, loc, out)
    return out


def first_duplicate(root: yaml.Node) -> tuple[Loc, int, int, bool] | None:
    """(key path, its first line, the repeating line, whether both hold sections) of the first key a mapping holds
    twice: PyYAML keeps the last silently, so a second ``agents:`` section would drop every agent of the first. Each
    node is looked at once (an alias is the node it names)."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, tuple[int, yaml.Node]] = {}
            for key_node, value_node in node.value:
                key, line = str(key_node.value), key_node.start_mark.line + 1
                if key in first and key != "<<":  # "<<" merges are YAML's own repetition
                    sections = all(isinstance(n, yaml.MappingNode) for n in (first[key][1], value_node))
                    return (*loc, key), first[key][0], line, sections
                first.setdefault(key, (line, value_node))
                stack.append((value_node, (*loc, key)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*loc, i)) for i, item in enumerate(node.value))
    return None


def line_for(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of the deepest part of ``loc`` that exists in the file."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def dotted(loc: Iterable[str | int]) -> str:
    return ".".join(str(p) for p in loc)


#: PyYAML's refusals of a merge of one value (its constructor's ``flatten_mapping``): ``<<: *a``, and an item of
#: ``<<: [*a, *b]``
_MERGE_OF_A_VALUE = ("expected a mapping or list of mappings for merging", "expected a mapping for merging")


def read_yaml(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    """Parsed YAML and the line of every key path; a syntax error becomes a located ConfigError."""
    if invisible := invisible_character(text):  # a non-breaking space read as part of a name, not as indentation
        raise ConfigError(invisible[1], path=source, line=invisible[0])
    try:
        node = yaml.compose(text)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if "'\\t'" in problem:  # PyYAML's words for a tab; the fix is the thing to say
            problem += _tab_fix(text, mark)
        elif "'@'" in problem and _key_of(text, mark) == "allowed_users":  # `[@me]`: quoted, it is refused next
            problem += f" ({TELEGRAM_IDS_NOT_NAMES})"
        elif "'@'" in problem or "'`'" in problem:  # reserved at the start of a plain value
            problem += " (YAML reserves it at the start of a value: put the value in quotes)"
        elif "escape" in problem:  # "C:\Users\me\model.gguf" in double quotes
            problem += (" (inside double quotes a backslash starts an escape: write a Windows path in single quotes "
                        "or with forward slashes)")
        elif problem.startswith("expected <block end>"):  # `   model: x` one space short of `provider:` above it
            problem += (" (this line is indented differently from the lines above it at the same level: line its key "
                        "up with theirs, with spaces)")
        elif problem.startswith("found undefined alias"):  # `<<: *base` before, or without, `name: &base`
            problem += " (an alias *NAME needs &NAME on a block above it in this file: YAML reads top to bottom)"
        elif problem.startswith("mapping values are not allowed"):  # `system: Answer: briefly`, a line too deep
            problem += (" (a ': ' inside a value: put the value in quotes; or this line is indented deeper than "
                        "the key above it)")
        line = mark.line if mark else None
        here = text.splitlines()[line] if line is not None and line < len(text.splitlines()) else ""
        if problem.endswith("but got '{'") and "${" in here:
            # `{max_concurrent: ${OLLAMA_NUM_PARALLEL}}`: YAML's words were about braces, not the variable
            problem += (" (a ${VAR} inside { } or [ ]: the config expands no variables — write the value itself; "
                        "keys go in the environment and are named with api_key_env:)")
        if (env_line := _env_line(text, line)) is not None:  # `ANTHROPIC_API_KEY=sk-…`, the value never repeated
            problem, line = env_line
        elif (toml := not_yaml(text)) is not None:  # a config.toml: '<document start>' was all it said
            problem, line = toml
        elif (runaway := _runaway(text, line, exc)) is not None:  # said where YAML stopped, lines below the mistake
            problem, line = runaway
        elif (keyless := _keyless_line(exc)) is not None:
            problem, line = keyless
        context = getattr(exc, "context_mark", None)
        if problem.startswith(_MERGE_OF_A_VALUE) and context is not None:
            # said at the anchor's line (`x-a: &a ollama`), where nothing is wrong: the merge is what fails
            merge = next((i for i, row in enumerate(text.splitlines()) if i >= context.line and "<<:" in row), None)
            line = line if merge is None else merge
            problem += (" (<<: *NAME merges keys into this mapping: &NAME must be on keys and values, e.g. "
                        "x-base: &base {provider: ollama}, not on one value)")
        flow = str(getattr(exc, "context", ""))
        if (context is not None and line is not None and context.line < line and "while parsing a flow" in flow
                and problem.startswith(("expected ',' or '}'", "expected ',' or ']'"))):
            # `a: {provider: ollama, model: x` then the next key: said at the next line, where nothing is wrong
            opened, closing = ("{", "}") if "mapping" in flow else ("[", "]")
            problem = f"a '{opened}' opened on line {context.line + 1} is not closed: add the '{closing}' that ends it"
            line = context.line
        if "end of stream" in problem and context is not None and "quoted" in str(getattr(exc, "context", "")):
            problem = f"a quote opened on line {context.line + 1} is never closed"  # was said at the file's end
            line = context.line
        raise ConfigError(f"not valid YAML: {problem}", path=source,
                          line=line + 1 if line is not None else None) from None
    if node is not None and (duplicate := first_duplicate(node)):
        loc, first, again, sections = duplicate
        # `modelyard init` writes `log: {store_text: true}`; a newcomer adding `log: {url: …}` below it got only
        # the diagnosis, and the fix is to merge, not to delete one
        fix = (f": move the lines under this '{loc[-1]}:' into the one at line {first}, and delete this line"
               if sections else ": keep one of the two")
        raise ConfigError(f"duplicate key '{loc[-1]}' (first at line {first}): YAML would keep only this one, "
                          f"silently dropping the first{fix}", path=source, line=again, key=dotted(loc))
    return data, (line_index(node) if node is not None else {})


#: a line's key: `  allowed_users: [@me]`, `- name: x`
_LINE_KEY = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][\w.-]*)\s*:(?:\s|$)")


def _key_of(text: str, mark: yaml.Mark | None) -> str | None:
    """The key a refused value belongs to: that of its own line, else of the nearest line above that has one (an
    item of a block list, `- @me`, belongs to the key above it)."""
    if mark is None:
        return None
    lines = text.splitlines()
    for row in reversed(lines[:mark.line + 1]):
        if found := _LINE_KEY.match(row):
            return found.group(1)
    return None


def _tab_fix(text: str, mark: yaml.Mark | None) -> str:
    """What to do about the tab PyYAML refused. In the line's indentation it is the indentation; after a key's colon,
    a value or before a comment (`max_concurrent: 4<TAB># …`, aligned comments) it is not, and "YAML indents with
    spaces" sent the reader to an indentation that was right."""
    lines = text.splitlines()
    row = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
    if mark is None or not row[:mark.column].strip():
        return " (YAML indents with spaces: replace the tab)"
    return (" (a tab between the words of a line — after a key's colon, after a value or before a comment — which "
            "this YAML reader takes only inside quotes: replace it with spaces)")


#: `default_agent:chat` — a key glued to its value, which YAML reads as one plain text (not a URL's `scheme://`)
_GLUED_KEY = re.compile(r"^\s*([A-Za-z_][\w.-]*):(?!//)\S")
#: a line inside a runaway quote that looks like the config's own next key (`  model: x`, `agents:`)
_KEY_LINE = re.compile(r"^\s*[A-Za-z_][\w.-]*:(\s|$)")


def _runaway(text: str, near: int | None, exc: yaml.YAMLError) -> tuple[str, int] | None:
    """A value YAML read on past its line, the line of the mistake and what to write: a quote left open
    (`default_agent: "chat`) that a quote lines below — in a comment, another value — closes, swallowing the keys
    between; or a key glued to its value (`default_agent:chat`), one text with the lines after it. PyYAML stops where
    the swallowed text runs into the next key, and named that line ('indented differently', 'mapping values are
    not allowed here'), where nothing is wrong. Only line numbers and the key are said: a value may be a secret."""
    if near is None:
        return None
    scalars: list[yaml.ScalarToken] = []
    try:
        for token in yaml.scan(text):
            if isinstance(token, yaml.ScalarToken):
                scalars.append(token)
    except yaml.YAMLError:
        pass  # the tokens before the error are what is looked at
    lines = text.splitlines()
    for token in scalars:
        start, end = token.start_mark.line, token.end_mark.line
        if token.style in ('"', "'") and start < end <= near \
                and any(_KEY_LINE.match(row) for row in lines[start + 1:end + 1]):
            return (f"the quote opened on line {start + 1} is closed only on line {end + 1}, so the lines between "
                    f"were read as one value: close it on line {start + 1} (or take it out)"), start
    last = scalars[-1] if scalars else None
    glued_at: int | None = None
    if last is not None and last.style is None and last.start_mark.line < near <= last.end_mark.line + 1:
        glued_at = last.start_mark.line
    elif (context := getattr(exc, "context_mark", None)) is not None \
            and "simple key" in str(getattr(exc, "context", "")):  # 'while scanning a simple key … expected ':''
        glued_at = context.line
    if glued_at is None or glued_at >= len(lines) or not (glued := _GLUED_KEY.match(lines[glued_at])):
        return None
    return (f"'{glued.group(1)}:…' has no space after its colon, so YAML read it and the lines after it as one text, "
            f"not a key and its value: write '{glued.group(1)}: …'"), glued_at


def _keyless_line(exc: yaml.YAMLError) -> tuple[str, int] | None:
    """A line with no ': ' among keys — most often a long value (an agent's ``system:``) that goes on to the next
    line at its key's indentation. YAML said "could not find expected ':'" at the line *after* it (past the file's
    end when it was the last), with nothing of what to write. Said at its own line; the value is not repeated."""
    context = getattr(exc, "context_mark", None)
    if (getattr(exc, "problem", None) != "could not find expected ':'" or context is None
            or "simple key" not in str(getattr(exc, "context", ""))):
        return None
    return ("this line has no ': ', among lines that are keys: if it goes on from the value above it, indent it "
            "deeper than that value's key (or write the value in quotes, or after '|' on lines of its own); if it "
            "is a key, write 'key: value'"), context.line


_ENV_ASSIGNMENT = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=\S")


def _env_line(text: str, near: int | None) -> tuple[str, int] | None:
    """A shell's or an env file's `NAME=value` line at or just before the line YAML stopped on: what it is and
    what to write (the variable is set in the environment; a key's is named with api_key_env)."""
    if near is None:
        return None
    lines = text.splitlines()
    for index in (near, near - 1):
        if 0 <= index < len(lines) and (found := _ENV_ASSIGNMENT.match(lines[index])):
            name = found.group(1)
            if not name.isupper() and not lines[index].lstrip().startswith("export"):  # `provider=ollama`
                return f"'{name}=…': YAML puts ': ' between a key and its value — write '{name}: …'", index
            return (f"'{name}=…' is a shell's or an env file's line, not YAML: the config sets no variables — export "
                    f"{name} in the environment (or the service's env file) and name it here, e.g. api_key_env: "
                    f"{name}", index)
    return None


def _within(annotation: Any, part: str | int) -> Any:
    """The type one step of a config path leads to: a model's field, a dict's value, a list's item
    (through Optional/Union/Annotated); None when the path cannot be followed."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _within(get_args(annotation)[0], part)
    if origin in (Union, types.UnionType):
        found = [t for t in (_within(arg, part) for arg in get_args(annotation) if arg is not type(None)) if t]
        return found[0] if len(found) == 1 else None
    if origin is dict:
        return get_args(annotation)[1]
    if origin is list and isinstance(part, int):
        return get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
        field = annotation.model_fields.get(part)
        return field.annotation if field else None
    return None


def known_keys(root: type[BaseModel], loc: Loc) -> list[str]:
    """The keys a config accepts at ``loc`` (a mapping's path), for "did you mean"; [] when unsure."""
    node: Any = root
    for part in loc:
        node = _within(node, part)
        if node is None:
            return []
    models = [t for t in (get_args(node) if get_origin(node) in (Union, types.UnionType) else (node,))
              if isinstance(t, type) and issubclass(t, BaseModel)]
    return list(models[0].model_fields) if len(models) == 1 else []


#: a list's items written `-a` (no space after the dash), which YAML reads as one text
DASH_GLUED = re.compile(r"\s*-[^\s\-\d]")

#: pydantic's error types for a value of the wrong kind, and what to write instead
_PLAIN_TYPES = {
    "list_type": "expected a list here, e.g. [a, b] (or one item: [a])",
    "int_parsing": "expected a whole number here",
    "int_type": "expected a whole number here",
    "int_from_float": "expected a whole number here",
    "float_parsing": "expected a number here",
    "float_type": "expected a number here",
    "bool_parsing": "expected true or false here",
    "bool_type": "expected true or false here",
    "string_type": "expected text here",
}


#: what other tools (LiteLLM, Open WebUI, llm, the OpenAI SDK) call a setting, by the name it has here
_OTHER_NAMES = {
    "endpoint": ("base_url", "api_base", "url", "host", "base", "address", "server", "ollama_host", "api_url"),
    "primary": ("model", "models", "llm", "default_model"),
    "fallbacks": ("fallback_models", "backup", "backups"),
    "system": ("system_prompt", "prompt", "instructions"),
    "model": ("model_name", "model_id", "name"),
    "models": ("model_list",),
    "token_env": ("token", "bot_token", "telegram_token", "telegram_bot_token", "bot_token_env"),
    "api_key_env": ("apikey", "api-key", "key_env", "api_key_name", "headers", "extra_headers", "default_headers"),
}

#: a name that is a credential itself (a provider's key prefix, or long and mixed like one): never repeated
_SECRET_LIKE = re.compile(r"(sk|pk|rk|ghp|gho|github_pat|xox[abp]|hf|AIza|glpat)[-_][\w-]{8,}|"
                          r"(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{32,}|\d{6,}:[\w-]{20,}")


def _said_key(key: str) -> str:
    """A key as an error may repeat it: one that looks like a pasted credential is not shown."""
    return "(a name that looks like a key or token, not shown)" if _SECRET_LIKE.fullmatch(key) else f"'{key}'"


#: an unknown key with no near name lists the keys of its section when they are at most this many (a model's 21 are
#: README's Configuration, not an error line)
_KEYS_LISTED = 12


#: pydantic's bound errors, said as the bound
_BOUNDS = {"greater_than_equal": "a number of at least", "greater_than": "a number above",
           "less_than_equal": "a number of at most", "less_than": "a number below"}
_BOUND_KEY = {"greater_than_equal": "ge", "greater_than": "gt", "less_than_equal": "le", "less_than": "lt"}


def _places(annotation: Any, key: str, at: tuple[str, ...] = (), depth: int = 3) -> list[tuple[str, ...]]:
    """Where in the config ``key`` is a setting (``("agents", "NAME")`` for an agent's), shallowest first: a key
    written one section off is read as unknown where it stands."""
    origin = get_origin(annotation)
    if origin is Annotated or origin in (Union, types.UnionType):
        return [p for arg in get_args(annotation) if arg is not type(None) for p in _places(arg, key, at, depth)]
    if origin is dict:
        return _places(get_args(annotation)[1], key, (*at, "NAME"), depth)
    if depth < 0 or not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return []
    found = [at] if key in annotation.model_fields else []
    for name, field in annotation.model_fields.items():
        found += _places(field.annotation, key, (*at, name), depth - 1)
    return sorted(set(found), key=lambda p: (len(p), p))  # shallowest first, then by name: the same words every run


def _nearly(key: str, known: str) -> bool:
    """``key`` is ``known`` but for a letter or two (a plural's s, a typo): the key meant here, before one of the same
    name in another section."""
    return difflib.SequenceMatcher(None, key, known).ratio() >= 0.9


def _elsewhere(root: type[BaseModel], loc: Loc) -> str:
    """' (a setting of agents.NAME: …)' for a key that belongs to another section than the one it is in, else ''.
    A place inside the key's own section is named alone and by its real names (`first_token:` right under
    agents.chat goes in agents.chat.timeouts); otherwise every place is named — it named the first two, so a
    top-level `timeouts:` never heard of models.NAME."""
    here = tuple(str(x) for x in loc[:-1])
    places = [p for p in _places(root, str(loc[-1])) if p != here]
    if not places:
        return ""
    inside = [(*here, *p[len(here):]) for p in places
              if here and len(p) > len(here) and all(a in (b, "NAME") for a, b in zip(p, here, strict=False))]
    named = [".".join(p) if p else "the top level" for p in (inside[:1] or places)]
    said = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} or {named[-1]}"
    return f" (a setting of {said}, not of {dotted(loc[:-1]) or 'the top level'}: move it there)"


def _nothing_under(root: type[BaseModel], loc: Loc, lines: dict[Loc, int]) -> str | None:
    """A section or an entry with nothing under it because the lines meant for it are not indented deeper than it
    (`chat:` then `primary: a` at the same indent, or `agents:` then `chat:` at the left margin): what is at its
    level that belongs under it, and to indent it. It said 'expected keys and values here, got nothing'."""
    parent, name = loc[:-1], str(loc[-1])
    siblings = [k for k in lines if len(k) == len(loc) and k[:-1] == parent and k != loc]
    later = [k for k in siblings if lines[k] > lines.get(loc, 0)]
    if loc in (("models",), ("agents",)):  # the names under it: any key at the top level that is no section
        strays = [k for k in later if str(k[-1]) not in known_keys(root, ())]
    else:
        strays = [k for k in later if str(k[-1]) in known_keys(root, loc)]
    if not strays and loc not in (("models",), ("agents",)):
        return None
    stray = f"'{strays[0][-1]}' on line {lines[strays[0]]} is at its level: " if strays else ""
    return f"nothing is under '{name}:': {stray}indent the lines that belong to it deeper than '{name}:' (with spaces)"


def _other_name(key: str, keys: list[str]) -> str | None:
    """The setting here that ``key`` is another tool's name for, when ``keys`` (the keys allowed) has it."""
    return next((ours for ours, theirs in _OTHER_NAMES.items() if key.lower() in theirs and ours in keys), None)


def _misplaced(root: type[BaseModel], loc: Loc, value: Any) -> str | None:
    """``models: {endpoint: …}`` (a model's setting one level too far out, read as a model named 'endpoint'):
    say where it belongs rather than that 'endpoint' is not a mapping."""
    if len(loc) != 2 or isinstance(value, dict) or loc[0] not in ("models", "agents"):
        return None
    settings = known_keys(root, (loc[0], "x"))
    if str(loc[1]) not in settings:
        return None
    noun = "model" if loc[0] == "models" else "agent"
    what = f"a {noun}" if noun == "model" else f"an {noun}"
    return (f"'{loc[1]}' is {what}'s setting, read here as {what} named '{loc[1]}': indent it under the "
            f"{noun} it belongs to (one level deeper)")


#: what YAML 1.1 (PyYAML) reads as true and as false where a name was meant
_YAML_TRUE = frozenset({"y", "yes", "on", "true"})
_YAML_FALSE = frozenset({"n", "no", "off", "false"})


_YAML_BOOL = " (YAML reads yes, no, on, off, y and n as true/false)"


def _numeric(annotation: Any) -> bool:
    """Whether a setting's type is a number (int or float, optional or not), not true/false."""
    if get_origin(annotation) is Annotated:
        return _numeric(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        args = get_args(annotation)
        return bool not in args and any(_numeric(arg) for arg in args if arg is not type(None))
    return annotation in (int, float)


#: a value wrapped in typographic quotes: “qwen3:8b” pasted from a document or a chat
_CURLY = re.compile(r"^\s*[“”„‘’‚«].*[“”‘’»]\s*$", re.DOTALL)


#: settings that hold prose, not a name, an address or a number
_FREE_TEXT = frozenset({"system", "description", "examples"})


def curly_quoted(data: Any, loc: Loc = ()) -> Loc | None:
    """The first place whose text YAML kept with curly quotes around it: `model: “llama3.2:3b”` loaded as the model
    “llama3.2:3b”, and its server said it has no such model (the key's name is said, never the value)."""
    if loc and loc[-1] in _FREE_TEXT:  # prose may quote as it likes
        return None
    if isinstance(data, str):
        return loc if _CURLY.match(data) else None
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    return next((found for part, value in items if (found := curly_quoted(value, (*loc, part))) is not None), None)


def bool_for_number(data: Any, annotation: Any, loc: Loc = ()) -> Loc | None:
    """The first place a number goes that YAML gave true/false (`max_concurrent: yes`, `port: on`): pydantic takes
    true as 1 there, so `port: on` listened on port 1 and `allowed_users: [yes]` let user 1 in — with no word."""
    if isinstance(data, bool):
        return loc if _numeric(annotation) else None
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for part, value in items:
        inner = _within(annotation, part if isinstance(part, int) and isinstance(data, list) else str(part))
        if inner is not None and (found := bool_for_number(value, inner, (*loc, part))):
            return found
    return None


def _kind(value: Any) -> str:
    """What a value is, never the value itself: it may be a pasted token."""
    if value is None:
        return "nothing (the key has no value)"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "keys and values"}.get(type(value), "something else")


def located(exc: ValidationError, lines: dict[Loc, int], source: str, prefix: Loc = (),
            root: type[BaseModel] = Config) -> ConfigError:
    """The first pydantic error as a ConfigError naming file, line and key (``prefix`` + its location);
    an unknown key names the nearest known one (``root``: the model the file validates as)."""
    errors = exc.errors()
    err = errors[0]
    if err["type"] == "missing":  # `modles:` for `models:` is a typo before it is a missing key
        err = next((e for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == err["loc"][:-1]), err)
    loc = (*prefix, *err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = f"unknown key {_said_key(str(loc[-1]))}"
        if msg.endswith("not shown)"):  # the key's path without the key itself
            return ConfigError(msg, path=source, line=line_for(lines, loc), key=dotted((*loc[:-1], "…")))
        keys = known_keys(root, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6)
        if str(loc[-1]) != str(loc[-1]).strip() and str(loc[-1]).strip() in keys:  # `"model ": x` (a JSON habit)
            msg += f" (a space inside the key's quotes: write {str(loc[-1]).strip()}:)"
        elif len(loc) == 3 and loc[0] == "models" and (theirs := foreign_setting(str(loc[-1]))):
            msg += f" ({theirs})"
        elif ours := _other_name(str(loc[-1]), keys):
            msg += f" (modelyard calls it '{ours}')"
        elif close and _nearly(str(loc[-1]), close[0]):  # `timeout:` under an agent is its `timeouts:`, not the
            msg += f" (did you mean '{close[0]}'?)"          # `state.timeout` (Redis calls) it was sent to
        elif where := _elsewhere(root, loc):  # `fallbacks:` under a model, `timeouts:` at the top level
            msg += where
        elif close:
            msg += f" (did you mean '{close[0]}'?)"
        elif re.fullmatch(r"[A-Z][A-Z0-9_]*_(API_KEY|KEY|TOKEN)", str(loc[-1])) and "api_key_env" in keys:
            # `ANTHROPIC_API_KEY: sk-…` under a model, as an env file writes it
            msg += f" (to read the key from that variable: api_key_env: {loc[-1]}, the value stays in the environment)"
        elif 0 < len(keys) <= _KEYS_LISTED:  # `timout:` under timeouts said no more than 'unknown key'
            msg += f" (the keys here: {', '.join(keys)})"
    elif loc[-1] == "[key]" and isinstance(err.get("input"), bool):  # `no:` or `on:` as a name, read as true/false
        parent = loc[:-2]
        words = _YAML_TRUE if err["input"] else _YAML_FALSE
        raw = next((k for k in lines if len(k) == len(parent) + 1 and k[:-1] == parent
                    and str(k[-1]).lower() in words), None)
        name = str(raw[-1]) if raw else str(err["input"]).lower()
        msg = f"the name {name} is read by YAML as {str(err['input']).lower()}: put it in quotes ('{name}':)"
        loc = raw or parent
    elif loc[-1] == "[key]":  # `1:` or `3.5:` or `~:` as a name: YAML read a number or nothing, not text
        value, parent = err.get("input"), loc[:-2]
        if value is None:
            msg = "a name YAML reads as nothing (~, null or no name before the ':'): give it a name"
            parent = next((k for k in lines if len(k) == len(parent) + 1 and k[:-1] == parent
                           and str(k[-1]) in ("~", "null", "Null", "NULL", "")), parent)  # its own line
        else:
            msg = f"the name {value} is read by YAML as {_kind(value)}, not as a name: put it in quotes ('{value}':)"
            parent = (*parent, str(value))
        return ConfigError(msg, path=source, line=line_for(lines, parent), key=dotted(parent))
    elif (placed := _misplaced(root, loc, err.get("input"))) is not None:
        msg = placed
    elif err["type"] in ("model_type", "dict_type") and isinstance(err.get("input"), list) \
            and loc in (("models",), ("agents",)):  # LiteLLM's model_list is a list; here each has a name
        what = "model" if loc == ("models",) else "agent"
        msg = (f"expected each {what} by its name, not a list: write `{loc[0]}:` then `  my-{what}:` with its "
               f"settings indented under it (no '- ' in front)")
    elif err["type"] == "missing":
        msg = f"required key '{loc[-1]}' is missing" + _SECTION_TO_WRITE.get(loc, "")
        if loc[0] == "models" and loc[-1] == "provider":  # what to write there was said only by a wrong one
            msg += f" (one of: {', '.join(registry.provider_names())})"
    elif err["type"] == "value_error":  # `models: {}`: "must define at least one entry", and what an entry is
        msg = msg.removeprefix("Value error, ") + _SECTION_TO_WRITE.get(loc, "")
    elif err["type"] == "string_type" and loc[-1] == "primary" and isinstance(err.get("input"), list):
        msg = "primary is one model: name the first here and the others in 'fallbacks:' (a list)"
    elif err["type"] in ("enum", "literal_error"):  # 'Input should be 'markdown' or 'plain''
        expected = err.get("ctx", {}).get("expected", "")
        msg = f"expected {expected} here, got {_kind(err.get('input'))}" + (_YAML_BOOL if isinstance(
            err.get("input"), bool) else "")
        if isinstance(err.get("input"), str):  # `per: daily` said only 'got text': the choice it is near, not it
            msg += did_you_mean(err["input"].strip(), re.findall(r"'([^']*)'", expected))
    elif err["type"] in _PLAIN_TYPES:  # pydantic's 'Input should be a valid list', said as what to write
        msg = f"{_PLAIN_TYPES[err['type']]}, got {_kind(err.get('input'))}"
        if isinstance(err.get("input"), bool) and err["type"] == "string_type":  # `model: yes`, `primary: on`
            msg += _YAML_BOOL + ": put the word in quotes"
        if isinstance(err.get("input"), str) and (fix := number_to_write(err["input"], str(loc[-1]))):
            msg = f"{_PLAIN_TYPES[err['type']]}, got '{err['input'].strip()}': {fix}"  # `connect: 30s`, `context: 8k`
        elif err["type"] == "list_type" and err.get("input") is None:  # `fallbacks:` with its items commented out
            msg += ": for none, write [] or delete the line"
        elif err["type"] == "list_type" and isinstance(err.get("input"), str) and DASH_GLUED.match(err["input"]):
            # `fallbacks:` then `  -local` on the next line: YAML reads a dash glued to its word as text
            msg += (": a '-' with no space after it does not start a list item in YAML — write '- NAME', a space "
                    "after the dash, on each item's line (or [a, b] on one line)")
        elif isinstance(err.get("input"), str) and (ref := ENV_REFERENCE.fullmatch(err["input"].strip())):
            # `port: ${PORT}`, `max_concurrent: ${OLLAMA_NUM_PARALLEL}` (docker compose's habit) said only 'got text'
            msg += f": '{ref.group(0)}' is not expanded here — the config expands no variables: write the value itself"
    elif err["type"] in _BOUNDS:  # 'Input should be greater than or equal to 1'
        msg = f"expected {_BOUNDS[err['type']]} {err.get('ctx', {}).get(_BOUND_KEY[err['type']], '')} here, got " \
              f"{err.get('input')}"
        if loc[-1] == "threshold" and isinstance(err.get("input"), int | float) and 1 < err["input"] <= 100:
            msg += f" (a share: write {err['input'] / 100:g} for {err['input']}%)"
    elif err["type"] in ("model_type", "dict_type") and err.get("input") is None \
            and (empty := _nothing_under(root, loc, lines)):  # `chat:` with `primary:` at its own indent
        msg = empty
    elif err["type"] in ("model_type", "dict_type"):  # `spend_cap: 5` read 'a valid dictionary or instance of SpendCap'
        keys = known_keys(root, loc)
        got = _kind(err.get("input"))
        if loc == ("log",) and isinstance(err.get("input"), str) and (key := _log_key(err["input"])):
            # `log: postgresql://…`, as `state: redis://…` may be written: it said 'a key needs a space after its
            # colon: postgresql: …'; the value is not repeated (a URL may hold a password)
            got += (f": the routing log's {'URL' if key == 'url' else 'file'} goes under '{key}:' — write "
                    f"log: {{{key}: …}}, or '{key}: …' on a line of its own under 'log:'")
        elif isinstance(err.get("input"), str) and (glued := re.match(r"^(\w+):(?!//)\S", err["input"])):
            # `primary:a` is one text to YAML; only the key is repeated (the value may be a pasted secret)
            got += f" (a key needs a space after its colon: '{glued.group(1)}: …')"
        msg = (f"expected keys and values here ({', '.join(keys)}: e.g. {{{keys[0]}: …}}), got {got}" if keys
               else f"expected keys and values here (key: value), got {got}")
    return ConfigError(msg, path=source, line=line_for(lines, loc), key=dotted(loc))


def _log_key(text: str) -> str | None:
    """The ``log:`` key a bare value written as the whole section belongs under: a URL's, or a file's."""
    if "://" in text:
        return "url"
    return "path" if "/" in text or "\\" in text or text.strip().endswith((".sqlite3", ".sqlite", ".db")) else None


#: what a config without one of its two sections needs there (it said only "required key 'models' is missing")
_SECTION_TO_WRITE: dict[Loc, str] = {
    ("models",): (": each model the agents use, by a name of yours — e.g. models: {local: {provider: ollama, "
                  "model: 'qwen3:8b'}} (`modelyard init --detect` writes them from the servers running here)"),
    ("agents",): (": each agent by name with the model it uses, a name under models: — e.g. agents: {chat: "
                  "{primary: local}}"),
}


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse and validate config text; raise :class:`ConfigError` naming the first problem."""
    return _parsed(text, source)[0]


def _parsed(text: str, source: str) -> tuple[Config, dict[Loc, int]]:
    """The config and the line of each of its keys."""
    data, lines = read_yaml(text, source)
    if data is None:  # nothing but blank lines and comments: say so, not what a mapping would need
        raise ConfigError("the file is empty: it needs 'models:' and 'agents:' (`modelyard init` writes a starter "
                          "config)", path=source, line=1)
    top = [str(k) for k in data] if isinstance(data, dict) else []
    if "agents" not in top and (other := foreign_file(text, top)):  # LiteLLM's, docker compose's, a Modelfile
        said, key, index = other
        raise ConfigError(said, path=source, line=lines.get((key,)) if key else index + 1, key=key)
    if not isinstance(data, dict):
        raise ConfigError(foreign_list(data) or "expected a mapping with 'models:' and 'agents:'", path=source, line=1)
    data = {key: value for key, value in data.items() if not _extension(key)}
    for key in data:
        if key not in Config.model_fields and _holds_anchor(text, lines.get((str(key),))):
            said = _said_key(str(key))
            named = f" (x-{key}:)" if said == f"'{key}'" else ""
            raise ConfigError(f"unknown key {said}: a block kept to be merged elsewhere (<<: *name) goes under a name "
                              f"starting with x-{named}, which modelyard skips, as Docker Compose does", path=source,
                              line=lines.get((str(key),)), key=str(key) if named else "")

    models = data.get("models")
    for name, model in (models.items() if isinstance(models, dict) else ()):
        if isinstance(model, dict):
            for key in ("api_key", "key", "token", "password"):
                if key in model:
                    loc: Loc = ("models", str(name), key)
                    # LiteLLM's `api_key: os.environ/NAME` or `${NAME}` names the variable: say the line to write
                    ref = ENV_REFERENCE.fullmatch(str(model[key]).strip())
                    variable = next((g for g in ref.groups() if g), None) if ref else None
                    raise ConfigError(
                        f"the config names the variable and does not expand it: write 'api_key_env: {variable}'"
                        if variable else "credentials are never written in the config: put the key in an environment "
                        "variable and name it with 'api_key_env:'",
                        path=source, line=line_for(lines, loc), key=dotted(loc),
                    )
    _secret_in_section(data, lines, source)
    if (curly := curly_quoted(data)) is not None:
        raise ConfigError("written in curly quotes (“…” or ‘…’, as a word processor or a chat writes them), which YAML "
                          "keeps as part of the value: write straight quotes (\"…\" or '…'), or none", path=source,
                          line=line_for(lines, curly), key=dotted(curly))
    if (read_as_bool := bool_for_number(data, Config)) is not None:
        raise ConfigError(f"expected a number here, got true/false{_YAML_BOOL}", path=source,
                          line=line_for(lines, read_as_bool), key=dotted(read_as_bool))
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise located(exc, lines, source) from None

    problems = list(check_references(config))  # the lease rule: StateConfig's own validator (however it is built)
    if problems:
        loc, msg = problems[0]
        raise ConfigError(msg, path=source, line=line_for(lines, loc), key=dotted(loc))
    return config, lines


#: a secret written into a section, by the names other tools give it: what to do instead (the value never said)
_SECTION_SECRETS = {
    "telegram": (("token", "bot_token", "api_token"),
                 "take the token out of this file and export TELEGRAM_BOT_TOKEN=… in the environment (the variable "
                 "modelyard reads; token_env: names another)"),
    "gateway": (("api_key", "api_keys", "key", "keys"),
                "take the keys out of this file, put them comma-separated in an environment variable (export "
                "MODELYARD_API_KEYS=…) and name it with 'api_keys_env: MODELYARD_API_KEYS'"),
}


def _secret_in_section(data: dict[str, Any], lines: dict[Loc, int], source: str) -> None:
    """`telegram: {token: 123:AA…}` said "unknown key 'token' (modelyard calls it 'token_env')", which led to
    the token written as token_env's value: said as a credential, as a model's ``api_key:`` is."""
    for section, (keys, fix) in _SECTION_SECRETS.items():
        settings = data.get(section)
        for key in keys:
            if isinstance(settings, dict) and settings.get(key) is not None:
                loc: Loc = (section, key)
                raise ConfigError(f"credentials are never written in the config: {fix}", path=source,
                                  line=line_for(lines, loc), key=dotted(loc))


def _extension(key: object) -> bool:
    """A top-level ``x-…`` key: a block of YAML anchors to merge into the entries (``x-ollama: &ollama``), skipped
    as Docker Compose skips its extension fields (docs.docker.com/reference/compose-file/extension/). Refused as
    an unknown key, it left no place to keep such a block but inside a real model or agent."""
    return isinstance(key, str) and key.startswith("x-")


#: a top-level key (plain, or quoted) and an anchor as its value's first property: not a "&" inside a quoted value
#: (``notes: "Q: &A"``), which a plain key cannot reach past, since it holds no ": "
_ANCHORED_KEY = re.compile(r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|(?:[^\s'"#:]|:(?!\s))+)[ \t]*:[ \t]+&[^\s,\[\]{}]""")


def _holds_anchor(text: str, line: int | None) -> bool:
    """Whether the top-level key on ``line`` (1-based) defines a YAML anchor: ``defaults-ollama: &ollama``."""
    lines = text.splitlines()
    return line is not None and 0 < line <= len(lines) and _ANCHORED_KEY.match(lines[line - 1]) is not None


def check_references(config: Config) -> Iterable[tuple[Loc, str]]:
    """Cross-references pydantic cannot see: chains, cycles, consumers, the default agent."""
    if config.default_agent and config.default_agent not in config.agents:
        yield ("default_agent",), _not_an_agent(config.default_agent, config)
    for name, agent in config.agents.items():
        if not agent.primary:
            yield ("agents", name), f"agent '{name}' has no model: set 'primary:'"
            continue
        seen: set[str] = set()
        for i, model in enumerate(agent.chain):
            loc: Loc = ("agents", name, "primary") if i == 0 else ("agents", name, "fallbacks", i - 1)
            if model not in config.models and model in config.agents:  # said "define it under 'models:'"
                theirs = [m for m in config.agents[model].chain if m in config.models] if model != name else []
                yield loc, (f"'{model}' is an agent, and a chain names models (configured models: "
                            f"{', '.join(sorted(config.models))})"
                            + (f"; the models of {model}'s chain: {', '.join(theirs)}" if theirs else ""))
            elif model not in config.models:
                known = ", ".join(sorted(config.models))
                named = [n for n, m in config.models.items() if m.model == model]  # the provider's id, not ours
                yield loc, f"unknown model '{model}' (configured models: {known})" + (
                    f"; '{model}' is the provider's id of '{named[0]}': a chain names the entry under "
                    f"models:, write '{named[0]}'" if named else did_you_mean(model, config.models)
                    or undefined_model(model))
            elif model in seen:
                yield loc, (f"model '{model}' appears twice in the chain of '{name}': a model is tried once in a "
                            "chain — take this one out")
            seen.add(model)
        for i, consumer in enumerate(agent.consumers):
            if consumer != "user" and consumer not in config.agents:
                yield (("agents", name, "consumers", i),
                       f"unknown consumer '{consumer}' (agents: {', '.join(config.agents)}; or user)"
                       + did_you_mean(consumer, config.agents))
    for section, key in (("orchestration", "agent"), ("orchestration", "default"), ("telegram", "agent")):
        name = getattr(getattr(config, section), key)
        if name and name not in config.agents:
            yield (section, key), _not_an_agent(name, config)
    yield from _consumer_cycles(config)


def _not_an_agent(name: str, config: Config) -> str:
    """A name that should be an agent's: the agents there are, and the nearest (a typo in the name here, or in the
    agent's own entry: 'enginee:' under agents). It said only "'chat' is not an agent in 'agents:'"."""
    agents = ", ".join(config.agents)
    return f"'{name}' is not an agent in 'agents:' (agents: {agents}){did_you_mean(name, config.agents)}"


def _consumer_cycles(config: Config) -> Iterable[tuple[Loc, str]]:
    """An agent whose output, through consumers, comes back to itself would never finish."""
    graph = {n: [c for c in a.consumers if c in config.agents] for n, a in config.agents.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = 2
        return None

    for start in graph:
        if start not in state and (cycle := visit(start, [])):
            yield ("agents", cycle[-2], "consumers"), "consumer cycle: " + " -> ".join(cycle)
            return


def decoded(data: bytes, source: str) -> str:
    """A config file's text: UTF-8 (with or without the BOM Notepad writes) or UTF-16 with its BOM (Notepad's
    "Unicode"); other bytes are a ConfigError naming the line and the fix, not a codec's words."""
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    fix = "save the file as UTF-8 (Notepad: Save as → Encoding: UTF-8)"
    if kind := _binary_kind(data):  # `--config` given the routing log, the model: it said "UTF-16 text without its BOM"
        raise ConfigError(f"not a YAML file but {kind}: name the YAML file (a config: `modelyard init` writes one)",
                          path=source, line=None)  # read_source reads bench suites too: not only configs
    if b"\x00" in data[:200]:  # valid UTF-8 to a decoder, and YAML's "unacceptable character #x0000" to a reader
        raise ConfigError(f"UTF-16 text without its byte-order mark: {fix}", path=source, line=1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte 0x{data[exc.start]:02x}, e.g. a Windows 'ANSI' é or ’): {fix}",
                          path=source, line=data[:exc.start].count(b"\n") + 1) from None


#: the first bytes of the files found beside a config and named in its place, from each format's specification:
#: SQLite's header string (sqlite.org/fileformat.html, 1.3), GGUF's magic (ggml's docs/gguf.md), gzip's ID1 ID2
#: (RFC 1952, 2.3.1), zip's local file header (APPNOTE.TXT 4.3.7), ELF's e_ident (the System V ABI)
_MAGIC = ((b"SQLite format 3\x00", "a SQLite database (the routing log is one: log.path)"),
          (b"GGUF", "a GGUF model file (a llamacpp model's path:)"),
          (b"\x1f\x8b", "gzip-compressed data (uncompress it first)"),
          (b"PK\x03\x04", "a zip archive (unpack it first)"),
          (b"\x7fELF", "a program (an ELF executable)"))


def _binary_kind(data: bytes) -> str:
    """What a file that is no text is, by its first bytes ("" for text, UTF-16 without its byte-order mark too:
    ASCII in UTF-16 has a NUL at every other byte, and nowhere else)."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    head = data[:200]
    if b"\x00" not in head:
        return ""
    halves = (head[0::2], head[1::2])
    if any(half.count(0) >= len(half) * 0.9 and b"\x00" not in other for half, other in (halves, halves[::-1])):
        return ""
    return "binary data, not text"


def read_source(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(text, name) of a YAML file; a missing or unreadable file is a ConfigError naming it."""
    if not str(path).strip():  # `--config "$CONF"` with the variable unset read the shell's directory: "., a directory"
        raise ConfigError("the config's path is empty (a variable that is not set?): name the YAML file")
    p = Path(path).expanduser()
    try:
        return decoded(p.read_bytes(), str(p)), str(p)
    except FileNotFoundError:
        raise ConfigError("file not found" + _beside(p), path=str(p)) from None
    except IsADirectoryError:
        raise ConfigError(f"a directory, not a config file (name the YAML file, e.g. {p / 'config.yaml'})",
                          path=str(p)) from None
    except PermissionError:
        raise ConfigError(f"cannot read: permission denied ({_who_may_read(p)})", path=str(p)) from None
    except NotADirectoryError:  # `--config config.yaml/x`, or a directory in its path that is a file
        raise ConfigError(f"cannot read: {_file_in_path(p)} is a file, not a directory", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:  # the path is the error's prefix: said once, not in errno's words
        raise ConfigError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", path=str(p)) from None


def _beside(path: Path) -> str:
    """`config.yml` for the `config.yaml` init wrote (or the other way round): the file beside it, by name."""
    others = {".yml": ".yaml", ".yaml": ".yml", "": ".yaml"}
    other = path.with_name(path.name + others[""]) if not path.suffix else (
        path.with_suffix(others[path.suffix]) if path.suffix in others else None)
    return f": there is {other} beside it — did you mean that file?" if other is not None and other.is_file() else ""


def _who_may_read(path: Path) -> str:
    """What to do about a config this process may not read: it said "cannot read: [Errno 13] Permission denied:
    '<the path again>'" — the service's user (systemd, launchd) or `sudo` not being the file's owner is the usual
    cause, and the owner, the mode and this process's user are what tells it."""
    try:
        st = path.stat()
    except OSError:  # a directory on the way that this user may not enter
        return f"a directory on the way to it is closed to this user ({_user_name(os.getuid())})"
    owner = _user_name(st.st_uid)
    return (f"owned by {owner}, mode {st.st_mode & 0o777:o}; this process runs as {_user_name(os.getuid())}: run it "
            f"as {owner}, or let this user read the file (chmod, chown)")


def _user_name(uid: int) -> str:
    """A user's name, or its number where the system has no name for it (a container's user)."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _file_in_path(path: Path) -> str:
    """The first part of ``path`` that is a file, where a directory was meant."""
    return next((str(part) for part in reversed(path.parents) if part.is_file()), str(path.parent))


def load_config(path: str | os.PathLike[str]) -> Config:
    text, source = read_source(path)
    config, lines = _parsed(text, source)
    return beside(config, Path(source).parent, lines, source)


def beside(config: Config, directory: Path, lines: dict[Loc, int] | None = None, source: str = "") -> Config:
    """``config`` with its relative file paths (a model's GGUF ``path:``, ``log.path``) read from the config file's
    directory, as Docker Compose and systemd read theirs: read from the working directory, `models/m.gguf` was found
    in a shell opened there and 'not found' anywhere else, and `log.path: routing.sqlite3` made a new, empty log in
    every directory a command ran from (the service's among them), the rows of each lost to the others. Each GGUF
    path keeps the line it is written on (``lines`` of ``source``), which a GGUF that is not there is said at."""
    def rebased(value: str | None, *, resolve: bool = False) -> str | None:
        if not value or value.startswith("~") or Path(value).is_absolute():
            return value
        return str((directory.absolute() / value).resolve() if resolve else directory.absolute() / value)

    def written(name: str, model: ModelConfig) -> ModelConfig:
        path = rebased(model.path)
        moved = model.model_copy(update={"path": path}) if path != model.path else model
        if model.path is None or lines is None:
            return moved
        loc = ("models", name, "path")
        how = " (read from the config file's directory)" if path != model.path else ""
        return moved.written_at(f"{source}:{line_for(lines, loc)}: {dotted(loc)} is {model.path!r}{how}",
                                relative=path != model.path)

    models = {name: written(name, model) for name, model in config.models.items()}
    changed = any(model is not config.models[name] for name, model in models.items())
    update: dict[str, Any] = {"models": models} if changed else {}
    # the log resolved: `log.path: ../routing.sqlite3` was shown as /home/me/conf/../routing.sqlite3 (a model's GGUF
    # keeps its path as written: resolving a Hugging Face cache's symlink would show the blob's hash for its name)
    if (log := rebased(config.log.path, resolve=True)) != config.log.path:
        update["log"] = config.log.model_copy(update={"path": log})
    return config.model_copy(update=update) if update else config
