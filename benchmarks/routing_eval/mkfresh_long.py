# ruff: noqa: E501 -- the prompts are data, kept as written
"""Write fresh_long.jsonl: held-out LONG messages (over 800 characters), written from public sources (round 21).

Why: round 20 built a classifier for long messages only (``bench_routing_lofo.py longonly``) and could not judge it
held out — round 19 had read the twenty held-out sets with the same lever. This set was written, labelled and
committed before anything routed it, by round 21's helper "routes21", who wrote no role or config example and read
none of them before labelling.

How: each prompt is a long request of a kind the agents receive — pasted code with a stack trace or a config, data
to convert, an email or receipt to extract from, a letter to translate, prose to fix or shorten, a writing brief
with its facts, a question with the asker's situation, a long message to talk. Each was written by routes21
after reading public pages of that kind found with the team's search tool (``SOURCES`` below, cited per group in
the ``source`` field): the pages were read, not copied (their terms forbid verbatim reuse), so a prompt keeps a
source's register, shape and level of detail with other names, numbers and code. Every one is over 800
characters (``SHORT`` in ``modelyard.agents.evaluation``: what the lever decides).

Labelled prompt by prompt by POLICY.md when written, best fit first (codes: c chat, e engineer, r research,
w writer, u utility), with POLICY.md's co-labels: a translation or grammar fix utility, writer; a summary of pasted
text utility, writer, research; classifying given items utility, research; answering from a pasted passage
research, utility; lesson plans, itineraries, agendas, discussion questions writer, research; everyday advice
research, chat; maths research, engineer; programming concepts engineer, research; user stories engineer, writer;
role-play conversation chat, writer. A vent that says it wants no fix is chat only.

Overlap: mkfresh_common.py's rule (word TF-IDF cosine under 0.5 with every line of every set here, every role and
config example, and every earlier prompt) is checked when the file is written; a prompt that fails it stops the
script (none did). Standard library only: nothing routes these prompts here.
Run: python mkfresh_long.py > fresh_long.jsonl
"""
import json
import sys

from mkfresh_common import AGENTS, fresh, known_and_pools

SHORT = 800  # modelyard.agents.evaluation.SHORT: a message longer than this is "long"

#: the pages each group of prompts was written from (read with the search tool, 2026-11-30)
SOURCES = {
    "gh-traceback": "GitHub issues with tracebacks: ansleliu/LightNetPlusPlus#7, speedinghzl/pytorch-segmentation-toolbox#54, "
                    "facebookresearch/detectron2#1563, archersama/IntTower#7, facebookresearch/SlowFast#702",
    "se-pandas": "quant.stackexchange.com/questions/17485; codewithsundeep.com/discussion/solution/39603571; "
                 "stack5066.rssing.com/chan-78481067/article1293.html",
    "se-code": "Stack Overflow-style questions (pasted code, errors, configs): the se-pandas and gh-traceback pages' shape",
    "react-pages": "tutorialslogic.com/react-js/errors/cannot-read-map-undefined; prodopsy.com (Uncaught TypeError … nested "
                   "object in a React component)",
    "docker-pages": "dash0.com/faq/how-to-connect-to-postgresql-running-in-a-docker-container; "
                    "lours.me/posts/compose-tip-003-depends-on-healthcheck; sageideas.dev/blog/fixing-docker-compose-"
                    "connection-errors-in-ci-cd; docker-library/docs#2467",
    "csv-pages": "convertchief.com/tools/csv-to-json; docs.capillarytech.com/docs/convert-csv-to-json; "
                 "dev-convert.com/blog/csv-to-json-guide",
    "email-extract": "extraction and data chores on pasted business text (as on the csv-pages and summary-pages)",
    "summary-pages": "share.getmerlin.in/chat/H6KRZNDruQZ (a user's summarise-into-pointers request); "
                     "topscoreessay.com/2022/06/15/summarize-and-question-answer/",
    "translation-letters": "keepersthe.blogspot.com (1958 and 1946 family letters, German and English); "
                           "braunhart.com/stories/archives/10-2012; bernsbabbles.blogspot.com/2011/08/letters.html",
    "grammar-pages": "pasted prose by non-native writers to correct, as asked on the summary-pages' kind of page",
    "classify": "reviews, tickets, expenses and forum posts to tag (POLICY.md's classifying given items)",
    "speech-pages": "mangled.me/2009/09/07/my-best-man-speech.html; hachland.com/2016/11/13/the-speech/; "
                    "davidatkinscouk.blogspot.com/2008/08/; forum.frankblack.net/topic.asp?TOPIC_ID=8227",
    "cover-letter": "application and profile writing briefs with the writer's facts (as on the speech-pages)",
    "product-brief": "copywriting briefs with product facts and a brand voice",
    "blog-brief": "briefs for posts, talks, stories and plans with their facts",
    "rewrite-tone": "drafts pasted to rewrite for tone or length",
    "finance-pages": "thinkglink.com/2006/06/05/invest-or-pay-off-mortgage/; marcuskeong.com/tag/mortgage/",
    "legal-pages": "americanbar.org (security deposits); forum.freeadvice.com/goto/post?id=3015505; "
                   "jobsandfreedom.org/return-my-deposit",
    "history-pages": "toxigon.com/medieval-armies-minimal-might-a-surprising-contrast; "
                     "bookrags.com/history/medieval-castle/09.html",
    "health-pages": "questions with the asker's own numbers and situation, as on the finance-pages",
    "science-q": "explain-the-science questions with the asker's context and sub-questions",
    "math-q": "word problems with the asker's own numbers",
    "career-q": "advice questions with the asker's situation",
    "travel-q": "trip questions with the travellers' constraints",
    "book-q": "a known book to summarise for a discussion",
    "lonely-pages": "justnews.io/i-moved-to-a-new-city-and-nobody-will-talk-to-me/; "
                    "monstersandmenfilm.com/p/germany/comments/1hll147; weheartit.com/articles/296699250-lonely; "
                    "mytherapistsaysimfunny.com/2016/09/06/that-time-when-i-felt-a-little-out-of-place/",
    "roleplay": "role-play set-ups and practice conversations (the lonely-pages' register, in character)",
    "chat-tech": "a vent or a beginner's question about computers",
}

