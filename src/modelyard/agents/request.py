# ruff: noqa: E501  (the patterns are data: one alternation per line)
"""What a long message asks, apart from what it pastes: the text the fast path classifies.

A bag-of-words classifier reading a long message is mostly reading the pasted material — a report's
figures, a transcript, a contract, a table — and the material's topic says little about the agent
("summarise this earnings report" is not a finance question; "write a lesson plan from these notes"
is not research). Before round 7 the classifier read the first and last 400 characters, which misses
the request when the material comes first and last, and fills the window with material when the request
is one line. Here a long message is read line by line and sentence by sentence:

* **material** — code (fenced or code-shaped lines), stack traces and error logs, data (tables, CSV,
  JSON, key: value lines, mostly digits), and prose paragraphs that ask nothing — is replaced by a short
  marker of its kind ("(pasted code)", "(pasted error log)", "(pasted data)", "(pasted text)");
* **the request** — sentences that ask (a question mark, an imperative verb first, "you"/"please"/
  "I want"…, and their counterparts in the common languages of assistant users) or introduce what
  follows ("here is my code:") — is kept verbatim, in order; in a long paragraph only its first and last
  sentences can be the request (pasted prose asks too).

Round 10 (benchmarks/README.md) corrected four ways pasted material still passed for the request: a fence
tagged as prose (```` ```md ````, ``text``) holds text, not code; a sentence inside quotation marks is what
someone else said (the dialogue of a story to rewrite, search results' snippets); a "sentence" of over 600
characters is pasted text (a transcript without full stops), never the request; and "summarise this
transcript: so I've been…" is split after its colon, so the introduction is kept and what it introduces is not.

Messages of up to 800 characters are read whole (every training example is one), so the change only
touches long messages. A long one is read twice — its request, and (as before) its first and last 400
characters — and the classifier's members vote on both (:func:`views`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

#: messages up to twice this many characters are read whole; longer ones are capped to their first and last EDGE
EDGE = 400
#: a long message's vote: this much from its request (:func:`focus`), the rest from its first and last 400
#: characters (which often hold the request too) — replacing the material by markers alone lost questions
#: whose content *is* the pasted part ("the following are multiple-choice questions about tort law: …");
#: chosen among 0, 1/2, 2/3 and 1 on the 35 long prompts of dev + sharegpt_dev + evals (benchmarks/README.md)
REQUEST_WEIGHT = 0.5
#: a prose paragraph longer than this is material unless a sentence at one of its ends asks something; a
#: sentence longer than this is material whatever it says (a transcript without full stops, run-on pasted prose)
LONG_PARAGRAPH = 600
#: a sentence is also cut after a colon this early in it: "summarise this transcript: so I've been…"
COLON_SPAN = 150
#: how much of a sentence is searched for the marks of a request
CUE_SPAN = 300
#: of a message longer than twice this, only its first and last SCAN characters are read line by line …
SCAN = 4000
#: … and this much of its middle, for the kinds of material there
SAMPLE = 1000


class Material(StrEnum):
    """The kind of something pasted; the classifier sees only its marker."""

    CODE = "code"
    TRACE = "error log"
    DATA = "data"
    TEXT = "text"

    @property
    def marker(self) -> str:
        return f"(pasted {self.value})"


def clip(text: str, edge: int = EDGE) -> str:
    """Head and tail of a long text."""
    return text if len(text) <= 2 * edge else f"{text[:edge]} … {text[-edge:]}"


_FENCE = re.compile(r"^\s*(```|~~~)")
#: a fence opened with a prose language: what it holds is text (Markdown notes, a transcript), not code
_PROSE_FENCE = re.compile(r"^\s*(```|~~~)\s*(md|markdown|text|txt|plain|plaintext)\s*$", re.I)
_TRACE = re.compile(
    r"""^\s*(Traceback\ \(most\ recent\ call\ last\)|File\ "[^"]+",\ line\ \d+|at\ [\w$.<>/]+\(.*\)\s*$
    |Caused\ by:|[\w.]*(Error|Exception|Warning)(:\s|\s*$)|\^+\s*$|panic:|thread\ '.*'\ panicked
    |\#\d+\s+0x[0-9a-f]+|(ERROR|WARN|FATAL|CRITICAL)\b|\d{4}-\d\d-\d\d[ T]\d\d:\d\d)""", re.X)
