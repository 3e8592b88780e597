"""Text models learned from admins' decisions: the category of a complaint and whether a
message is one at all, as linear models over word and character n-grams.

scikit-learn fits them (`train`); predicting is plain numpy here, because one
scikit-learn call per message costs about a millisecond and a whole report has half of
that. A model is stored as a `.npz` of arrays and read back with `allow_pickle=False`: a
row in the store can never run code.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from normalizers.text import normalize_for_matching

FORMAT_VERSION = 1
NOISE = "noise"
COMPLAINT = "complaint"
# Below this the category model stays silent and the keyword rules answer.
MIN_MODEL_CONFIDENCE = 0.5
# Where a keyword rule found the category, the model contradicts it only from here on: a model
# trained on a few hundred decisions is often surest where it is wrong.
MIN_MODEL_CONFIDENCE_AGAINST_RULES = 0.8
MAX_FEATURES = 50_000
MAX_WORDS = 200  # a long e-mail says what it is about in its first lines
MAX_CACHED_WORDS = 65_536  # words whose pieces' features a model keeps


_NUMBER = re.compile(r"(?:\D*\d){4}").match


def terms(text: str) -> list[str]:
    """Features of a text: words, word pairs, and 3- and 4-letter pieces of each word
    (which survive typos and the affixes of Indonesian: "kebanjiran", "dibenerin")."""
    # Numbers of four digits or more (phones, NIK, house numbers) say nothing of the category
    # and would put a citizen's number in the model's vocabulary: left out.
    words = _words(text)
    out = [f"w {w}" for w in words]
    out += [f"b {a} {b}" for a, b in itertools.pairwise(words)]
    for word in words:
        out += _pieces(word)
    return out


def _words(text: str) -> list[str]:
    return [w for w in normalize_for_matching(text).split()[:MAX_WORDS] if not _NUMBER(w)]


@functools.lru_cache(maxsize=65_536)
def _pieces(word: str) -> tuple[str, ...]:
    # Words repeat from message to message: their pieces are cut once.
    padded = f"<{word}>"
    return tuple(padded[i : i + n] for n in (3, 4) for i in range(len(padded) - n + 1))


@dataclass(frozen=True, slots=True)
class Example:
    """One admin decision as a training example: category code, or whether it is noise."""

    text: str
    category: str | None = None
    noise: bool | None = None


@dataclass(frozen=True, slots=True)
class Head:
    """One linear classifier over the shared features: weights (features × classes)."""

    classes: tuple[str, ...]
    weights: np.ndarray  # float32, (n_features, n_classes); one column when binary
    bias: np.ndarray  # float32, (n_classes,)

    def probabilities(self, index: np.ndarray, values: np.ndarray) -> np.ndarray:
        scores = values @ self.weights[index] + self.bias
        positive = 1.0 / (1.0 + np.exp(-scores))
        if len(self.classes) == 2:
            return np.array([1.0 - positive[0], positive[0]])
        # One-vs-rest, normalized like scikit-learn's predict_proba for it.
        total = positive.sum()
        return positive / total if total > 0 else positive


@dataclass(frozen=True, slots=True)
class Prediction:
    code: str
    confidence: float


class TextModels:
    """The category and not-a-complaint heads over one vocabulary."""

    def __init__(
        self,
        vocabulary: Sequence[str],
        idf: np.ndarray,
        category: Head | None,
        noise: Head | None,
    ) -> None:
        self.vocabulary = {term: i for i, term in enumerate(vocabulary)}
        self.idf = idf.astype(np.float32)
        self.category_head = category
        self.noise_head = noise
        # build_report asks both heads about the same text: vectorized once.
        self._piece_features: dict[str, tuple[int, ...]] = {}
        self._last: tuple[str, tuple[np.ndarray, np.ndarray]] | None = None

    def vectorize(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Sublinear tf-idf, L2-normalized, as (feature indexes, values): the same
        transform scikit-learn's TfidfVectorizer(sublinear_tf=True) applied in training."""
        last = self._last
        if last is not None and last[0] == text:
            return last[1]
        found = self._vectorize(text)
        self._last = (text, found)
        return found

    def _vectorize(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        # The terms of `terms(text)` in its order (words, pairs, then each word's pieces),
        # each word's pieces looked up in the vocabulary once per model: the counts, and so
        # the floats summed from them, come in the same order as term by term.
        counts: dict[int, int] = {}
        lookup = self.vocabulary.get
        words = _words(text)
        for term in [f"w {w}" for w in words] + [
            f"b {a} {b}" for a, b in itertools.pairwise(words)
        ]:
            j = lookup(term)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        known = self._piece_features
        if len(known) > MAX_CACHED_WORDS:
            known.clear()
        for word in words:
            found = known.get(word)
            if found is None:
                found = known[word] = tuple(j for j in map(lookup, _pieces(word)) if j is not None)
            for j in found:
                counts[j] = counts.get(j, 0) + 1
        if not counts:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32)
        index = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[index]
        norm = math.sqrt(float(values @ values))
        return index, values / norm if norm else values

    def category(self, text: str) -> Prediction | None:
        """The most likely category, or None when the model knows no word of the text."""
        if self.category_head is None:
            return None
        index, values = self.vectorize(text)
        if index.size == 0:
            return None
        p = self.category_head.probabilities(index, values)
        best = int(np.argmax(p))
        return Prediction(self.category_head.classes[best], float(p[best]))

    def noise(self, text: str) -> float | None:
        """How likely the text is not a complaint (0..1); None without a noise head."""
        if self.noise_head is None:
            return None
        index, values = self.vectorize(text)
        if index.size == 0:
            return None
        p = self.noise_head.probabilities(index, values)
        return float(p[self.noise_head.classes.index(NOISE)])

    # --- storage ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {
            "format": np.array([FORMAT_VERSION]),
            "vocabulary": _text_array(list(self.vocabulary)),
            "idf": self.idf.astype(np.float16),
        }
        for name, head in (("category", self.category_head), ("noise", self.noise_head)):
            if head is not None:
                arrays[f"{name}_classes"] = _text_array(list(head.classes))
                arrays[f"{name}_weights"] = head.weights.astype(np.float16)
                arrays[f"{name}_bias"] = head.bias.astype(np.float32)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TextModels:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            if int(arrays["format"][0]) != FORMAT_VERSION:
                raise ValueError(f"text model format {int(arrays['format'][0])} is not known")
            heads: dict[str, Head | None] = {}
            for name in ("category", "noise"):
                if f"{name}_classes" in arrays:
                    heads[name] = Head(
                        tuple(_from_text_array(arrays[f"{name}_classes"])),
                        arrays[f"{name}_weights"].astype(np.float32),
                        arrays[f"{name}_bias"].astype(np.float32),
                    )
                else:
                    heads[name] = None
            return cls(
                _from_text_array(arrays["vocabulary"]),
                arrays["idf"].astype(np.float32),
                heads["category"],
                heads["noise"],
            )