_p1 = [
("e", "gh-traceback", """Hi, I'm trying to train the segmentation model from your repo on my own dataset (about 4,000 street images, 1024x512) and it crashes during the validation pass every time, never during training. Batch size is already 1 for validation. This is the full output:

Traceback (most recent call last):
  File "/home/mko/work/seg/tools/train_net.py", line 311, in <module>
    main(args)
  File "/home/mko/work/seg/tools/train_net.py", line 274, in main
    val_loss = evaluate(model, val_loader, criterion)
  File "/home/mko/work/seg/tools/train_net.py", line 198, in evaluate
    outputs = model(images)
  File "/home/mko/miniconda3/envs/seg/lib/python3.9/site-packages/torch/nn/modules/module.py", line 1130, in _call_impl
    return forward_call(*input, **kwargs)
  File "/home/mko/work/seg/models/decoder.py", line 88, in forward
    x = torch.cat([x, skip], dim=1)
RuntimeError: CUDA out of memory. Tried to allocate 512.00 MiB (GPU 0; 7.79 GiB total capacity; 6.12 GiB already allocated; 301.44 MiB free; 6.40 GiB reserved in total by PyTorch)

Environment: Ubuntu 20.04, RTX 3070 8GB, torch 1.12.1+cu113, python 3.9. Training itself runs fine for the whole epoch with batch size 4. What am I doing wrong in evaluate()? It's basically a loop over the loader calling model(images) and accumulating loss.item()."""),
("e", "gh-traceback", """After upgrading from 0.9 to 1.1 the export command fails on every project that has a custom field plugin. Steps to reproduce:
1. pip install mytool==1.1.0
2. create a project with `mytool init demo --template basic`
3. add the plugin from the docs (plugins/fields.py with a class ColourField(Field))
4. run `mytool export demo --format parquet`

Expected: a parquet file in demo/out/. Actual:

Traceback (most recent call last):
  File "/usr/local/bin/mytool", line 8, in <module>
    sys.exit(cli())
  File "/usr/local/lib/python3.11/site-packages/click/core.py", line 1157, in __call__
    return self.main(*args, **kwargs)
  File "/usr/local/lib/python3.11/site-packages/mytool/export.py", line 142, in export
    schema = build_schema(project.fields)
  File "/usr/local/lib/python3.11/site-packages/mytool/schema.py", line 57, in build_schema
    return pa.schema([(f.name, TYPE_MAP[type(f)]) for f in fields])
KeyError: <class 'plugins.fields.ColourField'>

It looks like TYPE_MAP is keyed on the exact class, so subclasses of the built-in fields are not found any more. In 0.9 this used isinstance checks. Is this intended? Could you suggest a patch, maybe walking the MRO?"""),
("e", "se-pandas", """I have a dataframe of daily prices where the column names are built from a ticker plus a suffix, something like ABC.XCSE_LAST_ADJ and ABC.XCSE_FX, and a second dataframe with one row per ticker. I loop over the tickers and create a new column that is LAST_ADJ times FX:

for ticker, row in static_df.iterrows():
    prices[ticker + "_LAST_ADJ_EUR"] = np.nan
    prices[ticker + "_LAST_ADJ_EUR"] = prices[ticker + "_FX"] * prices[ticker + "_LAST_ADJ"]

This works for most tickers but for some of them there is no history at all, so the _LAST_ADJ column simply isn't in the frame, and I get

KeyError: 'DEF.XCSE_LAST_ADJ'

and the whole loop stops. What I want is: if either column is missing, the new column should still exist and be all NaN, and the loop should continue. I also suspect the loop is slow with 900 tickers and 5,000 dates. Is there a vectorised way to do this, e.g. by reshaping to a MultiIndex on the columns and multiplying the two levels? Example of the expected output for a ticker with data: 0.1340 * 490.763 = 65.762242 on 2015-09-11."""),
("e", "se-pandas", """My script reads a CSV of bond quotes and then tries to keep only the rows where the 'Swap' column is numeric, but it fails with a KeyError even though I can see a column that looks like Swap when I print the frame. Here's what print(df.head()) shows:

   Maturity Dates  Market Quotes    Source  Unnamed: 5  Unnamed: 6       Tenor  Discount bond price   Days
0      2013-06-19         99.786   Futures         NaN         NaN  2013-04-03                  NaN  182.0
1      2013-09-18         99.752   Futures         NaN         NaN  2013-06-19                  NaN  259.0

and the line that fails is

calendar_s = calendar[pd.to_numeric(calendar['Swap'], errors='coerce').notnull()]

with

  File ".../pandas/core/indexes/base.py", line 3812, in get_loc
    raise KeyError(key) from err
KeyError: 'Swap'

The spreadsheet came from Excel and has two header rows merged across columns F and G, which is probably why there are Unnamed columns. How do I read it so the real header ends up as the column names, and how can I check the exact column names (maybe there is a trailing space)? I'm on pandas 2.1."""),
("e", "react-pages", """I'm building a small dashboard in React 18 with Vite. The page crashes on first load with a white screen and this in the console:

Uncaught TypeError: Cannot read properties of undefined (reading 'map')
    at ProductList (ProductList.jsx:21:23)
    at renderWithHooks (react-dom.development.js:16305:18)

Here's the component:

import { useEffect, useState } from 'react';

export default function ProductList({ category }) {
  const [products, setProducts] = useState();
  const [error, setError] = useState(null);

  useEffect(() => {
    fetch(`/api/products?category=${category}`)
      .then(r => r.json())
      .then(data => setProducts(data.items))
      .catch(setError);
  }, []);

  return (
    <ul>
      {products.map(p => <li key={p.id}>{p.name} — {p.price}</li>)}
    </ul>
  );
}

If I refresh after saving the file it sometimes works. Also when I switch category the list doesn't change. Can you explain both problems and show me a corrected version with a loading state and an error message?"""),
("e", "react-pages", """We had a production incident yesterday: the profile page rendered blank for every user for about 20 minutes after a deploy. The error in Sentry was "TypeError: Cannot read properties of null (reading 'street')" thrown from AddressCard. The code is roughly:

function AddressCard({ userId }) {
  const [user, setUser] = useState(null);
  useEffect(() => {
    api.get(`/users/${userId}`).then(res => setUser(res.data));
  }, [userId]);
  return (
    <div className="card">
      <h3>{user.name}</h3>
      <p>{user.address.street}, {user.address.city}</p>
    </div>
  );
}

Before the deploy the page was server-rendered with the user already in props, so this never showed up. I need (1) a fix for this component that handles loading, errors and users without an address, (2) a suggestion for how to stop this class of bug elsewhere in the codebase — we use TypeScript in some folders but not this one — and (3) whether an error boundary around the route would have kept the rest of the page alive."""),
("e", "docker-pages", """My docker compose setup works on my laptop but the API container keeps exiting on the staging server. docker compose logs api shows:

api-1  | Error: connect ECONNREFUSED 127.0.0.1:5432
api-1  |     at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)
api-1  | Node.js v20.11.0
api-1 exited with code 1

compose file:

services:
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: example
      POSTGRES_DB: shop
    volumes:
      - dbdata:/var/lib/postgresql/data
  api:
    build: ./api
    environment:
      DATABASE_URL: postgres://postgres:example@localhost:5432/shop
    depends_on:
      - db
    ports:
      - "8080:8080"
volumes:
  dbdata:

On my laptop I run the API with npm run dev outside docker and only Postgres in a container, which is probably why localhost works there. What should DATABASE_URL be, and how do I make the API wait until Postgres actually accepts connections instead of just waiting for the container to start?"""),
("e", "docker-pages", """Our integration tests pass locally but fail in Jenkins with "psycopg2.OperationalError: could not connect to server: Connection refused. Is the server running on host "localhost" (127.0.0.1) and accepting TCP/IP connections on port 5432?"

The Jenkinsfile stage is:

stage('integration') {
  agent { docker { image 'python:3.11' } }
  steps {
    sh 'docker compose -f docker-compose.test.yml up -d db redis'
    sh 'pip install -r requirements-dev.txt'
    sh 'pytest tests/integration -x'
  }
}

and docker-compose.test.yml publishes 5432:5432 for db. The tests read DATABASE_URL=postgresql://test:test@localhost:5432/test from a .env file. I suspect the pytest process runs inside the python:3.11 container while compose starts the database as a sibling container on the host's docker daemon, so localhost inside the agent container is not the host. How do I confirm that, and what are the options — join the compose network, use the host gateway address, or run pytest as a compose service? Also we sometimes see the first test fail even locally, which I think is the readiness race."""),
("e", "gh-traceback", """Running the inference demo on a laptop GPU (GTX 1650 Ti, 4 GB) fails immediately:

$ python demo/run_net.py --cfg configs/demo.yaml
[INFO: checkpoint.py: 213]: Loading network weights from checkpoints/model_final.pyth.
Traceback (most recent call last):
  File "demo/run_net.py", line 119, in <module>
    main()
  File "demo/run_net.py", line 115, in main
    demo(cfg)
  File "demo/run_net.py", line 83, in demo
    model = build_model(cfg)
  File "/home/li/slowfast/models/build.py", line 61, in build_model
    model = model.cuda(device=cur_device)
RuntimeError: CUDA error: out of memory
CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.

The config has NUM_GPUS: 1, TEST.BATCH_SIZE: 8, DATA.NUM_FRAMES: 32 and the input video is 1920x1080. nvidia-smi shows 300 MiB used before I start, so nothing else is holding memory. Which settings should I lower first, and is it possible to load the model in half precision for inference only? I don't need training, just the demo output video with the action labels."""),
("e", "se-code", """I wrote this function to merge overlapping time ranges for a booking system, but it returns wrong results when one range is entirely inside another, and I can't see why. Input is a list of (start, end) tuples with datetimes, not sorted.

def merge_ranges(ranges):
    ranges.sort()
    merged = []
    current_start, current_end = ranges[0]
    for start, end in ranges[1:]:
        if start <= current_end:
            current_end = end
        else:
            merged.append((current_start, current_end))
            current_start, current_end = start, end
    merged.append((current_start, current_end))
    return merged

Example:
ranges = [(9:00, 12:00), (9:30, 10:00), (13:00, 14:00)]
expected [(9:00, 12:00), (13:00, 14:00)], I get [(9:00, 10:00), (13:00, 14:00)].

Also it crashes with an empty list (IndexError) and it modifies the caller's list because of sort(). Could you fix it, explain the bug, and add a few pytest tests including touching ranges like (10:00, 11:00) and (11:00, 12:00), which the business wants treated as one range?"""),
("e", "se-code", """Can you review this Go HTTP handler? It's the endpoint mobile clients call to upload a profile picture. Under load we see memory climbing until the pod is OOM-killed, and sometimes two uploads for the same user end up with the wrong picture.

func uploadAvatar(w http.ResponseWriter, r *http.Request) {
    userID := r.URL.Query().Get("user")
    body, err := ioutil.ReadAll(r.Body)
    if err != nil {
        http.Error(w, err.Error(), 500)
        return
    }
    img, _, err := image.Decode(bytes.NewReader(body))
    if err != nil {
        http.Error(w, "bad image", 400)
        return
    }
    thumb := resize.Resize(256, 0, img, resize.Lanczos3)
    f, _ := os.Create("/data/avatars/tmp.jpg")
    jpeg.Encode(f, thumb, nil)
    f.Close()
    os.Rename("/data/avatars/tmp.jpg", "/data/avatars/"+userID+".jpg")
    w.WriteHeader(204)
}

I'd like comments on: the unbounded ReadAll, the shared tmp file name, the unchecked errors, the user id coming from the query string without authentication or validation (path traversal?), and whether decoding huge images could be a decompression-bomb problem. Please suggest a rewritten version."""),
("e", "se-code", """Our nightly Postgres query that builds the sales report went from 40 seconds to over 15 minutes after the orders table passed 30 million rows. Here's the query and the EXPLAIN ANALYZE output (trimmed):

SELECT c.region, date_trunc('week', o.created_at) AS week, sum(oi.quantity * oi.unit_price) AS revenue
FROM orders o
JOIN order_items oi ON oi.order_id = o.id
JOIN customers c ON c.id = o.customer_id
WHERE o.created_at >= now() - interval '90 days'
  AND o.status IN ('paid', 'shipped')
GROUP BY 1, 2
ORDER BY 1, 2;

 GroupAggregate  (cost=9841232.11..10231455.90 rows=1200 width=48) (actual time=901233.4..912004.1 rows=1183 loops=1)
   ->  Sort  (cost=9841232.11..9902110.34 rows=24351292 width=28) (actual time=901201.7..908933.0 rows=23880120 loops=1)
         Sort Method: external merge  Disk: 1043224kB
         ->  Hash Join  (actual time=20313.2..612045.9 rows=23880120 loops=1)
               ->  Seq Scan on orders o  (actual rows=2210433 loops=1)
                     Filter: ((status = ANY ('{paid,shipped}')) AND (created_at >= (now() - '90 days'::interval)))
                     Rows Removed by Filter: 29811204

Indexes: orders(id) pk, orders(customer_id), order_items(order_id). work_mem is 4MB. What indexes would you add, would a partial index on status help, and should we raise work_mem for this session only? Would a materialized view refreshed nightly be a better design?"""),
("e", "gh-traceback", """The GitHub Actions build for our Rust crate started failing on the macOS runner only, Linux and Windows are green. Nothing in Cargo.lock changed. Log excerpt:

   Compiling openssl-sys v0.9.93
error: failed to run custom build command for `openssl-sys v0.9.93`

Caused by:
  process didn't exit successfully: `/Users/runner/work/app/target/debug/build/openssl-sys-8b1e0c/build-script-main` (exit status: 101)
  --- stderr
  thread 'main' panicked at '
  Could not find directory of OpenSSL installation, and this `-sys` crate cannot
  proceed without this knowledge. If OpenSSL is installed and this crate had
  trouble finding it,  you can set the `OPENSSL_DIR` environment variable for the
  compilation process.
  $HOST = aarch64-apple-darwin
  $TARGET = aarch64-apple-darwin
  openssl-sys = 0.9.93

The workflow uses runs-on: macos-latest, which I think recently moved to Apple Silicon images. We only need TLS for reqwest. Options I can think of: brew install openssl@3 and set OPENSSL_DIR, enable the vendored feature, or switch reqwest to rustls-tls. Which is most robust for CI and for users building from source, and what would the workflow and Cargo.toml changes look like?"""),
("e", "gh-traceback", """I'm getting a strange error when running my Django migrations on a fresh database (works fine on the existing dev db):

$ python manage.py migrate
Operations to perform:
  Apply all migrations: admin, auth, billing, contenttypes, sessions, shop
Running migrations:
  Applying shop.0014_product_sku_unique...Traceback (most recent call last):
  File "/app/.venv/lib/python3.12/site-packages/django/db/backends/utils.py", line 105, in _execute
    return self.cursor.execute(sql, params)
psycopg.errors.UniqueViolation: could not create unique index "shop_product_sku_key"
DETAIL:  Key (sku)=() is duplicated.

Migration 0013 added the sku field as CharField(max_length=32, default='') and 0014 makes it unique=True. On the dev database we had filled the SKUs by hand in between. I need a migration path that works for both fresh installs and the production db (which has ~12,000 products, most with empty sku). I was thinking of a RunPython data migration that generates SKUs from the id, placed between 0013 and 0014, but I'm not sure how to insert it now that 0014 is already applied on dev. What's the cleanest approach?"""),
("e", "se-code", """Here's a bash script we use to rotate and compress application logs on a few old servers that don't have logrotate configured. It's run from cron every night at 02:00. Last week it deleted the current log of a running process and the app kept writing to a deleted file until the disk filled up.

#!/bin/bash
LOGDIR=/var/log/myapp
DAYS=14
cd $LOGDIR
for f in *.log; do
  mv $f $f.$(date +%F)
  gzip $f.$(date +%F)
done
find $LOGDIR -name "*.gz" -mtime +$DAYS -exec rm {} \\;
kill -HUP $(cat /var/run/myapp.pid)

Problems I know about: the app only reopens its file on HUP, and if the pid file is stale the kill fails silently; if cd fails the script runs in the wrong directory. Could you rewrite it defensively (set -euo pipefail, quoting, checking the pid, copytruncate vs. move-and-signal) and also show the equivalent logrotate config so we can migrate properly?"""),
("e", "se-code", """I'm learning C and wrote a function to read a whole file into a string, but valgrind reports invalid reads and sometimes the output has garbage at the end. Can someone explain what's wrong?

char *read_file(const char *path) {
    FILE *fp = fopen(path, "r");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    rewind(fp);
    char *buf = malloc(size);
    fread(buf, 1, size, fp);
    return buf;
}

int main(int argc, char **argv) {
    char *text = read_file(argv[1]);
    printf("%s\\n", text);
    printf("length: %zu\\n", strlen(text));
}

valgrind says:
==4121== Invalid read of size 1
==4121==    at 0x483EF46: strlen (vg_replace_strmem.c:469)
==4121==    by 0x1092A3: main (read.c:19)
==4121==  Address 0x4a4a0a4 is 0 bytes after a block of size 100 alloc'd

I think it's about the terminating null byte, but I also never close the file or check fopen. What would a correct and idiomatic version look like, and how do I handle files opened in text mode on Windows where ftell may not match the bytes read?"""),
("e", "se-code", """We have a Kubernetes deployment for a Spring Boot service that keeps getting restarted with reason OOMKilled even though the JVM heap never goes above ~600 MB according to our metrics. Deployment resources:

resources:
  requests:
    memory: "768Mi"
    cpu: "250m"
  limits:
    memory: "1Gi"
    cpu: "1"

JAVA_OPTS is "-Xms512m -Xmx900m -XX:+UseG1GC". The base image is eclipse-temurin:17-jre. kubectl describe pod shows Last State: Terminated, Reason: OOMKilled, Exit Code: 137, and it usually happens during the nightly batch that parses large XML files with a lot of threads (we use a fixed pool of 32). I suspect non-heap memory: metaspace, thread stacks, direct buffers, and the Xmx being too close to the container limit. How should we size this properly — MaxRAMPercentage instead of Xmx? — and how can we measure native memory (NMT?) to confirm where the rest goes?"""),
("e", "se-code", """I need help with a regular expression in JavaScript. We're validating user-entered product codes in a form. The rules from the business are:
- starts with two or three uppercase letters (the supplier prefix)
- then a dash
- then a 4 to 6 digit number, no leading zero
- optionally a slash and a single revision letter A–F
- the whole thing may be surrounded by spaces which we should ignore
Valid examples: "AB-1234", "XYZ-100200/C", "  QR-98765  ". Invalid: "ab-1234", "AB-0123", "ABCD-1234", "AB-123", "AB-1234/G", "AB1234".

My current attempt is /^[A-Z]{2,3}-\\d{4,6}(\\/[A-F])?$/ but it accepts AB-0123 and rejects the one with spaces. I'd also like the supplier prefix and the number captured in named groups so I can look them up, and a short explanation of each part of the pattern so my colleagues can maintain it. Bonus: how would you write unit tests for it with Jest covering all the examples above?"""),
("e", "se-code", """Our Excel workbook for tracking contractor hours has a sheet 'Hours' with columns: A Date, B Contractor, C Project, D Hours, E Rate (pulled from another sheet 'Rates' by contractor name with VLOOKUP), F Cost = D*E. The finance team now wants a summary sheet where they can pick a month and a project from two dropdown cells (B1 and B2) and see per contractor the total hours and cost, and a grand total, without using pivot tables because they paste the result into an email.

Current formula in Hours!E2 is =VLOOKUP(B2,Rates!A:B,2,FALSE) and it shows #N/A for a few rows where the names have trailing spaces. We're on Microsoft 365 so dynamic arrays are available. Could you give me the formulas: a cleaned lookup (XLOOKUP with TRIM?), a UNIQUE/FILTER list of contractors for the selected month and project, SUMIFS for hours and cost per contractor, and the total row — and explain how the month filter should compare dates (first day to end of month) so it doesn't break for December?"""),
("e", "se-code", """I'm trying to automate a weekly report with Python and the Google Sheets API, but the script hangs for minutes and then fails with HttpError 429 "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per user'". The sheet has about 3,000 rows and I'm updating a status column. Code:

for i, row in enumerate(rows, start=2):
    status = compute_status(row)
    sheet.values().update(
        spreadsheetId=SHEET_ID,
        range=f"Report!F{i}",
        valueInputOption="RAW",
        body={"values": [[status]]},
    ).execute()

I understand I'm making one request per row. How do I batch this — values().batchUpdate with a list of ranges, or write the whole column F2:F3001 in one update? And how should I add retries with exponential backoff for the 429s that may still happen when other scripts write to the same sheet? Please show a complete, tidy version of the function, including authentication with a service account JSON file."""),
("e", "se-code", """We're migrating a legacy PHP 7.2 app to PHP 8.2 and the test suite now produces hundreds of deprecation warnings and a few fatal errors. The fatals look like this:

PHP Fatal error:  Uncaught TypeError: count(): Argument #1 ($value) must be of type Countable|array, null given in /var/www/app/lib/Cart.php:88
Stack trace:
#0 /var/www/app/lib/Cart.php(88): count(NULL)
#1 /var/www/app/controllers/CheckoutController.php(41): Cart->itemCount()
#2 /var/www/app/public/index.php(23): CheckoutController->show()

and the deprecations are mostly "Creation of dynamic property Order::$legacyTotal is deprecated" and "Passing null to parameter #1 ($string) of type string is deprecated" from strlen and trim calls. Is there a systematic way to find and fix these (Rector rules? PHPStan level?), and what's the right fix for the dynamic properties when the code sets dozens of them from database rows — declare them, use #[AllowDynamicProperties] temporarily, or switch to an array-backed DTO? We have about 140k lines of code and limited time."""),
("e", "se-code", """I've got a Raspberry Pi 4 reading a DHT22 temperature sensor and posting readings to an MQTT broker every 10 seconds. After running for a day or two the script stops sending, but the process is still alive (systemd says active). Here's the main loop:

import time, adafruit_dht, board
import paho.mqtt.client as mqtt

sensor = adafruit_dht.DHT22(board.D4)
client = mqtt.Client()
client.connect("192.168.1.20", 1883, 60)

while True:
    try:
        t = sensor.temperature
        h = sensor.humidity
        client.publish("home/livingroom/climate", f'{{"t": {t}, "h": {h}}}')
    except RuntimeError as e:
        print("read error", e)
    time.sleep(10)

I never call loop_start() or loop_forever(). Could that be why — the connection silently drops and nothing reconnects? What's the right structure: loop_start with on_disconnect and reconnect_delay_set, QoS 1, a last-will message so Home Assistant shows the sensor as offline? Also the DHT22 sometimes returns None instead of raising, which ends up as "t": None in the JSON. Please give me a robust version and the systemd unit with Restart=on-failure and a watchdog."""),
("e", "se-code", """Our Terraform apply for the staging environment keeps trying to destroy and recreate the RDS instance even though nobody changed it. The plan says:

  # aws_db_instance.main must be replaced
-/+ resource "aws_db_instance" "main" {
      ~ engine_version          = "14.7" -> "14.6" # forces replacement
      ~ availability_zone       = "eu-west-1b" -> (known after apply)
      ~ snapshot_identifier     = "staging-seed-2023-01" -> null # forces replacement
        ...

The instance was created from a snapshot a year ago, and AWS auto-upgraded the minor version. Our module has engine_version = "14.6" and snapshot_identifier = var.seed_snapshot, and we removed the seed_snapshot variable default last month. How do I make Terraform accept the current state without recreating a database with real test data — lifecycle ignore_changes on snapshot_identifier, setting engine_version to "14" with auto_minor_version_upgrade, or terraform state manipulation? Which of these are safe, and what would you put in the module so production doesn't hit the same thing?"""),
("e", "se-code", """Please help me convert this small jQuery plugin to plain modern JavaScript (ES modules, no jQuery). It's used on our marketing site to make FAQ items collapsible, and we want to drop the jQuery dependency to cut page weight.

(function ($) {
  $.fn.faqToggle = function (options) {
    var settings = $.extend({ speed: 200, openClass: 'is-open', single: false }, options);
    return this.each(function () {
      var $root = $(this);
      $root.find('.faq-question').on('click', function (e) {
        e.preventDefault();
        var $item = $(this).closest('.faq-item');
        if (settings.single) {
          $root.find('.faq-item').not($item).removeClass(settings.openClass).find('.faq-answer').slideUp(settings.speed);
        }
        $item.toggleClass(settings.openClass);
        $item.find('.faq-answer').slideToggle(settings.speed);
      });
    });
  };
})(jQuery);

$('.faq').faqToggle({ single: true });

Requirements for the new version: keyboard accessible (buttons with aria-expanded and aria-controls), the slide animation can be done with CSS transitions on height or with the details/summary element if that's simpler, and it must still support the 'single' option. Please include the HTML structure it expects and the CSS."""),
("e", "se-code", """Our Android app written in Kotlin crashes on some Samsung devices running Android 14 when the user returns to the app after a while. The crash from Play Console:

java.lang.RuntimeException: Unable to start activity ComponentInfo{com.example.shop/com.example.shop.ui.CheckoutActivity}: java.lang.IllegalStateException: lateinit property viewModel has not been initialized
    at android.app.ActivityThread.performLaunchActivity(ActivityThread.java:3782)
    ...
Caused by: kotlin.UninitializedPropertyAccessException: lateinit property viewModel has not been initialized
    at com.example.shop.ui.CheckoutActivity.onRestoreInstanceState(CheckoutActivity.kt:142)

In CheckoutActivity we have lateinit var viewModel: CheckoutViewModel which is assigned in onCreate after we check an intent extra; if the extra is missing we call finish() and return early. onRestoreInstanceState then reads viewModel.cart. I think after process death the activity is recreated with a savedInstanceState and without the original extra. What's the right pattern here — by viewModels() with SavedStateHandle, not overriding onRestoreInstanceState at all? And how do I reproduce process death reliably to test it ("Don't keep activities" isn't the same, I read)?"""),
("e", "se-code", """I'm trying to set up a GitHub Actions workflow for a monorepo with a Python backend in /api and a React frontend in /web. I want: on pull requests, run only the jobs for the folders that changed; on push to main, build both Docker images and push them to GHCR tagged with the short SHA and 'latest'; cache pip and npm dependencies; and run the backend tests against a Postgres service container. My current attempt runs everything every time and the Docker step fails with "denied: installation not allowed to Create organization package".

name: ci
on: [push, pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: cd api && pip install -r requirements.txt && pytest
      - run: cd web && npm ci && npm test
      - run: docker build -t ghcr.io/acme/api:latest api && docker push ghcr.io/acme/api:latest

Can you write the full workflow (paths filters or dorny/paths-filter, permissions: packages: write, docker/login-action, docker/build-push-action with cache) and explain the permission error?"""),
("e", "se-code", """We use SQLAlchemy 2.0 with FastAPI and a Postgres database. Under load tests with 200 concurrent users, requests start failing after a minute with:

sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00 (Background on this error at: https://sqlalche.me/e/20/3o7r)

Our dependency looks like this:

engine = create_engine(DATABASE_URL)
SessionLocal = sessionmaker(bind=engine)

def get_db():
    db = SessionLocal()
    return db

@app.get("/orders/{order_id}")
def read_order(order_id: int, db: Session = Depends(get_db)):
    order = db.get(Order, order_id)
    if order is None:
        raise HTTPException(404)
    return order

I now see that the session is never closed. Besides turning get_db into a generator with try/finally, should we switch to the async engine with asyncpg, and how should pool_size and max_overflow relate to the number of uvicorn workers and Postgres max_connections (100)? We run 4 workers per pod and 3 pods."""),
("e", "se-code", """Could you explain what this piece of legacy Perl does, line by line? It's in a cron job that nobody understands any more and we want to rewrite it in Python before the server is decommissioned.

#!/usr/bin/perl -w
use strict;
my %seen;
open(my $in, '<', '/data/export/users.tsv') or die "no input: $!";
open(my $out, '>', '/data/export/users_clean.tsv') or die;
while (my $line = <$in>) {
    chomp $line;
    next if $line =~ /^\\s*#/;
    my @f = split /\\t/, $line, -1;
    next unless @f >= 4;
    $f[2] = lc $f[2];
    $f[2] =~ s/^\\s+|\\s+$//g;
    next if $seen{$f[2]}++;
    $f[3] =~ s/(\\d{4})(\\d{2})(\\d{2})/$1-$2-$3/;
    print $out join("\\t", @f), "\\n";
}
close $in; close $out;
printf STDERR "%d unique\\n", scalar keys %seen;

In particular: what does the -1 in split do, what happens with lines that have fewer than four fields, and is the "unique" count printed at the end actually the number of lines written? Then please give me an equivalent Python 3 script with the same behaviour, including edge cases."""),
("e", "se-code", """I'm getting a CORS error only in production. Frontend is at https://app.example.org (Next.js on Vercel), API at https://api.example.org (Express behind nginx). Browser console:

Access to fetch at 'https://api.example.org/v1/me' from origin 'https://app.example.org' has been blocked by CORS policy: Response to preflight request doesn't pass access control check: The value of the 'Access-Control-Allow-Origin' header in the response must not be the wildcard '*' when the request's credentials mode is 'include'.

Express setup: app.use(cors()); and our fetch uses credentials: 'include' because we rely on an httpOnly session cookie. In nginx we also have add_header Access-Control-Allow-Origin *; from an old config. Locally everything runs on localhost with different ports and works. What's the correct configuration on both layers (should nginx add headers at all?), what SameSite/Secure attributes does the cookie need for cross-subdomain use, and how do I make the OPTIONS preflight return 204 quickly?"""),
("e", "se-code", """Our team's git history got messy and I need help undoing it safely. Situation: on the shared branch release/2.4 a colleague ran git pull with rebase=false, which created a merge commit, then did git reset --hard HEAD~3 to "clean up" and force-pushed. Now three commits that two other people had already pulled are gone from the remote branch, and one of those people has since pushed new work on top of the old history, which the server rejected, so they merged again. The log now looks like:

*   9f1c2ab (origin/release/2.4) Merge branch 'release/2.4' of github.com:acme/shop into release/2.4
|\\
| * 51e0d77 Fix VAT rounding in invoices
* | c3d8e21 Add export button
|/
* 0a7b9e4 Bump version to 2.4.1

The lost commits are still in my local reflog (I never pulled after the force push). How do I restore them without rewriting history again, since we've now protected the branch against force pushes? Cherry-pick them onto the current tip, or merge my old local ref? And what settings should we use team-wide to avoid this (pull.rebase, push.default, branch protection)?"""),
("e", "se-code", """Here's a CSV parsing function from our data pipeline that's become the bottleneck. It processes 2 GB files of sensor readings (timestamp, device_id, metric, value) and computes per device per hour the min, max and mean of each metric. It currently takes about 40 minutes and uses 14 GB of RAM.

def summarise(path):
    rows = list(csv.DictReader(open(path)))
    out = {}
    for r in rows:
        ts = datetime.strptime(r['timestamp'], '%Y-%m-%dT%H:%M:%S.%fZ')
        key = (r['device_id'], ts.replace(minute=0, second=0, microsecond=0), r['metric'])
        out.setdefault(key, []).append(float(r['value']))
    return {k: (min(v), max(v), sum(v)/len(v)) for k, v in out.items()}

Options I'm considering: streaming with running aggregates instead of lists, pandas read_csv with chunksize and groupby, polars lazy scan, or DuckDB directly on the CSV. Which would you pick for a nightly job on a 16 GB VM, and can you write the version you recommend? The timestamps are always UTC with a trailing Z and millisecond precision; some rows have an empty value which should be skipped."""),
]

