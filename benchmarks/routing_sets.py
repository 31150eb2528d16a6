"""Which labelled sets of routing_eval/ may be tuned on and which are held out (routing_eval/README.md says why).

One list for every routing benchmark, so a set added to routing_eval/ is read by all of them: bench_routing.py's
``--held-out`` and bench_routing_learn.py read :data:`HELD_OUT`; levers are chosen on :data:`TUNING` only.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "routing_eval"
#: may be looked at and tuned on (fabric_dev is not committed: mkfabric_dev.py rebuilds it; belle_dev since round 30;
#: langs_dev since round 38: short requests in Vietnamese, Finnish, Polish, Turkish, Czech and Indonesian; seabench_dev
#: since round 40: SeaBench requests in Vietnamese and Indonesian, none of fresh_seabench's)
TUNING = ("dev", "sharegpt_dev", "arena_dev", "arenaforeign_dev", "evals_dev", "longdev", "longdev2", "longdev3",
          "shell_dev", "persona_dev", "belle_dev", "langs_dev", "seabench_dev", "alpaca_dev")
#: reported, never tuned on: the evaluation sets, oldest first (round 3's test … round 18's fresh_arena2, the twenty;
#: round 21's fresh_long, long messages only; round 24's fresh_wild, instructions people posted or shared; round 30's
#: fresh_belle, Chinese instructions from the BELLE project's evaluation set; round 32's fresh_elyza, ELYZA-tasks-100's
#: Japanese tasks, and fresh_oasst, first messages people submitted to Open Assistant; round 36's fresh_cnalpaca, the
#: Chinese-LLaMA-Alpaca project's own Chinese test prompts; round 37's fresh_arenahard2, arena-hard-auto v2.0's
#: prompts in every language; round 38's fresh_trbench, a Turkish benchmark's 100 requests written in Turkish; round
#: 40's fresh_seabench, SeaBench's requests written in Indonesian, Vietnamese and Thai;
#: round 40's fresh_coach, the CoachLM150 test set's English instructions — chores on given text, compositions, advice)
HELD_OUT = ("test", "unseen", "evals", "chatterbot", "wizardlm", "sharegpt", "sharegpt2", "writingbench",
            "persistbench", "foreign", "longpaste", "fresh_code", "fresh_freshqa", "fresh_persona", "evalsforeign",
            "fresh_bfcl", "fresh_forge", "fresh_arena", "fresh_seed", "fresh_arena2", "fresh_long", "fresh_wild",
            "fresh_belle", "fresh_elyza", "fresh_oasst", "fresh_cnalpaca", "fresh_arenahard2",
            "fresh_trbench", "fresh_seabench", "fresh_coach")
#: held out too, but one collection (CLINC150's test split) read only for learning from its corrections
CLINC_HELD_OUT = "clinc_heldout"


def path(name: str) -> Path:
    return DATA / f"{name}.jsonl"
