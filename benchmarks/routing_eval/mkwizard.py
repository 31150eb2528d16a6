# ruff: noqa: E702  (the label table is data: several labels per line)
"""Write wizardlm.jsonl: a fifth held-out set, labelled by someone who wrote no role example.

Source: the WizardLM test set, nlpxucan/WizardLM ``WizardLM/data/WizardLM_testset.jsonl`` (218
instructions in 29 skills: math, code generation and debugging, writing, computer science, reasoning,
common sense, counterfactuals, multilingual, role-play, sciences, humanities, toxicity…). Every
instruction, labelled by POLICY.md by the lead (who wrote none of the role or config examples and
read no classifier output on them first), then measured once on the classifier in use. Its ``Skill``
becomes ``style``. Run: python mkwizard.py WizardLM_testset.jsonl > wizardlm.jsonl
"""
import json
import sys
from collections.abc import Iterable

R, E, W, U, C = "research", "engineer", "writer", "utility", "chat"
#: instruction idx → acceptable agents, best fit first
L: dict[int, list[str]] = {}


def put(ids: Iterable[int], accept: list[str]) -> None:
    for i in ids:
        L[i] = list(accept)


put(range(1, 20), [R, E])                      # math problems
put(range(20, 38), [E]); L[29] = [E, R]        # code generation; 29: how-to about a tool
L[38] = [R, W]; L[39] = [R, C]; L[40] = [E, R]
L[41] = [W, R]; L[42] = [W, R]; L[43] = [W]; L[44] = [W, R]; L[45] = [W]; L[46] = [W]; L[47] = [W]
L[48] = [W]; L[49] = [W, R]; L[50] = [W]; L[51] = [W, R]; L[52] = [W]; L[53] = [W, R]; L[54] = [W, R]
L[55] = [W, R]
put([56, 57, 58, 60, 62, 64, 65, 66, 69, 70], [E, R]); put([59, 61, 63], [E])
L[67] = [W, C]; L[68] = [R, C]
put([71, 75, 76, 77, 78, 80, 82, 83], [R, C]); L[72] = [R]
put([73, 74, 79], [R, E]); L[81] = [R, C, E]
put(range(84, 106), [E])                       # code with pasted inputs, code debugging
L[87] = [R, E]                                 # a pasted math solution
put(range(106, 115), [R, C])                   # common sense, riddles
put(range(115, 123), [R, C])                   # counterfactuals
L[123] = [W]; L[124] = [U, W]; L[125] = [R, U]; L[126] = [U, W, R]; L[127] = [R, U]; L[128] = [R, U]
L[129] = [R]
L[130] = [R, C]; L[131] = [C, W]; L[132] = [C, W]; L[133] = [C, R]; L[134] = [C, W]; L[135] = [W, C]
put(range(136, 147), [R]); L[147] = [W]
put(range(148, 153), [R]); L[153] = [C, R]
put(range(154, 163), [R]); L[163] = [R, C]
put(range(164, 178), [R]); L[178] = [R, C]
put(range(179, 194), [R])
L[194] = [C]; L[195] = [C, R]; L[196] = [R]; L[197] = [R]
put(range(198, 203), [R])
L[203] = [R, E]; L[204] = [R]; L[205] = [R, E]; L[206] = [R]; L[207] = [R, E]
put(range(208, 212), [R])
L[212] = [W, R]; L[213] = [W, R]; L[214] = [E, R]; L[215] = [W, R]
put([216, 217, 218], [R])
assert sorted(L) == list(range(1, 219))


def main(source: str) -> None:
    with open(source, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    for row in rows:
        print(json.dumps({"text": row["Instruction"], "accept": L[row["idx"]],
                          "source": f"wizardlm:{row['idx']}", "style": row["Skill"]}, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