_p2 = [
("u", "csv-pages", """Convert this CSV export from our shop into a JSON array of objects, one per order. Use the header names as keys but in snake_case, make quantity and unit_price numbers, keep order_date as an ISO date string, and group the line items under each order so each order appears once with an "items" array. Empty cells should become null.

Order ID,Order Date,Customer Name,Customer Email,SKU,Product,Quantity,Unit Price
1001,2024-03-02,Maria Lopez,maria.lopez@example.com,TS-BLK-M,T-shirt black M,2,19.90
1001,2024-03-02,Maria Lopez,maria.lopez@example.com,CAP-RED,Cap red,1,12.50
1002,2024-03-02,Tom Becker,,MUG-WHT,Mug white,4,8.00
1003,2024-03-03,Aiko Tanaka,aiko.t@example.jp,TS-WHT-S,T-shirt white S,1,19.90
1003,2024-03-03,Aiko Tanaka,aiko.t@example.jp,TS-WHT-L,T-shirt white L,1,19.90
1003,2024-03-03,Aiko Tanaka,aiko.t@example.jp,STK-PACK,Sticker pack,3,
1004,2024-03-04,Sven Olsen,sven@example.no,CAP-BLU,Cap blue,1,12.50
1005,2024-03-04,"Chen, Wei",wei.chen@example.com,MUG-BLK,Mug black,2,8.00

Just give me the JSON, no explanation."""),
("u", "csv-pages", """I have this billing data and I need it as JSON grouped by bill ID, sorted alphabetically by bill ID, where each bill has a list of identifiers (type and value) and a list of item IDs without duplicates:

bill ID,identifier name,identifier value,itemID
BILL002,email,j.kowalski@example.pl,ITEM-A
BILL001,mobile,040-1234567,ITEM-X
BILL002,mobile,050-9876543,ITEM-B
BILL001,email,r.haddad@example.com,ITEM-Y
BILL003,mobile,044-5551234,ITEM-P
BILL001,mobile,044-1112233,ITEM-Z
BILL003,email,l.moreau@example.fr,ITEM-Q
BILL002,email,j.kowalski@example.pl,ITEM-C
BILL004,mobile,061-2223344,ITEM-A
BILL004,mobile,061-2223344,ITEM-A

Format example for one bill:
{"bill_id": "BILL001", "identifiers": [{"type": "mobile", "value": "040-1234567"}, ...], "items": ["ITEM-X", ...]}

Note BILL002's email appears twice and BILL004 has a duplicated row; identifiers and items should each appear once. Output only the JSON array, pretty-printed with two spaces."""),
("u", "email-extract", """Extract the following fields from the email below and return them as a JSON object: sender_name, company, requested_service, number_of_guests (integer), event_date (YYYY-MM-DD), start_time and end_time (24h), budget_eur (number), dietary_requirements (list of strings), contact_phone. Use null for anything not stated.

---
Subject: Enquiry – summer party for our team

Hello,

my name is Katrin Vogel and I'm organising the summer get-together for Brightline Logistics GmbH. We are looking for a caterer for an outdoor barbecue at our Hamburg office courtyard on Friday, 12 July 2024. We expect around 85 people, maybe up to 90 if the Rotterdam colleagues can make it. The party would start at half past four in the afternoon and should wrap up by ten in the evening.

We'd need a grill station, salads and dessert, plus soft drinks (we'll take care of beer and wine ourselves). Please note that we have at least 12 vegetarians, 4 vegans, two colleagues with a nut allergy and one who eats gluten-free. Our budget is roughly 4,200 euros including staff and equipment, excluding VAT.

Could you send me an offer by the end of next week? You can reach me at +49 40 555 0192 or just reply to this email.

Best regards,
Katrin Vogel
Office Management
---"""),
("u", "email-extract", """From the job posting below, pull out: job title, company, location, whether remote is possible, employment type, salary range (min, max, currency, period), required years of experience, required skills (list), nice-to-have skills (list), application deadline and how to apply. Give me a markdown table with two columns, Field and Value.

We're hiring! Senior Data Analyst (m/f/d) – Greenway Energy AG, Munich

Greenway Energy is one of Bavaria's fastest-growing providers of community solar. Our analytics team of six turns meter data from 40,000 installations into forecasts, pricing and reports for our partners.

What you'll do: own our weekly production forecasts, build dashboards in Power BI, work with engineering on data pipelines in Azure, present findings to management.

What you bring: at least 4 years of experience in a data analyst or BI role; excellent SQL; Python (pandas); Power BI or Tableau; fluent English, German is a plus. Experience with time series forecasting, dbt or the energy sector would be great but isn't required.

What we offer: permanent full-time contract, €68,000–€82,000 gross per year depending on experience, hybrid model with up to 3 days a week from home (within Germany), 30 days of holiday, job bike.

Apply by 15 September 2024 via our careers portal at careers.greenway-energy.example/jobs/4411 with your CV; a cover letter is optional."""),
("ue", "csv-pages", """Please turn this YAML config into the equivalent TOML, keeping comments where you can and preserving the order of keys. Our new tool only reads TOML.

# service settings
service:
  name: inventory-sync
  port: 8088
  debug: false
  allowed_hosts:
    - inventory.internal
    - localhost

database:
  url: postgresql://sync@db.internal:5432/inventory
  pool:
    min: 2
    max: 10
  timeouts:
    connect_seconds: 5
    query_seconds: 30

# each source is polled on its own schedule
sources:
  - name: warehouse-a
    kind: sftp
    host: sftp.warehouse-a.example
    schedule: "*/15 * * * *"
    paths: ["/outgoing/stock.csv"]
  - name: webshop
    kind: http
    url: https://shop.example/api/stock
    schedule: "0 * * * *"
    headers:
      Accept: application/json

logging:
  level: info
  format: json"""),
("u", "summary-pages", """Summarise this into 5 bullet points of at most two lines each, keeping the author's tone, and add a separate section at the end called "Dates" listing any dates mentioned:

Community garden update – spring

Dear neighbours, after a long and very wet winter the garden is finally waking up. Thanks to everyone who came to the clean-up day on 9 March: we cleared the paths, repaired two of the raised beds that had rotted through, and the compost bins were emptied and turned. We are still short of one wheelbarrow, so if anyone has an old one they no longer use, please let Farida know.

The committee has decided to change how plots are assigned. Until now, plots went to whoever asked first, which meant the same households kept the best spots by the fence for years. From this season we will hold a lottery for the twelve sunny plots, while existing gardeners keep priority for the shaded plots near the shed if they want them. The lottery will take place at the general meeting on 6 April at 6 pm in the community room.

Water is another issue. Last summer the rain barrels ran dry in July and we relied on the tap at the school, which the school can no longer offer. We have applied to the city's small grants programme for a second 1,000-litre tank; we should hear back by the end of April. Until then, please water early in the morning or in the evening and use mulch.

Finally, the bee hotel built by the after-school club will be put up next to the herb spiral. Please don't spray anything in the garden – we agreed last year to keep it pesticide-free.

Warmly, the garden committee"""),
("uw", "translation-letters", """Could you translate this letter from my great-grandmother into English? It's from a box of family papers. Please keep it as close to the original as possible, including the way she addresses everyone, and put any words you're unsure about in square brackets.

Bad Ems, den 3. Juni 1954

Meine liebe Hanna, lieber Friedrich und ihr lieben Kinder!

Vielen herzlichen Dank für Euer Paket, das am Pfingstsamstag ankam. Der Kaffee und die Schokolade haben uns sehr gefreut, und die Strümpfe passen mir wie angegossen. Wir haben am Sonntag alle zusammen gesessen, Onkel Paul war auch mit seiner Frau hier, und ich habe einen Streuselkuchen und einen Rhabarberkuchen gebacken. Es wurde viel von Euch erzählt.

Bei uns ist alles beim Alten. Vater hat im Frühjahr wieder den Garten umgegraben, obwohl der Doktor gesagt hat, er soll sich schonen. Die Bohnen und Erbsen stehen schon schön, und die Kirschen werden dieses Jahr gut. Wenn Ihr nur einmal hier sein könntet, wenn alles blüht!

Liebe Hanna, Du schreibst, dass die kleine Grete jetzt in die Schule geht. Wie die Zeit vergeht. Schickt uns doch einmal ein Bild von ihr.

Es grüßt und küsst Euch alle
Eure Mutter und Oma"""),
("uw", "grammar-pages", """Please correct the grammar, spelling and punctuation in the text below without changing the meaning or making it sound more formal. It's for the "About us" page of my friend's small bakery and English isn't her first language. Show the corrected version only.

Our bakery was founded in 2011 by me and my husband Jonas, after we moved from Kraków to Leeds. In the beginning we was selling only at the saturday market from a small table, with three kind of bread and some poppy seed cake what my grandmother teach me to make. People was very curious, many of them never tried a real sourdough rye before. After two years we have found a little shop on Otley Road and since then we bake every night from 3 o'clock so everything is fresh when we open at seven.

We use only flour from a mill in Yorkshire, no additives and no premixes. Our starter is older then our daughter! Beside bread we make pączki on Fat Thursday, and at Christmas people is queuing outside for our gingerbread and makowiec. We also have gluten free loafs on fridays, but please be aware we can not guarantee no traces, because everything is made in same kitchen.

If you have any question or want to order a cake for special occasion, just come in or send us a message, we are happy to help."""),
("ur", "classify", """Classify each of these customer reviews as positive, negative or mixed, and tag the main topic(s) from this list: delivery, product quality, price, customer service, packaging, sizing. Return a table with columns #, sentiment, topics.

1. "Arrived two days late and the box was crushed, but the lamp itself is gorgeous and works perfectly."
2. "Customer service took a week to answer my email and then just sent a template reply. Never again."
3. "Great value for the price, I bought three more for my office."
4. "The jacket runs really small. I normally wear a M and the L is tight across the shoulders. Returned it."
5. "Fine. Does what it says."
6. "Beautiful colour, soft fabric, washed well. Delivery was quick too."
7. "Charged twice for one order and it took three calls to get a refund. Product is okay."
8. "Plastic packaging everywhere, every single item individually wrapped. Shame, because the quality is excellent."
9. "Cheaper elsewhere, and the handle broke after a month."
10. "Honestly the best headphones I've owned at any price. Comfortable for long flights."
11. "Ordered a 38 and got a 40, exchange was painless though, new pair came in 3 days."
12. "Not worth the hype. Average quality, overpriced."
"""),
("u", "email-extract", """Here are notes I typed during a phone call with a supplier. Please turn them into a clean list of action items in the format "- [owner] task (due date)" and, separately, a list of the numbers agreed (prices, quantities, dates). Don't add anything that isn't in the notes.

call w/ Radek from PolyPack 14:10, re Q3 packaging order
- they can't do the 30x20x15 boxes in kraft before mid-Aug, white ok from 22 July
- price white 0.41/pc at 10k, 0.38 at 20k; kraft 0.44 at 10k (was 0.42 last yr, paper costs)
- min order 5k per size
- we need 12k of 30x20x15 + 6k of 40x30x20, deliver to Leipzig warehouse
- Radek sends updated quote by Thu; I need to confirm qty with Jana by Wed
- samples of new recycled tape, he posts them this week, I test and feedback by 26th
- payment terms stay 30 days, but they want 20% upfront for kraft
- pallet labels: they need our new SSCC format, Marco to send spec to radek@polypack by Fri
- next call 3 weeks, same time
- ask finance (Petra) if 20% upfront ok"""),
("u", "csv-pages", """Convert these temperatures and times for my travel itinerary: all temperatures from Fahrenheit to Celsius (one decimal), all distances from miles to kilometres (whole numbers), and all times from US Eastern Time to Central European Time, taking into account that the trip is in late October when the US is still on daylight saving time but Europe has already switched back. Keep the rest of the text exactly as it is.

Day 1 (Oct 28): Flight departs Boston 6:45 PM ET, 3,282 miles to Lisbon. Expected high in Lisbon 68°F, low 57°F.
Day 2 (Oct 29): Call with office at 9:00 AM ET. Day trip to Sintra, 17 miles each way. High 66°F.
Day 3 (Oct 30): Train to Porto, 194 miles. Team check-in call 11:30 AM ET. High 63°F, low 52°F.
Day 4 (Oct 31): Drive to Douro valley, 75 miles. Webinar 1:00 PM ET. High 64°F.
Day 5 (Nov 1): Return flight from Porto 12:10 PM local, 3,331 miles. Low in Boston 41°F on arrival."""),
("ur", "classify", """I run a small newsletter and exported the subscriber sign-up answers to "How did you hear about us?". Please normalise each answer to one of these categories: Search, Social media, Friend/colleague, Podcast, Event, Other, and count how many fall into each. Output first the list of original answers with their category, then the counts.

google
A friend told me
saw it on linkedin
Heard you on the Data Chats podcast
instagram
colleague recommended
the conference in Berlin last year
Googled "weekly data newsletter"
twitter/X
my boss forwarded an issue
Bing
reddit thread r/dataengineering
Podcast!
don't remember
Mastodon
your talk at PyData Amsterdam
duckduckgo
my sister
LinkedIn post by Anna
a newsletter I read linked to you
YouTube
meetup
found you through a Slack community for analysts
my professor mentioned it in class
Hacker News
a podcast about careers in data, can't remember which one
I think a coworker? not sure
"""),
("u", "email-extract", """Please extract every date and deadline from this contract excerpt and list them chronologically in a table (date, what happens, clause number). Where a date is relative, compute it assuming the agreement is signed on 1 February 2025.

4.1 The Contractor shall deliver the first draft of the Software Requirements Specification within thirty (30) days of the Effective Date.
4.2 The Client shall provide written comments on the draft within ten (10) business days of receipt.
4.3 The final Specification shall be delivered no later than 15 April 2025.
5.1 Development shall commence on 1 May 2025 and the beta release shall be made available to the Client by 31 August 2025.
5.2 User acceptance testing shall run for a period of six (6) weeks following the beta release.
6.1 The Client shall pay 20% of the Fee upon signature, 30% upon delivery of the final Specification, 30% upon beta release and the remaining 20% upon written acceptance.
9.2 Either party may terminate this Agreement with sixty (60) days' written notice; notice given before 30 June 2025 shall not take effect before 1 September 2025.
11.1 The warranty period is twelve (12) months from the date of written acceptance."""),
("uwr", "summary-pages", """Give me a short summary (max 120 words) of this text for our internal wiki:

Heat pumps move heat rather than generate it. In heating mode, an air-source heat pump extracts thermal energy from outdoor air, even at sub-zero temperatures, using a refrigerant that evaporates at very low temperatures. A compressor raises the pressure and therefore the temperature of the refrigerant vapour, which then condenses in an indoor heat exchanger and releases its heat to the home's water or air circuit. The ratio between the heat delivered and the electricity consumed is the coefficient of performance (COP). A COP of 3 means three kilowatt-hours of heat for every kilowatt-hour of electricity. The COP falls as the temperature difference between the source and the heating circuit grows, which is why heat pumps perform best with underfloor heating or oversized radiators running at 35–45 °C instead of 70 °C. Seasonal performance (SCOP) averages this over a typical year and is the more useful figure when comparing models. In older, poorly insulated houses, a heat pump can still work, but radiator upgrades or insulation often pay for themselves by raising the SCOP. Noise from the outdoor unit, placement rules and the refrigerant used (R290 propane is becoming common because of its low global warming potential) are further points to check before installation."""),
("u", "csv-pages", """I copied this table from a PDF and the columns got messed up. Can you put it back into a proper markdown table with columns Country, Capital, Population (millions), Area (km²), and sort it by population descending? Numbers should use a comma as thousands separator.

Country Capital Population Area
Portugal Lisbon 10.4 92212 Netherlands Amsterdam 17.9 41850
Belgium Brussels 11.8 30689
Austria Vienna 9.1 83879 Czech Republic Prague 10.9
78871 Denmark Copenhagen 5.9 42933 Ireland Dublin 5.2 70273
Switzerland Bern 8.8 41285 Greece Athens 10.4 131957
Hungary Budapest 9.6 93028 Finland Helsinki 5.6 338455
Sweden Stockholm 10.5 450295 Norway Oslo 5.5 385207

Note that Portugal and Greece have the same population figure, so order those two alphabetically. Also add a last row with the totals for population and area, and a column "Density (per km²)" with population divided by area, rounded to a whole number."""),
("uw", "translation-letters", """Traduci in italiano questa email che devo mandare al proprietario dell'appartamento che abbiamo affittato per le vacanze. Mantieni un tono cortese ma chiaro, non aggiungere niente.

Dear Mr Ferraro,

Thank you again for the lovely stay at Casa Limoni last week. The apartment was clean and the view from the terrace was even better than in the photos.

I am writing because we have not yet received the security deposit of 300 euros back. According to the booking confirmation, it should be returned within seven days of check-out, and we left on the 14th. When we checked out, your cleaner, Signora Rosa, looked around the apartment with us and said everything was fine. The only thing we noticed was that one of the kitchen chairs was already wobbly when we arrived; we mentioned it in our message on the first day.

Could you please let me know when we can expect the transfer? Our bank details are the same as the ones we used for the payment (IBAN ending 4471). If there is any problem, I would be grateful if you could tell me what it is.

We would be happy to come back next summer.

Kind regards,
Helen Marsh"""),
("u", "email-extract", """Please pull all the people mentioned in these meeting minutes into a JSON list with name, role/organisation (if given) and what they committed to do (list, empty if nothing). Only use what's written.

Minutes – Riverside Library Friends, committee meeting, 4 Feb
Present: Joan Whitaker (chair), Dev Patel (treasurer), Lucy Ng (secretary), Marcus Obi, Hélène Dubois (library manager, guest).
Apologies: Tom Reilly.

1. Book sale: Marcus reported £1,214 raised at the January sale. Marcus will book the hall for the May sale. Lucy to design the poster.
2. Accounts: Dev presented the annual accounts; balance £6,880. Dev will file with the Charity Commission before 31 March.
3. Library update: Hélène said the council will cut opening hours on Wednesdays from April. She will share the consultation link with the committee. Joan will draft a letter to the local councillor, Cllr Sarah Boyd.
4. Volunteers: Tom (in absence) had offered to run the children's reading club; Lucy to confirm with him.
5. AOB: Joan thanked Marcus for his work on the sale.
Next meeting: 3 March."""),
("u", "csv-pages", """Reformat this list of references into APA 7th edition style, alphabetically sorted. Only fix the format, don't change titles or look anything up.

- Kahneman Daniel, Thinking, fast and slow. New York: Farrar, Straus and Giroux, 2011
- "Attention is all you need", Vaswani A., Shazeer N., Parmar N., Uszkoreit J., Jones L., Gomez A. N., Kaiser L., Polosukhin I., Advances in Neural Information Processing Systems 30, 2017, pages 5998-6008
- Ostrom, E. (1990) Governing the commons: the evolution of institutions for collective action, Cambridge University Press
- M. Mazzucato. 2013. The Entrepreneurial State. Anthem Press, London.
- Tversky, A. & Kahneman, D., "Judgment under uncertainty: Heuristics and biases", Science, vol 185 no 4157 pp 1124–1131 (1974), doi 10.1126/science.185.4157.1124
- Raworth Kate (2017). Doughnut Economics: seven ways to think like a 21st-century economist. Random House Business.
- LeCun, Bengio, Hinton. Deep learning. Nature 521, 436–444 (2015)."""),
("ur", "classify", """Here are 15 support tickets from this morning. Assign each a priority (P1 urgent, P2 high, P3 normal, P4 low) using these rules: P1 if a customer cannot use the product at all or there is a security/data issue; P2 if a core feature is broken for them but there is a workaround; P3 for questions and minor bugs; P4 for feature requests and feedback. Return ticket number and priority only, one per line.

#4101 Can't log in since this morning, "invalid token" on every device.
#4102 Would be great if the export had a dark mode PDF option.
#4103 The CSV export is missing the last column, I can copy it manually though.
#4104 How do I add a second admin to our account?
#4105 I think someone else can see our invoices – a colleague saw another company's name in the billing page.
#4106 Typo on the pricing page: "anual".
#4107 Sync between mobile and web stopped, we've been entering data twice.
#4108 The whole app shows a blank page after the update.
#4109 Can you add Polish language?
#4110 Password reset email never arrives.
#4111 Charts load slowly on Mondays.
#4112 Loved the new onboarding, well done!
#4113 Webhook deliveries failing with 500 since 09:12, our integration is down.
#4114 Where can I find the API rate limits?
#4115 The date picker shows US format although my locale is German."""),
("uw", "grammar-pages", """Can you fix the spelling and punctuation of my cover note? Keep my wording, only correct mistakes, and mark each change in bold so I can see what you changed.

Dear hiring team,

I'm writting to apply for the possition of junior graphic designer, which I saw advertised on you're website last week. I recently graduated from Falmouth university with a first class degree in Graphic Design, and during my final year I completed a six month placement at a branding studio in Bristol where I worked on packaging, social media assets and a complete rebrand for a local brewery.

I am confident using Adobe Illustrator, Photoshop, InDesign and Figma and I have a good understanding of print production, from choosing paper stocks to preparing files for litho and digital printing. Alot of my university projects focused on sustainable packaging which I know is important to your company.

I would love the oppurtunity to discuss how I could contribute to your team. My portfolio is available at the link below and I've attached my CV.

Thank you for you're time and consideration,
Priya Raman"""),
("u", "email-extract", """Below is the text of a receipt that I scanned. Please extract the store name, address, date, time, each line item (name, quantity, unit price, line total), subtotal, VAT amounts by rate, total and payment method, as JSON. Prices are in euros with a comma as decimal separator; output them as numbers.

BIOMARKT GRÜNE WIESE
Lindenstraße 14, 10969 Berlin
USt-IdNr. DE298765432
22.05.2024   17:48   Kasse 2   Bon 5521

Hafermilch 1L           2 x 1,99     3,98 A
Vollkornbrot                          3,49 A
Äpfel Elstar 1,2 kg x 3,29/kg        3,95 A
Bio Eier 10er                         4,29 A
Spülmittel Zitrone                    2,79 B
Kaffee gemahlen 500g                  8,99 A
Pfand Glas                            0,15 B
------------------------------------------
SUMME                               27,64
A 7% Netto 23,04  MwSt 1,61
B 19% Netto 2,47  MwSt 0,47
Girocard                            27,64
Vielen Dank für Ihren Einkauf!"""),
("ur", "summary-pages", """Based only on the passage below, answer these three questions: (1) What percentage of respondents worked fully remotely? (2) Which group reported the largest drop in commuting costs? (3) What did the authors recommend to employers? Quote the relevant sentence for each answer.

The 2023 regional workforce survey collected responses from 2,418 employees across 312 companies in the greater Manchester area. Of the respondents, 21% reported working fully remotely, 47% worked in a hybrid arrangement with at least one office day per week, and the remaining 32% worked on site every day. Hybrid workers reported an average reduction in monthly commuting costs of £86 compared with 2019, while fully remote workers reported a reduction of £143; on-site workers reported an increase of £12, mainly attributed to higher fuel and ticket prices. Satisfaction with work–life balance was highest among hybrid workers (7.4 out of 10), followed by remote (7.1) and on-site (6.2) workers. However, remote workers were twice as likely as on-site workers to report feeling isolated from colleagues. The authors recommend that employers offering remote arrangements invest in structured in-person events at least quarterly and review how promotion decisions account for employees who are less visible in the office."""),
("u", "csv-pages", """Convert this JSON array into a CSV with a header row. Flatten the nested address into address_street, address_city and address_postcode, join the tags array with semicolons, and format the signup timestamps as DD/MM/YYYY. Sort by last name.

[
  {"id": 17, "first": "Nadia", "last": "Karimi", "email": "nadia.k@example.com", "address": {"street": "12 Rose Lane", "city": "Leeds", "postcode": "LS6 2QT"}, "tags": ["newsletter", "vip"], "signup": "2023-11-04T09:13:22Z"},
  {"id": 4, "first": "Oliver", "last": "Brandt", "email": "o.brandt@example.de", "address": {"street": "Hauptstr. 5", "city": "Kiel", "postcode": "24103"}, "tags": [], "signup": "2022-02-19T17:40:00Z"},
  {"id": 29, "first": "Lea", "last": "Abara", "email": "lea@example.org", "address": {"street": "3 Quay St", "city": "Galway", "postcode": "H91 X2Y4"}, "tags": ["newsletter"], "signup": "2024-06-30T23:59:59Z"},
  {"id": 8, "first": "Mateo", "last": "Silva", "email": "mateo.silva@example.pt", "address": {"street": "Rua Augusta 210", "city": "Lisboa", "postcode": "1100-053"}, "tags": ["trial", "newsletter"], "signup": "2024-01-01T00:05:10Z"}
]"""),
("uw", "translation-letters", """Traduis ce texte en français pour le site de notre gîte. Garde le même ton chaleureux et les mêmes informations, y compris les horaires et les prix.

Welcome to La Petite Grange!

Our cottage sleeps up to six people in three bedrooms: a double room on the ground floor with its own shower room, and two twin rooms upstairs that share a bathroom. The fully equipped kitchen opens onto a terrace facing the orchard, where you'll find a barbecue and a table for eight.

Check-in is from 4 pm and check-out by 10 am. Bed linen and towels are included; a final cleaning fee of 60 euros is added to every booking. Well-behaved dogs are welcome for 8 euros per night, but please keep them off the beds and out of the orchard when the chickens are out.

The village bakery opens at 7 am every day except Monday, and the Saturday market in the next town, 10 minutes by car, is not to be missed. We live in the farmhouse next door and are happy to help with tips for walks, wine tastings and restaurants. Just knock or send us a message."""),
("ur", "classify", """I need this list of 20 expenses categorised for my tax return into: Office supplies, Software, Travel, Meals, Training, Equipment, Phone/Internet, Other. Return a table with date, description, amount and category, then subtotals per category.

03/01 Adobe Creative Cloud monthly 59.99
05/01 Train London–Manchester 87.40
05/01 Lunch with client, Manchester 42.10
09/01 Printer paper and toner 63.25
12/01 Udemy course: Advanced Figma 14.99
15/01 Vodafone mobile bill 28.00
15/01 BT broadband 35.50
18/01 External monitor 27" 229.00
20/01 Coffee with prospective client 7.80
22/01 Notion Plus subscription 8.00
25/01 Taxi from station to client office 16.50
27/01 Hotel Leeds, 1 night 94.00
27/01 Dinner Leeds (alone, work trip) 23.60
29/01 Postage for signed contracts 4.35
02/02 USB-C dock 89.99
04/02 Conference ticket, UX London 399.00
06/02 Envelopes and pens 11.20
08/02 Dropbox Plus yearly 119.88
10/02 Parking at client site 9.00
12/02 Domain renewal 15.99"""),
("u", "email-extract", """Count the words in each paragraph of this text and tell me the total, and also list any word that appears more than three times (ignoring case and common words like the, a, and, of, to, in). I need this for a submission limit.

Urban trees do far more than provide shade. They cool streets by evaporating water through their leaves, absorb rainfall that would otherwise overwhelm drains, and filter some of the fine particles that traffic releases into the air. Studies in several European cities have found that streets with a continuous canopy can be several degrees cooler on hot afternoons than streets without trees.

Yet many cities are losing trees faster than they plant them. Construction, disease and drought all take their toll, and young trees planted in small pits between paving stones often die within a few years because their roots cannot spread. Planting more trees is therefore not enough; cities need to plant the right trees in the right places and care for them.

Some cities now treat trees as infrastructure. They record every tree in a public database, plan planting where heat and flooding risks are highest, and budget for watering during the first summers. Residents can adopt a tree, report damage, and see how the canopy in their neighbourhood is changing over time."""),
]