_CODE_START = re.compile(
    r"""^\s*(def\ |class\ \w|import\ |from\ [\w.]+\ import|\#include|\#!|function\b|const\ |let\ |var\ |public\ |private\ |protected\ |static\ |return\b|if\s*\(|for\s*\(|while\s*\(|\}|\{\s*$|//|/\*|\*/|\*\ |@\w+
    |package\ [\w.]+;?\s*$|using\ [\w.]+;|namespace\ |fn\ |func\ |SELECT\ |INSERT\ |UPDATE\ \w+\ SET|CREATE\ (TABLE|INDEX|PROCEDURE)|<\/?[a-zA-Z][\w-]*[\s>/]|\$\ |>>>\ |print\(|console\.)""", re.X)
_CODE_END = re.compile(r"([{};]|\)\s*:|=>|\):|\+\+|&&|\|\|)\s*$")
_KEY_VALUE = re.compile(r"""^\s*(-\s+)?["']?[\w./-]{1,40}["']?\s*[:=]\s*\S{0,60}$""")
_DIGIT = re.compile(r"\d")
#: a line that is a link, alone or after a short label ("URL: https://…", "Source: <https://…>"): a search result's
#: or a citation's address, pasted — never the request (round 28: a link's "?" read as a question, "URL:" as an
#: introduction, and the WebChatGPT extension's results kept their snippets' last words as the request)
_LINK = re.compile(r"^\s*(?:[\w ]{1,20}:\s*)?[<(]?https?://\S+\s*$")
#: an introduction that names what follows as the ask itself ("Query: …", "Question: …", "Task: …"): what it
#: introduces is kept as the request, whatever it looks like ("Query: Hi") — where other introductions
#: ("here is the transcript:") introduce material (round 28)
_ASK_LABEL = re.compile(r"^(?:(?:user|my|the|your)\s+)?(?:query|question|prompt|task|request)\s*[:：]$", re.I)
#: a line that opens with such a label and goes on with the ask ("Query: Hi"): prose, not a key: value line of data
#: — round 28's label reached the ask only where the label ended its line, and a one-word query after it was read as
#: data (round 29). Unindented only: an indented "prompt: …" or "task: …" is a pasted config's key
_ASK_LINE = re.compile(r"^(?:(?:user|my|the|your)\s+)?(?:query|question|prompt|task|request)\s*[:：]\s*\S", re.I)
_TIMESTAMP = re.compile(r"^\s*\[?\d{1,2}:\d{2}(:\d{2})?\]?\s*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)|(?<=[。！？!?])")
_COLON = re.compile(r"(?<=[:：])\s+(?=\S)")
#: marks that open a quotation, and a list number before one ("[2] \"…", "3. “…")
_QUOTES = tuple("\"“‘«「『'")
_NUMBERED = re.compile(r"\s*(\[\d+\]\s*|\d+[.)]\s*)?")

