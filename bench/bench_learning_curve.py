"""The learning curve: how kanal's categories improve as admins decide, next to the keyword
rules alone, replayed through a real kanal.

Run: .venv/bin/python bench/bench_learning_curve.py [--decisions 5000] [--retrain-every 250]
     [--checkpoints 100,500,1000,5000] [--seed 1] [--new-words 0.3] [--noise 0.12]
     [--learn-process] [--workdir DIR]
About 4 to 5 minutes with the defaults on a busy 2-core machine; the figures depend only
on the options (the same seed gives the same table).

The data is made up (bench/synthetic_decisions.py; never shipped, never trained into a
shipped model): complaints written around the keywords of config/taxonomy.toml with
misspellings, slang and place words; by default 12% greetings, thanks and spam that an
admin rejects as not a complaint, and 30% of the complaints about 16 everyday categories in
words the taxonomy does not list (NEW_WORDS there: "comberan ga ngalir", "bohlam di tiang
ga nyala"), which the keyword rules cannot know and only learning can. The figures show
that the machinery learns; they are not what real admins will see (no real labelled
categories exist).

In arrival order, each made-up message is a signed generic SMS (non-geo) to an in-process
kanal on a temporary SQLite store (in --workdir, by default /dev/shm when there is one:
fsync changes no figure here, only the time), and the pipeline makes it a report. Then a
province admin, through the admin API, reads the queue (what kanal served: category,
source, confidence, noise_score, made before the decision: the prediction measured here),
and either sets the true category and a kelurahan (PATCH with If-Match) and submits, or
rejects it as not_a_complaint. Every --retrain-every decisions kanal learns: the function
`kanal learn` runs, called here (its training in a child process, as always), or with
--learn-process the command itself as a process on the same store; it activates the new
model only when better on the most recent decisions. The serving process then does what
it does every 30 s on its own (loads the active model), at once, and must hold the active
model before the next reports are served.

The table: for each window of reports since the previous checkpoint, among complaints,
accuracy where kanal committed (a category that is not "unknown") and coverage (the share
it committed on), for kanal as it served them (rules + model; "model" is the share the
model answered) and for the keyword rules alone on the same texts; the same for the
complaints in new words only; then precision / recall of "not a complaint"
(noise_score >= 0.5) over all messages, as served and by the keyword rules' noise score.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.synthetic_decisions import Decision, decisions  # noqa: E402
from connectors.base import kanal_signature  # noqa: E402
from gateway.pipeline.learning import NOISE_THRESHOLD, active_models, learn  # noqa: E402
from normalizers.category import UNKNOWN_CODE, classify, default_taxonomy, noise_score  # noqa: E402
from tests.conftest import SECRETS, Kanal, start_kanal  # noqa: E402

CHECKPOINTS = (100, 500, 1_000, 5_000)
BATCH = 50  # messages sent before the admin works through the queue; never across a retrain
KELURAHAN = "31.71.06.1001"  # where the admin places every complaint (Menteng)
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
RAM_DISK = "/dev/shm"


@dataclass(frozen=True, slots=True)
class Served:
    """One message: what kanal served before the admin decided, and what the admin decided."""

    number: int  # 1-based, in arrival order
    truth: str | None  # the admin's category; None: rejected as not a complaint
    new_words: bool
    category: str  # as served
    source: str  # rules | model
    confidence: float
    noise_score: float
    rules: str  # the keyword rules alone on the same text
    rules_noise: float
    model_id: int | None  # the model the serving process held (None: rules only)


@dataclass(frozen=True, slots=True)
class Retraining:
    after: int  # decisions made when `kanal learn` ran
    output: list[str]  # what it printed
    serving: int | None  # the model the serving process holds afterwards
    seconds: float


@dataclass(slots=True)
class Replay:
    served: list[Served]
    retrainings: list[Retraining]


def sms_body(number: int, text: str) -> bytes:
    # One sender per message: kanal joins a sender's messages in a short window into one.
    return json.dumps(
        {
            "id": f"curve-{number}",
            "from": f"0812{number:08d}",
            "to": "1708",
            "text": text,
            "received_at": (T0 + timedelta(seconds=30 * number)).isoformat(),
        }
    ).encode()


async def send(kanal: Kanal, number: int, text: str) -> None:
    body = sms_body(number, text)
    headers = {
        "X-Kanal-Signature": kanal_signature(SECRETS["sms_generic"], body),
        "Content-Type": "application/json",
    }
    r = await kanal.client.post("/webhooks/sms/generic", data=body, headers=headers)
    if r.status != 200:
        raise RuntimeError(f"message {number}: webhook answered {r.status}: {await r.text()}")


async def queue(kanal: Kanal, token: str, expected: int) -> dict[int, dict[str, Any]]:
    """The queue's reports of this bench, by message number."""
    found: dict[int, dict[str, Any]] = {}
    cursor = None
    while True:
        url = "/api/v1/queue?limit=500" + (f"&cursor={cursor}" if cursor else "")
        r = await kanal.client.get(url, headers={"Authorization": f"Bearer {token}"})
        if r.status != 200:
            raise RuntimeError(f"queue answered {r.status}: {await r.text()}")
        page = await r.json()
        for item in page["items"]:
            if str(item.get("external_id", "")).startswith("curve-"):
                found[int(item["external_id"].split("-")[1])] = item
        cursor = page["next_cursor"]
        if not cursor:
            break
    if len(found) != expected:
        raise RuntimeError(f"{expected} reports expected in the queue, {len(found)} found")
    return found