_p3 = [
("w", "speech-pages", """I'm the best man at my younger brother Daniel's wedding in three weeks and I'm terrified of the speech. Can you write me a 4–5 minute speech (about 600–700 words) that's funny but warm, not crude — his wife's grandparents will be there. Some material:
- Daniel is 29, I'm 33. As kids he followed me everywhere and copied everything, including the time I shaved my eyebrows at 12, except he did it at 8.
- He's an ER nurse and the calmest person in a crisis, but completely loses it if someone moves his coffee mug.
- He met Sofia at a pub quiz in 2019; they were on rival teams and she beat his team on a question about Portuguese football, which he still claims was a trick question.
- He once drove 4 hours through snow to bring her soup when she had the flu, and got the car stuck in a ditch 2 km from her flat and walked the rest.
- Our dad passed away two years ago. I'd like one short, gentle moment for him, not a sad one.
- End with a toast to Daniel and Sofia.
I'm not a natural performer, so please keep sentences short and easy to say out loud."""),
("w", "speech-pages", """Could you help me write a eulogy for my grandmother, Margaret "Peggy" Doyle, who died last week at 94? The funeral is on Friday, and I have about five minutes. I'd like it to celebrate her life rather than be only sad, and I want to end with the line she always said when we left her house: "Mind how you go, and come back soon."

Facts: born 1930 in Cork, the eldest of seven. Left school at 14 to work in a drapery shop. Emigrated to Birmingham in 1952, worked as a telephonist, married my grandad Jim in 1955 (he died in 2008). Four children, eleven grandchildren, six great-grandchildren. She ran the church jumble sale for 30 years, made the best brown bread in the parish and never once wrote down the recipe. She learned to use an iPad at 88 so she could video-call my cousin in Australia, and she was fiercely competitive at cards — nobody in the family has beaten her at gin rummy since about 1997. She had a sharp tongue but a soft heart, and she always kept a bag of sweets in her handbag for any child who looked like they needed one."""),
("w", "cover-letter", """Please write a cover letter for this job, using my background below. One page, confident but not boastful, and please don't use clichés like "I am writing to express my interest".

Job: Operations Coordinator at GreenCycle, a social enterprise that refurbishes donated laptops for schools and charities. They want someone to manage the intake of donations, coordinate a team of volunteers, keep the inventory system up to date and report monthly figures to funders. Requirements: 2+ years in operations or logistics, strong organisation, comfortable with spreadsheets, good communicator. Nice to have: experience with volunteers, interest in sustainability.

Me: 3 years as a shift supervisor at a parcel distribution centre (team of 14, improved scanning error rate from 2.1% to 0.6% by redesigning the shift handover checklist). Before that 1 year as a volunteer coordinator for a food bank during university (rota for 60 volunteers, set up a shared Google Sheet for stock). BA in Geography. I repair old bikes as a hobby and sell them cheaply to students. Advanced Excel (pivot tables, XLOOKUP), basic SQL. Looking to move into the non-profit sector because I want my work to have a visible impact."""),
("w", "product-brief", """Write a product description for our online shop (about 200 words, plus 5 bullet points with the key specs) for a new item. Tone: friendly, a bit playful, aimed at people who camp and hike but aren't gear nerds. Avoid exaggerated claims.

Product: "Ember 2" folding camp stove
- burns twigs, pine cones, wood pellets; optional alcohol burner insert (sold separately)
- stainless steel 304, folds flat to 14 x 12 x 1.5 cm, weighs 410 g
- comes in a waxed canvas pouch
- supports pots up to 22 cm wide, boils 1 litre of water in about 8 minutes with dry wood
- double wall design for secondary burn = less smoke
- ash tray protects the ground, but still needs a non-flammable surface
- 5-year warranty
- made in Portugal in a family-run workshop
- price 64 euros
Our brand voice: we use "you", short sentences, no exclamation marks except maybe one, and we always remind people to follow local fire rules."""),
("w", "blog-brief", """I need a blog post for our dental practice's website, around 800 words, titled something like "What actually happens at a hygienist appointment". Audience: adults who haven't been to a dentist in years, maybe a bit anxious. Goals: reassure, explain step by step, encourage them to book.

Points to cover:
- how long it takes (usually 30–45 minutes)
- the hygienist checks gums, measures pocket depths with a small probe (mild, not painful)
- scaling with ultrasonic scaler, the water spray and the buzzing sound; hand instruments for stubborn tartar
- polishing, sometimes air-polishing for stains (coffee, tea, red wine)
- advice on brushing, interdental brushes, not a lecture
- if gums bleed, that's common and a sign of inflammation, not failure
- they can ask for breaks; we offer numbing gel; they can use a "stop" hand signal
- cost at our practice: £65 for a standard appointment, £85 for a longer one for people who haven't been in over 2 years
Please end with a short call to action and keep the tone calm and human, no scare tactics, no medical jargon without explanation."""),
("w", "rewrite-tone", """Could you rewrite this email so it sounds firm but polite? I'm annoyed and I think it shows. It's to a client who keeps paying late. Keep it under 200 words.

Hi Mark,

Again I have to chase you about invoice #2231 which was due on the 1st of the month, so now it's more than three weeks overdue. This is the third time this year that this has happened and frankly it's getting ridiculous. I've been doing the work on time, often at short notice and sometimes at weekends, and I'm a small business, I can't just wait for money for weeks while I still have to pay my own bills and my subcontractor. I've sent two reminders already and got no reply to either of them. If I don't get the payment by Friday I won't be able to start on the new batch of product photos for the spring catalogue, and I'm also going to have to start charging the late fee that's in our contract, which I haven't done so far to be nice. Let me know what's going on.

Anna"""),
("w", "rewrite-tone", """Please make this paragraph from my grant application clearer and more persuasive, and cut it from about 230 words to around 150. It's the "Need" section for a funder that supports community health projects.

In our area, which is the eastern part of the borough, there are quite a lot of older people who live on their own, and from our experience of running the lunch club over the past few years we have noticed that many of them are not getting out very much and some of them have told us that they sometimes go several days without speaking to anyone, which is obviously not good for their mental health and also for their physical health because they are less likely to be active and more likely to not eat properly. The local GP practice also told us that they see a lot of older patients who they think are lonely and that this is a factor in a lot of the appointments they have. There are not many activities in the area that are aimed at this group, especially ones that are free and easy to get to, because the bus service was reduced in 2022. We would like to start a walking group and a weekly tea afternoon with transport for those who need it, so that people can meet each other, be more active and have something to look forward to each week, and we think this would make a real difference to a lot of people."""),
("w", "blog-brief", """Write a short story (about 1,200 words) for a children's magazine, ages 8–11, based on this brief from the editor:

Theme of the issue: "Small acts of courage". Setting: a coastal town in winter. Main character: Ayo, a ten-year-old girl who has just moved from Lagos and is shy about her accent. Plot idea: the town's lighthouse keeper, an old man everyone thinks is grumpy, loses his dog during a storm; Ayo is the only one who saw where it went because she was watching the sea from her window. She has to go and tell him, and then help search. The dog is found sheltering in an upturned boat. End with the old man visiting her family and the two of them becoming friends, without being too sweet.

Requirements: third person, past tense, dialogue allowed, no scary peril (nobody is in real danger), vocabulary suitable for confident readers, a title, and please include one small detail about Lagos that Ayo misses (food, sounds, something from her grandma)."""),
("w", "blog-brief", """I'm giving a 10-minute talk at a local business breakfast about how our bakery cut food waste by 70% in two years, and I need a script. Audience: about 50 small business owners, not food experts. Please write it so it can be read aloud, with a strong opening and three clear sections.

What we did:
1. Measured waste every day for a month with a simple tally sheet by product (we were throwing away ~18% of bread).
2. Baked in two smaller batches instead of one big morning batch, based on the sales pattern.
3. Started a "yesterday's bread" shelf at half price and made croutons and bread pudding from the rest.
4. Partnered with a food-sharing app for end-of-day bags (about 25 bags a day now).
5. Trained staff to record reasons for waste, not just quantities.
Results: waste down from 18% to about 5%, saved around £11,000 a year in ingredients, new customers from the app, staff more engaged.
Mistakes: at first we ran out of popular loaves by 2pm and got complaints; the pudding didn't sell in summer.
I want to end with a practical challenge for the audience: measure one thing for one month."""),
("w", "product-brief", """Our museum is opening a new exhibition and I need the wall text for the entrance panel (max 180 words) and three short labels (max 60 words each) for the objects below. Audience: general public including families; reading level like a good newspaper. No academic jargon.

Exhibition: "Salt: How a Mineral Made Our Town" — about the 400-year history of salt production in our town, from medieval brine pits to the 1960s factory closure and the town's regeneration.

Objects:
1. A lead brine pan fragment, 14th century, found during road works in 1987.
2. A salt worker's wooden clog with iron reinforcement, about 1890; workers wore them because salt ate through leather.
3. A 1964 trade union banner from the last strike before the factory closed, hand-painted, red and gold, with the slogan "Worth Our Salt".

Please open the entrance text with a question to the visitor and end it with an invitation to explore."""),
("w", "cover-letter", """Can you write my LinkedIn "About" section? Around 250 words, first person, professional but with personality. I'm changing careers and want it to explain the change rather than hide it.

Background: 9 years as a secondary school chemistry teacher in Bristol; head of year for 3 of those. Last 18 months: completed a part-time UX design course (Google UX certificate plus a 12-week bootcamp), redesigned the booking flow for a local climbing gym as a volunteer project (they report 30% fewer abandoned bookings), and did usability tests with 20 students for an edtech startup's revision app. Skills I bring from teaching: explaining complex things simply, observing how people actually behave versus what they say, designing for very different abilities, staying calm with 30 teenagers at 3pm on a Friday. Tools: Figma, Maze, Miro, basic HTML/CSS. Looking for: junior UX researcher or UX designer roles, ideally in education, health or the public sector, hybrid in Bristol or remote. I'd like to end with an invitation to connect."""),
("wr", "blog-brief", """Please write a one-week lesson plan outline for my Year 9 English class (ages 13–14, mixed ability, 5 lessons of 50 minutes) on persuasive writing, ending with each student writing a letter to the local council about an issue in our town.

Context: the town recently closed its skate park for "safety reasons", the library opening hours were cut, and there's a debate about a new bus lane. Many students have strong opinions about the skate park.

For each lesson give: learning objective, starter (5–10 min), main activities, differentiation for students who struggle with writing and for the most able, and a short plenary. Include the rhetorical techniques to teach (ethos, pathos, logos, rhetorical questions, rule of three, counter-argument and rebuttal), a model paragraph that I can annotate with the class, and a simple success-criteria checklist students can use to peer-assess drafts in lesson 4. Homework should be light: one short task midweek."""),
("w", "rewrite-tone", """Here's the draft of the text for the back cover of my self-published fantasy novel. It feels flat. Can you rewrite it to be more gripping, keeping it under 170 words, in present tense, and without giving away the twist that Mara's brother is the one who stole the map?

Mara is a seventeen-year-old cartographer's apprentice in the port city of Vell. Her master has been making maps of the islands for forty years. One day the most important map in the city, which shows the only safe route through the Shattered Reef, is stolen from the guild house. Without it, the trading ships cannot sail and the city will starve by winter. The guild accuses Mara's master and throws him in prison. Mara decides that she has to find the map herself to save him. She joins the crew of a smuggler called Ines who knows the reef better than anyone, and they set off into dangerous waters. On the way Mara learns that maps can lie, that people can too, and that sometimes the truth is the most dangerous thing to find. This is the first book in the Reefborn trilogy."""),
("w", "product-brief", """We're a small company that makes refillable cleaning products and I need three email newsletters for a welcome sequence for new subscribers. Each about 150–200 words, with a subject line and preview text.

Email 1 (sent right away): welcome, who we are (founded 2020 by two sisters in Glasgow, started in their kitchen after getting fed up with plastic bottles), the 10% code WELCOME10 valid for 14 days.
Email 2 (day 3): how refills work — you buy a glass bottle once, then concentrate tablets arrive in compostable paper sachets, you add tap water; one tablet = 500 ml; saves 90% of the packaging weight compared to a normal spray bottle.
Email 3 (day 7): social proof and a reminder the code expires in a week; include two short customer quotes we have: "My cupboard under the sink is finally tidy" — Ruth, Dundee; "Smells amazing and my kids actually help clean now" — Sam, Leeds.

Tone: warm, slightly cheeky, Scottish-friendly but not cartoonish, no guilt-tripping about the planet."""),
("w", "speech-pages", """My colleague Rafael is retiring after 31 years at the county water authority and I have to give a short farewell speech at his leaving do (3 minutes, around 400 words). He's a quiet engineer who never wanted attention, so it should be affectionate and a bit funny but not embarrassing.

Things people told me: he knows every valve in the network by heart and once found a leak by listening to a drain cover at 3 am; he's brought homemade empanadas to every Christmas party since 1994; he trained about half the current field team; he still uses a paper notebook and has kept every one since 1993 (there are 62 of them); he's planning to spend his retirement restoring a 1972 Citroën DS and visiting his daughter in Valparaíso; his catchphrase when something goes wrong is "Well, water always finds a way." Please end with a toast and the catchphrase."""),
("w", "blog-brief", """I want to write a personal essay for a magazine competition with the theme "A place that changed me", max 1,000 words. Can you write a first draft I can then edit in my own voice? Here's what it's about:

The place is my grandfather's allotment in Sheffield, where I spent Saturday mornings between age 7 and 15. He was a retired steelworker, didn't talk much, and taught me by doing: how to earth up potatoes, how to tell when runner beans are ready, how to sit on an upturned bucket with a flask of tea and just watch. When I was 13 my parents divorced and the allotment was the only place that felt the same every week. He died when I was 19 and the allotment went to someone else; I cycled past last year and it's now full of raised beds and a shiny polytunnel. I'm 34 now, I work in a stressful job in London, and I recently got my own small allotment plot after six years on the waiting list. I want the essay to be about patience and what is passed on without words, not about grief. Please use concrete sensory details and avoid clichés about "growing"."""),
("w", "product-brief", """Write the copy for the landing page of a new mobile app. I need: a headline (max 8 words), a subheading (max 20 words), three feature blocks each with a short title and 2–3 sentences, a short section answering "Who is it for?", two FAQ entries, and a closing call to action.

App: "Tandem Tasks" — a shared household to-do and chores app for couples and flatmates. Key features: recurring chores that rotate automatically between people; a fairness meter that shows who has done what this month (based on estimated minutes per task, which users can adjust); shared shopping list that sorts items by supermarket aisle; gentle reminders that can be snoozed; works offline and syncs later. Free for up to 3 people, Plus plan £2.49/month for bigger households and history export. Available on iOS and Android. Privacy: no ads, data not sold, end-to-end encrypted lists.

Tone: light, friendly, a bit witty about the eternal "who took the bins out" argument, but not passive-aggressive."""),
("w", "cover-letter", """Please write a reference letter for my former employee, Jana Novak, who is applying for a master's programme in environmental engineering at TU Delft. I was her manager for two years at our water-treatment consultancy. About 400 words, formal, letter format with placeholders for my address and signature.

What I can say: she worked as a junior process engineer from 2021 to 2023; she redesigned the sampling schedule for a municipal wastewater plant which reduced lab costs by 18% while improving compliance reporting; she wrote Python scripts to clean and visualise sensor data that the whole team now uses; she presented results to the client's board with great clarity; she mentored two interns; she is curious, methodical and honest about uncertainty in data; one area for growth is delegating — she tends to do everything herself, but she improved a lot in her second year. I'd rank her in the top 5% of the junior engineers I've managed in 15 years. I'm Dr. Piet de Vries, Principal Engineer at AquaPlan BV, Utrecht."""),
("w", "blog-brief", """Please write a set of 5 Instagram captions (each max 60 words plus up to 5 hashtags) for a small independent bookshop's posts next week. Info for each post:

Mon: new arrivals table — three translated novels from South Korea, Argentina and Norway; we love translated fiction and have a 10% discount on it all month.
Tue: behind the scenes — our shop cat, Brontë, asleep on the poetry shelf again; she has been with us since 2019 and has her own fan club of regulars.
Wed: author event announcement — local author Imogen Hart reading from her debut crime novel "The Quiet Tide", Thursday 14th at 7pm, tickets £5 redeemable against the book, wine and soft drinks included.
Thu: staff pick — Priyanka recommends a nonfiction book about the history of maps; she says it made her look at her commute differently.
Fri: reminder that we do free gift wrapping and can post books anywhere in the UK, order by phone or email.

Voice: cosy, bookish, a little nerdy humour, never salesy. Please vary the openings so they don't all start the same way."""),
("w", "rewrite-tone", """I wrote this announcement for our team but my manager says it's too negative and long. Could you rewrite it to be positive and clear, keeping all the facts, in about 120 words, as a Slack message?

Hi all, unfortunately, as some of you may have heard already, we're going to have to move the office because the landlord has decided not to renew our lease, which is annoying because we only finished setting up the meeting rooms last year. The new office is on the 3rd floor of the Carver Building on Dale Street, which is about 10 minutes' walk from the current one, so it's not too far, although it's a bit further from the station. The move will happen over the weekend of 21–22 September, and we will need everyone to pack their desks by 5pm on Friday the 20th, using the crates that will be delivered on the 16th. IT will move the computers, but you need to take home anything personal or valuable. On Monday the 23rd, please go to the new office. There will be coffee and pastries. The new office has a bike storage room and showers, which the old one didn't."""),
("wr", "blog-brief", """I'm organising a 3-day team offsite for 14 people in the Lake District in October and need a detailed agenda I can send round. Please structure it day by day with times, sessions, breaks and meals.

Goals: agree our product strategy for next year, improve how design and engineering work together (there's been friction), and give people time to actually relax and walk — the last offsite was back-to-back workshops and people hated it.

Fixed points: arrive by 12:00 on day 1 (train to Windermere, minibus to the house); the house has one big room and two small breakout rooms; a local guide is booked for a 3-hour walk on day 2 afternoon (weather permitting; need a rainy-day alternative); dinner on day 2 at a pub in Grasmere, the other dinners are catered at the house; leave at 14:00 on day 3. Sessions I want: a retrospective of this year, a customer insights session led by Leila, a strategy workshop in two parts, a "how we work together" session with an external facilitator (2 hours), and a closing round with commitments. Please suggest formats for each session, not just titles."""),
("w", "product-brief", """Write a job advert for our company, about 350 words, for a role we struggle to fill. Make it honest and appealing, not corporate. Structure: short intro about us, what you'll do, what we're looking for, what we offer, how to apply.

Company: Harbour & Pine, a 25-person furniture workshop in Cornwall making made-to-order oak tables and chairs, selling mostly online in the UK.
Role: Workshop Production Planner. Schedules orders through the workshop (cutting, joinery, finishing, quality check, dispatch), keeps customers updated on delivery dates, orders timber and hardware, works with the two workshop leads every morning.
Must have: experience planning production or jobs in a manufacturing or trades setting; good with spreadsheets (we use Google Sheets and a simple ERP called Katana); calm under pressure; clear communicator by phone and email.
Nice: woodworking knowledge, experience with made-to-order products.
Offer: £32–36k, full time on site near Truro (no remote), 4-day week in winter months (Nov–Feb, same pay), staff discount on furniture, free parking, pension 5%.
Apply: send CV and a few lines about a time you untangled a messy schedule to jobs@harbourandpine.example by 30 June."""),
]