#: English words that, first in a sentence, make it an instruction
_VERBS = frozenset([
    "write", "create", "make", "generate", "give", "list", "summarize", "summarise", "explain", "describe",
    "rewrite", "rephrase", "paraphrase", "translate", "convert", "extract", "fix", "correct", "proofread", "edit",
    "improve", "review", "check", "find", "compare", "analyze", "analyse", "classify", "categorize", "tell", "show",
    "help", "draft", "compose", "build", "implement", "design", "suggest", "provide", "identify", "calculate",
    "compute", "solve", "answer", "act", "pretend", "imagine", "respond", "reply", "continue", "add", "remove",
    "delete", "change", "update", "turn", "format", "reformat", "sort", "count", "refactor", "debug", "optimize",
    "optimise", "plan", "outline", "prepare", "produce", "shorten", "expand", "simplify", "determine", "evaluate",
    "grade", "combine", "keep", "use", "take", "read", "consider", "assume", "do", "please", "let's", "lets",
    "brainstorm", "recommend", "come", "put", "insert", "replace", "split", "merge", "organize", "organise", "tag",
    "label", "rate", "score", "predict", "estimate", "define", "name", "pick", "choose", "select", "highlight",
    "note", "remember", "ignore", "forget", "start", "begin", "finish", "complete", "fill", "draw", "sketch",
    "compile", "run", "test", "deploy", "install", "configure", "output", "return", "print", "clean"
])
#: words after which the first word is looked at again ("so, write …", "now please …")
_OPENERS = frozenset([
    "so", "now", "ok", "okay", "hi", "hey", "hello", "also", "and", "then", "but", "next", "finally", "first",
    "lastly", "again", "pls", "plz"
])
#: words that make a sentence a request, in English and the other common languages of assistant users:
#: "you", polite forms, "help me", "write", "translate", "summarise", "explain", question words …
_CUE_WORDS = frozenset([
    "you", "your", "please", "pls", "plz", "why", "puedes", "podrías", "podrias", "quiero", "necesito", "escribe",
    "escriba", "traduce", "traduzca", "dame", "haz", "hazme", "ayúdame", "ayudame", "explica", "resume", "resumen",
    "cómo", "qué", "cuál", "pode", "podes", "você", "voce", "preciso", "quero", "escreva", "escreve", "traduza",
    "faça", "explique", "resuma", "peux", "pouvez", "veux", "voudrais", "écris", "ecris", "écrivez", "traduis",
    "traduire", "donne", "donnez", "fais", "faites", "aide", "résume", "comment", "pourquoi", "quel", "quelle",
    "bitte", "kannst", "könntest", "schreib", "schreibe", "erstelle", "gib", "hilf", "übersetze", "fasse",
    "erkläre", "erklär", "wie", "warum", "puoi", "potresti", "voglio", "vorrei", "scrivi", "traduci", "dammi",
    "fammi", "aiutami", "spiega", "riassumi", "come", "perché", "пожалуйста", "напиши", "напишите", "сделай",
    "помоги", "можешь", "можете", "объясни", "переведи", "придумай", "составь", "как", "почему", "что", "اكتب",
    "أكتب", "ترجم", "اشرح", "لخص", "كيف", "ماذا", "لماذا", "tolong", "buatkan", "bisakah", "jelaskan",
    "terjemahkan", "hãy", "giúp", "viết", "dịch"
])
#: … phrases of several words (with a space before: searched in the sentence after a space) and words of
#: scripts written without spaces (searched as substrings)
_CUE_PHRASES = (
    " i want", " i need", " i'd like", " i would like", " help me", " let me know", " give me", " tell me",
    " show me", " make me", " can i ", " how do i", " how can i", " how to ", " what is", " what are", " what's",
    " based on the", " based on this", " based on these", " the above", " the following", " the below",
    " this text", " this article", " this code", " this data", " this email", " this document", " this paragraph",
    " this essay", " this report", " this transcript", " this list", " por favor", " como puedo", " me dê",
    " können sie", " ich möchte", " ich brauche", " was ist", "من فضلك",
    "请", "請", "帮", "幫", "你", "您", "给我", "給我", "写", "寫", "翻译", "翻譯", "总结", "總結", "摘要", "生成", "解释", "解釋",
    "如何", "怎么", "怎麼", "为什么", "為什麼", "什么", "什麼", "吗", "嗎", "哪",
    "ください", "下さい", "して", "教えて", "書いて", "翻訳", "まとめ", "説明", "何", "どう", "ですか",
    "해줘", "해 줘", "주세요", "해주", "알려", "작성", "번역", "요약", "설명", "무엇", "뭐", "어떻게", "왜",
)
_WORD = re.compile(r"[^\W\d_]+")
_ASCII_CUE_PHRASES = tuple(cue for cue in _CUE_PHRASES if cue.isascii())
_LATIN_WORD = re.compile(r"[a-z']+")


@dataclass(slots=True)
class Part:
    """A span of the message: kept ``text`` (``kind`` None) or material of ``kind``."""

    text: str
    kind: Material | None = None


def _line_kind(line: str) -> Material | None:
    """The material a single line looks like, or None for prose (judged from its first :data:`CUE_SPAN`
    characters and its end: a long line costs no more than a short one)."""
    head = line[:CUE_SPAN]
    stripped, end = head.strip(), line.rstrip()[-40:]
    if _TRACE.match(head):
        return Material.TRACE
    if _CODE_START.match(head) or (_CODE_END.search(end) and not end.endswith(").")):
        return Material.CODE
    if stripped.startswith("|") or stripped.count("|") >= 2 or stripped.count("\t") >= 2:
        return Material.DATA
    if _TIMESTAMP.match(line) or _LINK.match(line):
        return Material.TEXT
    fields = max(stripped.count(","), stripped.count(";"))
    if fields >= 3 and len(stripped) / (fields + 1) < 25:
        return Material.DATA
    if stripped[:1] in "{[\"" and ":" in stripped:
        return Material.DATA
    if _KEY_VALUE.match(line) and not _asks(stripped) and not _ASK_LINE.match(line):
        return Material.DATA
    visible = len(stripped) - stripped.count(" ") - stripped.count("\t")
    if visible and len(_DIGIT.findall(stripped)) / visible > 0.4:
        return Material.DATA
    return None


