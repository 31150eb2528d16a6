# ruff: noqa: E501  (the label table is data)
"""Write evals.jsonl: a third held-out set, from the prompt data a PyPI package ships.

Source: the ``evals`` wheel on PyPI (OpenAI Evals, version 3.0.1.post1), ``evals/registry/data/*/…jsonl``:
hundreds of evaluation tasks written by many contributors (exams in many languages, puzzles, maths,
conversions, extraction, code questions, small compositions). One prompt per task, from a seeded random
130 of the 432 tasks whose samples are readable chat prompts; the routed text is the sample's system
and user messages joined (the instruction and its input, as a person would paste them). Left out before
sampling: tasks about jailbreaks, prompt injection, agent tool use, multi-turn games and pure
visual/ASCII grids (SKIP below), transcripts with assistant turns, prompts over 3,000 characters.
Labelled prompt by prompt from POLICY.md before any classifier was run on them (the table below).
Run: python mkevals.py EVALS_REGISTRY_DATA_DIR > evals.jsonl   (after `pip download --no-deps evals==3.0.1.post1`
and unzipping the wheel)
"""
import json
import random
import sys
from pathlib import Path

AGENTS = {"c": "chat", "e": "engineer", "r": "research", "w": "writer", "u": "utility"}
# sample index → acceptable agents, best first
LABELS = """0 rc|1 r|2 re|3 r|4 ur|5 ru|6 r|7 r|8 rc|9 r|10 r|11 r|12 ue|13 r|14 ru|15 uw|16 r|17 ru|18 re|19 r|
20 r|21 ru|22 r|23 ur|24 ru|25 e|26 re|27 ue|28 ru|29 re|30 e|31 e|32 ur|33 ur|34 ur|35 u|36 re|37 r|38 ru|39 uw|
40 re|41 u|42 rc|43 r|44 r|45 ur|46 ru|47 r|48 r|49 w|50 r|51 ur|52 u|53 ru|54 rc|55 r|56 re|57 re|58 r|59 r|
60 r|61 r|62 rc|63 re|64 ue|65 r|66 re|67 ur|68 ru|69 ur|70 r|71 ru|72 r|73 re|74 rc|75 r|76 ue|77 re|78 r|79 r|
80 u|81 w|82 r|83 r|84 re|85 rc|86 re|87 r|88 r|89 r|90 ur|91 r|92 rc|93 rue|94 u|95 r|96 ru|97 wr|98 re|99 ru|
100 ue|101 ru|102 r|103 r|104 ur|105 r|106 er|107 re|108 ru|109 r|110 ru|111 r|112 re|113 rc|114 u|115 e|116 er|117 r|118 r|119 rc|
120 r|121 u|122 r|123 r|124 w|125 uw|126 r|127 u|128 ru|129 cr"""
SKIP = {"prompt-injection", "reverse-shell", "naughty_strings", "human-safety", "make_me_say", "sandbagging",
        "schelling_point", "self_prompting", "override-system-instruction", "already_said_that", "bugged_tools",
        "cant_do_that_anymore", "error_recovery", "incontext_rl", "hr_ml_agent_bench", "multistep-web-tasks",
        "steganography", "text_compression", "theory_of_mind", "ballots", "identifying_variables", "function_deduction",
        "skill_acquisition", "twenty_questions", "internal_representations", "GPT-model-text-detection", "mazes",
        "points_on_line"}


def labels() -> dict[int, list[str]]:
    pairs = (item.split() for item in LABELS.replace("\n", "").split("|") if item.strip())
    return {int(k): [AGENTS[c] for c in v] for k, v in pairs}


def prompts(task: Path) -> list[tuple[str, str]]:
    """(file, text) of each readable chat prompt of one task: its system and user messages joined."""
    found = []
    for file in sorted(task.rglob("*.jsonl")):
        if file.read_bytes()[:200].startswith(b"version https://git-lfs"):
            continue
        for line in file.read_text(errors="replace").splitlines()[:500]:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            messages = item.get("input") if isinstance(item, dict) else None
            path = file.relative_to(task.parent).as_posix()
            if isinstance(messages, list) and all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                  for m in messages):
                if any(m.get("role") == "assistant" for m in messages):
                    continue  # few-shot transcripts
                text = "\n\n".join(m["content"].strip() for m in messages if m.get("role") in ("system", "user")).strip()
                if 0 < len(text) <= 3000:
                    found.append((path, text))
            elif isinstance(messages, str) and 0 < len(messages) <= 3000:
                found.append((path, messages.strip()))
    return found


def main() -> None:
    root = Path(sys.argv[1])
    tasks = [(d.name, found) for d in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in SKIP)
             if (found := prompts(d))]
    rng = random.Random(20261128)
    chosen = rng.sample(tasks, 130)
    table = labels()
    for k, (_, found) in enumerate(sorted(chosen)):
        path, text = rng.choice(found)
        print(json.dumps({"text": text, "accept": table[k], "source": f"openai-evals:{path}", "style": "eval-task"},
                         ensure_ascii=False))


if __name__ == "__main__":
    main()
