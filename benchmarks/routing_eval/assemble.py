"""Assemble the routing evaluation set from public prompt collections (see README.md here).

Run once, by hand: ``python benchmarks/routing_eval/assemble.py SRC_DIR`` where SRC_DIR holds the
source files named in SOURCES (copied from the public repositories cited in README.md). The
labels below were assigned from POLICY.md, prompt by prompt, before any tuning. The output,
``dev.jsonl`` (may be tuned on) and ``test.jsonl`` (reported, never tuned on), is committed; this
script documents how it was made.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CODES = {"c": "chat", "e": "engineer", "r": "research", "w": "writer", "u": "utility"}


def codes(text: str) -> dict[str, str]:
    """``"81:w 90:uw"`` → {"81": "w", "90": "uw"}."""
    return dict(item.split(":") for item in text.split())


MT_BENCH = codes("""
81:w 82:w 83:w 84:w 85:w 86:w 87:w 88:w 89:w 90:uw
91:cw 92:cw 93:cr 94:cr 95:uw 96:rc 97:rc 98:cw 99:wr 100:cw
101:rc 102:rc 103:rc 104:rc 105:rc 106:rc 107:rc 108:rc 109:rc 110:rc
111:re 112:re 113:re 114:re 115:re 116:re 117:re 118:re 119:re 120:re
121:e 122:e 123:e 124:e 125:e 126:e 127:e 128:e 129:e 130:e
131:ur 132:ur 133:u 134:ur 135:u 136:u 137:u 138:ur 139:ue 140:ue
141:r 142:r 143:r 144:r 145:r 146:r 147:r 148:r 149:r 150:r
151:r 152:r 153:r 154:wr 155:wr 156:r 157:r 158:r 159:r 160:r
""")

VICUNA = {**{str(i): "rc" for i in range(1, 11)}, "3": "re", "5": "r",
          **{str(i): "r" for i in range(11, 21)}, **{str(i): "cw" for i in range(21, 31)},
          **{str(i): "rc" for i in range(31, 41)}, **{str(i): "r" for i in range(41, 51)},
          **{str(i): "rc" for i in range(51, 61)}, **{str(i): "e" for i in range(61, 68)},
          **{str(i): "re" for i in range(68, 71)}, **{str(i): "w" for i in range(71, 81)}}

KOALA = codes("""
0:r 1:w 2:re 3:wu 4:r 5:ur 6:w 7:w 8:w 9:rc 10:w 11:rw 12:w 13:r 14:r 15:r 16:w 17:re 18:r 19:w
20:r 21:r 22:w 23:rw 24:wc 25:w 26:w 27:re 28:re 29:er 30:r 31:wu 32:rw 33:r 34:r 35:wr 36:r 37:cr
38:rc 39:r 40:cr 41:w 42:r 43:w 44:r 45:w 46:r 47:wr 48:r 49:w 50:ru 51:rc 52:rc 53:r 54:w 55:w
56:re 57:cr 58:r 59:r 60:wr 61:w 62:re 63:r 64:w 65:r 66:r 67:wu 68:w 69:r 70:w 71:re 72:w 73:r
74:r 75:r 76:r 77:rc 78:w 79:rw 80:r 81:w 82:r 83:rc 84:urw 85:r 86:r 87:rc 88:cwu 89:r 90:r 91:w
92:uw 93:wr 94:w 95:rw 96:cr 97:w 98:r 99:w 100:w 101:rw 102:r 103:w 104:er 105:w 106:r 107:er
108:wr 109:r 110:wr 111:wc 112:rw 113:rc 114:r 115:wr 116:w 117:w 118:w 119:re 120:r 121:w 122:re
123:r 124:er 125:rc 126:w 127:w 128:w 129:r 130:rw 131:w 132:rc 133:r 134:uw 135:r 136:urw 137:r
138:w 139:er 140:w 141:r 142:r 143:r 144:wr 145:w 146:r 147:rw 148:r 149:r 150:w 151:w 152:r 153:w
154:w 155:er 156:wr 157:r 158:r 159:er 160:r 161:rc 162:rw 163:cr 164:r 165:cwr 166:r 167:ur
168:r 169:rc 170:r 171:cr 172:r 173:re 174:re 175:rw 176:w 177:w 178:e 179:re
""")

SELF_INSTRUCT = codes("""
0:wu 1:urw 2:uw 3:u 4:w 5:w 6:wu 7:w 8:wc 9:w 10:er 11:er 12:e 13:e 14:e 15:ue 16:eur 17:re 18:wr
19:rue 20:r 21:wu 22:wu 23:we 24:w 25:w 26:rw 27:er 28:u 29:w 30:r 31:r 32:w 33:wr 34:rc 35:r 36:r
37:r 38:e 39:e 40:e 41:er 42:erw 43:rc 44:rcw 45:rw 46:r 47:r 48:rc 49:w 50:ru 51:r 52:wu 53:w 54:w
55:w 56:w 57:w 58:w 59:w 60:w 61:w 62:w 63:wu 64:uw 65:w 66:wr 67:w 68:w 69:ru 70:ruw 71:r 72:w
73:w 74:w 75:w 76:we 77:e 78:e 79:w 80:ur 81:rw 82:r 83:r 84:rw 85:r 86:w 87:r 88:r 89:e 90:e 91:eu
92:e 93:e 94:er 95:er 96:e 97:rwu 98:uwr 99:wr 100:uw 101:rw 102:ru 103:wr 104:r 105:r 106:r
107:rw 108:rc 109:rw 110:rw 111:re 112:re 113:re 114:ru 115:r 116:rc 117:cr 118:r 119:cwr 120:r
121:wu 122:uw 123:wu 124:ur 125:ru 126:r 127:ru 128:rc 129:rc 130:rc 131:rw 132:rw 133:rwc 134:re
135:rcw 136:r 137:r 138:r 139:ru 140:re 141:r 142:r 143:r 144:re 145:r 146:r 147:rc 148:r 149:ur
150:ru 151:wru 152:r 153:cw 154:cw 155:wc 156:w 157:u 158:ur 159:ur 160:uwr 161:uw 162:u 163:ur
164:ur 165:ur 166:ur 167:w 168:rwc 169:rw 170:r 171:r 172:r 173:ur 174:r 175:r 176:ru 177:rc
178:ue 179:u 180:r 181:uwr 182:we 183:ur 184:ur 185:cr 186:w 187:uw 188:u 189:wu 190:e 191:uw
192:r 193:wu 194:ur 195:e 196:rue 197:ur 198:rw 199:wr 200:rc 201:wr 202:uw 203:r 204:wc 205:e
206:wc 207:w 208:wr 209:rw 210:e 211:w 212:u 213:rwu 214:wr 215:r 216:we 217:ew 218:ew 219:ew
220:wu 221:rw 222:rw 223:w 224:u 225:ru 226:eu 227:e 228:wr 229:rc 230:w 231:eu 232:ur 233:rc
234:ur 235:ur 236:uw 237:rw 238:ur 239:r 240:uw 241:ruw 242:e 243:eru 244:ru 245:rcw 246:w 247:u
248:wr 249:wc 250:ru 251:rc
""")

# CLINC150 (everyday assistant utterances): intent → labels; actions a chat agent cannot perform
# (alarms, bank transfers, music) are left out.
CLINC = codes("""
greeting:c goodbye:c thank_you:c are_you_a_bot:c how_old_are_you:c what_are_your_hobbies:c
what_is_your_name:c where_are_you_from:c who_made_you:c do_you_have_pets:c what_can_i_ask_you:c
who_do_you_work_for:c meaning_of_life:cr fun_fact:rc tell_joke:cw flip_coin:c roll_dice:c
definition:rc calories:r nutrition_info:r cook_time:r food_last:r ingredient_substitution:r recipe:r
international_visa:r plug_type:r vaccines:r travel_suggestion:r meal_suggestion:rc
improve_credit_score:r jump_start:r oil_change_how:r carry_on:r measurement_conversion:ur
translate:ur spelling:ur calculator:ur timezone:ur
""")

IFEVAL = codes("""
1000:rw 1001:w 1005:w 1012:w 102:w 1021:wr 1040:w 1051:w 1069:w 1072:w 1075:w 1082:w 1087:w 1092:w
1094:rwu 1098:rc 1107:wc 1108:rc 1122:w 1127:w 1128:ur 1129:w 1130:w 1131:w 1132:w 1137:rw 1139:w
1147:wu 1148:rc 1153:w 1154:wr 1162:wc 1174:we 1180:rc 1187:wu 1203:r 1216:rw 1217:w 1219:rc 122:w
1220:w 1233:r
""")


def accept(code: str) -> list[str]:
    return [CODES[c] for c in code]


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def gather(src: Path) -> list[dict]:
    rows: list[dict] = []
    for item in load_jsonl(src / "mtbench.jsonl"):
        qid = str(item["question_id"])
        rows.append({"text": item["turns"][0], "accept": accept(MT_BENCH[qid]), "source": f"mt-bench:{qid}",
                     "style": f"benchmark:{item['category']}"})
    for item in load_jsonl(src / "vicuna.jsonl"):
        qid = str(item["question_id"])
        rows.append({"text": item["turns"][0], "accept": accept(VICUNA[qid]), "source": f"vicuna:{qid}",
                     "style": f"benchmark:{item['category']}"})
    for item in load_jsonl(src / "koala.jsonl"):
        qid = item["id"].split("_")[1]
        text = re.sub(r"^\d+ / \d+", "", item["prompt"]).replace("<br>", "\n")  # ShareGPT page artefacts
        rows.append({"text": text, "accept": accept(KOALA[qid]), "source": f"koala:{qid}", "style": "user"})
    for item in load_jsonl(src / "selfinstruct.jsonl"):
        qid = item["id"].rsplit("_", 1)[1]
        given = item["instances"][0]["input"].strip()
        text = item["instruction"] + (f"\n\n{given}" if given else "")
        rows.append({"text": text, "accept": accept(SELF_INSTRUCT[qid]), "source": f"self-instruct:{qid}",
                     "style": f"app:{item['motivation_app']}"})
    clinc = json.loads((src / "clinc.json").read_text())["test"]
    seen: dict[str, int] = {}
    for text, intent in clinc:
        if intent in CLINC and seen.get(intent, 0) < 2:
            seen[intent] = seen.get(intent, 0) + 1
            rows.append({"text": text, "accept": accept(CLINC[intent]), "source": f"clinc150:test:{intent}",
                         "style": "terse"})
    for item in load_jsonl(src / "ifeval.jsonl") if (src / "ifeval.jsonl").exists() else []:
        key = str(item["key"])
        if key in IFEVAL:
            rows.append({"text": item["prompt"], "accept": accept(IFEVAL[key]), "source": f"ifeval:{key}",
                         "style": "constraints"})
    for item in load_jsonl(src / "extra.jsonl"):  # Dolly, issue-thread stack traces, translations
        rows.append({**item, "accept": accept(item["accept"])})
    return rows


def typo(text: str, rng: random.Random) -> str:
    """Phone-keyboard noise: lower case, no final punctuation, two swapped or dropped letters."""
    chars = list(text.lower().rstrip("?.!"))
    for _ in range(2):
        i = rng.randrange(1, max(2, len(chars) - 2))
        if rng.random() < 0.5:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        else:
            del chars[i]
    return "".join(chars)


def main() -> None:
    src = Path(sys.argv[1])
    rows, seen = [], set()
    for row in gather(src):
        key = re.sub(r"\W+", " ", row["text"].lower()).strip()
        if key not in seen:  # MT-Bench and Vicuna share a few questions
            seen.add(key)
            rows.append(row)
    rng = random.Random(20260410)
    rng.shuffle(rows)
    # a third for tuning, two thirds held out, stratified by source collection
    dev, test = [], []
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(row["source"].split(":")[0], []).append(row)
    for group in by_source.values():
        cut = round(len(group) / 3)
        dev.extend(group[:cut])
        test.extend(group[cut:])
    short = [r for r in test if len(r["text"]) < 90 and r["source"].split(":")[0] in ("clinc150", "vicuna", "koala")]
    for row in rng.sample(short, 24):
        test.append({**row, "text": typo(row["text"], rng), "source": row["source"] + ":typos", "style": "typos"})
    for name, part in (("dev", dev), ("test", test)):
        with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as out:
            for row in part:
                out.write(json.dumps({"text": row["text"], "accept": row["accept"], "source": row["source"],
                                      "style": row["style"]}, ensure_ascii=False) + "\n")
        print(name, len(part))


if __name__ == "__main__":
    main()
