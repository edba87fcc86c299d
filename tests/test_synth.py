"""judo.synthetic: deterministic products, tight defect masks, and a root in MMAD's exact layout."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from judo.images import load_image, load_mask
from judo.synthetic import CATEGORIES, DEFECT_KINDS, make_mmad_root, make_product, paint_defect
from judo.synthetic.catalog import KIND_TEXTS, SPECS
from judo.synthetic.cli import main as synth_main
from judo.synthetic.defects import estimate_foreground
from judo.synthetic.products import OBJECTS, TEXTURES
from judo.synthetic.questions import position_of

KEY_RE = re.compile(r"^(DS-MVTec|MVTec-LOCO|VisA|GoodsAD)/[a-z_0-9]+/image/[a-z_0-9]+/\d{3}\.png$")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------- products


def test_at_least_five_categories_of_both_kinds():
    assert len(CATEGORIES) >= 5 and len(TEXTURES) >= 2 and len(OBJECTS) >= 3
    assert set(DEFECT_KINDS) == {"scratch", "hole", "stain", "missing", "crack", "contamination"}


@pytest.mark.parametrize("category", CATEGORIES)
def test_products_are_deterministic_and_vary_with_the_seed(category):
    a = np.asarray(make_product(category, 96, _rng(1)))
    b = np.asarray(make_product(category, 96, _rng(1)))
    c = np.asarray(make_product(category, 96, _rng(2)))
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() > 8  # a picture with structure, not a flat fill


@pytest.mark.parametrize("size", [(320, 200), (200, 320), 33])
def test_products_any_size(size):
    for category in CATEGORIES:
        img = make_product(category, size, _rng())
        assert img.mode == "RGB"
        assert img.size == ((size, size) if isinstance(size, int) else size)


def test_product_bad_arguments():
    with pytest.raises(ValueError, match="unknown synthetic category"):
        make_product("teapot", 64, _rng())
    with pytest.raises(ValueError, match="at least 16x16"):
        make_product("pill", 8, _rng())
    with pytest.raises(ValueError, match="noise"):
        make_product("pill", 64, _rng(), noise=-1)


def test_sensor_noise_option_changes_the_picture():
    clean = np.asarray(make_product("pill", 64, _rng(5)), int)
    noisy = np.asarray(make_product("pill", 64, _rng(5), noise=0.02), int)
    assert 1 < np.abs(clean - noisy).mean() < 15


@pytest.mark.parametrize("category", OBJECTS)
def test_foreground_of_objects_is_a_compact_part(category):
    fg = estimate_foreground(np.asarray(make_product(category, 128, _rng(3)), np.float32) / 255)
    assert 0.02 < fg.mean() < 0.8
    assert not fg[0].any() and not fg[-1].any()  # the border is background


@pytest.mark.parametrize("category", TEXTURES)
def test_foreground_of_textures_is_everything(category):
    assert estimate_foreground(np.asarray(make_product(category, 128, _rng(3)), np.float32) / 255).all()


# ---------------------------------------------------------------------------------------------- defects


@pytest.mark.parametrize("kind", DEFECT_KINDS)
@pytest.mark.parametrize("category", CATEGORIES)
def test_defect_mask_is_exactly_the_changed_pixels(category, kind):
    base = make_product(category, 128, _rng(7))
    out, mask = paint_defect(base, kind, _rng(8))
    before, after = np.asarray(base), np.asarray(out)
    assert out.size == base.size and out.mode == "RGB"
    assert mask.dtype == bool and mask.shape == (128, 128)
    assert mask.sum() >= 4
    assert np.array_equal(mask, np.any(before != after, axis=2))
    assert mask.mean() < 0.2  # a local defect, not a repaint


@pytest.mark.parametrize("category", sorted(SPECS))
def test_catalog_defects_are_clearly_visible(category):
    """Every defect the MMAD root uses changes its pixels by a lot (mean > 25 grey levels)."""
    spec = SPECS[category]
    for k, defect in enumerate(spec.defects):
        base = make_product(spec.product, spec.size, _rng(k))
        out, mask = paint_defect(base, defect.kind, _rng(100 + k))
        diff = np.abs(np.asarray(out, int) - np.asarray(base, int)).max(axis=2)
        assert diff[mask].mean() > 25, (category, defect.kind)


def test_paint_is_deterministic_and_does_not_touch_its_input():
    base = make_product("wood", 96, _rng())
    copy = np.asarray(base).copy()
    a_img, a_mask = paint_defect(base, "crack", _rng(4))
    b_img, b_mask = paint_defect(base, "crack", _rng(4))
    assert np.array_equal(np.asarray(a_img), np.asarray(b_img)) and np.array_equal(a_mask, b_mask)
    assert np.array_equal(np.asarray(base), copy)


@pytest.mark.parametrize("kind", [k for k in DEFECT_KINDS if k != "missing"])
def test_explicit_foreground_limits_the_defect(kind):
    base = make_product("metal_plate", 128, _rng())
    allowed = np.zeros((128, 128), bool)
    allowed[:, :64] = True
    _, mask = paint_defect(base, kind, _rng(2), foreground=allowed)
    assert mask.any() and not mask[:, 64:].any()


def test_missing_removes_part_of_an_object_into_the_background():
    base = make_product("pill", 128, _rng(1))
    fg = estimate_foreground(np.asarray(base, np.float32) / 255)
    out, mask = paint_defect(base, "missing", _rng(2))
    assert (mask & fg).sum() > 0.8 * mask.sum()  # it takes object pixels...
    fg_after = estimate_foreground(np.asarray(out, np.float32) / 255)
    assert fg_after.sum() < fg.sum()  # ...and the object really shrinks


def test_paint_bad_arguments():
    base = make_product("pill", 64, _rng())
    with pytest.raises(ValueError, match="unknown defect kind"):
        paint_defect(base, "dent", _rng())
    with pytest.raises(ValueError, match="does not match"):
        paint_defect(base, "hole", _rng(), foreground=np.ones((10, 10), bool))
    with pytest.raises(ValueError, match="empty"):
        paint_defect(base, "hole", _rng(), foreground=np.zeros((64, 64), bool))


def test_position_names():
    mask = np.zeros((90, 120), bool)
    mask[5:10, 5:10] = True
    assert position_of(mask) == "Top left."
    mask[:] = False
    mask[40:50, 55:65] = True
    assert position_of(mask) == "Center."
    mask[:] = False
    mask[80:, 100:] = True
    assert position_of(mask) == "Bottom right."
    with pytest.raises(ValueError):
        position_of(np.zeros((8, 8), bool))


# ---------------------------------------------------------------------------------------------- MMAD root


def _mmad(root: Path) -> dict:
    return json.loads((root / "mmad.json").read_text())


def test_root_layout(mmad_root):
    data = _mmad(mmad_root)
    datasets = {key.split("/")[0] for key in data}
    assert datasets == {"DS-MVTec", "MVTec-LOCO", "VisA", "GoodsAD"}
    mask_folders = set()
    for key, entry in data.items():
        assert KEY_RE.match(key), key
        dataset, category = key.split("/")[:2]
        assert entry["image_path"] == key.split("/", 2)[2]
        image = mmad_root / dataset / category / entry["image_path"]
        assert image.is_file()
        normal = "good" in key  # MMAD's scorer: normal iff "good" is in the key
        assert normal == (key.split("/")[3] == "good")
        if normal:
            assert entry["mask_path"] == ""
        else:
            folder, defect, name = entry["mask_path"].split("/")
            mask_folders.add(folder)
            assert defect == key.split("/")[3] and name == f"{Path(key).stem}_{folder}.png"
            mask = load_mask(mmad_root / dataset / category / entry["mask_path"])
            assert mask.any() and mask.shape == load_image(image).size[::-1]
        for name in ("similar_templates", "random_templates"):
            assert entry[name], name
            for rel in entry[name]:
                assert (mmad_root / rel).is_file() and "/train/good/" in rel
                if dataset == "DS-MVTec":
                    assert rel.startswith(f"MVTec-AD/{category}/train/good/")
        assert entry["similar_templates"][0] != entry["random_templates"][0]
    assert mask_folders == {"rbg_mask", "rgb_mask"}


def test_root_is_small(mmad_root):
    files = [p for p in mmad_root.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3 * 2**20
    sizes = {Image.open(p).size for p in files if p.suffix == ".png"}
    assert all(min(s) >= 256 and max(s) <= 448 for s in sizes)
    assert any(w != h for w, h in sizes)  # one non-square category, like VisA/GoodsAD


def test_conversations_follow_mmad(mmad_root):
    data = _mmad(mmad_root)
    ad_orders, letters = set(), set()
    for key, entry in data.items():
        conv = entry["conversation"]
        types = [q["type"] for q in conv]
        assert types[0] == "Anomaly Detection"
        ad = conv[0]
        assert set(ad["Options"].values()) == {"Yes.", "No."}
        ad_orders.add(ad["Options"]["A"])
        if "good" in key:
            assert ad["Options"][ad["Answer"]] == "No."
            assert types[1] == "Object Classification"
            assert set(types[2:]) == {"Object Structure", "Object Details"}
        else:
            assert ad["Options"][ad["Answer"]] == "Yes."
            assert types[1:] == [
                "Defect Classification",
                "Defect Localization",
                "Defect Description",
                "Defect Analysis",
            ]
        for q in conv:
            assert q["Answer"] in q["Options"] and q["annotation"] is True
            assert list(q["Options"]) == list("ABCD"[: len(q["Options"])])
            assert len(set(q["Options"].values())) == len(q["Options"])  # no duplicate options
            if len(q["Options"]) == 4:
                letters.add(q["Answer"])
    assert ad_orders == {"Yes.", "No."}  # Yes/No in both letter orders
    assert letters == set("ABCD")  # correct answers at every letter


def test_answers_match_the_synthetic_truth(mmad_root):
    for key, entry in _mmad(mmad_root).items():
        if "good" in key:
            continue
        dataset, category, _, folder, _ = key.split("/")
        spec = SPECS[category]
        defect = spec.defect(folder)
        answers = {q["type"]: q["Options"][q["Answer"]] for q in entry["conversation"]}
        answer = answers.__getitem__
        assert answer("Defect Classification") == (defect.label or KIND_TEXTS[defect.kind].label)
        assert answer("Defect Description") == KIND_TEXTS[defect.kind].appearance
        assert answer("Defect Analysis") == KIND_TEXTS[defect.kind].effect
        mask = load_mask(mmad_root / dataset / category / entry["mask_path"])
        assert answer("Defect Localization") == position_of(mask)


def test_domain_knowledge_format(mmad_root):
    data = _mmad(mmad_root)
    knowledge = json.loads((mmad_root / "domain_knowledge.json").read_text())
    assert set(knowledge) == {"MVTec", "MVTec-LOCO", "VisA", "GoodsAD"}
    for key in data:
        dataset, category, _, folder, _ = key.split("/")
        texts = knowledge["MVTec" if dataset == "DS-MVTec" else dataset][category]
        assert folder in texts and "good" in texts
    for cats in knowledge.values():
        for texts in cats.values():
            for text in texts.values():
                assert re.match(r"^ <[^>]+>\n Description: \S", text), text


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_root_is_deterministic_per_seed(tmp_path):
    kw = {"categories": ["pill", "carpet"], "per_defect": 1, "normals": 1, "templates": 2, "size": 64}
    a = _digest(make_mmad_root(tmp_path / "a", seed=5, **kw))
    b = _digest(make_mmad_root(tmp_path / "b", seed=5, **kw))
    c = _digest(make_mmad_root(tmp_path / "c", seed=6, **kw))
    assert a == b
    assert a.keys() == c.keys() and a != c
    # Adding a category leaves the others' files unchanged.
    d = _digest(make_mmad_root(tmp_path / "d", seed=5, **{**kw, "categories": ["pill"]}))
    assert all(a[k] == v for k, v in d.items() if k.startswith(("VisA/", "VisA\\")))


def test_root_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic MMAD categories"):
        make_mmad_root(tmp_path, categories=["teapot"])
    with pytest.raises(ValueError, match="at least 1"):
        make_mmad_root(tmp_path, per_defect=0)


def test_cli(tmp_path, capsys):
    out = tmp_path / "root"
    assert (
        synth_main(
            [
                str(out),
                "--seed",
                "2",
                "--size",
                "64",
                "--categories",
                "wood,hazelnut",
                "--per-defect",
                "1",
                "--normals",
                "1",
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    data = _mmad(out)
    assert {k.split("/")[1] for k in data} == {"wood", "hazelnut"}
    assert all(Image.open(out / k).size == (64, 64) for k in data)
    assert synth_main([str(out / "x"), "--categories", "teapot"]) == 2
    assert synth_main([str(tmp_path / "y"), "--size", "4"]) == 2
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert synth_main([str(tmp_path / "busy")]) == 2
    assert "not an MMAD root" in capsys.readouterr().err
