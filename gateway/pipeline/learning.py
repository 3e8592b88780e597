"""Learning from admins: `kanal learn` (train on the older decisions, evaluate against the
active model on the most recent ones, activate only when better), its schedule, and the
active model that every process's pipeline uses, picked up from the store within
`REFRESH_S` of its activation.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.base.polling import Poller
from gateway.base.runtime import Runtime
from gateway.store import LabelledReport, Store, StoredModel
from normalizers.canonical import categorize, not_a_complaint_score
from normalizers.category import UNKNOWN_CODE, Taxonomy, default_taxonomy
from normalizers.textmodel import Example, TextModels, train

log = logging.getLogger("kanal.learning")

REFRESH_S = 30.0  # how often each process looks for a newly active model
HOLDOUT_SHARE = 0.2  # the most recent fifth of the labelled reports is for evaluation
MAX_HOLDOUT = 5_000
NOISE_THRESHOLD = 0.5  # a noise score from here on counts as "not a complaint"
# A wrong category guess counts as this many right ones lost when models are compared.
WRONG_GUESS_COST = 2.0


@dataclass(frozen=True, slots=True)
class Figures:
    """How often a classifier agreed with the admins on held-out decisions."""

    category_accuracy: float | None  # None when the held-out set had no category
    noise_accuracy: float | None
    category_n: int
    noise_n: int
    category_precision: float | None = None  # right where it named a category (not unknown)
    category_committed: int = 0

    @property
    def category_score(self) -> float | None:
        """Right answers less twice the wrong ones, per decision: a wrong guess costs the
        admin the fix and risks a report sent to the wrong agency; "unknown" costs a pick."""
        if self.category_accuracy is None:
            return None
        wrong = (self.category_committed / self.category_n) - self.category_accuracy
        return self.category_accuracy - WRONG_GUESS_COST * wrong

    def _key(self) -> tuple[float, float]:
        score = self.category_score
        return (
            -3.0 if score is None else score,
            -1.0 if self.noise_accuracy is None else self.noise_accuracy,
        )

    def better_than(self, other: Figures) -> bool:
        """Category score first (more right answers bought with more wrong guesses is not
        better); on a tie, the not-a-complaint accuracy."""
        return self._key() > other._key()

    def text(self) -> str:
        def pct(value: float | None, n: int) -> str:
            return "   n/a" if value is None else f"{100 * value:5.1f}% of {n}"

        return (
            f"category {pct(self.category_accuracy, self.category_n)} "
            f"(right where it names one {pct(self.category_precision, self.category_committed)}), "
            f"not-a-complaint {pct(self.noise_accuracy, self.noise_n)}"
        )


def evaluate(
    models: TextModels | None, examples: Sequence[LabelledReport], taxonomy: Taxonomy
) -> Figures:
    """Accuracy of `build_report`'s category and noise decisions with these models (None:
    the keyword rules alone); "unknown" counts as wrong."""
    category_right = category_n = committed = noise_right = noise_n = 0
    for example in examples:
        if example.category is not None:
            category_n += 1
            guess = categorize(example.text, taxonomy, None, models)
            category_right += guess.code == example.category
            committed += guess.code != UNKNOWN_CODE
        if example.noise is not None:
            noise_n += 1
            score = not_a_complaint_score(example.text, taxonomy, models)
            noise_right += (score >= NOISE_THRESHOLD) == example.noise
    return Figures(
        category_right / category_n if category_n else None,
        noise_right / noise_n if noise_n else None,
        category_n,
        noise_n,
        category_right / committed if committed else None,
        committed,
    )


def split(labelled: Sequence[LabelledReport]) -> tuple[list[LabelledReport], list[LabelledReport]]:
    """(older to train on, most recent to evaluate on), by each report's latest decision."""
    held = min(MAX_HOLDOUT, max(1, round(len(labelled) * HOLDOUT_SHARE)))
    return list(labelled[:-held]), list(labelled[-held:])


@dataclass(frozen=True, slots=True)
class Trained:
    data: bytes
    new: Figures
    active: Figures


