"""What the data builders ask the teacher model (GPT-4o in the paper, any chat endpoint here).

These are the only teacher-facing texts in the project; the *student* prompts (what JUDO itself sees
during training, evaluation and serving) live in `judo.prompts` and nowhere else. Each function returns
an OpenAI `messages` list ready for `TeacherClient.chat`. The wording is ours; the content follows the
paper's Appendix A:

- stage 1: a concise comparative explanation of the defect, from the query with the defect outlined in
  red, the normal template, the defect type and the category's domain notes;
- stage 2: question-answer pairs grounded strictly in one domain-knowledge snippet, mixing the seven
  question styles of the paper's Table 3, then two lexically different paraphrases of each pair;
- stage 3: a "pseudo-domain rationale" per MMAD question, which only restructures the evidence it is
  given (images, correct answer, stage-1 explanation, domain knowledge) into expert reasoning.
"""

from __future__ import annotations

import json

from PIL import Image

from judo.data.teacher import user_message

#: The seven question styles of the paper's Table 3, in our own words (name, what such a question asks).
QA_STYLES: tuple[tuple[str, str], ...] = (
    ("criteria", "which visible signs make a part count as defective"),
    ("understanding", "how a defect shows up, where it tends to occur or how it affects the part"),
    (
        "comparison",
        "what tells one condition apart from another (defective vs. normal, one defect vs. another)",
    ),
    ("function", "what the defect does to the product's use, safety or reliability"),
    ("recognition", "what a given defect or feature is"),
    ("quality_control", "why it matters to catch the defect during inspection"),
    ("appearance", "how the defect affects the product's look or its physical structure"),
)
STYLE_NAMES = tuple(name for name, _ in QA_STYLES)

INSPECTOR_SYSTEM = (
    "You are a senior industrial visual-inspection engineer. You write precise, factual text that is used "
    "to train an automated inspection assistant. You never invent details you cannot see or were not told."
)
KNOWLEDGE_SYSTEM = (
    "You turn industrial inspection knowledge into training material for an inspection assistant. "
    "You follow the requested output format exactly and reply with JSON only when JSON is asked for."
)


def readable(name: str) -> str:
    """`broken_large` -> `broken large`: folder names as words for the teacher."""
    return name.replace("_", " ").replace("-", " ").strip()


# ---------------------------------------------------------------------------------------------
# Stage 1: comparative explanation


def stage1_messages(
    outlined_query: Image.Image,
    template: Image.Image,
    *,
    category: str,
    defect: str,
    notes: str | None,
) -> list[dict]:
    """Ask for the `<think>` text of a stage-1 row. Image order: template first, query last (as MMAD)."""
    notes_block = f"\nDomain notes for this product:\n{notes.strip()}\n" if notes and notes.strip() else ""
    text = (
        f'The first image is a defect-free template of the product "{readable(category)}". The second image '
        f'is the query: the same kind of product with a defect of type "{readable(defect)}". The defective '
        "region of the query is outlined in red; the outline is a marker for you only and is not part of the "
        f"product.\n{notes_block}\n"
        "Write a concise comparative explanation (3 to 5 sentences) of this defect:\n"
        "- where it is on the query (e.g. upper left, along the rim, near the centre);\n"
        "- what the region looks like on the query compared with the same region on the template "
        "(shape, colour, texture, edges, missing or extra material);\n"
        f'- why this is a "{readable(defect)}" defect rather than normal variation.\n'
        'Speak of "the query" and "the template". Do not mention the red outline, masks, annotations, '
        "grids or coordinates, and do not say which image is first or second. Reply with plain prose only: "
        "no lists, no headings, no tags."
    )
    return [{"role": "system", "content": INSPECTOR_SYSTEM}, user_message(text, [template, outlined_query])]


# ---------------------------------------------------------------------------------------------
# Stage 2: domain Q&A and paraphrases


