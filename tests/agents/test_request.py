"""The fast path reads a long message's request, not its pasted material (agents/request.py)."""

from __future__ import annotations

from modelyard.agents.classifier import Classifier
from modelyard.agents.request import Material, clip, focus, head_and_tail, parts, request, views

HISTORY = ("The city was founded in the twelfth century by merchants who traded wool and salt along the river. "
           "Over the following centuries it grew into a regional capital with a cathedral, a university and a "
           "busy port. The great fire of 1666 destroyed most of the wooden houses in the old town, and the "
           "council rebuilt the streets in stone. In the nineteenth century the railway arrived and the "
           "population tripled within fifty years, as mills and foundries opened along the canal. ")
CODE = "```python\ndef load(path):\n    with open(path) as f:\n        return json.load(f)\n```"
TRACE = ('Traceback (most recent call last):\n  File "app.py", line 12, in <module>\n    main()\n'
         '  File "app.py", line 8, in main\n    data = load(path)\nKeyError: \'name\'')
CSV = "\n".join(["date,region,units,revenue"] + [f"2024-0{m}-01,north,{10 * m},{1000 * m}" for m in range(1, 10)])


def test_short_messages_are_read_whole() -> None:
    for text in ["hi", "write a poem about autumn", "x" * 800]:
        assert focus(text) == text


def test_the_request_in_the_middle_of_pasted_prose_is_kept() -> None:
    """Round 6 read the first and last 400 characters: a request between two pasted paragraphs was lost."""
    ask = "Please write a short birthday poem for my grandmother based on this story."
    text = f"{HISTORY * 2}\n\n{ask}\n\n{HISTORY * 2}"
    assert ask not in clip(text)
    read = focus(text)
    assert ask in read and Material.TEXT.marker in read
    assert len(read) < len(clip(text))  # the pasted paragraphs are markers, not text
    (main, weight), (edges, rest) = views(text)
    assert main == read and edges == clip(text) and weight >= rest and weight + rest == 1
    assert views("a short one") == (("a short one", 1.0),)


def test_pasted_material_becomes_the_marker_of_its_kind() -> None:
    text = (f"My loader fails.\n\n{CODE}\n\n{TRACE}\n\nHere are the numbers it reads:\n{CSV}\n\n{HISTORY * 2}"
            "\n\nWhat is wrong?")
    read = request(text)
    for kind in (Material.CODE, Material.TRACE, Material.DATA):
        assert kind.marker in read
    assert "def load" not in read and "KeyError" not in read and "north" not in read
    assert read == (f"{Material.TEXT.marker} {Material.CODE.marker} {Material.TRACE.marker} Here are the numbers it "
                    f"reads: {Material.DATA.marker} {Material.TEXT.marker} What is wrong?")
    kinds = [p.kind for p in parts(text)]
    assert kinds.index(Material.CODE) < kinds.index(Material.TRACE) < kinds.index(Material.DATA)


def test_requests_in_other_languages_are_kept() -> None:
    material = "公司今年的销售额比去年增长了百分之十二，主要来自华东地区的新客户。" * 40
    ask = "请根据以上材料，帮我撰写一份年度工作总结。"
    read = focus(f"{material}\n\n{ask}")
    assert ask in read and Material.TEXT.marker in read and material[:200] not in read
    spanish = f"{HISTORY * 3}\n\n¿Puedes traducir este texto al español?"
    assert "¿Puedes traducir este texto al español?" in focus(spanish)


def test_the_classifier_routes_by_the_request_not_the_material() -> None:
    """A request to compose, between two long paragraphs of history: round 6 saw only the history."""
    samples = {"research": ["when was the city founded?", "history of the railway and the mills",
                            "why did the great fire destroy the old town?", "explain the history of the cathedral"],
               "writer": ["write a poem for my mother", "please write a short birthday poem",
                          "compose a story for my grandmother", "write a speech for the wedding"],
               "chat": ["hi there", "thanks, bye", "how are you today?", "tell me a joke"]}
    ask = "Please write a short birthday poem for my grandmother based on this story."
    text = f"{HISTORY * 2}\n\n{ask}\n\n{HISTORY * 2}"
    assert Classifier(samples, encoder=None, calibrated=False, read=head_and_tail).decide(text).agent == "research"
    assert Classifier(samples, encoder=None, calibrated=False).decide(text).agent == "writer"


# ---- round 10: material that still passed for the request ----------------------------------------------

def test_a_fence_tagged_as_prose_holds_text_not_code() -> None:
    """"Give me 20 Anki flashcards for the content below: ```md …```" went to engineer at 0.95: the fence made the
    notes code."""
    notes = "\n".join(f"Step {i}: install the compiler with npm and run tsc --watch in the project folder."
                      for i in range(30))
    read = request(f"please give me 20 flashcards for below content:\n```md\n{notes}\n```")
    assert Material.TEXT.marker in read and Material.CODE.marker not in read
    assert Material.CODE.marker in request(f"why does this fail?\n```\n{notes}\n```")  # untagged: as before


def test_quoted_sentences_do_not_ask() -> None:
    """The dialogue of a story to rewrite, and search results' snippets, asked questions of their own."""
    story = ("Joey watched the eagles fish off the sand bar while the tide came in.\n"
             "“And what kind of day is our youngest raptor having?” asked his mother.\n"
             "“Would you like to go soaring with me, Livie?” said Joey.\n\n") * 6  # short paragraphs: read whole
    read = request(f"Please rewrite this in the style of Hemingway:\n\n{story}")
    assert read.startswith("Please rewrite this in the style of Hemingway:")
    assert "soaring" not in read and "raptor" not in read
    results = "\n".join(f'[{i}] "What will happen if you do push ups every day? Push-ups build your chest and arms."'
                        for i in range(1, 12))
    read = request(f"Web search results:\n\n{results}\n\nQuery: Write a YouTube script about push-ups")
    assert "What will happen" not in read and read.endswith("Query: Write a YouTube script about push-ups")
    # a stray inch mark does not make the rest of the paragraph a quotation
    odd = "The shelf is 12\" wide and holds my books. " * 20 + "Can you tell me how many books fit on it?"
    assert "Can you tell me how many books fit on it?" in request(odd)


def test_an_over_long_sentence_is_material_and_an_early_colon_cuts() -> None:
    """A transcript without full stops is one 'sentence' that mentions 'you': round 7 kept it whole as the
    request (a visa interview transcript went to chat at 0.99)."""
    transcript = ("so today i want to show you how i grade my footage and you will see how easy it is "
                  "when you have the right settings and we go through them one by one ") * 12
    read = request(f'Title: "My colour grading workflow"\nVideo Transcript: "{transcript}"\n\nVideo Summary:')
    assert "grade my footage" not in read and read.endswith("Video Summary:")
    read = request(f"summarize this transcript: {transcript}")
    assert read == f"summarize this transcript: {Material.TEXT.marker}"