def train_and_compare(
    to_train: Sequence[LabelledReport],
    to_evaluate: Sequence[LabelledReport],
    active_data: bytes | None,
) -> Trained:
    """Pure and CPU-bound: run in a child process, away from the event loop."""
    taxonomy = default_taxonomy()
    new = train([Example(e.text, e.category, e.noise) for e in to_train])
    active = TextModels.from_bytes(active_data) if active_data else None
    return Trained(
        new.to_bytes(),
        evaluate(new, to_evaluate, taxonomy),
        evaluate(active, to_evaluate, taxonomy),
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one `kanal learn` did, for the command's output and the scheduler's log."""

    labelled: int
    trained_on: int = 0
    evaluated_on: int = 0
    active_id: int | None = None
    active: Figures | None = None
    new: Figures | None = None
    model_id: int | None = None  # the model saved (None on a dry run)
    activated: bool = False
    dry_run: bool = False
    skipped: str | None = None

    def lines(self) -> list[str]:
        if self.skipped:
            return [self.skipped]
        assert self.active is not None and self.new is not None
        active_name = f"model {self.active_id}" if self.active_id else "keyword rules"
        lines = [
            f"labelled reports: {self.labelled} ({self.trained_on} to train on, the most "
            f"recent {self.evaluated_on} to evaluate on)",
            f"active ({active_name}): {self.active.text()}",
            f"new:{' ' * (len(active_name) + 6)}{self.new.text()}",
        ]
        if self.dry_run:
            verdict = "better" if self.activated else "not better"
            lines.append(f"dry run: the new model is {verdict}; nothing was saved or activated")
        elif self.activated:
            lines.append(f"activated model {self.model_id}")
        else:
            lines.append(f"not activated: the new model is not better than the {active_name}")
        return lines


async def learn(store: Store, min_decisions: int, *, dry_run: bool, now: datetime) -> Outcome:
    """Train, evaluate both on the most recent decisions, activate the new one if better."""
    labelled = await store.labelled_reports()
    if len(labelled) < min_decisions:
        return Outcome(
            len(labelled),
            dry_run=dry_run,
            skipped=f"{len(labelled)} labelled reports, fewer than learning.min_decisions = "
            f"{min_decisions}: nothing trained, the active classifier stays",
        )
    to_train, to_evaluate = split(labelled)
    active = await store.active_text_model()
    active_data = await store.text_model_data(active.id) if active else None
    loop = asyncio.get_running_loop()
    # A child process: fitting takes seconds of CPU that would stall every request here.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        trained = await loop.run_in_executor(
            pool, train_and_compare, to_train, to_evaluate, active_data
        )
    better = trained.new.better_than(trained.active)
    model_id = None
    if not dry_run:
        model_id = await store.save_text_model(
            # A model that is not better is kept as a record of its figures, not its weights.
            trained.data if better else b"",
            trained_at=now,
            trained_on=len(to_train),
            last_decision_id=to_train[-1].last_decision_id if to_train else 0,
            evaluated_on=len(to_evaluate),
            category_accuracy=trained.new.category_accuracy,
            noise_accuracy=trained.new.noise_accuracy,
            activate=better,
        )
    return Outcome(
        labelled=len(labelled),
        trained_on=len(to_train),
        evaluated_on=len(to_evaluate),
        active_id=active.id if active else None,
        active=trained.active,
        new=trained.new,
        model_id=model_id,
        activated=better,
        dry_run=dry_run,
    )


# --- the active model in every process ----------------------------------------------------


class ActiveModels:
    """This process's copy of the active text model (None: the keyword rules answer)."""

    def __init__(self) -> None:
        self.current: TextModels | None = None
        self.stored: StoredModel | None = None

    async def refresh(self, store: Store) -> bool:
        """Load the active model if it changed; whether it did."""
        active = await store.active_text_model()
        if active is None or (self.stored is not None and active.id == self.stored.id):
            return False
        data = await store.text_model_data(active.id)
        if not data:
            return False
        self.current = await asyncio.to_thread(TextModels.from_bytes, data)
        self.stored = active
        log.info(
            "text model %d active (trained %s on %d decisions)",
            active.id,
            active.trained_at.isoformat(),
            active.trained_on,
        )
        return True


def active_models(runtime: Runtime) -> ActiveModels:
    return runtime.part(ActiveModels, ActiveModels)


async def run_model_refresh(runtime: Runtime) -> None:
    """Every process: look for a newly activated model every REFRESH_S, until cancelled."""
    models = active_models(runtime)
    while True:
        try:
            await models.refresh(runtime.store)
        except Exception as exc:  # the store away, a model that does not load: keep going
            log.warning("text model not refreshed (%s: %s)", type(exc).__name__, exc)
        await asyncio.sleep(REFRESH_S)


# --- the schedule ----------------------------------------------------------------------------


async def scheduled_learn(runtime: Runtime) -> None:
    """`kanal learn` when `learning.retrain_every_s` has passed since the last training
    and admins decided something since."""
    settings = runtime.settings.learning
    now = runtime.store.clock()
    last = await runtime.store.last_training_at()
    if last is not None and now - last < timedelta(seconds=settings.retrain_every_s):
        return
    outcome = await learn(runtime.store, settings.min_decisions, dry_run=False, now=now)
    for line in outcome.lines():
        log.info("learn: %s", line)
    if outcome.activated:
        await active_models(runtime).refresh(runtime.store)


LEARNING_POLLER = Poller(
    name="learning",
    enabled=lambda runtime: runtime.settings.learning.retrain_every_s > 0,
    # Checked often, trained only when due: a restart does not postpone a training.
    interval_s=lambda runtime: min(runtime.settings.learning.retrain_every_s, 600.0),
    run=scheduled_learn,
)
