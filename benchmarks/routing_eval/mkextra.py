# ruff: noqa: E501  (the prompts are data, kept verbatim)
"""Write extra.jsonl for assemble.py: IFEval and Dolly prompts, issue-thread stack traces, our translations."""
import json

rows: list[dict[str, object]] = []
def add(text: str, acc: str, source: str, style: str) -> None:
    rows.append({"text": text, "accept": acc, "source": source, "style": style})

# IFEval (google-research/google-research instruction_following_eval/data/input_data.jsonl), by key
IF = {
 "1001": ("I am planning a trip to Japan, and I would like thee to write an itinerary for my journey in a Shakespearean style. You are not allowed to use any commas in your response.", "w"),
 "1005": ("Write a resume for a fresh high school graduate who is seeking their first job. Make sure to include at least 12 placeholder represented by square brackets, such as [address], [name].", "w"),
 "1051": ("Write a letter to a friend in all lowercase letters ask them to go and vote.", "w"),
 "1075": ("Can you help me make an advertisement for a new product? It's a diaper that's designed to be more comfortable for babies and I want the entire output in JSON format.", "w"),
 "1094": ("Please provide the names of 5 famous moms in JSON format. Please, use any interesting or weird tone. Your entire output should just contain a JSON block, nothing else.", "rwu"),
 "1107": ("Write two jokes about rockets. Do not contain commas in your response. Separate the two jokes with 6 asterisk symbols: ******.", "wc"),
 "1108": ("Are hamburgers sandwiches? Please respond using only the Kannada language, no other language is allowed.", "rc"),
 "1122": ("make a tweet for playboy's twitter account without using capital letters. Include at least 4 hashtags, starting with '#'", "w"),
 "1128": ("Given the sentence \"It is unclear how much of this money is actually being spent on children\", is the sentiment positive or negative? The very last sentence of your response should be \"Is there anything else I can help with?\".", "ur"),
 "1137": ("Explain in French why it is important to eat healthy foods to heal the body, without using the word \"nourriture\". Make sure your entire response is wrapped in JSON format.", "rw"),
 "1147": ("Rewrite the following statement to make it sound more formal, like a President of the United States:\n\"Hi guys. The work was done to add in a fix for the issue that was observed in the field with the SSO. We are working with our collaborators closely. We will get it done. Thanks ya all.\"\nDo not include the following keywords: field, thanks, issue, collaborator.", "wu"),
 "1154": ("Write a rubric for how to evaluate the technical skills of a software engineer only using the Punjabi language, no other language is allowed.", "wr"),
 "1162": ("Write a riddle for kids about auspices but make sure you don't use any commas.", "wc"),
 "1187": ("Can you give me two different formal alternatives to \"What's up? I'm going to the beach today\" and do not use any commas in your response.", "wu"),
 "1203": ("What happened when the Tang dynasty of China was in power? Make sure to use the word war at least 8 times, and the word peace at least 10 times.", "r"),
 "1219": ("Which one is a better brand for sneakers: Prada or Nike? Your entire response should be in English, and in all capital letters. At the end of your response, please explicitly add a postscript starting with P.S. The word sneaker should appear 10 or more times in your response.", "rc"),
 "1233": ("How many feet off the ground was the tallest skyscraper in the world in 2000? Please include only the main points in your answer. Finish your response with the exact phrase of \"Is there anything else I can help with?\" with no other words after the word \"with\". Mention the word \"skyscraper\" for at least 8 times.", "r"),
 "1092": ("Write a short blog post about a trip to Japan using less than 300 words.", "w"),
 "1217": ("Write an ad copy for a new product, a digital photo frame that connects to your social media accounts and displays your photos. Respond with at most 150 words.", "w"),
}
for key, (text, acc) in IF.items():
    add(text, acc, f"ifeval:{key}", "constraints")