def stage2_generation_messages(snippet: str, *, category: str, defect: str, count: int) -> list[dict]:
    """Ask for `count` unique Q&A pairs grounded strictly in `snippet`, in a mix of styles."""
    topic = "normal appearance" if defect == "good" else readable(defect)
    styles = "\n".join(f"{i}. {name}: questions about {what}" for i, (name, what) in enumerate(QA_STYLES, 1))
    text = (
        f'Below is inspection knowledge about the product "{readable(category)}" '
        f'(topic: "{topic}").\n\n'
        f"Write exactly {count} different question-answer pairs that an inspector could ask and answer "
        "using only this knowledge.\n"
        "Rules:\n"
        "- Every answer must follow from the text below; add no outside knowledge, numbers or causes it "
        "does not state.\n"
        '- Never refer to the source (no "the text", "the snippet", "the passage", "the description", '
        '"according to"). Questions and answers must stand on their own and name the product.\n'
        "- No two questions may ask the same thing.\n"
        "- Answers are one to three sentences.\n"
        f"- Mix these question styles, using at least five of them and none for more than a third of the "
        f"pairs:\n{styles}\n"
        "Reply with only a JSON array, no prose and no code fence:\n"
        '[{"question": "...", "answer": "...", "style": "<one of: ' + ", ".join(STYLE_NAMES) + '>"}]\n\n'
        f"Knowledge:\n{snippet.strip()}"
    )
    return [{"role": "system", "content": KNOWLEDGE_SYSTEM}, {"role": "user", "content": text}]


def stage2_paraphrase_messages(pairs: list[dict], *, variants: int = 2) -> list[dict]:
    """Ask for `variants` lexically different paraphrases of each numbered pair (meaning unchanged)."""
    numbered = [{"id": i, "question": p["question"], "answer": p["answer"]} for i, p in enumerate(pairs, 1)]
    example = ", ".join('{"question": "...", "answer": "..."}' for _ in range(variants))
    text = (
        f"Paraphrase each question-answer pair below {variants} times. Each paraphrase keeps exactly the "
        "same meaning and facts but uses clearly different wording and sentence structure (not just one "
        "swapped word); the paraphrases of one pair must also differ from each other. Add nothing, drop "
        "nothing.\n"
        "Reply with only a JSON array with one entry per pair, no prose and no code fence:\n"
        f'[{{"id": 1, "paraphrases": [{example}]}}, ...]\n\n'
        f"Pairs:\n{json.dumps(numbered, ensure_ascii=False, indent=1)}"
    )
    return [{"role": "system", "content": KNOWLEDGE_SYSTEM}, {"role": "user", "content": text}]


def repair_messages(previous: list[dict], reply_text: str, problem: str) -> list[dict]:
    """Follow-up turn after an unusable JSON reply: show the reply, name the problem, ask again."""
    return [
        *previous,
        {"role": "assistant", "content": reply_text},
        {
            "role": "user",
            "content": f"That reply could not be used: {problem}. Reply again with only the JSON array in "
            "the format asked for above: no prose, no code fence, no trailing commas.",
        },
    ]


# ---------------------------------------------------------------------------------------------
# Stage 3: pseudo-domain rationale


def stage3_messages(
    outlined_query: Image.Image,
    template: Image.Image,
    *,
    category: str,
    defect: str,
    question: str,
    options_text: str,
    answer_letter: str,
    answer_text: str,
    explanation: str,
    knowledge: str | None,
) -> list[dict]:
    """Ask for the reference reasoning the domain reward compares the model's `<think>` with.

    The teacher is told the correct answer and only *structures* the evidence: the rationale must not
    add facts, must not reveal that the answer was given, and names the option only at the end (the
    structure reward penalises early commitment, so the reference should not model it).
    """
    knowledge_block = (
        f"Domain knowledge for this product:\n{knowledge.strip()}\n\n"
        if knowledge and knowledge.strip()
        else ""
    )
    text = (
        f'The first image is a defect-free template of the product "{readable(category)}"; the second is the '
        f'query image. The query has a "{readable(defect)}" defect, outlined in red (a marker for you only).\n\n'
        f"Comparative observation of the query against the template:\n{explanation.strip()}\n\n"
        f"{knowledge_block}"
        f"Inspection question:\n{question.strip()}\n{options_text.strip()}\n"
        f"Correct answer: {answer_letter}. {answer_text.strip()}\n\n"
        "Write the reasoning an expert inspector follows to reach this answer, in 3 to 6 sentences of plain "
        "prose: compare the query with the template, point to the visible evidence, connect it with the "
        "domain knowledge, rule out the wrong options where useful, and conclude. Use only the evidence "
        "above; add no new facts. Do not say that the answer was given, do not mention the red outline, and "
        "do not name an option letter before the last sentence, which states the conclusion together with "
        "the option's content."
    )
    return [{"role": "system", "content": INSPECTOR_SYSTEM}, user_message(text, [template, outlined_query])]