def _asks(sentence: str) -> bool:
    """Whether a sentence reads as a request: a question, an imperative, second person, a polite form
    (looked for in its first :data:`CUE_SPAN` characters: a request is said early, and the searches cost)."""
    sentence = sentence[:CUE_SPAN]
    if "?" in sentence or "？" in sentence:
        return True
    lowered = sentence.lower()
    for word in _LATIN_WORD.findall(lowered[:80])[:3]:
        if word in _VERBS:
            return True
        if word not in _OPENERS:
            break
    lower = " " + lowered + " "
    # set look-ups and substring searches: a regular expression of ~200 alternatives cost ~30 µs a sentence
    # (a phrase with a letter outside ASCII cannot occur in an ASCII sentence: most sentences skip those)
    phrases = _ASCII_CUE_PHRASES if lower.isascii() else _CUE_PHRASES
    return not _CUE_WORDS.isdisjoint(_WORD.findall(lower)) or any(map(lower.__contains__, phrases))


def _sentences(paragraph: str) -> list[str]:
    """The paragraph's sentences; one whose colon comes in its first :data:`COLON_SPAN` characters is cut after
    it (an introduction ending with a colon is kept as such, what follows is judged on its own)."""
    out: list[str] = []
    for sentence in _SENTENCE.split(paragraph):
        head = sentence[:COLON_SPAN]
        colon = _COLON.search(sentence) if ":" in head or "：" in head else None  # most sentences have none
        out.extend((sentence[:colon.start()], sentence[colon.start():]) if colon and colon.start() <= COLON_SPAN
                   else (sentence,))
    return [s.strip() for s in out if s.strip()]


def _quoted(paragraph: str, sentences: list[str]) -> list[bool]:
    """Per sentence of the paragraph: whether it is inside a quotation — it opens one (after a list number), or
    it starts after an opening mark not yet closed (straight double quotes only when they pair up in the
    paragraph: a stray inch mark must not silence the rest of it)."""
    paired = paragraph.count('"') % 2 == 0
    straight = curly = 0
    out: list[bool] = []
    for sentence in sentences:
        inside = (paired and straight % 2 == 1) or curly > 0
        numbered = _NUMBERED.match(sentence)
        out.append(inside or sentence[numbered.end() if numbered else 0:].startswith(_QUOTES))
        straight += sentence.count('"')
        curly = max(0, curly + sentence.count("“") - sentence.count("”"))
    return out


def parts(text: str) -> list[Part]:
    """The message as kept sentences and material spans, in order (consecutive material of one kind merged)."""
    out: list[Part] = []

    def add(part: Part) -> None:
        if part.kind is not None and out and out[-1].kind == part.kind:
            out[-1].text += "\n" + part.text
        else:
            out.append(part)

    # blocks: fenced code, runs of material lines, and prose paragraphs (runs of prose lines)
    lines = text.splitlines()
    fenced = prose = False
    paragraph: list[str] = []
    blocks: list[tuple[str, Material | None]] = []

    def flush() -> None:
        if paragraph:
            blocks.append((" ".join(paragraph), None))
            paragraph.clear()

    for line in lines:
        if _FENCE.match(line):
            flush()
            fenced = not fenced
            prose = fenced and bool(_PROSE_FENCE.match(line))
            continue
        if fenced:
            blocks.append((line, Material.TEXT if prose else Material.TRACE if _TRACE.match(line) else Material.CODE))
            continue
        if not line.strip():
            flush()
            continue
        kind = _line_kind(line)
        if kind is not Material.TRACE and not paragraph and blocks and line[:1].isspace() \
                and blocks[-1][1] in (Material.CODE, Material.TRACE):
            kind = blocks[-1][1]  # an indented line goes on with the code or the trace above it
        if kind is None:
            paragraph.append(line.strip())
        else:
            flush()
            blocks.append((line, kind))
    flush()
    for block, kind in blocks:
        if kind is not None:
            add(Part(block, kind))
            continue
        sentences = _sentences(block)
        long = len(block) > LONG_PARAGRAPH
        asked = False  # the sentence before was an ask's label ("Query:")
        for j, (sentence, quoted) in enumerate(zip(sentences, _quoted(block, sentences), strict=True)):
            edge = j == 0 or j == len(sentences) - 1
            intro = sentence.endswith((":", "："))
            keep = (asked or ((edge or not long) and (intro or (not quoted and _asks(sentence))))) \
                and len(sentence) <= LONG_PARAGRAPH
            asked = intro and bool(_ASK_LABEL.match(sentence))
            add(Part(sentence) if keep else Part(sentence, Material.TEXT))
    return out


