"""Domain knowledge for the prompt: MMAD's oracle lookup when the category is known, retrieval otherwise.

MMAD's RAG setting is an oracle: it puts all knowledge texts of the sample's (dataset, category)
into the prompt. A lab inspecting its own product often has no category in the knowledge base, so
when the oracle has nothing the closest entries are retrieved with all-MiniLM-L6-v2 (offline) from
the product name, the question and the options. The hit records which entries were used and how
(the app shows them next to the answer: a RAG answer is only as good as what it was given).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from judo.engines.base import InspectionRequest
    from judo.mmad import DomainKnowledge

#: Entries put into the prompt by retrieval (MMAD categories hold 2-8 entries; three keeps it short).
TOP_K = 3
#: Below this cosine a retrieved entry is unrelated (paraphrases ~0.87, unrelated text ~0.2).
MIN_SCORE = 0.25


class KnowledgeError(RuntimeError):
    """The knowledge file cannot be used; the message names the file and what to do."""


@dataclass
class KnowledgeHit:
    """What went into the prompt, and why."""

    text: str
    mode: str  # "oracle" (by category) or "retrieval" (by similarity)
    entries: list[dict[str, Any]] = field(default_factory=list)  # dataset, category, defect, score

    def summary(self) -> str:
        """One line for the UI: which entries were used."""
        names = ", ".join(
            f"{e['category']}/{e['defect']}" + (f" ({e['score']:.2f})" if e.get("score") is not None else "")
            for e in self.entries
        )
        how = "category lookup" if self.mode == "oracle" else "retrieved by similarity"
        return f"Domain knowledge ({how}): {names}"

    def as_meta(self) -> dict[str, Any]:
        return {"mode": self.mode, "entries": self.entries}


class KnowledgeBase:
    """MMAD-style domain knowledge with oracle lookup and MiniLM retrieval."""

    def __init__(
        self,
        knowledge: DomainKnowledge,
        *,
        top_k: int = TOP_K,
        embedder: Any = None,
        source: str | None = None,
    ) -> None:
        self.knowledge = knowledge
        self.top_k = top_k
        self.source = source
        self._embedder = embedder
        self._entries = list(knowledge.all_entries())
        self._matrix: np.ndarray | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> KnowledgeBase:
        from judo.mmad import MMADError, load_knowledge

        p = Path(path)
        if not p.is_file():
            raise KnowledgeError(
                f"Domain knowledge file {p} not found: set 'knowledge:' in the app config or "
                "JUDO_KNOWLEDGE to MMAD's domain_knowledge.json."
            )
        try:
            return cls(load_knowledge(p), source=str(p), **kwargs)
        except MMADError as err:
            raise KnowledgeError(str(err)) from None

    # ------------------------------------------------------------------ lookup
    def categories(self) -> list[tuple[str, str]]:
        """(dataset, category) pairs present in the base, for pickers."""
        return sorted({(e.dataset, e.category) for e in self._entries})

    def _find_dataset(self, category: str, dataset: str | None) -> tuple[str, str] | None:
        """The (dataset, category) spelling in the base for a user-typed category (case-insensitive)."""
        want = category.strip().lower()
        matches = [(d, c) for d, c in self.categories() if c.lower() == want]
        if dataset:
            preferred = [m for m in matches if _same_ds(dataset, m[0])]
            if preferred:
                return preferred[0]
        return matches[0] if matches else None

    def lookup(self, request: InspectionRequest) -> KnowledgeHit | None:
        """Oracle text for a known category; else the closest entries; None for an empty base."""
        if not self._entries:
            return None
        if request.category:
            found = self._find_dataset(request.category, request.dataset)
            if found:
                dataset, category = found
                text = self.knowledge.text_for(dataset, category)
                if text.strip():
                    entries = [
                        {"dataset": e.dataset, "category": e.category, "defect": e.defect, "score": None}
                        for e in self._entries
                        if e.category == category and _same_ds(dataset, e.dataset)
                    ]
                    return KnowledgeHit(text=text, mode="oracle", entries=entries)
        return self.retrieve(_query_text(request))

    def retrieve(self, query: str) -> KnowledgeHit | None:
        """The top-k entries by MiniLM cosine similarity to ``query`` (at least one, even if weak)."""
        from judo.embedding import embed

        matrix = self._entry_matrix()
        q = embed([query], self._embedder)[0]
        scores = matrix @ q
        order = np.argsort(-scores)[: self.top_k]
        picked = [int(i) for i in order if scores[i] >= MIN_SCORE] or [int(order[0])]
        entries = [
            {
                "dataset": self._entries[i].dataset,
                "category": self._entries[i].category,
                "defect": self._entries[i].defect,
                "score": round(float(scores[i]), 4),
            }
            for i in picked
        ]
        text = "\n".join(self._entries[i].text for i in picked)
        return KnowledgeHit(text=text, mode="retrieval", entries=entries)

    def _entry_matrix(self) -> np.ndarray:
        """Embeddings of every entry, computed once (a few seconds for MMAD's ~250 entries)."""
        with self._lock:
            if self._matrix is None:
                from judo.embedding import embed

                texts = [f"{e.category} {e.defect}: {e.text}" for e in self._entries]
                self._matrix = np.asarray(embed(texts, self._embedder), dtype=np.float32)
            return self._matrix


def _same_ds(a: str, b: str) -> bool:
    """DS-MVTec questions use the MVTec knowledge key."""
    norm = {"DS-MVTec": "MVTec"}
    return norm.get(a, a) == norm.get(b, b)


def _query_text(request: InspectionRequest) -> str:
    parts = [request.category or "", request.question]
    if request.options:
        parts += list(request.options.values())
    return " ".join(p for p in parts if p)
