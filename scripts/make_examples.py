"""Generate the app's shipped examples (examples/) from judo.synthetic: deterministic, small, committed.

For each synthetic product category: defective queries with their masks and MMAD-style questions, one
normal query, and a few normal templates (the template gallery), plus the categories' domain knowledge
(for the RAG engine) and examples/index.json describing it all. The images are made by
`judo.synthetic.make_mmad_root`, so the examples follow exactly the data the tests and evaluator use.

    python scripts/make_examples.py [--out examples] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image

from judo.mmad import load_mmad
from judo.synthetic import make_mmad_root
from judo.synthetic.catalog import SPECS

DEFECTIVE_PER_CATEGORY = 2
TEMPLATES_PER_CATEGORY = 3
SIZE_LIMIT_BYTES = 5 * 1024 * 1024


def _save(src: Path, dst: Path, *, mask: bool = False) -> str:
    """Re-encode as an optimised PNG (1-bit for masks) and return the path relative to the out folder."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as img:
        img = img.convert("L").point(lambda v: 255 if v else 0).convert("1") if mask else img.convert("RGB")
        img.save(dst, format="PNG", optimize=True)
    return dst.as_posix()


def build(out: Path, seed: int = 0) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # regenerate from scratch: stale files must not linger
        if old.is_dir():
            shutil.rmtree(old)
        elif old.suffix in {".png", ".json"}:
            old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_mmad_root(
            Path(tmp) / "MMAD",
            seed=seed,
            categories=tuple(SPECS),
            per_defect=1,
            normals=1,
            templates=TEMPLATES_PER_CATEGORY,
        )
        data = load_mmad(root)
        shutil.copyfile(root / "domain_knowledge.json", out / "domain_knowledge.json")
        index: dict = {
            "version": 1,
            "seed": seed,
            "knowledge": "domain_knowledge.json",
            "templates": {},
            "examples": [],
        }
        by_category: dict[str, list] = {}
        for sample in data.samples.values():
            by_category.setdefault(sample.category, []).append(sample)
        for category, samples in sorted(by_category.items()):
            defective = [s for s in samples if not s.is_normal][:DEFECTIVE_PER_CATEGORY]
            normal = [s for s in samples if s.is_normal][:1]
            templates = sorted({p for s in samples for p in s.random_templates})
            rel_templates = [
                Path(_save(p, out / "templates" / category / f"{i:02d}.png")).relative_to(out).as_posix()
                for i, p in enumerate(templates)
            ]
            index["templates"][category] = rel_templates
            for s in defective + normal:
                stem = f"{category}-{s.defect}-{s.image_path.stem}"
                query = Path(_save(s.image_path, out / category / f"{stem}.png")).relative_to(out).as_posix()
                mask = None
                if s.mask_path is not None:
                    mask = (
                        Path(_save(s.mask_path, out / category / f"{stem}_mask.png", mask=True))
                        .relative_to(out)
                        .as_posix()
                    )
                template = rel_templates[templates.index(s.random_templates[0])]
                index["examples"].append(
                    {
                        "id": stem,
                        "title": f"{category}: {s.defect.replace('_', ' ')}",
                        "dataset": s.dataset,
                        "category": category,
                        "defect": s.defect,
                        "query": query,
                        "template": template,
                        "mask": mask,
                        "questions": [
                            {
                                "type": q.type,
                                "subtask": q.subtask,
                                "text": q.text,
                                "options": q.options,
                                "answer": q.answer,
                            }
                            for q in s.questions
                        ],
                    }
                )
    (out / "index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "examples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    index = build(args.out, args.seed)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(
        f"{len(index['examples'])} examples, {sum(map(len, index['templates'].values()))} templates, "
        f"{total / 1024:.0f} kB in {args.out}"
    )
    if total > SIZE_LIMIT_BYTES:
        print(f"examples are larger than {SIZE_LIMIT_BYTES // 1024 // 1024} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