async def decide(kanal: Kanal, token: str, report: dict[str, Any], decision: Decision) -> None:
    """The admin's decision through the API: category and place then submit, or reject."""
    url = f"/api/v1/reports/{report['id']}"
    auth = {"Authorization": f"Bearer {token}"}
    if decision.category is None:
        r = await kanal.client.post(
            url + "/reject", json={"reason": "not_a_complaint"}, headers=auth
        )
        expected = 200
    else:
        r = await kanal.client.patch(
            url,
            json={"category": decision.category, "kelurahan_code": KELURAHAN},
            headers={**auth, "If-Match": str(report["version"])},
        )
        if r.status != 200:
            raise RuntimeError(f"PATCH {report['id']}: {r.status}: {await r.text()}")
        r = await kanal.client.post(url + "/submit", headers=auth)
        expected = 202
    if r.status != expected:
        raise RuntimeError(f"{r.method} {r.url.path}: {r.status}: {await r.text()}")


async def run_learn(kanal: Kanal, config: Path, *, as_process: bool) -> list[str]:
    """What `kanal learn` printed: run as its own process, or its function in this one."""
    if not as_process:
        settings = kanal.runtime.settings.learning
        outcome = await learn(
            kanal.store, settings.min_decisions, dry_run=False, now=kanal.store.clock()
        )
        return outcome.lines()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway.cli", "learn", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        # Only the bench's config: a KANAL_DATABASE_URL around would point it elsewhere.
        env={k: v for k, v in os.environ.items() if not k.startswith("KANAL_")},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kanal learn exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout.splitlines()


async def retrain(kanal: Kanal, config: Path, after: int, *, as_process: bool) -> Retraining:
    """`kanal learn`, then the serving process loads the active model (what it does every
    30 s on its own) and must hold it."""
    started = time.monotonic()
    output = await run_learn(kanal, config, as_process=as_process)
    models = active_models(kanal.runtime)
    await models.refresh(kanal.store)
    active = await kanal.store.active_text_model()
    serving = models.stored.id if models.stored else None
    if (active.id if active else None) != serving:
        raise RuntimeError(f"the store's active model is {active}, the process serves {serving}")
    return Retraining(after, output, serving, time.monotonic() - started)