# Dolly-15k (databricks-dolly-15k.jsonl, first records)
add("Which is a species of fish? Tope or Rope", "rc", "dolly:1", "user")
add("Why can camels survive for long without water?", "r", "dolly:2", "user")
add("Alice's parents have three daughters: Amy, Jessy, and what\u2019s the name of the third daughter?", "rc", "dolly:3", "user")
add("Who gave the UN the land in NY to build their HQ", "r", "dolly:7", "user")
add("Why mobile is bad for human", "rc", "dolly:8", "user")
add("When did Virgin Australia start operating?\n\nVirgin Australia, the trading name of Virgin Australia Airlines Pty Ltd, is an Australian-based airline. It is the largest airline by fleet size to use the Virgin brand. It commenced services on 31 August 2000 as Virgin Blue, with two aircraft on a single route.[3] It suddenly found itself as a major airline in Australia's domestic market after the collapse of Ansett Australia in September 2001. The airline has since grown to directly serve 32 cities in Australia, from hubs in Brisbane, Melbourne and Sydney.[4]", "ru", "dolly:0", "pasted")
add("If I have more pieces at the time of stalemate, have I won?\n\nStalemate is a situation in chess where the player whose turn it is to move is not in check and has no legal move. Stalemate results in a draw. During the endgame, stalemate is a resource that can enable the player with the inferior position to draw the game rather than lose.[2] In more complex positions, stalemate is much rarer, usually taking the form of a swindle that succeeds only if the superior side is inattentive.[citation needed] Stalemate is also a common theme in endgame studies and other chess problems.", "ru", "dolly:5", "pasted")
add("Who was Kyle Van Zyl playing against when he scored 36 of hisa teams 61 points?\n\nVan Zyl joined the Eastern Province Kings Academy, where he played for the Eastern Province U19 side in the 2010 Under-19 Provincial Championship. He was a key player for the Eastern Province U21 side in the 2012 Under-21 Provincial Championship, scoring 71 points in eight appearances. Van Zyl was under the Top SARU Performers, scoring the most tries at 6 in the 2012 Provincial Under 21 in the Rugby Junior Provincials.[6]\n\nThis included a record and a remarkable personal haul in their opening match, when he scored 36 of his team's points in a 61\u20133 victory over Boland U21, consisting of four tries and eight conversions and was awarded Man of the Match.[7]", "ru", "dolly:11", "pasted")

# stack traces and error reports as posted in public issue threads
add("Starting it from the command prompt, the .py file won't open anymore for me, i get this:\n\nD:\\OFDL>python start_ofd.py\nTraceback (most recent call last):\n  File \"D:\\OFDL\\start_ofd.py\", line 2, in <module>\n    import tests.main_test as main_test\n  File \"D:\\OFDL\\tests\\main_test.py\", line 4, in <module>\n    import helpers.main_helper as main_helper\n  File \"D:\\OFDL\\helpers\\main_helper.py\", line 19, in <module>\n    import psutil\nModuleNotFoundError: No module named 'psutil'", "e", "issue:UltimaHoarder/UltimaScraper#494", "trace")
add("Traceback (most recent call last):\n  File \"collector.py\", line 11, in <module>\n    from plugins.banner import *\nModuleNotFoundError: No module named 'plugins.banner'", "e", "issue:thenurhabib/collector#4", "trace")
add("I am currently trying to run your 'call_modification_frequency.py' script on deepsignal data I have. This is the error message it produces:\n```\nTraceback (most recent call last):\n  File \"call_modification_frequency.py\", line 10, in <module>\n    from txt_formater import ModRecord\nModuleNotFoundError: No module named 'txt_formater'\n```\nI cannot find any module with this name online. \n\nThanks in advance!", "e", "issue:comprna/METEORE#2", "trace")
add("no offense , i have this error ,:\nTraceback (most recent call last):\n  File \"/home/kali/Desktop/zero/AutoZerologon/AutoZerologon.py\", line 1, in <module>\n    from utils.universal import *\nModuleNotFoundError: No module named 'utils.universal'", "e", "issue:StarfireLab/AutoZerologon#1", "trace")
add("framework-eda4609282c049ac.js:1 TypeError: Cannot read properties of undefined (reading 'code')\n    at w (8185.2267ed13f79fe630.js:1:3538)\n    at Eo (framework-eda4609282c049ac.js:1:63196)\n    at Pu (framework-eda4609282c049ac.js:1:74884)\n    at xi (framework-eda4609282c049ac.js:1:121319)\n    at bs (framework-eda4609282c049ac.js:1:109372)\n    at gs (framework-eda4609282c049ac.js:1:109300)\n    at vs (framework-eda4609282c049ac.js:1:109163)\n    at as (framework-eda4609282c049ac.js:1:105943)", "e", "issue:gethomepage/homepage#2418", "trace")
add("Traceback (most recent call last):\n  File \"HELLO WORLD.py\", line 5, in <module>\n    exec(f.read())\n  File \"<string>\", line 9, in <module>\nModuleNotFoundError: No module named 'os'\n[6712] Failed to execute script HELLO WORLD", "e", "issue:10se1ucgo/DisableWinTracking#389", "trace")
add("```\ndebug> repl\nPress Ctrl + C to leave debug repl\n> e = new Error('e')\n> e.stack\nTypeError: Cannot read property 'slice' of undefined\n```", "e", "issue:AndreasMadsen/trace#23", "trace")

