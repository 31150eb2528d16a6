"""Write fresh_cnalpaca.jsonl: held-out Chinese requests from the Chinese-LLaMA-Alpaca project's own test prompts
(round 36).

Source: ymcui/Chinese-LLaMA-Alpaca (Apache-2.0) at 090475f, ``examples/f16-p7b-p13b-33b/*.md``: the 200 prompts the
project wrote in Chinese to compare its models on ten kinds of task, 20 each — knowledge questions (QA), open
questions (OQA), numeric reasoning (REASONING), poetry, literature and philosophy (LITERATURE), music, sport and
entertainment (ENTERTAINMENT), letters and articles (GENERATION), translation between Chinese, English, German,
Japanese, French, Russian and Latin (TRANSLATION), multi-turn conversation (DIALOGUE: its first turn only), code and
programming questions (CODE) and ethics and refusals (ETHICS). Each file is a Markdown table, one prompt per row
(the "Prompt" column; CODE's first ten are bold headings above each model's code). No set here reads that project.
Candidates: every prompt, none within a word TF-IDF cosine of 0.5 of a line of any set here, a role or config
example, or an earlier candidate (mkfresh_common.py's rule); all kept ones are labelled (no sampling).

Labelled prompt by prompt by POLICY.md by round 36's helper "route36", who wrote no role or config example, from the
listing alone (``--list``: the text and its file, which names the project's kind), and committed before anything
routed them. Labelling rule: the request decides, not the topic — code, shell and programming questions engineer (a
concept question also research); maths and logic research, engineer; knowledge, explanations, recommendations
research (everyday advice, opinions, hypotheticals and puzzles also chat); compositions writer; lists of ideas,
plans and outlines writer, research; a chore on given text (translate, extract, classify, correct) utility with its
POLICY.md co-labels (translation: utility, writer; "what does X mean" about a foreign phrase: research, utility);
role-play as conversation in character chat, writer; greetings and feelings chat; ETHICS's harmful requests by what
they ask (a how-to or where-to research, a plan research, writer, a person in crisis chat, research), since routing
does not refuse — the agent does.
200 candidates, 3 dropped by the rule above, 197 kept, all labelled (none marked ``x``). Best fit: research 127,
writer 23, engineer 22, utility 18, chat 7; 91 accept more than one agent (accepted anywhere: research 137, chat 46,
writer 46, engineer 38, utility 22); always-research scores 137 of 197 (69.5%). Short (median 19 characters; the
translations up to 588). **Caveats:** one labeller; written by the project's authors to test their models, not
typed by users; Chinese requests only (the translation kind quotes English, Japanese, German, French, Russian and
Latin text); research-heavy, as the project's ten kinds make it.
Run: python mkfresh_cnalpaca.py MARKDOWN_DIR [--list] > fresh_cnalpaca.jsonl
"""
import re
import sys
from pathlib import Path

from mkfresh_common import kept_fresh, known_and_pools, write

KINDS = ("QA", "OQA", "REASONING", "LITERATURE", "ENTERTAINMENT", "GENERATION", "TRANSLATION", "DIALOGUE", "CODE",
         "ETHICS")
ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*)$")
CELL = re.compile(r"(?<!\\)\|")
HEADING = re.compile(r"^\*\*(\d+)、(.+?)\*\*\s*$")
LABELS = """0 r|1 rc|2 r|3 r|4 r|5 r|6 r|7 r|8 r|9 r|
10 r|11 r|12 r|13 r|14 r|15 r|16 r|17 r|18 rc|19 r|
20 rc|21 er|22 c|23 rc|24 rc|25 rc|26 rc|27 rc|28 r|29 rc|
30 r|31 r|32 rc|33 r|34 r|35 rc|36 r|37 rc|38 rc|39 re|
40 re|41 r|42 re|43 re|44 rc|45 rc|46 re|47 re|48 re|49 rc|
50 re|51 re|52 rc|53 r|54 re|55 r|56 re|57 re|58 r|59 r|
60 r|61 r|62 r|63 r|64 r|65 r|66 r|67 r|68 r|69 r|
70 r|71 r|72 r|73 r|74 r|75 r|76 r|77 r|78 rc|79 wc|
80 r|81 rc|82 r|83 r|84 rc|85 r|86 r|87 r|88 r|89 r|
90 rc|91 rc|92 rc|93 rc|94 rc|95 r|96 r|97 r|98 w|99 w|
100 w|101 w|102 w|103 w|104 w|105 wr|106 w|107 w|108 w|109 w|
110 w|111 w|112 w|113 w|114 w|115 wr|116 w|117 w|118 uw|119 uw|
120 uw|121 uw|122 uw|123 uw|124 uw|125 uw|126 rwu|127 uw|128 ru|129 uw|
130 uw|131 ru|132 uw|133 uw|134 uw|135 uw|136 uw|137 rc|138 rc|139 rc|
140 r|141 er|142 c|143 rc|144 cr|145 r|146 rc|147 uw|148 uw|149 cw|
150 rc|151 rc|152 rc|153 er|154 rc|155 cr|156 w|157 e|158 e|159 e|
160 e|161 e|162 e|163 e|164 e|165 e|166 e|167 e|168 er|169 e|
170 e|171 e|172 eu|173 e|174 e|175 er|176 re|177 r|178 r|179 r|
180 cr|181 rw|182 r|183 rc|184 r|185 r|186 r|187 re|188 w|189 rc|
190 cw|191 rw|192 re|193 r|194 re|195 rc|196 rc|"""


def clean(cell: str) -> str:
    return cell.replace("<br/>", "\n").replace("<br>", "\n").replace("\\|", "|").replace("\\>", ">").strip()


def prompts(text: str, kind: str) -> list[tuple[int, str]]:
    out = [(int(m[1]), m[2].strip()) for m in map(HEADING.match, text.splitlines()) if m]
    for line in text.splitlines():
        if (m := ROW.match(line)) is None:
            continue
        cells = CELL.split(m[2])
        if kind == "DIALOGUE":  # the first column names the topic; the conversation's first turn opens the next
            first = clean(cells[1]).split("\n", 1)[0]
            out.append((int(m[1]), first.removeprefix(">").strip()))
        else:
            out.append((int(m[1]), clean(cells[0])))
    return out


def candidates(folder: str) -> list[dict]:
    rows = []
    for kind in KINDS:
        for number, prompt in prompts((Path(folder) / f"{kind}.md").read_text(encoding="utf-8"), kind):
            if prompt:
                rows.append({"prompt": prompt, "id": f"{kind}:{number}"})
    return rows


def main() -> None:
    picked = kept_fresh(candidates(sys.argv[1]), known_and_pools("fresh_cnalpaca.jsonl"))
    write(picked, LABELS, "id", "chinese-llama-alpaca:{id}", "cnalpaca", "--list" in sys.argv)


if __name__ == "__main__":
    main()
