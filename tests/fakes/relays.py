"""Bytes that relays and hosted OpenAI-compatible APIs put on the wire, as their users quoted them (round 13).

Each builder returns a :class:`Fault` for :class:`OpenAIServer` (``push``), the shape rebuilt from the report it
cites; the fake server renders nothing of its own for them.

- :func:`relayed_loading`: a relay (Second-Me's local_llm_service) that caught llama-server's 503 through the
  ``openai`` client and passed it on as an error chunk inside its own 200 stream, the upstream's status only in the
  words (``Error code: 503 - {…}``, openai-python's APIStatusError text), ``code: 1``;
- :func:`in_band_error`: vLLM's and SGLang's refusal of a request inside the 200 stream, with the status it would
  have had (litellm#32237);
- :func:`glued_chunks`: two chunks back to back in one event, ``{…}{…}`` (openai-python#663);
- :func:`timings_only`: ik_llama.cpp's counts only in llama-server's ``timings`` object, no ``usage``, no
  ``[DONE]`` (ik_llama.cpp#467, #695);
- :func:`spliced_event`: Z.ai's GLM stream whose write buffer held a cut-off event and flushed it glued to the next
  one, on one line: ``data: {…"object":"chat.cdata: {…whole event…}`` (zai-org/GLM-5#66);
- :func:`one_chunk_no_end`: a whole answer in one chunk that carries its text and ``finish_reason``, then neither a
  usage chunk nor ``[DONE]``, the connection held open (bifrost#6784, #7115); :func:`completion_no_end`, the same on
  ``/v1/completions``.

Round 16 (the tenth fault hunt, faults23):

- :func:`bare_error_midstream`: Gemini's stream error as a relay copying the upstream's bytes passes it on — after the
  first chunks, a pretty-printed ``{"error": {"code": 503, …, "status": "UNAVAILABLE"}}`` without ``data:``
  (OmniRoute#4177);
- :func:`glued_tool_chunks`: the chunks of a streamed tool call written back to back in one event (openai-python#663's
  glue, on the pieces of a call);
- :func:`null_finish_stream`: KoboldCpp's chat stream before March 2025, ``"finish_reason": "null"`` (a string) on
  every chunk but the last (PowerShell/AIShell#350).

Round 17 (the eleventh fault hunt, faults24):

- :func:`error_after_chunk`: Gemini's error object (its 503 of OmniRoute#4177, its 429 of python-genai#1162) written
  without ``data:`` where its ``{`` is not at the start of a line: glued to the end of a chunk (openai-python#663's
  glue), or to a chunk cut short (zai-org/GLM-5#66's cut-off event), compact or pretty-printed; or in Gemini's array
  form, ``[{`` … ``]`` (bifrost#5262);
- :func:`legacy_call_stream`: a tool call in OpenAI's legacy shape, ``delta.function_call`` pieces and
  ``finish_reason: "function_call"`` (functionary's server, MeetKai/functionary#243; proxies, QwenLM/qwen-code#6240),
  one chunk an event or glued ``{…}{…}``;
- :func:`glued_audio_chunks`: an omni model's text deltas and its audio delta (``delta.audio``: ``id``, ``data``,
  ``expires_at``, ``transcript``; vllm-omni#7627), glued ``{…}{…}``;
- :func:`cut_mid_line`: a stream whose body ends cleanly inside a line — a relay that ends its own 200 when its
  upstream is cut (litellm#32159: "HTTP 200, the stream just stops"), a body delimited by the close — in each of the
  three wire formats; the clients that met it: can1357/oh-my-pi#3362 (a final frame ``data: {"id":"x",`` at EOF),
  baiye-banned/Agent_about_answer#134;
- :func:`anthropic_relayed`: an Anthropic Messages stream as relays of it end or keep it alive — ``data: [DONE]`` in
  place of ``message_stop`` (GitHub Copilot's Anthropic-compatible proxy, huggingface/tau#692), a ``ping`` event whose
  data is ``""`` (caozhiyuan/copilot-api#88).

Round 18 (the twelfth fault hunt, faults25):

- :func:`decoded_by_proxy`: an answer's plain bytes under the ``content-encoding`` of the upstream's compressed ones,
  as a proxy whose HTTP client decompressed them passes them on (qualixar/superlocalmemory#79: httpx, in front of
  Claude Code; freelensapp/freelens-ai-extension#272: Node's fetch, an AI proxy's price-list fetch).
"""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.faults import Fault

