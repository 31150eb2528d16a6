"""The orchestrator: classify fast, ask the model only when unsure, never fail to decide.

Fast path: the config-trained :class:`Classifier` (about a millisecond). Slow path, when its
confidence is below ``orchestration.threshold`` (chosen so that decisions above it are right
≥ 95% of the time, see ``eval-routing --calibrate``): the orchestrator agent's chain, thinking
off, given each candidate's policy (what it takes, what it does not) and a few contrasting
examples, and asked for ``{"agent": …, "task": …}`` under a JSON Schema whose ``agent`` is an
enum — a grammar on llama.cpp, ``format`` on Ollama — so even a 0.5B model cannot name an agent
that does not exist. Candidates are the classifier's best three: a small model chooses better
among three than among six. An invalid answer gets one repair round-trip; after that (or if no
model answers) the fast path's own choice stands (method ``fast_fallback``, the reason in
``detail``): right ~80% of the time on held-out prompts, where a fixed default agent is not.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from modelyard.agents.classifier import Classifier, Decision, RouteMethod, training_samples
from modelyard.agents.memory import CorrectedClassifier, role_prompts
from modelyard.agents.request import clip
from modelyard.agents.roles import EXAMPLES, POLICIES, agent_role
from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.config.schema import Config
from modelyard.errors import ModelyardError, json_problem
from modelyard.ledger.labels import Label
from modelyard.router import Router
from modelyard.types import ChatRequest, Message

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
#: how many of the classifier's best guesses the model chooses among
CANDIDATES = 3
#: contrasting examples per candidate in the slow-path prompt
PROMPT_EXAMPLES = 2
#: characters of the user's message shown to the model (head and tail of long pastes)
PROMPT_CHARS = 1500

@dataclass(slots=True)
class Choice:
    agent: str
    task: str


def parse_choice(text: str, targets: list[str]) -> Choice | str:
    """The model's ``{"agent", "task"}`` answer, or why it is unusable (fed back for the repair)."""
    match = _OBJECT.search(text or "")
    if match is None:
        return "the answer contains no JSON object"
    try:
        value = json.loads(match.group(0))
    except (ValueError, RecursionError) as exc:
        return f"the JSON does not parse ({json_problem(exc)})"
    if not isinstance(value, dict) or not isinstance(value.get("agent"), str):
        return 'the JSON object has no string field "agent"'
    wanted = value["agent"].strip().lower()
    agent = next((t for t in targets if t.lower() == wanted), None)
    if agent is None:
        return f"'{value['agent']}' is not one of the agents: {', '.join(targets)}"
    task = value.get("task")
    return Choice(agent, task if isinstance(task, str) else "")


class Orchestrator:
    def __init__(self, config: Config, name: str, labels: Sequence[Label] = ()):
        """``labels``: texts the person said should have gone elsewhere, trusted by ``routing learn``."""
        self.config = config
        self.name = name
        self.targets = routing_targets(config, name)
        if not self.targets:
            raise ValueError(f"orchestrator '{name}' has no agents to delegate to")
        self.labels = list(labels)
        samples = training_samples(config, self.targets)
        # corrections act only near themselves (agents/memory.py); without any, the plain classifier
        self.classifier: Classifier | CorrectedClassifier = (
            CorrectedClassifier(samples, [(lab.text, lab.agent) for lab in self.labels],
                                references=role_prompts(config, self.targets)) if self.labels
            else Classifier(samples))
        default = config.orchestration.default
        if default not in config.agents:
            default = config.default_agent if config.default_agent in self.targets else self.targets[0]
        self.default = default

    @classmethod
    def from_config(cls, config: Config, labels: Sequence[Label] = ()) -> Orchestrator | None:
        name = orchestrator_name(config)
        return cls(config, name, labels) if name else None

    def decide_fast(self, text: str) -> Decision:
        return self.classifier.decide(text)

    async def decide(self, router: Router, text: str, *, request_id: str | None = None) -> Decision:
        """Fast path; below the threshold, the model; failing that, the fast path's choice after all."""
        t0 = time.perf_counter()
        fast = self.classifier.decide(text)
        if fast.confidence >= self.config.orchestration.threshold:
            return fast
        method, choice, detail = await self._ask_model(router, text, request_id, self.candidates(text))
        ms = (time.perf_counter() - t0) * 1000
        if isinstance(choice, Choice):
            return Decision(choice.agent, fast.confidence, method, ms, task=choice.task)
        return Decision(fast.agent, fast.confidence, RouteMethod.FAST_FALLBACK, ms, detail=detail)

    def candidates(self, text: str) -> list[str]:
        """The classifier's best guesses, best first (all targets when there are few)."""
        scores = self.classifier.scores(text)
        ranked = sorted(self.targets, key=lambda t: -scores.get(t, 0.0))
        return ranked[:CANDIDATES] if len(ranked) > CANDIDATES + 1 else ranked

    def policy(self, name: str) -> str:
        """What an agent takes and does not take: its role's policy, else its description."""
        role = agent_role(self.config, name)
        return POLICIES[role] if role else (self.config.agents[name].description.strip() or name)

    def prompt(self, candidates: list[str]) -> str:
        """System prompt of the slow path: policies, contrasting examples, the answer's shape."""
        lines = []
        for name in candidates:
            role = agent_role(self.config, name)
            shots = [*self.config.agents[name].examples, *(EXAMPLES[role] if role else [])][:PROMPT_EXAMPLES]
            examples = "; ".join(json.dumps(e, ensure_ascii=False) for e in shots)
            lines.append(f"- {name}: {self.policy(name)}" + (f". Examples: {examples}" if examples else ""))
        return ("You route a user's message to exactly one agent. Judge what the user wants done, not the topic "
                "of any text they pasted. Agents:\n" + "\n".join(lines) + "\n"
                'Answer with only a JSON object: {"agent": "<one of: ' + ", ".join(candidates)
                + '>", "task": "<the task in one sentence>"}.')

    @staticmethod
    def schema(candidates: list[str]) -> dict[str, object]:
        """JSON Schema of the answer: ``agent`` is an enum, so a constrained decoder cannot invent one."""
        return {"type": "object", "properties": {"agent": {"type": "string", "enum": candidates},
                                                 "task": {"type": "string"}},
                "required": ["agent", "task"], "additionalProperties": False}

    async def _ask_model(self, router: Router, text: str, request_id: str | None, candidates: list[str]
                         ) -> tuple[RouteMethod, Choice | None, str]:
        cfg = self.config.agents[self.name]
        messages = [Message("system", self.prompt(candidates)), Message("user", clip(text, PROMPT_CHARS // 2))]
        method = RouteMethod.MODEL
        for round_trip in range(2):
            request = ChatRequest(messages=messages, thinking=False, json_output=True,
                                  json_schema=self.schema(candidates),
                                  max_tokens=cfg.max_tokens or 128, temperature=0.0)
            try:
                routed = await router.complete(self.name, request, parent_id=request_id)
            except ModelyardError as exc:  # chain exhausted: the fast path's choice stands
                return method, None, str(exc).splitlines()[0]
            parsed = parse_choice(routed.response.text, candidates)
            if isinstance(parsed, Choice):
                return method, parsed, ""
            if round_trip == 0:
                method = RouteMethod.MODEL_REPAIRED
                messages = [*messages, Message("assistant", routed.response.text),
                            Message("user", f"That answer is unusable: {parsed}. Reply with only the JSON object; "
                                            f"agent must be one of: {', '.join(candidates)}.")]
        return method, None, f"invalid orchestrator answer after one repair: {parsed}"
