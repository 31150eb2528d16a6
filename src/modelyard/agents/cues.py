"""What a request *does*, which a bag of words cannot say: nudges for composing and for transforming given text.

A linear model over words adds evidence word by word, so a request's verb and its topic vote apart: "write a blog
post explaining how vaccines work" drifts to research by its topic, and "translate the article below" by the
article's. What decides the role is a conjunction — a verb that composes, followed by a kind of text for a reader;
a verb of mechanical change, with material the person gives — and no single n-gram carries it. Round 16
(benchmarks/README.md) tried both ways of using them on the tuning sets: as extra word tokens the members learn
weights for (1,103 → 1,095–1,103 of 1,313: no gain, they are diluted among ~1,400 examples' words) and as a fixed
nudge on the members' mean vote for the role the conjunction names (:data:`NUDGE`, chosen leave-one-file-out).
Round 25 (benchmarks/routing_eval/ROUNDS.md) added two more conjunctions the same way: a how-to question that names
an object of a system (engineer) and a composition asked for by its form or length, without a verb of writing
(writer), with their own size (:data:`TASK_NUDGE`). Round 26 added a composition named in another language
(:data:`FOREIGN_FORM`), searched only in a message in another language. Round 28 gave a composition in a long
message's request its own size (:data:`LONG_COMPOSE`). Round 37 added a chore asked in another language, searched in
a short message's instruction only (:data:`FOREIGN_CHORE`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from modelyard.agents.request import instruction
from modelyard.agents.roles import Role

#: material the person gives: a marker of pasted material (agents/request.py), a pointer to a text, a colon
#: that opens an inline input, or a blank line between an instruction and its input (round 28: "Extract the address
#: … from the listing.\n\nWALK TO THE BEACH …", the app-style shape a person pastes)
GIVEN = re.compile(
    r"\(pasted [a-z ]+\)|\b(?:the\s+following|below|above|this|these|my|attached|given|provided|pasted)\s+"
    r"(?:\w+\s+)?(?:text|paragraphs?|passages?|sentences?|e-?mails?|messages?|lists?|data|dataset|tables?|csv|"
    r"json|xml|yaml|articles?|essays?|documents?|transcripts?|notes|reviews?|comments?|tweets?|lines?|words?|"
    r"stor(?:y|ies)|poems?|letters?|reports?|descriptions?|items?|names|records|entries|values|input)\b"
    r"|:\s*\n|:\s*[\"'“]|\S[ \t]*\n[ \t]*\n[ \t]*\S", re.IGNORECASE)
#: verbs of a mechanical or editorial change to something given
TRANSFORM = re.compile(
    r"\b(?:re-?write|rephrase|paraphrase|reword|convert|extract|translate|summari[sz]e|reformat|format|fix|"
    r"correct|proofread|shorten|condense|simplify|sort|count|classify|categori[sz]e|tag|label|pull\s+out|"
    r"turn|transform|clean\s+up|edit|polish|improve|anonymi[sz]e|redact|normali[sz]e|dedupe|deduplicate|"
    r"alphabeti[sz]e|capitali[sz]e|parse|tabulate)\b", re.IGNORECASE)
#: a request to compose a kind of text for a reader
COMPOSE = re.compile(
    r"\b(?:write|draft|compose|create|generate|craft|pen|come\s+up\s+with|give\s+me|make)\b[^.?!\n]{0,50}?\b"
    r"(?:e-?mails?|letters?|posts?|stor(?:y|ies)|poems?|essays?|articles?|blogs?|speech(?:es)?|captions?|bios?|"
    r"ads?|adverts?|advertisements?|slogans?|scripts?|songs?|lyrics|cover\s+letter|resumes?|cv|outlines?|"
    r"lesson\s+plans?|tweets?|headlines?|titles?|taglines?|newsletters?|toasts?|eulogy|limericks?|haikus?|"
    r"press\s+release|invitations?|announcements?|product\s+descriptions?|descriptions?|paragraphs?|"
    r"sonnets?|verses?|dialogues?|monologues?|jokes?|reviews?)\b", re.IGNORECASE)
#: added to the members' mean probability of the named role when its cue is there (0.12 for both: chosen on the
#: ten tuning files, each held out in turn — 9 of 10 folds chose it; 1,103 → 1,109 of 1,313, 6 fixed, 0 broken)
NUDGE = 0.12
#: :data:`COMPOSE`'s nudge in a long message's request (round 28). There the members vote on two views, and the
#: pasted facts of a writing brief ("write a 3-4 paragraph article using the information below: …") pull the mean
#: vote to their topic's role far more than a short message's words can, while the verb of writing sits in the
#: request. Chosen on the ten tuning files (grid 0.12–2.0): 0.12 → 1,140, 0.5 → 1,144 (4 fixed, 0 broken), 0.6 the
#: same, 0.8 and over 1,143 (5 fixed, 2 broken); the smallest of the plateau taken. The chore cue keeps
#: :data:`NUDGE` there: 0.3 broke 6, fixed none
LONG_COMPOSE = 0.5

#: a software or system task asked as a how-to question: the message opens "how do/can … I/we/you/one …" or "how to …"
#: and names, within the same sentence, an object of an operating system or of software work (round 25; POLICY.md's
#: engineer column — shell, git, builds, deployment, config files, SQL — and the ordinary nouns of a system). The
#: words carry no role alone ("how do I …" is research as often; "file" is everyone's): the conjunction does
SYSTEM_HOW = re.compile(
    r"^[^\w]*(?:how\s+(?:do|can|could|would|should|will)\s+(?:i|we|you|one)\b|how\s+to\b)[^.?!\n]{0,80}?\b"
    r"(?:files?|filenames?|director(?:y|ies)|folders?|process(?:es)?|pids?|ports?|packages?|git|repo(?:sitor(?:y|ies))?|"
    r"branch(?:es)?|commits?|terminal|shell|bash|zsh|command(?:\s+line)?|cli|linux|ubuntu|debian|unix|macos|mac|"
    r"windows|powershell|cmd|server|ssh|sudo|root|permissions?|chmod|symlinks?|disks?|partitions?|mount|kernel|cron|"
    r"daemon|services?|environment\s+variables?|env|path|docker|containers?|images?|vms?|virtual\s+machines?|"
    r"network\s+interfaces?|ip\s+address|dns|firewall|certificates?|ssl|tls|https?|npm|pip|apt|brew|yum|database|"
    r"sql|tables?|regex|config(?:uration)?\s+files?|logs?|build|compile|deploy(?:ment)?|ci|pipeline|api|library|"
    r"module|version|install(?:ation)?|binary|executable|archive|tar|zip|usb|driver|hostname|users?|groups?)\b",
    re.IGNORECASE)
#: a composition asked for by its form or length, with no verb of writing: "300 words on …", "a hook for …",
#: "some lyrics for …" (round 25). Forms that name code as often ("script", "copy") are left out
FORM = re.compile(
    r"\b\d+[\s-]*(?:words?|paragraphs?|lines?|sentences?|tweets?|slides?)\s+(?:on|about|for|of)\b"
    r"|\b(?:a|an|some|the)\s+(?:\w+\s+){0,2}(?:hooks?|captions?|taglines?|slogans?|lyrics|verses?|jingle|campaign|"
    r"toast|eulogy|limerick|haiku|sonnet|ballad|rap|chorus|blurb|pitch|ad\s+copy)\s+"
    r"(?:for|about|on|to|that|which|where|in)\b|\blyrics\b|\bcaptions?\s+for\b", re.IGNORECASE)
#: added to the members' mean probability of engineer (:data:`SYSTEM_HOW`) or writer (:data:`FORM`) when the cue is
#: there, on top of :data:`NUDGE` (one size for both: chosen on the ten tuning files, each held out in turn; round 25)
TASK_NUDGE = 0.5

#: a composition asked for in another language (round 26): a kind of text that is written for a reader and means
#: nothing else — a poem, a song or its lyrics, a fairy tale, a haiku, a screenplay, a rhyme to make — named in
#: Russian/Ukrainian, Chinese, Japanese, Korean, Persian/Arabic, Greek, Spanish, Portuguese, French, Italian, German
#: or Dutch; or a story, a speech or a dialogue (words that also mean history or a talk) after a verb of making in
#: the same sentence. The TF-IDF members know few words of those languages and the multilingual member's examples
#: are few, so requests for poems and songs went to research or chat (round 24's error analysis). Searched only in a
#: message :func:`~modelyard.agents.encoder.foreign` finds in another language: English decisions do not change
FOREIGN_FORM = re.compile(
    # Cyrillic: poem, verse, song, lyrics, fairy tale, ditty, limerick, rhyme (the verb), screenplay
    r"(?<!\w)(?:стих\w*|поэм\w*|песн\w*|пісн\w*|текст\s+песни|сказк\w*|казк\w*|частушк\w*|лимерик\w*|"
    r"срифму\w*|зарифму\w*|рифм\w*|поздравлени\w*|тост\w*|слоган\w*|"
    # Greek (also in capitals): poem, song, fairy tale
    r"ποίημα\w*|ποιημα\w*|τραγούδι\w*|τραγουδι\w*|παραμύθι\w*|"
    # Latin-script languages: poem, song, lyrics, tale, haiku, sonnet, screenplay
    r"poem[ae]s?|poème\w*|poeme\w*|poesia|poesie|poesía|gedicht\w*|liedtext\w*|songtext\w*|canci[oó]n\w*|"
    r"can[cç][aã]o|can[cç][oõ]es|chanson\w*|canzon\w*|cuentos?|contos|conte\s+pour|racconto|racconti|fiaba|favola|"
    r"m[aä]rchen|sprookje|fábula|fabula|sceneggiatura|gui[oó]n|roteiro|scénario|drehbuch|"
    r"haikus?|sonet[oa]s?|sonnet[ts]?|rime|reime\w*)(?!\w)"
    # Persian / Arabic: poem (she'r, qasida), story (dastan, qissa)
    r"|شعر|قصیده|قصيدة|داستان|قصه|قصة|ترانه|أغنية"
    # CJK: lyrics, fairy tale, haiku, tanka, couplet alone; a poem, song, story, screenplay or essay after a verb of
    # writing or making (a poem or a story is asked about as often), or before one in Japanese
    r"|歌词|歌詞|童话|童話|俳句|短歌|对联|對聯|話を[一1]つ"
    r"|(?:写|寫|书写|書寫|编|編|创作|創作|来一|來一)[^。？！\n]{0,12}?(?:诗|詩|歌|故事|剧本|劇本|作文|散文|小说|小說|文章)"
    r"|(?:詩|歌|物語|小説|話|脚本|シナリオ)を(?:作|書|創|考え)"
    # Korean: poem, song, lyrics, story, fairy tale
    r"|(?<![가-힣])시를|노래|가사|이야기를|동화|소설을"
    # a verb of making with a story, speech or dialogue
    r"|(?:напиши|написать|придумай|сочини|составь|создай|escrib\w*|escrev\w*|écri\w*|ecri\w*|fais|schreib\w*|"
    r"scriv\w*|crea|inventa|invente|erfinde|donne[rz]?\s+moi)[^.?!\n]{0,60}?(?<!\w)"
    r"(?:истори\w*|рассказ\w*|реч\w*|диалог\w*|монолог\w*|трейлер\w*|эсс\w*|сочинени\w*|"
    r"histori\w*|histoire\w*|storia|geschichte\w*|relato\w*|discurso|discours|dialog\w*|prémisse|roman\w*|"
    r"novel\w*|ensayo|essai)",
    re.IGNORECASE)
#: added to the members' mean probability of writer when :data:`FOREIGN_FORM` is there (round 26, on the tuning
#: files' 166 messages in other languages: 0 → 137, 0.12 → 144, 0.3 → 149, 0.5 → 150 right; each file held out in
#: turn, its folds chose 0.5 or 0.3 — the smaller taken, one message apart)
FOREIGN_NUDGE = 0.3

#: a chore on given text asked in another language (round 37): a verb of POLICY.md's utility column — translate,
#: extract, classify, correct, sort, count, deduplicate, convert — in Chinese, Japanese, Korean, Russian, Ukrainian,
#: Spanish, Portuguese, French, Italian, German or Dutch; compositions and rewrites (writer's) left out, and
#: "summarise" (总结 and 摘要 also name a report's summary section: round 30). Searched only in a short message's
#: instruction (agents/request.py's ``instruction``, the words before its material) and only in a message read as
#: another language: round 30's cue searched the whole message and fired on chore words inside pasted material and
#: long writing briefs (writingbench −6 held out)
FOREIGN_CHORE = re.compile(
    r"翻译|翻譯|译成|譯成|提取|抽取|摘出|分类|分類|归类|歸類|纠正|糾正|改正|校对|校對|排序|统计出|计算出现|去重|"
    r"转换成|轉換成|转换为|转化为|"
    r"翻訳|訳して|抽出|分類して|並べ替え|並び替え|校正|変換|"
    r"번역|추출|분류|정렬|교정|변환|"
    r"(?<!\w)(?:переведи\w*|перевести|переклади\w*|извлеки|извлечь|выпиши|классифицируй\w*|отсортируй\w*|"
    r"исправь\w*|виправ(?:и|іть)|посчитай|подсчитай|преобразуй\w*|конвертируй\w*|"
    r"traduc\w*|traduz\w*|tradui\w*|tradu(?:ire|ci|ca)|übersetz\w*|vertaal\w*|"
    r"extra(?:e|er|ia|ire|i|hieren|heer)\w*|clasifica\w*|classifi(?:ca|que|quer|ez|zier)\w*|klassifizier\w*|"
    r"ordena\w*|trie[rz]?|ordina\w*|sortier\w*|sorteer\w*|corrig\w*|korrigier\w*|corregg\w*|"
    r"convierte|convertir|converta|converti\w*|konvertier\w*|umwandel\w*|cuenta\s+cu[aá]ntas)(?!\w)",
    re.IGNORECASE)
#: added to the members' mean probability of utility when :data:`FOREIGN_CHORE` is there (round 37, on the tuning
#: files — only belle_dev's lines move: 0.12 → +2, 0.3 → +6, 0.5 → +8, 0.7 → +9, all fixed, none broken; 1.0 breaks
#: 2 — the lower end of the plateau taken, :data:`TASK_NUDGE`'s size)
FOREIGN_CHORE_NUDGE = 0.5

#: the cues for a text in ASCII, searched in its lower case (their patterns hold no capital): the same matches
#: as ignoring case, for ~40% of their CPU (round 23)
_LOWER = {cue: re.compile(cue.pattern) for cue in (GIVEN, TRANSFORM, COMPOSE, SYSTEM_HOW, FORM)}
#: :data:`FOREIGN_FORM` searched in a text's lower case (its pattern holds no capital): the same matches as ignoring
#: case, which for letters beyond ASCII costs twice as much (~70 against ~140 µs on an arena prompt)
_FOREIGN_LOWER = re.compile(FOREIGN_FORM.pattern)


def nudges(text: str, *, foreign: bool = False, long: bool = False) -> dict[Role, float]:
    """What to add to each role's mean vote for ``text`` (the message's main view): writer for a composition,
    utility for a change to given material; nothing when neither cue is there. ``foreign``: ``text`` is in another
    language (agents/encoder.py's ``foreign``), where :data:`FOREIGN_FORM` is searched too, and :data:`FOREIGN_CHORE`
    in a short message's instruction. ``long``: ``text`` is a long message's request (agents/request.py), where a
    composition weighs :data:`LONG_COMPOSE`."""
    found: Callable[[re.Pattern[str]], object] = _searcher(text)
    out: dict[Role, float] = {}
    if foreign and _FOREIGN_LOWER.search(text.lower()):
        out[Role.WRITER] = FOREIGN_NUDGE
    if found(COMPOSE):
        out[Role.WRITER] = out.get(Role.WRITER, 0.0) + (LONG_COMPOSE if long else NUDGE)
    if found(TRANSFORM) and found(GIVEN):
        out[Role.UTILITY] = NUDGE
    if found(SYSTEM_HOW):
        out[Role.ENGINEER] = TASK_NUDGE
    if found(FORM):
        out[Role.WRITER] = out.get(Role.WRITER, 0.0) + TASK_NUDGE
    if foreign and not long and (head := instruction(text)) is not None and FOREIGN_CHORE.search(head):
        out[Role.UTILITY] = out.get(Role.UTILITY, 0.0) + FOREIGN_CHORE_NUDGE
    return out


def _searcher(text: str) -> Callable[[re.Pattern[str]], object]:
    """A search of ``text`` for a cue: a case-sensitive one in its lower case when it is ASCII (where lower-casing
    changes A–Z only, as ignoring case does), else the cue's own."""
    if text.isascii():
        lowered = text.lower()
        return lambda cue: _LOWER[cue].search(lowered)
    return lambda cue: cue.search(text)