SSE = {"content-type": "text/event-stream"}
DONE = "data: [DONE]\n\n"


def data(obj: Any) -> str:
    return "data: " + json.dumps(obj) + "\n\n"


def glm_chunk(delta: dict[str, Any], finish: str | None = None, *, chunk_id: str = "2026043020420635c6abc56a2741ac",
              created: int = 1777552926) -> dict[str, Any]:
    """One event of Z.ai's GLM stream, as its users quote them (ids of 30 hex-ish characters, no ``index`` dropped)."""
    choice: dict[str, Any] = {"index": 0, "delta": delta}
    if finish is not None:
        choice["finish_reason"] = finish
    return {"id": chunk_id, "created": created, "object": "chat.completion.chunk", "model": "glm-5.1",
            "choices": [choice]}


#: openai-python's text for a status error (``APIStatusError``: f"Error code: {status} - {body}") of llama-server's
#: 503 while its weights load, as Second-Me's relay logged it (mindverse/Second-Me#20)
LOADING_RELAYED = ("Request processing failed: Error code: 503 - {'error': {'code': 503, 'message': 'Loading model', "
                   "'type': 'unavailable_error'}}")


def relayed_loading(message: str = LOADING_RELAYED) -> Fault:
    """Second-Me's relay: HTTP 200, then its own error chunk — ``code: 1``, the upstream's refusal in its words —
    then its ``[DONE]`` ("Sending final [DONE] marker", the same log)."""
    return Fault.raw(200, data({"error": {"code": 1, "message": message, "data": None}}), DONE, headers=SSE)


def in_band_error(error: dict[str, Any]) -> Fault:
    """An error object as an event of a 200 stream, then ``[DONE]``: vLLM's and SGLang's refusal after the headers
    (``data: {"error": {"object": "error", …, "code": 400}}``, litellm#32237)."""
    return Fault.raw(200, data(error), DONE, headers=SSE)


#: ik_llama.cpp's counts on its last chunk before its #695: llama-server's ``timings`` object, with llama.cpp#15827's
#: ``cache_n`` (the prompt tokens taken from the cache)
TIMINGS = {"cache_n": 236, "prompt_n": 1, "prompt_ms": 30.958, "prompt_per_token_ms": 30.958,
           "prompt_per_second": 32.301828283480845, "predicted_n": 35, "predicted_ms": 661.064,
           "predicted_per_token_ms": 18.887542857142858, "predicted_per_second": 52.94494935437416}


def timings_only(text: str) -> Fault:
    """ik_llama.cpp's stream before its #695 (Aug 2025): no ``usage`` anywhere, llama-server's ``timings`` on the
    finish chunk, and no ``[DONE]`` (ik_llama.cpp#467) — the body just ends."""
    head = {"id": "chatcmpl-ik", "object": "chat.completion.chunk", "model": "local"}
    return Fault.raw(200, data({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text},
                                                     "finish_reason": None}]}),
                     data({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                           "timings": TIMINGS}), headers=SSE)


def glued_chunks(first: str, pieces: tuple[str, str], last: str) -> Fault:
    """Two chunks written back to back in one event (openai-python#663, which quotes the bytes: ``{"id":
    "chatcmpl-8BnB0…", "object": "chat.completion.chunk", "created": "2023-10-20T17:02:14+00:00", "model": "gpt-4",
    "choices": [{"delta": {"content": "'s"}, "index": 0}]}{… " language" …}``), between ordinary ones."""
    def one(text: str, finish: str | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"delta": {"content": text}, "index": 0}
        if finish:
            choice["finish_reason"] = finish
        return {"id": "chatcmpl-8BnB0NvhQxY0szkmjMdM5px67189w", "object": "chat.completion.chunk",
                "created": "2023-10-20T17:02:14+00:00", "model": "gpt-4", "choices": [choice]}
    glued = "data: " + json.dumps(one(pieces[0])) + json.dumps(one(pieces[1])) + "\n\n"
    return Fault.raw(200, data(one(first)), glued, data(one(last, "stop")), DONE, headers=SSE)