# translations (ours) of public prompts, to test non-English input
T = [
 ("Wie kann ich mein Zeitmanagement verbessern?", "rc", "vicuna:1", "de"),
 ("Kannst du mir helfen, ein Kündigungsschreiben an meinen jetzigen Arbeitgeber zu verfassen, ohne dass wir im Streit auseinandergehen?", "w", "vicuna:72", "de"),
 ("Lies den folgenden Absatz und zähle, wie oft die Wörter „Amazon“, „Fluss“ und „du“ vorkommen: Der Amazonas ist ein großer Fluss. Wenn du am Fluss entlang reist, siehst du, warum der Amazon so berühmt ist.", "u", "mt-bench:136", "de"),
 ("Implémente une fonction Python qui trouve la plus longue sous-séquence commune de deux chaînes.", "e", "vicuna:62", "fr"),
 ("Quelles sont les principales différences entre les protéines d'origine végétale et animale ?", "r", "vicuna:6", "fr"),
 ("comment dit-on « merci beaucoup » en japonais ?", "ur", "clinc150:translate", "fr"),
 ("Hola, ¿qué tal estás?", "c", "clinc150:greeting", "es"),
 ("¿Puedes describir las dos etapas principales de la fotosíntesis, y dónde ocurren dentro del cloroplasto?", "r", "mt-bench:143", "es"),
 ("convierte 21 de diciembre 1:00–1:50pm hora del Pacífico a hora de Asia/Taipei", "ur", "koala:5", "es"),
 ("¿cuántos kilómetros son 26 millas?", "ur", "clinc150:measurement_conversion", "es"),
 ("Привет! Как дела?", "c", "clinc150:greeting", "ru"),
 ("Напиши функцию, которая находит медиану двух отсортированных массивов разного размера за O(n) времени и O(1) памяти.", "e", "mt-bench:126", "ru"),
 ("Исправь грамматические ошибки в этом тексте: Она не помнить, где её сумка, а я думаю что она в машина.", "uw", "mt-bench:90", "ru"),
 ("Escreva um post de blog envolvente sobre uma viagem recente ao Havaí, destacando experiências culturais e atrações imperdíveis.", "w", "mt-bench:81", "pt"),
 ("Identifique os países, suas capitais e os idiomas falados nas frases a seguir e responda em JSON: a) Em Copenhague, capital da Dinamarca, fala-se dinamarquês. b) Em Buenos Aires, capital da Argentina, fala-se espanhol.", "u", "mt-bench:135", "pt"),
 ("Scrivi una poesia su una vacanza in barca a vela in famiglia a Bora Bora nello stile di Robert Frost.", "w", "koala:12", "it"),
 ("Quali sono le norme di galateo negli affari quando si lavora in Giappone?", "r", "mt-bench:159", "it"),
 ("你好，你是谁？", "c", "fastchat:identity", "zh"),
 ("用Python实现一个二分查找算法，在有序数组中查找指定元素。", "e", "vicuna:65", "zh"),
 ("请把这句话翻译成英文：我明天要去北京开会。", "uw", "clinc150:translate", "zh"),
 ("ありがとう、とても助かりました！", "c", "clinc150:thank_you", "ja"),
 ("自然選択のプロセスと、それが種の進化と適応にどう寄与するかを説明してください。", "r", "vicuna:20", "ja"),
 ("Kun je deze tekst herschrijven zodat hij professioneler klinkt? Hoi, ik wil volgende week vrij nemen, is dat goed?", "w", "self-instruct:6", "nl"),
 ("Jakie są najskuteczniejsze sposoby radzenia sobie ze stresem?", "rc", "vicuna:2", "pl"),
]
for text, acc, src, lang in T:
    add(text, acc, f"{src}:translated-{lang}", f"non-english:{lang}")

# FastChat's identity questions (fastchat/data/hardcoded_questions.py)
for q in ["Who are you?", "Can you introduce yourself?", "Who created you?", "Are you ChatGPT?", "Tell me about yourself."]:
    add(q, "c", "fastchat:identity", "terse")

with open("extra.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(len(rows))