def _scanned(text: str) -> list[Part]:
    """:func:`parts` of a message, of a very long one only of its first and last :data:`SCAN` characters (a
    request sits near an end; reading 500,000 pasted characters line by line took ~0.8 s): the middle
    counts as material of the kinds a sample of it shows."""
    if len(text) <= 2 * SCAN:
        return parts(text)
    middle = len(text) // 2
    sample = parts(text[middle - SAMPLE // 2:middle + SAMPLE // 2])
    kinds = list(dict.fromkeys(p.kind for p in sample if p.kind is not None)) or [Material.TEXT]
    return [*parts(text[:SCAN]), *(Part("", kind) for kind in kinds), *parts(text[-SCAN:])]


def request(text: str) -> str:
    """The message with each run of pasted material replaced by the markers of its kinds, in order."""
    pieces: list[str] = []
    run: list[Material] = []  # the kinds of a run of material between two kept sentences, each named once
    for part in _scanned(text):
        if part.kind is None:
            pieces.extend(kind.marker for kind in run)
            run.clear()
            pieces.append(part.text)
        elif part.kind not in run:
            run.append(part.kind)
    pieces.extend(kind.marker for kind in run)
    return " ".join(pieces)


def focus(text: str) -> str:
    """A long message's request, capped to its first and last 400 characters; a short message whole."""
    return text if len(text) <= 2 * EDGE else clip(request(text))


#: the end of a short message's instruction (:func:`instruction`): a colon, a line break or a sentence's end …
_INSTRUCTION_END = re.compile(r"[:：\n。？！?!]")
#: … within this many characters of its start …
INSTRUCTION_SPAN = 200
#: … with at least this many characters after it (the material the instruction is about)
MATERIAL_LEAST = 20


def instruction(text: str) -> str | None:
    """A short message's instruction, apart from the material it gives: its text up to the first colon, line break
    or sentence end within :data:`INSTRUCTION_SPAN` characters, when at least :data:`MATERIAL_LEAST` characters
    follow ("将以下短句翻译成中文：" before an English sentence; "Extract the dates:" before a paragraph); None for a
    long message (:func:`request` reads what it asks) or one with nothing after its first clause. Round 37: what
    the pasted material is written in, and what it is about, outvoted what the instruction asks."""
    if len(text) > 2 * EDGE:
        return None
    end = _INSTRUCTION_END.search(text, 0, INSTRUCTION_SPAN)
    if end is None or len(text) - end.end() < MATERIAL_LEAST:
        return None
    head, rest = text[:end.end()].strip(), text[end.end():].strip()
    return head if len(rest) >= MATERIAL_LEAST and len(head) >= 4 else None


#: a view of a message (text to classify) and its weight in the vote
View = tuple[str, float]


@lru_cache(maxsize=16)
def views(text: str) -> tuple[View, ...]:
    """What the fast path reads: a message of up to 800 characters whole; a longer one twice — its
    :func:`focus` with weight :data:`REQUEST_WEIGHT`, and its first and last 400 characters (round 6's
    reading) with the rest — so the request counts however deep in the material it sits, and the
    material still shows where it is the question. Cached: a decision with corrections reads a message
    up to three times (its similarity to the corrections, the refit's vote, the base classifier's)."""
    if len(text) <= 2 * EDGE:
        return ((text, 1.0),)
    return ((focus(text), REQUEST_WEIGHT), (clip(text), 1.0 - REQUEST_WEIGHT))


def head_and_tail(text: str) -> tuple[View, ...]:
    """Round 6's reading, for comparison: the first and last 400 characters only."""
    return ((clip(text), 1.0),)