def spliced_event(text: str, *, own_line: bool = False, same_answer: bool = False) -> Fault:
    """GLM's stream with a stale, cut-off event glued to a whole one on one line (zai-org/GLM-5#66: the first object
    ends at ``"object":"chat.c``, the next ``data:`` follows at once, no blank line; its id and ``created`` are
    another answer's, 71 s older), or on the line before it (``own_line``, opencode#25858), then the answer's finish
    and ``[DONE]``. ``same_answer``: the cut event is this answer's own (its id), its content lost."""
    stale = _compact(glm_chunk({"role": "assistant"}, **({} if same_answer else {
        "chunk_id": "20260430204055297b97348c8e426c", "created": 1777552855})))
    cut = stale[:stale.index('"object":"chat.') + len('"object":"chat.c')]
    whole = "data: " + _compact(glm_chunk({"role": "assistant", "content": text})) + "\n\n"
    spliced = "data: " + cut + ("\n" if own_line else "") + whole
    return Fault.raw(200, spliced, "data: " + _compact(glm_chunk({}, "stop")) + "\n\n", DONE, headers=SSE)


def _compact(obj: Any) -> str:
    """JSON as Z.ai writes it: no spaces."""
    return json.dumps(obj, separators=(",", ":"))


def completion_no_end(text: str, *, usage: bool) -> Fault:
    """The same end left out on OpenAI's legacy ``/v1/completions`` (``text_completion`` objects; Bifrost's fix for
    #6784 covers "both the chat completion and text completion streaming read loops", bifrost#6948): the text with
    its finish reason in one chunk, or the text, an empty finish chunk and the usage chunk; then no ``[DONE]``,
    keep-alive comments on an open connection."""
    def obj(piece: str, finish: str | None, **extra: Any) -> str:
        return data({"id": "cmpl-1", "object": "text_completion", "model": "local",
                     "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}], **extra})
    if usage:
        body = [obj(text, None), obj("", "stop"),
                data({"id": "cmpl-1", "object": "text_completion", "model": "local", "choices": [],
                      "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})]
    else:
        body = [obj(text, "stop")]
    return Fault.raw(200, *body, *[": keep-alive\n\n"] * 40, headers=SSE, end="hang", interval=0.1)


def one_chunk_no_end(text: str, keepalive: int = 0, interval: float = 0.1) -> Fault:
    """The whole answer in one chunk with its finish reason, then nothing but ``keepalive`` comments, the connection
    held open: "providers emit a valid finish_reason chunk but do not close the underlying SSE connection"
    (bifrost#6784; its fix, bifrost#7115, ends such a stream with the finish reason it holds)."""
    first = data({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "local",
                  "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
    return Fault.raw(200, first, *[": keep-alive\n\n"] * keepalive, headers=SSE, end="hang", interval=interval)


#: Gemini's words for a 503 while the model is in demand, as OmniRoute#4177 and continue#10639 quote them
GEMINI_UNAVAILABLE = {"error": {"code": 503, "message": "This model is currently experiencing high demand. Spikes in "
                                "demand are usually temporary. Please try again later.", "status": "UNAVAILABLE"}}


def bare_error_midstream(thought: str = "The user wants me to execute a sequence of steps") -> Fault:
    """OmniRoute#4177's provider stream: two chunks of thinking, a blank line, then Gemini's error object written
    without ``data:``, pretty-printed (two-space indent, as Google's JSON is), and the body ends. The chunks are
    rebuilt as the OpenAI-compatible ones a relay that copies upstream bytes sends before it; the error's lines are
    the issue's, byte for byte."""
    head = {"id": "chatcmpl-JPozaonvK7yzvdIPrJ7FyAk", "object": "chat.completion.chunk", "model": "gemma-4-31b-it"}
    first = data({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "reasoning_content": thought}}]})
    second = data({**head, "choices": [{"index": 0, "delta": {"reasoning_content": " job called `vibe-image`."}}]})
    return Fault.raw(200, first, second, json.dumps(GEMINI_UNAVAILABLE, indent=2) + "\n", headers=SSE)


def glued_tool_chunks(name: str, arguments: list[str]) -> Fault:
    """A streamed tool call — its name with an empty ``arguments``, then the arguments a few characters a chunk, then
    ``finish_reason: "tool_calls"`` — with the chunks of the call written back to back in one event, ``{…}{…}``, as
    openai-python#663 quotes two text chunks so glued (its server flushed two writes as one). The glue is the
    transport's and does not look at what a chunk holds; the shape of each chunk is OpenAI's reference stream
    (``delta.tool_calls[].index``, ``id`` and ``function.name`` on the first piece only). Not quoted with tool calls
    in a report found: a transport's glue applied to OpenAI's own tool-call chunks."""
    head = {"id": "chatcmpl-8BnB0NvhQxY0szkmjMdM5px67189w", "object": "chat.completion.chunk",
            "created": "2023-10-20T17:02:14+00:00", "model": "gpt-4"}

    def one(frag: dict[str, Any], finish: str | None = None) -> str:
        return json.dumps({**head, "choices": [{"index": 0, "delta": {"content": None, "refusal": None,
                                                                      "tool_calls": [frag]} if frag else {},
                                                "finish_reason": finish}]})
    start = one({"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": ""}})
    pieces = [one({"index": 0, "function": {"arguments": piece}}) for piece in arguments]
    glued = "data: " + start + "".join(pieces) + "\n\n"
    return Fault.raw(200, glued, "data: " + one({}, "tool_calls") + "\n\n", DONE, headers=SSE)


def null_finish_stream(pieces: list[str], *, ended: bool) -> Fault:
    """KoboldCpp's ``/v1/chat/completions`` stream as PowerShell/AIShell#350 found it: the string ``"null"`` where the
    spec has JSON ``null`` for ``finish_reason``, on every chunk until the last (KoboldCpp fixed it in
    LostRuins/koboldcpp@c55bb9a6). ``ended``: the last chunk (``"stop"``) and ``[DONE]`` come; else the body ends
    after the text, as when a relay's upstream connection closes cleanly mid-answer. The envelope (id, model) is
    rebuilt in KoboldCpp's style."""
    head = {"id": "koboldcpp", "object": "chat.completion.chunk", "created": 1741305600, "model": "koboldcpp/qwen"}

    def one(delta: dict[str, Any], finish: str) -> str:
        return data({**head, "choices": [{"index": 0, "finish_reason": finish, "delta": delta}]})
    body = [one({"role": "assistant", "content": pieces[0]}, "null"),
            *(one({"role": "assistant", "content": piece}, "null") for piece in pieces[1:])]
    if ended:
        body += [one({"role": "assistant", "content": ""}, "stop"), DONE]
    return Fault.raw(200, *body, headers=SSE)


#: Gemini's words for a 429 in its stream, line by line as python-genai#1162 quotes them (its link cut off there)
GEMINI_EXHAUSTED = {"error": {"code": 429, "message": "Resource exhausted. Please try again later.",
                              "status": "RESOURCE_EXHAUSTED"}}
_GEMINI_HEAD = {"id": "chatcmpl-JPozaonvK7yzvdIPrJ7FyAk", "object": "chat.completion.chunk", "model": "gemma-4-31b-it"}


def error_after_chunk(placement: str, error: dict[str, Any] = GEMINI_UNAVAILABLE) -> Fault:
    """A chunk of text, then Gemini's error object without ``data:`` (pretty-printed with two spaces, as Google's JSON
    is, unless said ``compact``), the ``{`` that opens it not at the start of a line:

    - ``glued``, ``glued_compact``: straight after the chunk's ``}`` on its ``data:`` line, as openai-python#663's
      server flushed two writes as one;
    - ``cut``, ``cut_compact``: after the chunk cut short (its first 40 characters), as zai-org/GLM-5#66's write
      buffer flushed a cut-off event glued to what came next;
    - ``array``: on lines of its own, in Gemini's array form (``[{`` / ``  "error": {`` … / ``}`` / ``]``: its stream
      without ``alt=sse`` is one JSON array; bifrost#5262 reads a bare line opening with ``{`` or ``[`` so).

    The placements are those transports' and relays' (each cited); the error's words are Gemini's."""
    first = json.dumps({**_GEMINI_HEAD, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]})
    doc = json.dumps(error) if placement.endswith("_compact") else json.dumps(error, indent=2)
    if placement.startswith("glued"):
        body = "data: " + first + doc + "\n\n"
    elif placement.startswith("cut"):
        body = "data: " + first[:40] + doc + "\n\n"
    elif placement == "array":
        body = "data: " + first + "\n\n[" + doc + "\n]\n"
    else:
        raise ValueError(f"no placement {placement!r}")
    return Fault.raw(200, body, headers=SSE)


def legacy_call_stream(name: str, arguments: list[str], *, glued: bool = False, whole: bool = False) -> Fault:
    """A tool call in OpenAI's legacy shape: ``delta.function_call`` — its name with empty arguments, then the
    arguments a few characters a chunk (``"name": null`` beside them, as llama-cpp-python's functionary handler writes
    them), ``content`` null — and ``finish_reason: "function_call"``; no ``tool_calls``. functionary's vLLM server
    answers ``tools`` so (MeetKai/functionary#243, its whole answer: ``message.function_call``, ``"tool_calls":
    null``); "some OpenAI-compatible providers, gateways, or proxies can still emit the legacy Chat Completions
    function-call shape instead of the newer tool_calls array", streamed as ``delta.function_call`` chunks
    (QwenLM/qwen-code#6240). ``glued``: the chunks of the call back to back in one event (openai-python#663's glue);
    ``whole``: the answer as one ``chat.completion`` (``stream`` ignored)."""
    if whole:
        message = {"role": "assistant", "content": None, "function_call": {"name": name,
                                                                           "arguments": "".join(arguments)},
                   "tool_calls": None}
        return Fault.raw(200, json.dumps({"id": "cmpl-190a0024ca304cfb9730201284bb56dd", "object": "chat.completion",
                                          "created": 1723319870, "model": "meetkai/functionary-medium-v3.1",
                                          "choices": [{"index": 0, "message": message,
                                                       "finish_reason": "function_call"}],
                                          "usage": {"prompt_tokens": 978, "total_tokens": 993,
                                                    "completion_tokens": 15}}),
                         headers={"content-type": "application/json"})
    head = {"id": "chatcmpl-4f3c", "object": "chat.completion.chunk", "created": 1723319870,
            "model": "meetkai/functionary-medium-v3.1"}

    def one(delta: dict[str, Any], finish: str | None = None) -> str:
        return json.dumps({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    pieces = [one({"role": "assistant", "content": None, "function_call": {"name": name, "arguments": ""}}),
              *(one({"role": None, "content": None, "function_call": {"name": None, "arguments": piece}})
                for piece in arguments)]
    events = ["data: " + "".join(pieces) + "\n\n"] if glued else ["data: " + p + "\n\n" for p in pieces]
    return Fault.raw(200, *events, "data: " + one({}, "function_call") + "\n\n", DONE, headers=SSE)


def glued_audio_chunks(texts: list[str]) -> Fault:
    """An omni model's answer as vllm-omni streams it — text deltas, then one audio delta once the speech is made
    (vllm-omni#7627: "a stream=True chat-completions client receives text deltas but only one audio delta after
    generation"), its ``delta.audio`` OpenAI's ``ChatCompletionAudio`` (``id``, ``data`` base64 PCM16, ``expires_at``,
    ``transcript``), each chunk with vllm-omni's ``modality`` — the last text chunk and the audio one glued back to
    back in one event (openai-python#663's glue)."""
    head = {"id": "chatcmpl-omni", "object": "chat.completion.chunk", "created": 1758541572,
            "model": "Qwen/Qwen3-Omni-30B-A3B-Instruct"}

    def one(delta: dict[str, Any], modality: str = "text", finish: str | None = None) -> str:
        return json.dumps({**head, "modality": modality,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    audio = {"id": "audio-1", "data": "UklGRiQAAABXQVZFZm10IBAAAAABAAEAwF0AAIC7AAACABAAZGF0YQAAAAA=",
             "expires_at": 1758545172, "transcript": "".join(texts)}
    events = ["data: " + one({"role": "assistant", "content": text}) + "\n\n" for text in texts[:-1]]
    events.append("data: " + one({"content": texts[-1]}) + one({"content": None, "audio": audio}, "audio") + "\n\n")
    return Fault.raw(200, *events, "data: " + one({}, "text", "stop") + "\n\n", DONE, headers=SSE)


def _event(name: str, obj: dict[str, Any]) -> str:
    """One Anthropic Messages stream event."""
    return f"event: {name}\ndata: {json.dumps(obj)}\n\n"


def _anthropic_opening(model: str, text: str) -> list[str]:
    """An Anthropic stream's ``message_start``, a text block's start and its first delta (``text``)."""
    return [_event("message_start", {"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": model,
                "stop_reason": None, "usage": {"input_tokens": 9, "output_tokens": 1}}}),
            _event("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}}),
            _text_delta(text)]


def _text_delta(text: str) -> str:
    return _event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": text}})


def _anthropic_ending(last: str) -> list[str]:
    """The text block's stop, ``message_delta`` with ``end_turn``, and ``last`` (``message_stop``, or what a relay
    writes in its place)."""
    return [_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                     "usage": {"output_tokens": 2}}), last]


MESSAGE_STOP = _event("message_stop", {"type": "message_stop"})


def cut_mid_line(kind: str, *, whole: bool = False) -> Fault:
    """An answer in ``kind``'s wire format ("openai", "anthropic", "ollama"; "completions": OpenAI's legacy
    ``/v1/completions``) whose body ends cleanly (the chunked
    body closed as it should, nothing reset) inside a line, 20 characters into it: the first text, then the line
    that would have said more (``whole``: the answer's text and its finish reason, then the line after it — the
    usage chunk, Anthropic's ``message_stop``). The events are each format's reference shapes; the cut is a relay's
    or a close-delimited body's, at a byte no line ends at."""
    if kind == "openai":
        head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1764460800, "model": "local"}
        events = [data({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Sunny"},
                                             "finish_reason": None}]})]
        if whole:
            events.append(data({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        events.append(data({**head, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2,
                                                             "total_tokens": 11}}))
        headers = SSE
    elif kind == "anthropic":
        events = _anthropic_opening("claude-haiku-4-5", "Sunny")
        events += _anthropic_ending(MESSAGE_STOP) if whole else [_text_delta(" and warm.")]
        headers = SSE
    elif kind == "completions":  # OpenAI's legacy /v1/completions: text_completion objects
        def obj(piece: str, finish: str | None, **extra: Any) -> str:
            return data({"id": "cmpl-1", "object": "text_completion", "model": "local",
                         "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}], **extra})
        events = [obj("upon a time", None), obj("", "stop") if whole else obj(" there was", None)]
        if whole:
            events.append(data({"id": "cmpl-1", "object": "text_completion", "model": "local", "choices": [],
                                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}))
        headers = SSE
    elif kind == "ollama":
        line = {"model": "qwen3.5:latest", "created_at": "2026-11-30T19:00:00Z",
                "message": {"role": "assistant", "content": "Sunny"}, "done": False}
        more = {**line, "message": {"role": "assistant", "content": " and warm."}}
        events = [json.dumps(line) + "\n", json.dumps(more) + "\n"]
        headers = {"content-type": "application/x-ndjson"}
    else:
        raise ValueError(f"no wire format {kind!r}")
    cut = events[-1]
    start = cut.rindex("data: ") + 6 if "data: " in cut else 0
    return Fault.raw(200, *events[:-1], cut[:start + 20], headers=headers)


def anthropic_relayed(*, done_for_stop: bool = False, ping_data: str | None = None) -> Fault:
    """An Anthropic Messages stream of one text block ("Sunny."), its ``message_delta`` with ``end_turn``, then
    ``message_stop`` — or, ``done_for_stop``, OpenAI's ``data: [DONE]`` in its place, as GitHub Copilot's
    Anthropic-compatible proxy ends its streams ("can terminate a stream with data: [DONE] instead of an Anthropic
    message_stop event", huggingface/tau#692). ``ping_data``: a ``ping`` event after the block's first delta with this
    data (copilot-api sent ``data: ""``, a JSON string, on its pings: caozhiyuan/copilot-api#88). The events are
    Anthropic's documented ones."""
    events = _anthropic_opening("claude-sonnet-4.5", "Sunny")
    if ping_data is not None:
        events.append(f"event: ping\ndata: {ping_data}\n\n")
    events += [_text_delta("."), *_anthropic_ending(DONE if done_for_stop else MESSAGE_STOP)]
    return Fault.raw(200, *events, headers=SSE)


def decoded_by_proxy(kind: str, coding: str = "gzip", *, whole: bool = False, status: int = 200) -> Fault:
    """A plain answer in ``kind``'s wire format ("openai", "anthropic", "ollama"; ``whole``: one JSON document, as a
    server that ignores ``stream`` answers) — or, ``status`` an error, OpenAI's error object — labelled
    ``content-encoding: coding``. A proxy's HTTP client decompressed the upstream's answer but kept its header, and
    the proxy copied that header onto the plain bytes it passes on: "httpx automatically decompresses gzip responses
    but leaves the Content-Encoding header intact. Forwarding it to the client (Claude Code) caused
    double-decompression and a ZlibError" (qualixar/superlocalmemory#79); Node's fetch "transparently decompresses
    gzip responses but keeps content-encoding in the response headers … The renderer therefore receives plain JSON
    labelled Content-Encoding: gzip" (freelensapp/freelens-ai-extension#272). The answers are each format's
    reference shapes ("Sunny."); the header is the upstream's."""
    json_type = {"content-type": "application/json", "content-encoding": coding}
    if status >= 300:
        error = {"error": {"message": "Rate limit reached for requests", "type": "requests",
                           "code": "rate_limit_exceeded"}}
        return Fault.raw(status, json.dumps(error), headers=json_type)
    if kind == "openai":
        head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1764460800, "model": "local"}
        if whole:
            return Fault.raw(200, json.dumps({**head, "object": "chat.completion", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": "Sunny."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}), headers=json_type)
        events = [data({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece},
                                             "finish_reason": None}]}) for piece in ("Sun", "ny.")]
        events += [data({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}), DONE]
        return Fault.raw(200, *events, headers={**SSE, "content-encoding": coding})
    if kind == "anthropic":
        if whole:
            return Fault.raw(200, json.dumps({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                "content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 9, "output_tokens": 2}}), headers=json_type)
        events = [*_anthropic_opening("claude-haiku-4-5", "Sun"), _text_delta("ny."), *_anthropic_ending(MESSAGE_STOP)]
        return Fault.raw(200, *events, headers={**SSE, "content-encoding": coding})
    if kind == "ollama":
        line = {"model": "qwen3.5:latest", "created_at": "2026-11-30T19:00:00Z",
                "message": {"role": "assistant", "content": "Sun"}, "done": False}
        lines = [line, {**line, "message": {"role": "assistant", "content": "ny."}},
                 {**line, "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                  "prompt_eval_count": 9, "eval_count": 2}]
        return Fault.raw(200, *(json.dumps(one) + "\n" for one in lines),
                         headers={"content-type": "application/x-ndjson", "content-encoding": coding})
    raise ValueError(f"no wire format {kind!r}")