_p4 = [
("rc", "finance-pages", """I'd like some advice on whether to pay off my mortgage faster or invest. My situation: I'm 38, married, two kids (6 and 9). Combined take-home pay is about €6,200 a month. Mortgage: €214,000 left, fixed at 3.1% until 2031, 22 years remaining, monthly payment €1,190. We're allowed to overpay up to 10% a year without penalty. Savings: €28,000 in a savings account at 2.5%, which we consider our emergency fund (about 5 months of expenses). We each pay into workplace pensions (5% plus employer match 5%). No other debts. After all expenses we have about €900 a month left over.

Options I'm considering: (a) overpay the mortgage by €900 a month, (b) invest €900 a month in a global index fund (we're in Ireland, so I know ETFs have deemed disposal and 41% exit tax, which complicates things), (c) split it, or (d) increase pension contributions, which get tax relief at 40% for me. I'd also like to keep some money available for the kids' education in 10–12 years. How would you think about this, and what am I missing?"""),
("r", "legal-pages", """I need to understand my rights as a tenant. I moved out of a flat in Pennsylvania on 31 May after a 2-year lease. I paid a security deposit of $1,800 (two months' rent in the first year, which I now read may not have been allowed). The landlord did a walk-through with me on the last day and said everything looked fine, but I never got a written list. Today, 8 July, I got a check for $650 with a note saying $1,150 was kept for "carpet replacement and painting".

The carpet was about 10 years old when I moved in (the landlord told me so) and there was normal wear in the hallway. I have photos from move-in and move-out. I didn't damage the walls beyond a few nail holes from pictures.

Questions: Is there a deadline for the landlord to return the deposit and provide an itemized list, and what happens if they missed it? Can they charge me for replacing an old carpet or repainting after two years? What are the steps — demand letter, small claims? Is there a penalty like double damages in PA? I know you're not a lawyer, I just want to understand the rules before I talk to someone."""),
("r", "history-pages", """I've been reading about the Hundred Years' War and something confuses me. Popular films show medieval battles with tens of thousands of soldiers on each side, but the book I'm reading (Juliet Barker's "Agincourt") says Henry V had maybe 6,000–9,000 men at Agincourt and that even that was a big army for the time. At the same time, I've read chronicles that claim the French had 50,000 or more.

So my questions: why were medieval armies generally so small compared to Roman or early modern armies? Was it logistics (feeding men and horses), money, the feudal obligation of only 40 days' service, or the population? How did kings like Edward III actually raise and pay their armies — I've seen the term "indenture" mentioned. And why are chroniclers' numbers so unreliable, and how do modern historians estimate the real figures (pay records, muster rolls?). A clear explanation with some examples from England and France would be great."""),
("r", "health-pages", """My father is 72 and was just told by his GP that his blood tests show an eGFR of 52 and a urine albumin-to-creatinine ratio of 4.1 mg/mmol, and that he has "stage 3a chronic kidney disease". He also has type 2 diabetes (HbA1c 58 mmol/mol, on metformin) and high blood pressure (on amlodipine, usually around 145/85 at home). The GP wants to see him again in three months and mentioned maybe adding a medication "to protect the kidneys".

We're worried and the appointment was short. Can you explain in plain language what these numbers mean, whether stage 3a is serious at his age, what usually causes it with diabetes and blood pressure, which medications are commonly added in this situation (I've heard of ACE inhibitors and SGLT2 inhibitors), whether metformin is still safe at this eGFR, and what lifestyle changes actually make a difference (salt, protein, exercise)? Also, what questions should we ask at the next appointment? I understand this isn't a substitute for his doctor."""),
("re", "se-code", """I'm trying to understand the difference between processes, threads and async in Python for a project at work, and the articles I find contradict each other. Our use case: a service that receives about 200 requests per second; each request calls two external HTTP APIs (100–300 ms each), does some light JSON processing, and sometimes (5% of requests) runs a CPU-heavy image thumbnail step that takes ~400 ms.

Questions: What does the GIL actually prevent, and does it matter for the HTTP calls? Why would asyncio handle more concurrent requests than a thread pool with the same memory? If we use asyncio, what happens when the thumbnail step blocks the event loop — should it go to a ProcessPoolExecutor, and what's the overhead of sending image bytes to another process? And does the "free-threaded" Python 3.13 build change any of this advice? I don't need code, I want to understand the trade-offs well enough to explain them to my team."""),
("r", "science-q", """A question about climate science that came up in a family argument. My uncle says that because CO2 is only about 0.04% of the atmosphere, it can't possibly have a big effect on temperature, and that water vapour is a much more important greenhouse gas anyway, so human CO2 emissions don't matter.

I'd like to understand the actual physics well enough to respond calmly. Specifically: why can a trace gas matter (I've heard about absorption bands and the "saturation" argument — is it true that the CO2 effect is saturated?), what is the difference between water vapour as a feedback and CO2 as a forcing, how do we know the increase in CO2 since 1850 comes from fossil fuels (isotopes?), and roughly how much warming per doubling of CO2 do scientists estimate and with what uncertainty? Please explain with analogies where helpful and mention which points are well established versus still debated."""),
("rc", "finance-pages", """I'm 26 and just got my first job with a decent salary (£41,000 in London) after a PhD, and I honestly don't know where to start with money. Current situation: £2,300 in a current account, student loan Plan 2 of about £58,000, credit card with £1,200 on it at 24.9% that built up during my PhD writing-up year, rent £1,150 a month in a flat share. My employer offers a pension with salary sacrifice, matching up to 6%. A friend told me to open a Lifetime ISA to save for a house deposit, another says I should just put everything in a Stocks and Shares ISA, and my dad says to overpay the student loan.

Could you walk me through a sensible order of priorities? In particular: should the student loan worry me at all given how Plan 2 repayments and write-off work, is the Lifetime ISA a good idea if I might buy a flat above £450k in London, how big should my emergency fund be, and is it worth taking the full employer pension match now even though money is tight? I'd like to understand the reasoning, not just a list."""),
("r", "science-q", """Can someone explain how mRNA vaccines work, at a level between a news article and a biology textbook? I have a basic science background (A-level biology, 15 years ago). Specifically I'm curious about:

1. What exactly is in the vaccine — the mRNA, the lipid nanoparticles, anything else — and why does the mRNA need a lipid coating?
2. How the cell reads the mRNA and makes the spike protein, and why the mRNA can't change our DNA (what's the role of the nucleus and reverse transcriptase here?).
3. How long the mRNA and the spike protein stay in the body.
4. Why the mRNA was modified with pseudouridine, which I read was the Nobel-winning discovery by Karikó and Weissman.
5. Why the original vaccines needed such cold storage, and why newer ones don't as much.
6. What is known about why protection against infection fades after a few months while protection against severe disease lasts longer.

Please say where the science is settled and where there's still uncertainty."""),
("r", "history-pages", """I'm planning a trip to Kyoto and want to understand the history behind what I'll see instead of just taking photos. I'll visit Kinkaku-ji, Ginkaku-ji, Nijo Castle, Fushimi Inari, the Gion district and the Imperial Palace.

Could you give me a historical overview that ties these places together? In particular: why was Kyoto the capital for over a thousand years and why did power shift to Kamakura and later Edo while the emperor stayed in Kyoto; what the Ashikaga shoguns had to do with the Golden and Silver Pavilions and why the Silver Pavilion isn't actually silver; what Nijo Castle tells us about the Tokugawa relationship with the imperial court, including the "nightingale floors"; how Fushimi Inari relates to rice, merchants and the Hata clan; and how the geisha culture of Gion developed. Also why Kyoto was spared from atomic bombing in 1945 — I've heard a story about Henry Stimson's honeymoon and I'd like to know if it's true."""),
("rc", "career-q", """I need some perspective on a career decision. I'm 31, a mechanical engineer with 7 years at a large automotive supplier in Stuttgart, currently a team lead for 5 people working on brake system components. Salary €78k. I'm stable but bored, and the industry feels uncertain with the shift to EVs and the layoffs at competitors.

Two options: (1) an offer from a 40-person startup making heat pumps, as Head of Mechanical Engineering, €85k plus 0.3% equity vesting over 4 years; they have a Series A of €12M and about 20 months of runway; (2) an internal move to our company's new battery thermal management group, same salary, more stable, but I'd be an individual contributor again for at least a year.

My partner works in Stuttgart and we're thinking of kids in 2–3 years. I care about learning and about working on something climate-related, but I'm risk-averse by nature. How should I think about the equity (is 0.3% meaningful?), the runway risk, the career value of "Head of" at a startup versus staying in a big company, and German-specific things like probation periods and parental leave at a startup? What questions should I ask the startup before deciding?"""),
("re", "math-q", """I have a probability question from planning our company's on-call rota. We have 8 engineers. Each week, one person is on call. Historically, an on-call week has on average 3.2 incidents, and incidents seem to follow a Poisson distribution. An incident outside working hours (which is about 70% of the time, since nights and weekends are 128 of the 168 hours in a week, but incidents are a bit more likely during working hours — about 40% of incidents happen in working hours) means the on-call person gets woken up or disturbed.

Questions: (1) What's the probability that an on-call week has zero out-of-hours incidents? (2) What's the probability of 5 or more incidents in total in a week? (3) Over a year (52 weeks, each person on call 6 or 7 weeks), what's the expected number of out-of-hours incidents per person, and how much variation between people should we expect just by chance — if one engineer had 25 and another 11 last year, is that suspicious or plausible? Please show the steps so I can redo it with different numbers."""),
("r", "science-q", """Why does bread go stale, and why does putting it in the fridge make it worse? I run a small bakery and customers keep asking me, and I want to give a correct answer rather than just "it dries out".

What I think I know: staling is related to starch retrogradation, not just moisture loss, since stale bread can be refreshed in the oven. But I don't really understand what happens to amylose and amylopectin after baking, why the rate of retrogradation is fastest around fridge temperature and slower in the freezer, why sourdough and breads with more fat or sugar stale more slowly, and what enzymes some industrial bakers add to keep bread soft for a week. Also: does the crust going soft on a baguette in a plastic bag have the same cause? A clear explanation I could turn into a short leaflet for customers would be great, with the science correct but accessible."""),
("rc", "travel-q", """We're a family of four (kids 7 and 11) planning two weeks in Norway in late June, mainly for nature: fjords, easy-to-moderate hikes, maybe seeing puffins or whales. We'll fly into Bergen and out of Oslo or Tromsø, and we're undecided whether to rent a car or rely on trains, buses and ferries. Budget is tight by Norwegian standards, so we plan to self-cater in cabins.

Questions: Is it realistic to combine the western fjords (Geiranger, Nærøyfjord) with Lofoten in two weeks, or is that too much travel for the kids? What are kid-friendly hikes (not Trolltunga or Preikestolen at 4 am)? Is the midnight sun going to wreck their sleep, and how do families deal with it? Where is the best chance of seeing puffins and whales in late June? Roughly what should we expect to pay for ferries and tolls with a rental car, and is the Norway in a Nutshell route worth it with children? Any food-shopping tips to keep costs down?"""),
("r", "legal-pages", """My small online shop (I sell handmade ceramics from the UK, about 300 orders a year, 20% to EU customers) has been getting confusing emails about GDPR and now also about the EU's new product safety regulation. I'm a sole trader with no staff. I use Shopify, Mailchimp for a newsletter with about 1,800 subscribers, and Royal Mail for shipping.

Can you explain in plain English: (1) whether UK GDPR and EU GDPR both apply to me and what I actually have to do — privacy notice, cookie banner, a record of processing, data processing agreements with Shopify and Mailchimp; (2) whether I need an EU representative under Article 27, given that I sell to EU customers but only occasionally; (3) what the General Product Safety Regulation (GPSR) that applied from December 2024 means for a tiny seller of mugs and bowls — do I need an EU "responsible person" and what about food-contact safety for glazes; and (4) what happens practically if I get it wrong. I'm not looking for legal advice, just to understand what applies to me and what to ask an adviser."""),
("r", "science-q", """I'm a hobby astronomer and I'd like to understand something about the James Webb Space Telescope that news articles skip over. Why does it need to be at the L2 point, 1.5 million km away, rather than in low Earth orbit like Hubble? I understand it's about keeping cold, but I want to know why infrared telescopes need to be so cold (it's at around 40 K and the MIRI instrument at 7 K), what the five-layer sunshield actually does physically, why L2 is useful given that it's an unstable point, and how the orbit around L2 (a halo orbit?) avoids the Earth's shadow. Also, why could Hubble be serviced by astronauts and JWST not, and how long can JWST stay there given the fuel for station-keeping — I read it might last 20 years because the launch was so precise. An explanation with some numbers would be great."""),
("r", "history-pages", """Can you help me understand the causes of the 2008 financial crisis? I've watched "The Big Short" and read some articles, but I'd like a structured explanation that ties the pieces together: subprime mortgages, securitisation into mortgage-backed securities and CDOs, the role of credit rating agencies, credit default swaps and AIG, leverage at investment banks like Lehman and Bear Stearns, the shadow banking system and repo runs, and the housing bubble itself along with the role of low interest rates after 2001.

I'm especially confused about two things: why the losses on a relatively small part of the mortgage market (subprime was maybe $1.3 trillion) caused a global crisis much bigger than that, and why Lehman was allowed to fail while Bear Stearns and AIG were rescued. Finally, what changed afterwards (Dodd-Frank, Basel III, stress tests), and which economists think the reforms went far enough and which don't? I'm an educated non-economist."""),
("rc", "health-pages", """I've been struggling with sleep for about six months and I'd like to understand what might be going on before I see my doctor. I'm 44, female, work from home as an accountant. I fall asleep fine around 11pm but wake up between 3 and 4 am almost every night and can't get back to sleep for an hour or two, sometimes not at all. I feel hot when I wake up, sometimes sweaty. My periods have become irregular over the past year. I drink two coffees a day (last one around 2pm) and a glass of wine maybe three evenings a week. I exercise twice a week. I've been quite stressed at work since a restructuring.

Could this be perimenopause, stress, alcohol, or something else like sleep apnoea? What's known about early-morning waking specifically? What actually works for this — I've read about CBT-I, which seems to be recommended over sleeping pills — and what can I try in the meantime? And what should I tell my GP so the appointment is useful (should I keep a sleep diary, ask about HRT)?"""),
("r", "science-q", """Our town council is debating whether to replace the old sodium street lights with LED lights, and at the public meeting there were lots of claims flying around. I'd like to understand the evidence on a few of them before the next meeting:

1. LEDs save energy — how much compared to high-pressure sodium, and what about the cost of replacing the fittings?
2. Blue-rich white LED light harms sleep and wildlife (insects, bats, birds) — is warmer colour temperature (2700K or less) a real fix, and what does research show about insect attraction?
3. Brighter LED streets reduce crime and accidents — is there good evidence for that, or is it mixed?
4. LEDs increase light pollution and skyglow even though they can be better directed — how can both be true?
5. Dimming at night and part-night lighting — what have towns that tried it found?

Please indicate the strength of the evidence for each point and point out where claims are exaggerated on either side. This is for a non-technical audience of local residents."""),
("rw", "book-q", """I have to lead a discussion on "Sapiens" by Yuval Noah Harari at my book club next week and I didn't finish it (I read the first two parts). Could you give me a summary of the main arguments of the whole book, section by section — the Cognitive Revolution, the Agricultural Revolution ("history's biggest fraud"), the Unification of Humankind (money, empires, religion) and the Scientific Revolution — and the conclusion about happiness and the future?

Also, to make the discussion interesting, what are the main criticisms historians and anthropologists have made of the book (I've heard it's accused of oversimplifying and of some factual errors), and which of his ideas are widely accepted versus controversial? Finally, suggest 8 discussion questions that would work for a group of about 10 people with different political views, including some who loved the book and some who found it annoying."""),
("re", "se-code", """I'm a product manager, not an engineer, and our team keeps arguing about whether to move from a monolith to microservices. I want to understand the trade-offs well enough to ask good questions in the next architecture review, without pretending to be technical.

Context: we're a 35-person engineering team building a B2B invoicing SaaS; one Django monolith, one Postgres database, deployed on AWS; about 2,000 customers. Pain points mentioned by engineers: deploys take 40 minutes and are risky, two teams keep stepping on each other's code in the billing module, the test suite takes 25 minutes, and scaling the PDF generation affects the whole app.

Could you explain: what problems microservices actually solve and which they create (distributed transactions, operational overhead, debugging across services), what a "modular monolith" is and whether it addresses our pain points, what "extracting one service first" (like PDF generation) would involve, and what questions I should ask to tell whether the push for microservices is about real problems or about engineers wanting to try new things?"""),
("r", "finance-pages", """Can you explain how inflation-linked government bonds work and whether they're a good idea for part of my retirement savings? I'm 58, plan to retire at 65, and live in the US. My portfolio is about $640,000: 60% in a total stock market index fund, 35% in a total bond market fund, 5% cash. I'm worried that a few years of high inflation right before or after retirement could hurt me a lot.

Specifically: how do TIPS adjust for inflation (principal vs coupon), what is the "real yield" and why were TIPS yields negative in 2021 but around 2% now, what happens to TIPS prices when real interest rates rise (I read some TIPS funds lost money in 2022 despite high inflation, which confused me), the difference between holding individual TIPS to maturity in a ladder versus a TIPS fund, tax issues with the "phantom income" on the inflation adjustment in a taxable account, and how I Bonds compare. How do people typically decide how much to allocate? I understand this is general information."""),
("rc", "career-q", """I'm a 45-year-old nurse in Canada thinking about going back to university to become a nurse practitioner. I've been an RN for 20 years, mostly in emergency, and I'm burned out from the shift work but I love patient care. The NP programme near me (Ontario) is 2 years full time or 3 years part time, costs about $25,000 in tuition, and I'd need to reduce my hours, which means losing about $35,000 a year in income while studying part time.

My questions: how do NP salaries and working conditions in Ontario compare to senior RN roles, especially in primary care where most NP jobs seem to be? Is it realistic to get an NP job without moving to a remote area? What is the job market like given the talk about NPs filling the family doctor shortage? Are there bursaries or employer-funded options? And honestly, is 45 too late to make this work financially, given that I'd be qualified at 48? I'd love a balanced view, including what NPs say they find hard about the role."""),
("r", "science-q", """I'm writing a report for my environmental science class and I'm confused about how carbon offsets work and whether they're legitimate. Here's what I understand so far: a company pays for a project (like protecting a forest, planting trees, or capturing methane from a landfill) and claims the reduced emissions against its own.

Could you explain the key concepts that determine whether an offset is real: additionality, permanence, leakage, baseline setting, and double counting? Then, what did the investigations into rainforest offsets (like the 2023 analysis of Verra-certified projects) find, and why are avoided-deforestation credits considered especially problematic? How do removal offsets (direct air capture, biochar, reforestation) differ from avoidance offsets, and why do some standards now prefer removals? Finally, what are the arguments for and against companies using offsets at all versus focusing on cutting their own emissions? I'd like sources or at least the names of the key reports so I can cite them."""),
("re", "math-q", """Here's a question from my statistics homework that I've been stuck on for hours. I don't just want the answer, I want to understand the reasoning.

A medical test for a disease has a sensitivity of 92% (it correctly detects the disease in 92% of people who have it) and a specificity of 97% (it correctly gives a negative result for 97% of people who don't have it). The disease affects 0.5% of the population.

(a) If a randomly selected person tests positive, what is the probability they actually have the disease?
(b) If the same person takes a second, independent test and also tests positive, what is the probability now?
(c) Suppose instead the test is only used on people with symptoms, among whom the disease prevalence is 20%. What is the probability that a person with symptoms who tests positive has the disease?
(d) Explain in words why the answers to (a) and (c) are so different, and what this means for screening programmes.

I know it's Bayes' theorem but I keep mixing up the conditional probabilities. A table of counts out of 100,000 people would really help me see it."""),
]

