"""Write fresh_code.jsonl: held-out software requests (round 12), labelled by a rule fixed before any was read.

Sources, both in the ``inspect-evals`` wheel on PyPI (0.28.0, MIT; ``pip download --no-deps inspect-evals==0.28.0``):
- AgentBench's operating-system tasks (Liu et al., 2023; ``inspect_evals/agent_bench/data/agent_bench_os*.json``):
  questions about a Linux machine's files, users, processes and logs, as a person asks them ("how many …",
  "find …", "tell me …") — a seeded 60 of the distinct descriptions;
- SWE-Lancer's individual-contributor issues (OpenAI, 2025; ``inspect_evals/swe_lancer/data/all_swelancer_tasks.csv``,
  ``variant == ic_swe``): real bug reports and feature requests of the Expensify app as filed on GitHub (steps,
  expected and actual result, platforms) — a seeded 40, title and body, the escaped newlines unescaped and the
  bounty boilerplate before the report and after ``<details>`` cut.
Neither collection is used by another set here. Candidates within a TF-IDF cosine of 0.5 of another set's line
or a role or config example are dropped first (mkfresh_common.py).

Label rule (POLICY.md, written before any prompt was read): shell, files, logs, processes on a machine, and
troubleshooting a program or app from a bug report, are **engineer** — every line accepts ``engineer`` only
(POLICY.md's "questions about programming concepts, tools or apps: engineer, research" is about concepts; these
are chores and bugs). A one-role set: it measures engineer recall on software requests not phrased as "write
code" — always-engineer scores 100%.
Run: python mkfresh_code.py INSPECT_EVALS_WHEEL > fresh_code.jsonl
     python mkfresh_code.py INSPECT_EVALS_WHEEL pool > corrections_fresh_code.jsonl — not an evaluation set: every
     other candidate of both collections (81 tasks, 158 issues), same rule, a pool of corrections for
     bench_routing_learn.py --pool (fresh_code.jsonl is then that kind's held-out check)
"""
import csv
import io
import json
import random
import re
import sys
import zipfile

from mkfresh_common import fresh, known_texts

OS_MEMBERS = ("inspect_evals/agent_bench/data/agent_bench_os.json",
              "inspect_evals/agent_bench/data/agent_bench_os_test.json")
LANCER = "inspect_evals/swe_lancer/data/all_swelancer_tasks.csv"
N_OS, N_LANCER = 60, 40


def issue(row: dict[str, str]) -> str:
    body = row["description"].replace("\\n", "\n").replace("\\r", "")
    body = re.sub(r"^If you haven.t already, check out our \[contributing guidelines\][^\n]*\n(_+\n)?", "", body)
    body = body.split("<details>")[0].strip()
    title = re.sub(r"^(\[[^\]]*\]\s*)+", "", row["title"]).strip()
    return f"{title}\n\n{body}"


def main() -> None:
    with zipfile.ZipFile(sys.argv[1]) as z:
        tasks = [t["description"].strip() for m in OS_MEMBERS for t in json.loads(z.read(m))]
        text = z.read(LANCER).decode("utf-8")
    csv.field_size_limit(10**9)
    lancer = [issue(r) for r in csv.DictReader(io.StringIO(text)) if r["variant"] == "ic_swe"]
    known = known_texts()
    out = []
    for name, pool, n, style in (("agentbench-os", tasks, N_OS, "terse"), ("swe-lancer", lancer, N_LANCER, "pasted")):
        pool = sorted(set(pool))
        pool = [p for p, ok in zip(pool, fresh(pool, known), strict=True) if ok]
        held = random.Random(20261129).sample(pool, n)
        for p in [p for p in pool if p not in held] if sys.argv[2:] == ["pool"] else held:
            out.append({"text": p, "accept": ["engineer"], "source": name, "style": style})
    for row in out:
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