def _text_array(items: list[str]) -> np.ndarray:
    # Bytes joined by NUL rather than a numpy string array: no fixed width per entry.
    return np.frombuffer("\0".join(items).encode("utf-8"), dtype=np.uint8)


def _from_text_array(array: np.ndarray) -> list[str]:
    joined = array.tobytes().decode("utf-8")
    return joined.split("\0") if joined else []


# --- training ------------------------------------------------------------------------------


def train(examples: Sequence[Example], *, seed: int = 0) -> TextModels:
    """Fit both heads on the examples that carry their label (scikit-learn, one core).

    Logistic loss by stochastic gradient descent: linear in the number of examples (100,000
    decisions fit in seconds), probabilities to abstain on, and weights that numpy reads."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier

    texts = [e.text for e in examples]
    vectorizer = TfidfVectorizer(
        analyzer=terms,
        sublinear_tf=True,
        min_df=2 if len(texts) >= 50 else 1,
        max_features=MAX_FEATURES,
        dtype=np.float32,
    )
    matrix = vectorizer.fit_transform(texts)
    vocabulary = [""] * len(vectorizer.vocabulary_)
    for term, j in vectorizer.vocabulary_.items():
        vocabulary[j] = term

    def fit(rows: list[int], labels: list[str]) -> Head | None:
        if len(set(labels)) < 2:
            return None
        model = SGDClassifier(loss="log_loss", alpha=2e-6, max_iter=5, tol=None, random_state=seed)
        model.fit(matrix[rows], labels)
        classes = tuple(str(c) for c in model.classes_)
        return Head(
            classes,
            np.ascontiguousarray(model.coef_.T, dtype=np.float32),
            model.intercept_.astype(np.float32),
        )

    with_category = [i for i, e in enumerate(examples) if e.category is not None]
    with_noise = [i for i, e in enumerate(examples) if e.noise is not None]
    category = fit(with_category, [str(examples[i].category) for i in with_category])
    noise = fit(with_noise, [NOISE if examples[i].noise else COMPLAINT for i in with_noise])
    return TextModels(vocabulary, vectorizer.idf_.astype(np.float32), category, noise)