_p5 = [
("c", "lonely-pages", """I don't really know why I'm writing this to an AI, but I don't have anyone else to say it to right now. I moved to Leipzig four months ago for a job, from a small town near Graz. The job is fine, the people at work are polite but everyone goes home at five to their partners and friends. I work hybrid, so three days a week I don't speak to anyone except the guy at the bakery. I tried a climbing gym twice and a language exchange meetup once, but it felt like everyone already knew each other and I stood around holding my drink. On weekends I tell myself I'll go explore the city and then I end up scrolling on my phone until it's dark. Last Sunday I realised I hadn't said a word out loud all day. My friends back home message me sometimes but they're busy, and I don't want to be the one who always complains. I'm not in any danger or anything, I just feel really flat and a bit stupid for feeling this way when I chose to move. Can we just talk for a bit?"""),
("c", "lonely-pages", """Okay I need to tell someone about my day because it was absolutely ridiculous and my flatmate is away. So this morning I had my driving test, my third attempt, and I'd been practising roundabouts all week because that's where I failed last time. I get in the car, the examiner is this very serious man with a moustache, and the first thing that happens is a goose. An actual goose. It walks onto the road right outside the test centre and just stands there. I wait, the goose waits, the examiner writes something down. Then the goose starts walking very slowly in front of the car, like it's leading a parade, for maybe fifty metres. I'm doing 3 mph behind a goose with an examiner next to me trying not to laugh. Then the rest of the test actually went fine, I did the parallel park perfectly, no roundabout drama, and at the end he says "well, you handled the goose with great composure" and I PASSED. I've been grinning all afternoon. I don't even have a car. Anyway, how's your day going, if AIs have days?"""),
("c", "lonely-pages", """Can I rant for a minute? My sister is getting married next spring and I'm happy for her, really, but the whole thing is turning into a nightmare. She's asked me to be maid of honour, which I said yes to, and now there's a group chat with nine bridesmaids that pings every five minutes about dress colours, a hen weekend in Ibiza that costs €900 per person which I genuinely can't afford this year, and Pinterest boards with 400 pins. When I gently said Ibiza was a lot for me, one of her friends replied "it's once in a lifetime!!" with six heart emojis and my sister didn't say anything. I feel like if I push back I'm the bitter single sister ruining her wedding, and if I don't I'm going to be broke and resentful. Mum says just put it on a credit card. I'm not asking you to write a message for me or solve it, I just needed to get it out of my head and maybe hear that I'm not crazy for feeling stretched. Does that sound unreasonable of me?"""),
("c", "lonely-pages", """Hey, it's late and I can't sleep, so I thought I'd just chat. Today was my last day at the job I've had for eleven years. Everyone signed a card and there was cake and my boss made a speech that was nicer than I expected, and I cried in the car park afterwards, which surprised me, because I'm the one who decided to leave. I'm starting at a new place on Monday, better pay, shorter commute, and I'm excited, honestly. But it's weird, it feels like leaving a version of myself behind. I started there at 24 when I didn't know anything, I met my best friend there, I was there through my divorce and through my mum being ill and they were so good to me. And now I'll be the new person again who doesn't know where the printer is and has to learn everyone's names. Did you ever... well, I guess you don't have jobs. But do you think it's normal to feel sad about something you chose and wanted? Tell me something cheerful, or just keep me company for a bit."""),
("c", "lonely-pages", """I just got back from the vet and I need to talk to someone. Our dog Biscuit, a 14-year-old beagle cross, has been slowing down for months and today the vet said his kidneys are failing and that we should think about "quality of life" in the next few weeks. I knew this was coming, he's old, but hearing it out loud was different. My kids are 8 and 12 and they've never known a life without him, he was here before either of them was born. My husband thinks we should decide soon so Biscuit doesn't suffer; I want to have one more good weekend with him at the beach where he loves to dig. I keep thinking about all the stupid things, like how he steals socks and how he always knows when I'm sad. I'm not asking for medical advice, the vet explained everything. I guess I just want to talk about him for a while with someone who won't tell me he's "just a dog". He's really not just a dog."""),
("c", "lonely-pages", """Hi! I'm practising my English because I have an interview for a job in Dublin next month and my teacher says I should talk as much as possible. Can we have a normal conversation, like two people in a café? You can correct me only if I make a big mistake, please, small mistakes are okay. A little about me: I'm Tomasz, I'm 27, from Wrocław in Poland, I work as a warehouse supervisor now but the job in Dublin is in logistics planning for a pharmaceutical company. I like cycling, cooking pierogi for my friends, and I watch too much Formula 1. I've been to Ireland once, to Galway, and it rained every single day but I loved it anyway. I'm a little nervous about the accent because in the films sometimes I don't understand anything! What would you like to know about me? And you can tell me something about yourself too, even if you are an AI, it's fine, it's just practice. Let's start: how is your week going so far?"""),
("cw", "roleplay", """Let's play a game. You are Captain Isla Marrow, a retired sea captain who now runs a tiny bookshop-café in a fishing village on the Cornish coast in 1958. You're in your seventies, sharp, funny, a little gruff, full of stories from forty years at sea (the Atlantic convoys, a shipwreck off Newfoundland, a parrot you hated), and you never give a straight answer when a story will do. I'm a young journalist from London who has come down to write a piece about "the last of the old sea dogs" and I've just walked in out of the rain, dripping on your floor. Stay in character the whole time, describe small things about the shop (the smell, the stove, the cat) now and then, and don't narrate my actions for me — I'll decide what I do. If I say "pause", step out of character. Ready? I push the door open, the bell rings, and I say: "Excuse me — are you the Captain Marrow everyone in the pub told me about?\""""),
("cw", "roleplay", """I want to practise a difficult conversation. Please play my landlord, Mr Hendry, a man in his sixties who owns three flats and is friendly but stubborn and a bit forgetful. The situation: the boiler in my flat has broken down three times since October; each time it took him over a week to send someone, and it's now January and I've been without heating for five days with a baby at home. I want to ask him firmly to replace the boiler rather than repair it again and to reduce the rent for the days without heating. He will probably say a new boiler is too expensive, that the last engineer said it was fine, and that he can't afford to lower the rent because of his own mortgage. Please respond only as him, realistically — don't make it too easy for me, but don't be cruel either. After we finish (I'll type "end"), step out of the role and give me feedback on how I did. I'll start: "Hi Mr Hendry, thanks for picking up. I'm calling about the boiler again.\""""),
("rc", "career-q", """I need advice about a friendship and I'd like an honest outside perspective. My best friend since school, let's call her R., has asked to borrow money for the third time in a year. The first time was £300 for a car repair, which she paid back after four months. The second time was £800 for rent, and she's paid back £200 so far and hasn't mentioned the rest in five months. Now she's asking for £1,500 because she wants to do a course to become a yoga instructor, and she says it'll help her get out of her dead-end job. I earn a decent salary and could technically afford it, but I'm saving for a flat, and I feel used and then guilty for feeling used, because she's had a genuinely hard few years (her dad's illness, a breakup). I don't want to lose the friendship. How do people handle this without it turning into a big fight? Is it okay to say no, and how do I bring up the £600 she still owes without sounding like a bank? What would you do?"""),
("uwr", "summary-pages", """Can you summarise this news article in three sentences for my team's morning briefing? We work in retail analytics.

Shoppers in the UK spent more in December than analysts expected, but the gains were concentrated in a few categories, according to figures released on Thursday by the British Retail Consortium. Total retail sales rose 3.1% compared with December 2023, ahead of forecasts of 2.2%, helped by a late rush of online orders in the week before Christmas and strong sales of food and drink, which grew 4.6% as households spent more on celebrations at home. Non-food sales rose only 1.2%, and the consortium noted that clothing and footwear fell for a second consecutive month, which retailers attributed to unusually mild weather and consumers' caution over energy bills. Furniture and electronics also declined. Online sales of non-food items grew 2.8%, the strongest growth since early 2022, while in-store non-food sales were flat. Helen Dickinson, the consortium's chief executive, said retailers would face "a difficult January" as higher employer national insurance contributions begin to bite in April, and warned that price rises were likely. Analysts at a major bank said the figures suggested consumers remained resilient but selective, prioritising experiences and food over goods."""),
("ew", "se-code", """I need to write user stories and acceptance criteria for a feature in our HR app, and I'd like help turning my notes into proper Jira tickets. Please produce 4–6 user stories in the format "As a …, I want …, so that …", each with Gherkin-style acceptance criteria (Given/When/Then) and a note about edge cases.

Notes from the workshop: Employees should be able to request time off from the mobile app. Types: annual leave, sick leave, unpaid leave, parental leave. They pick dates (half days allowed for annual leave only), see their remaining balance before submitting, and can attach a doctor's note for sick leave (required if more than 3 consecutive days). Managers get a push notification and can approve or reject with a comment; if the manager doesn't respond within 5 working days, it escalates to HR. Overlapping requests in the same team should show a warning to the manager but not block approval. Public holidays per country shouldn't count against the balance. Employees can cancel a request until it starts; cancelling an approved request notifies the manager. Everything needs an audit trail for HR."""),
("eu", "csv-pages", """I have a big list of addresses in a spreadsheet and I need them split into separate columns: street, house number, postcode and city. They're all German addresses but typed in different formats by different people. Here's a sample:

Hauptstraße 12, 10115 Berlin
Am Markt 3a 04109 Leipzig
80331 München, Sendlinger Str. 45
Königsallee 92 - 40212 Düsseldorf
Bahnhofstr.7,70173 Stuttgart
Lange Reihe 101 20099 Hamburg
Unter den Linden 77; 10117 Berlin
50667 Köln Hohe Str. 160-168
Schloßstraße 1 01067 Dresden
Marktplatz 10 A, 69117 Heidelberg

There are about 12,000 rows, so I can't do it by hand. Could you (1) show me the split result for these ten as a table so I can check the logic, and (2) give me a formula for Google Sheets or a small Python script with a regular expression that handles these variations (house numbers with letters and ranges, postcode first or last, various separators)? Also flag any addresses the pattern can't handle so I can fix them manually."""),
("wc", "roleplay", """Write a funny dialogue (about 500 words) between two houseplants, a dramatic fiddle-leaf fig called Fernando and a calm, unbothered snake plant called Sue, who live on the same windowsill in a small flat. Their owner, a 29-year-old graphic designer called Maya, has just come back from a two-week holiday, during which her neighbour was supposed to water them but clearly forgot. Fernando is convinced he's dying and is giving a farewell speech; Sue points out she's been fine without water for two weeks and could go another two. Include a moment where Maya walks in, sees them, says something like "oh no, my babies", and the plants have to pretend to be normal plants. End with Maya watering Fernando and him immediately acting like nothing happened. Please format it like a short script, with stage directions in italics, and keep the humour gentle so I can read it to my 10-year-old niece, who loves plants."""),
("rw", "travel-q", """Can you plan a 4-day itinerary in Lisbon for my parents, who are in their late sixties? They like history, good food and gardens, but my dad has a bad knee, so they can't do steep hills or lots of stairs for long, which I know is a challenge in Lisbon. They're staying in a hotel near Avenida da Liberdade and will be there from Tuesday to Friday in early May.

Things they'd like to see: the Jerónimos Monastery and Belém, the Gulbenkian Museum and its garden, a fado evening (not too touristy, not too late), the tile museum, and maybe a day trip to Sintra if it can be done without too much walking. They'd also love a couple of restaurant suggestions for traditional Portuguese food, one nicer dinner and some casual lunches.

Please organise it day by day with morning, afternoon and evening, note how to get around with minimal walking (trams, tuk-tuks, taxis, the Santa Justa lift?), mention which places are closed on which days, and suggest where they could rest in between."""),
("ru", "summary-pages", """Below is the abstract of a paper my supervisor sent me. Can you explain it in plain English, what they did and what they found, and whether the conclusion follows from the results? I'm a first-year master's student in public health.

"Background: Urban green space has been associated with improved mental health, but causal evidence is limited. Methods: We used a natural experiment arising from the conversion of 58 vacant lots into small parks in a mid-sized US city between 2015 and 2019, compared with 61 matched vacant lots that were not converted. Residents living within 400 m of the lots (n = 1,840) completed validated depression (PHQ-9) and anxiety (GAD-7) questionnaires before and 18 months after conversion. We estimated difference-in-differences models with individual fixed effects. Results: Residents near converted lots showed a mean reduction of 1.3 points in PHQ-9 scores (95% CI −2.1 to −0.5) relative to controls; changes in GAD-7 were not statistically significant (−0.6, 95% CI −1.4 to 0.2). Effects were larger among residents below the poverty line. Conclusions: Greening vacant urban land reduced depressive symptoms and may be a cost-effective population mental health intervention.\""""),
("wu", "rewrite-tone", """Please shorten this text for a poster at our climbing gym. It needs to fit on an A4 page in large font, so about 80 words maximum, with clear headings. Keep all the rules, drop the explanations.

Dear members, we've noticed that over the last few weeks there have been a number of near misses in the bouldering area and we'd like to remind everyone of a few important safety rules. Please never walk or sit on the mats underneath climbers, even if you think they're not going to fall, because falls are often unexpected and could cause serious injuries to both of you. Before you start a problem, check that nobody else is climbing on a route that crosses yours. Children under 14 must be supervised by an adult at all times in the bouldering area and should not use the top-out wall. Chalk should be kept in a chalk bag or chalk ball – loose chalk makes the floor slippery and gets into the air. When you fall or jump down, try to land on both feet and roll backwards rather than putting your hands out. Finally, please brush holds after you've used them, and report any loose or spinning holds to a member of staff straight away so we can fix them. Thanks for helping us keep the gym safe and fun for everyone!"""),
("c", "lonely-pages", """You know what, I just want to talk about something nice for once. Everyone's been so stressed lately, at work and in the news and everything. So here's my nice thing: this weekend I finally finished the quilt I've been making for my first grandchild, who's due in March. It took me almost a year. I used fabric from my daughter's old baby clothes, a bit of my late husband's favourite blue shirt in the middle, and some yellow squares with little ducks I found at a market in Harrogate. My stitching isn't perfect, there's one corner that's wonky because I did it late at night with the wrong glasses, but my daughter cried when I showed her a photo. I'm 67 and I only started quilting when I retired, my friend Margaret taught me and she's much better than me. Do you like hearing about things like this? What's something that made people happy that you've heard about recently? Or tell me what you'd put in a quilt if you could make one."""),
("c", "chat-tech", """Honestly I just need to vent about computers for a minute, I'm not expecting a fix. My laptop decided to install a huge update right before my presentation this morning, the one I'd been preparing for two weeks for the regional managers. I'd closed the lid last night, opened it at 8:50 for a 9:00 meeting, and it said "Working on updates 12%, don't turn off your computer". 12%! I stood there watching the little dots spin while everyone was joining the video call. I ended up presenting from my phone, squinting at my own slides, while my manager shared the screen from her laptop and kept going to the wrong slide. Then at 9:40, when it was all over, the laptop finished updating and greeted me with a cheerful "Hi, we've got some new features for you". I nearly threw it out of the window. The presentation went okay in the end, people said nice things, but my heart rate is only just going back to normal. Please tell me this happens to other people and that I'm not cursed."""),
("rc", "career-q", """My 15-year-old son has told us he wants to leave school after his GCSEs next year and do an apprenticeship as an electrician instead of A-levels. We were both the first in our families to go to university and always assumed he'd do the same, so my first reaction wasn't great and we had an argument. He's bright but bored at school, loves fixing things, has been rewiring lamps and building PCs since he was twelve, and his grades are mostly 6s and 7s predicted. He's very set on it.

I want to support him properly this time. Could you help me understand what electrical apprenticeships in England involve (levels, how long, pay while training, what qualifications he'd end up with), what the job market and earnings look like for qualified electricians, especially with solar panels and EV chargers, whether he could still go to university later if he changed his mind (degree apprenticeships?), and what questions we should ask colleges and employers? Also, how do other parents handle this kind of conversation without it turning into a fight?"""),
("er", "chat-tech", """I'm a complete beginner and kind of embarrassed to ask this, but my 10-year-old wants to learn to make games and I'd like to learn with her so we can do it together on weekends. We have a Windows laptop and an old iPad. I did a bit of HTML in the 2000s and that's it. I've heard of Scratch, Roblox Studio, Godot, Unity, and Python with Pygame, and I'm overwhelmed. She loves Minecraft and Stardew Valley and draws pixel art characters on paper all the time.

What would you suggest we start with, and in what order? Ideally something where she can see results quickly so she doesn't lose interest, but that also teaches real programming ideas so it's not a dead end. How much time per week is realistic, and are there good free courses or books for a parent and child learning together? Also, is there a simple first project you'd recommend for our first weekend — maybe something with her own drawn characters? I'd love a little roadmap for the first couple of months."""),
("ur", "classify", """Please read these 12 messages from our community forum and flag which ones break our rules. Rules: (1) no personal attacks, (2) no spam or self-promotion without mod approval, (3) no sharing of personal data, (4) stay on topic (home gardening). For each message give: number, OK or the rule broken, and a one-line reason. Don't rewrite the messages.

1. "My tomatoes have yellow leaves at the bottom, is it overwatering or a deficiency?"
2. "Only an idiot would plant courgettes in March, honestly."
3. "Check out my new gardening shop at www.greenthumbdeals.example, 20% off this week!!"
4. "Does anyone know a good plumber in Bath? Not garden related, sorry."
5. "Here's a photo of my allotment neighbour's plot, his name is Kevin Marsh and he lives at 14 Elm Road, look at the mess."
6. "Companion planting marigolds with beans worked really well for me this year."
7. "Anyone else's slugs out in force after the rain? Beer traps helped a bit."
8. "You clearly have no clue what you're talking about, stop giving advice."
9. "I wrote a free guide on composting, mods said it was fine to share: link in my profile."
10. "What's everyone's opinion on the election?"
11. "My apple tree has black spots on the leaves — scab? Photos attached."
12. "DM me your phone number and I'll send you seeds for free.\""""),
]

PROMPTS = _p1 + _p2 + _p3 + _p4 + _p5


def main() -> None:
    texts = [t for _, _, t in PROMPTS]
    short = [t[:60] for t in texts if len(t) <= SHORT]
    assert not short, short
    far = fresh(texts, known_and_pools("fresh_long.jsonl"))
    near = [t[:60] for t, ok in zip(texts, far, strict=True) if not ok]
    near += [t[:60] for i, t in enumerate(texts) if i and not fresh([t], texts[:i])[0]]
    assert not near, near
    for codes, group, text in PROMPTS:
        assert group in SOURCES, group
        print(json.dumps({"text": text, "accept": [AGENTS[c] for c in codes], "source": f"routes21:{group}",
                          "style": "long"}, ensure_ascii=False))
    print(f"# {len(PROMPTS)} prompts", file=sys.stderr)


if __name__ == "__main__":
    main()