async def replay(
    directory: Path,
    stream: Sequence[Decision],
    retrain_every: int,
    *,
    min_decisions: int = 50,
    learn_as_process: bool = False,
    progress: Callable[[str], None] = lambda line: None,
) -> Replay:
    """Every decision of `stream` through a real kanal in `directory`, retraining as it goes."""
    extra = f"\n[learning]\nretrain_every_s = 0\nmin_decisions = {min_decisions}\n"
    kanal = await start_kanal(directory, extra=extra)
    config = directory / "kanal.toml"
    taxonomy = default_taxonomy()
    out = Replay([], [])
    try:
        token = await kanal.token("province", "admin", name="curve-admin")
        done = 0
        while done < len(stream):
            end = min(done + BATCH, len(stream), (done // retrain_every + 1) * retrain_every)
            for number in range(done + 1, end + 1):
                await send(kanal, number, stream[number - 1].text)
            await kanal.drain()
            held = active_models(kanal.runtime).stored
            reports = await queue(kanal, token, end - done)
            for number in range(done + 1, end + 1):
                decision, report = stream[number - 1], reports[number]
                category = report["category"]
                out.served.append(
                    Served(
                        number=number,
                        truth=decision.category,
                        new_words=decision.new_words,
                        category=category["code"],
                        source=category["source"],
                        confidence=category["confidence"],
                        noise_score=report["noise_score"],
                        rules=classify(report["text"], taxonomy).code,
                        rules_noise=noise_score(report["text"], taxonomy),
                        model_id=held.id if held else None,
                    )
                )
                await decide(kanal, token, report, decision)
            done = end
            if done % retrain_every == 0 and done < len(stream):
                retraining = await retrain(kanal, config, done, as_process=learn_as_process)
                out.retrainings.append(retraining)
                progress(
                    f"  learn after {done:>5}: {retraining.output[-1] if retraining.output else ''}"
                    f" ({retraining.seconds:.1f} s)"
                )
    finally:
        await kanal.close()
    return out


# --- the curve --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Committed:
    """Among complaints: how many, how many it answered a category for, how many rightly."""

    n: int = 0
    committed: int = 0
    right: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.right / self.committed if self.committed else None

    @property
    def coverage(self) -> float | None:
        return self.committed / self.n if self.n else None


@dataclass(frozen=True, slots=True)
class Detection:
    """ "Not a complaint" as a yes/no: hits, false alarms, misses."""

    hits: int = 0
    false_alarms: int = 0
    misses: int = 0

    @property
    def precision(self) -> float | None:
        flagged = self.hits + self.false_alarms
        return self.hits / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        actual = self.hits + self.misses
        return self.hits / actual if actual else None


@dataclass(frozen=True, slots=True)
class Window:
    first: int
    last: int
    kanal: Committed
    rules: Committed
    by_model: int  # complaints kanal's model answered
    kanal_new: Committed  # complaints in words the taxonomy does not list
    rules_new: Committed
    kanal_noise: Detection
    rules_noise: Detection


def committed(pairs: Sequence[tuple[str, str | None]]) -> Committed:
    answered = [(said, truth) for said, truth in pairs if said != UNKNOWN_CODE]
    return Committed(len(pairs), len(answered), sum(said == truth for said, truth in answered))


def detection(pairs: Sequence[tuple[float, bool]]) -> Detection:
    flagged = [(score >= NOISE_THRESHOLD, actual) for score, actual in pairs]
    return Detection(
        sum(f and a for f, a in flagged),
        sum(f and not a for f, a in flagged),
        sum(a and not f for f, a in flagged),
    )


def window(rows: Sequence[Served]) -> Window:
    complaints = [s for s in rows if s.truth is not None]
    new = [s for s in complaints if s.new_words]
    return Window(
        first=rows[0].number,
        last=rows[-1].number,
        kanal=committed([(s.category, s.truth) for s in complaints]),
        rules=committed([(s.rules, s.truth) for s in complaints]),
        by_model=sum(s.source == "model" for s in complaints),
        kanal_new=committed([(s.category, s.truth) for s in new]),
        rules_new=committed([(s.rules, s.truth) for s in new]),
        kanal_noise=detection([(s.noise_score, s.truth is None) for s in rows]),
        rules_noise=detection([(s.rules_noise, s.truth is None) for s in rows]),
    )


def curve(served: Sequence[Served], checkpoints: Sequence[int]) -> list[Window]:
    """One window per checkpoint reached (reports since the previous one), and the end."""
    ends = sorted({c for c in checkpoints if 0 < c < len(served)} | {len(served)})
    out, start = [], 0
    for end in ends:
        out.append(window(served[start:end]))
        start = end
    return out


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


# Groups of (column, width) of the table, the group's title centered over it.
COLUMNS: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = (
    ("", (("decisions", 11), ("compl.", 6))),
    ("kanal as served", (("acc.", 5), ("cov.", 5), ("model", 5))),
    ("keyword rules", (("acc.", 6), ("cov.", 6))),
    ("in new words only", (("n", 4), ("kanal acc.", 10), ("cov.", 5), ("rules cov.", 10))),
    ("not a complaint", (("kanal P", 7), ("R", 5), ("rules P", 7), ("R", 5))),
)


def table(windows: Sequence[Window]) -> list[str]:
    """The curve as text: one line per window, percentages of complaints."""

    def line(cells: Sequence[Sequence[str]]) -> str:
        groups = []
        for (_, columns), values in zip(COLUMNS, cells, strict=True):
            groups.append(
                " ".join(
                    f"{v:<{w}}" if i == 0 and not groups else f"{v:>{w}}"
                    for i, ((_, w), v) in enumerate(zip(columns, values, strict=True))
                )
            )
        return " | ".join(groups).rstrip()

    def width(columns: Sequence[tuple[str, int]]) -> int:
        return sum(w for _, w in columns) + len(columns) - 1

    lines = [
        " | ".join(f"{title:^{width(columns)}}" for title, columns in COLUMNS).rstrip(),
        line([[name for name, _ in columns] for _, columns in COLUMNS]),
    ]
    for w in windows:
        n = w.kanal.n
        lines.append(
            line(
                [
                    [f"{w.first:,}-{w.last:,}", str(n)],
                    [
                        pct(w.kanal.accuracy),
                        pct(w.kanal.coverage),
                        pct(w.by_model / n if n else None),
                    ],
                    [pct(w.rules.accuracy), pct(w.rules.coverage)],
                    [
                        str(w.kanal_new.n),
                        pct(w.kanal_new.accuracy),
                        pct(w.kanal_new.coverage),
                        pct(w.rules_new.coverage),
                    ],
                    [
                        pct(w.kanal_noise.precision),
                        pct(w.kanal_noise.recall),
                        pct(w.rules_noise.precision),
                        pct(w.rules_noise.recall),
                    ],
                ]
            )
        )
    return lines


async def main_async(args: argparse.Namespace) -> int:
    stream = decisions(
        args.decisions, seed=args.seed, noise_share=args.noise, new_words_share=args.new_words
    )
    checkpoints = [int(c) for c in args.checkpoints.split(",") if c.strip()]
    print(
        f"{len(stream):,} made-up decisions (seed {args.seed}): "
        f"{sum(d.noise for d in stream):,} not complaints, "
        f"{sum(d.new_words for d in stream):,} complaints in words the taxonomy does not list; "
        f"`kanal learn` every {args.retrain_every} decisions",
        flush=True,
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kanal-curve-", dir=args.workdir) as directory:
        result = await replay(
            Path(directory),
            stream,
            args.retrain_every,
            learn_as_process=args.learn_process,
            progress=lambda line: print(line, flush=True),
        )
    elapsed = time.monotonic() - started
    print()
    for line in table(curve(result.served, checkpoints)):
        print(line)
    learn_s = sum(r.seconds for r in result.retrainings)
    serving = [None, *(r.serving for r in result.retrainings)]
    activated = sum(a != b for a, b in itertools.pairwise(serving))
    print(
        f"\n{len(result.served):,} decisions in {elapsed:.0f} s "
        f"({len(result.retrainings)} trainings, {activated} activated, {learn_s:.0f} s of them); "
        f"acc. = accuracy where it committed, cov. = share committed on, % of complaints"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=5_000)
    parser.add_argument("--retrain-every", type=int, default=250)
    parser.add_argument("--checkpoints", default=",".join(str(c) for c in CHECKPOINTS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--new-words", type=float, default=0.3, help="share of complaints in words not listed"
    )
    parser.add_argument("--noise", type=float, default=0.12, help="share of not-a-complaint")
    parser.add_argument(
        "--learn-process",
        action="store_true",
        help="run `kanal learn` as its own process (slower: it imports kanal each time)",
    )
    parser.add_argument(
        "--workdir",
        default=RAM_DISK if Path(RAM_DISK).is_dir() else None,
        help="where the temporary store goes (default: a RAM disk when there is one)",
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
