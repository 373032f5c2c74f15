"""The embedded demo corpus: grammar counts, determinism, shapes, difficulty knobs, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rvlf.synth import grammar, render
from rvlf.data.features import load_video_features
from rvlf.data.keypoints import PARTS
from rvlf.synth.corpus import CorpusConfig, build_corpus, generate_corpus, render_sample
from rvlf.errors import RvlfError

SMALL = dict(n_train=5, n_dev=2, n_test=2)


@pytest.fixture(scope="module")
def default_corpus():
    return build_corpus(0, 2000, 200, 200, CorpusConfig())


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory) -> Path:
    return generate_corpus(tmp_path_factory.mktemp("c") / "corpus", seed=3, progress=False, **SMALL)


def _words(texts) -> set[str]:
    return {w for t in texts for w in t.replace("?", " ").split()}


def test_default_counts_and_disjoint_splits(default_corpus):
    sp = default_corpus.splits
    assert (len(sp.train), len(sp.dev), len(sp.test)) == (2000, 200, 200)
    train = {s.gloss for s in sp.train}
    dev, test = {s.gloss for s in sp.dev}, {s.gloss for s in sp.test}
    assert len(train) == 2000 and len(dev) == 200 and len(test) == 200
    assert not (train & dev) and not (train & test) and not (dev & test)
    seen = {g for s in sp.train for g in s.gloss}
    assert all(seen.issuperset(s.gloss) for s in sp.dev + sp.test)
    assert len(_words(p for s in sp.train for p in s.phrasings)) >= 150
    rng = np.random.default_rng(0)
    assert len(_words(s.draw(rng) for s in sp.train)) >= 150
    assert len(seen) >= 150
    # most sentences have several valid phrasings, so the reference is not predictable
    assert np.mean([len(s.phrasings) > 1 for s in sp.train]) > 0.9
    for s in sp.train[:50]:
        assert abs(sum(s.weights) - 1) < 1e-9 and len(set(s.phrasings)) == len(s.phrasings)


def test_sign_order_is_not_the_spoken_order():
    s = grammar.realise({"subj": "MOTHER", "verb": "BUY", "obj": "CAR", "adj": "RED", "place": "STORE",
                         "time": "YESTERDAY"})
    assert s.gloss == ("YESTERDAY", "STORE", "CAR", "RED", "MOTHER", "BUY")
    assert "yesterday my mother bought a red car at the store" in s.phrasings
    assert "my mom purchased the red car in the shop yesterday" in s.phrasings
    best = s.phrasings[int(np.argmax(s.weights))]
    assert max(s.weights) < 0.2 and best.split()[0] in ("yesterday", "my")
    q = grammar.realise({"subj": "IX-2", "verb": "GO", "place": "SCHOOL", "time": "TOMORROW", "mood": "q"})
    assert q.gloss == ("TOMORROW", "SCHOOL", "IX-2", "GO", "QM") and q.question
    assert "will you go to the school tomorrow?" in q.phrasings
    n = grammar.realise({"subj": "FATHER", "verb": "EAT", "obj": "FISH", "mood": "neg"})
    assert n.gloss == ("FISH", "FATHER", "EAT", "NOT")
    assert {"my father does not eat a fish", "our dad doesn't eat the fish"} <= set(n.phrasings)


def test_face_pairs_differ_only_in_face_and_hand_groups_only_in_hands(default_corpus):
    lex, signer = default_corpus.lexicon, default_corpus.signers[0]
    neck = np.array([256.0, 290.0])

    def points(gloss):
        states = render.sign_states(lex[gloss], 9, np.random.default_rng(5), 1.0)
        return states, render.scene_points(states, signer, neck, signer.unit).points

    for i, (a, b) in enumerate(grammar.FACE_PAIRS):
        assert lex[a].manual() == lex[b].manual() and lex[a].nonmanual() != lex[b].nonmanual()
        (sa, pa), (sb, pb) = points(a), points(b)
        np.testing.assert_array_equal(sa[:, :20], sb[:, :20])
        np.testing.assert_array_equal(pa[:, :51], pb[:, :51])      # body and both hands identical
        if i % 2 == 0:                                              # mouthing pair: mouth points differ
            assert np.abs(pa[:, 51:59] - pb[:, 51:59]).max() > 1.0
        else:                                                       # expression pair: only the crop differs
            np.testing.assert_array_equal(pa, pb)
            face = lambda st, p: render.draw_crops(  # noqa: E731
                render.Scene(p, st[:, render.FACE], render.scene_points(st, signer, neck, signer.unit).extra,
                             signer.head * signer.unit), np.array([4]),
                np.array([[p[4, 59:77, 0].min() - 20, p[4, 59:77, 1].min() - 40, p[4, 59:77, 0].max() + 20,
                           p[4, 59:77, 1].max() + 20]]), signer, (128, 128, 128), 64)
            assert np.abs(face(sa, pa).astype(int) - face(sb, pb)).sum() > 500
    for group in grammar.HANDSHAPE_GROUPS:
        shapes = {lex[g].handshape for g in group}
        assert len(shapes) == len(group)
        (sa, pa), (sb, pb) = points(group[0]), points(group[1])
        np.testing.assert_array_equal(np.delete(pa, np.s_[9:51], 1), np.delete(pb, np.s_[9:51], 1))
        hand = PARTS["right_hand"]                                  # signer 0 is right-handed
        assert np.abs(pa[:, hand] - pb[:, hand]).max() > 3.0
    manuals = [lex[g].manual() for g in lex]
    groups = [set(p) for p in grammar.FACE_PAIRS]
    dupes = {g for g in lex if manuals.count(lex[g].manual()) > 1}
    assert all(any(g in grp for grp in groups) for g in dupes)     # only face pairs share a manual form


def _face_descriptor(kp: np.ndarray) -> np.ndarray:
    """Scale-free mouth opening (mean, std, max), mouth width and brow height of a sign."""
    ok = kp[:, 51, 2] > 0
    m, jaw = kp[ok, 51:59, :2], kp[ok][:, [59, 67], :2]
    face_w = np.linalg.norm(jaw[:, 0] - jaw[:, 1], axis=1)
    opening = np.linalg.norm(m[:, 2] - m[:, 6], axis=1) / face_w
    width = np.linalg.norm(m[:, 0] - m[:, 4], axis=1) / face_w
    brow = (kp[ok][:, [74, 75], 1].mean(1) - kp[ok][:, 68:74, 1].mean(1)) / face_w
    return np.array([opening.mean(), opening.std(), opening.max(), width.mean(), brow.mean()])


def test_face_pairs_need_the_face(default_corpus):
    """Nearest centroid per pair: mouthing pairs are told apart by the mouth points, expression
    pairs are at chance from the points (their difference is only in the face crop)."""
    cfg = CorpusConfig()

    def accuracy(a, b):
        X, y = [], []
        for label, g in enumerate((a, b)):
            s = grammar.Sentence((g,), ("x",), (1.0,), False)
            for i in range(18):
                smp = render_sample(default_corpus, s, np.random.default_rng([label, i]), cfg)
                X.append(_face_descriptor(smp.keypoints[smp.sign_index == 0]))
                y.append(label)
        X, y = np.array(X), np.array(y)
        X = (X - X.mean(0)) / (X.std(0) + 1e-9)
        train = np.arange(len(y)) % 3 != 0
        cents = np.stack([X[train & (y == c)].mean(0) for c in (0, 1)])
        return np.mean(np.argmin(((X[~train, None] - cents) ** 2).sum(-1), 1) == y[~train])

    pairs = grammar.FACE_PAIRS
    assert np.mean([accuracy(*p) for p in pairs[0::2]]) > 0.85
    assert np.mean([accuracy(*p) for p in pairs[1::2]]) < 0.75


@pytest.mark.parametrize("rate", [0.2, 0.45])
def test_missing_hand_rate_matches_config(default_corpus, rate):
    cfg = CorpusConfig(missing_hand_rate=rate)
    missing = []
    for i, s in enumerate(default_corpus.splits.train[:80]):
        kp = render_sample(default_corpus, s, np.random.default_rng(i), cfg).keypoints
        for hand in (PARTS["left_hand"], PARTS["right_hand"]):
            gone = (kp[:, hand, 2] == 0).all(1)
            assert np.all(kp[gone][:, hand] == 0)                # missing = zeros, confidence 0
            missing.append(gone)
    assert abs(np.concatenate(missing).mean() - rate) < 0.06


def test_generated_files(small_dir):
    rows = [json.loads(line) for line in (small_dir / "manifest.jsonl").read_text().splitlines()]
    assert [r["split"] for r in rows] == ["train"] * 5 + ["dev"] * 2 + ["test"] * 2
    assert len({r["id"] for r in rows}) == 9
    for r in rows:
        assert r["lang"] == "en" and r["text"] in r["phrasings"] and r["gloss"].split()
        f = load_video_features(small_dir / r["features"])
        kp, dino = f["keypoints"], f["dino"]
        T = r["num_frames"]
        assert kp.shape == (T, 77, 3) and 20 <= T <= 120 and dino.shape == (T, 3, 32)
        assert np.isfinite(kp).all() and np.isfinite(dino.astype(np.float32)).all()
        conf = kp[..., 2]
        assert ((conf >= 0) & (conf <= 1)).all() and (conf[:, :9] > 0).all()
        xy = kp[..., :2][conf > 0]
        assert xy.min() > -20 and xy.max() < 532                   # pixels of a 512x512 frame
        assert np.abs(dino.astype(np.float32)).sum(-1).min() > 0    # every part has a crop feature
        assert f["meta"]["gloss"] == r["gloss"].split() and len(f["meta"]["sign_index"]) == T
    stamp = json.loads((small_dir / "corpus.json").read_text())
    assert stamp["seed"] == 3 and stamp["n_train"] == 5


def test_deterministic_and_idempotent(small_dir, tmp_path):
    again = generate_corpus(tmp_path / "again", seed=3, progress=False, **SMALL)
    assert (again / "manifest.jsonl").read_bytes() == (small_dir / "manifest.jsonl").read_bytes()
    for r in (json.loads(x) for x in (small_dir / "manifest.jsonl").read_text().splitlines()):
        a, b = load_video_features(small_dir / r["features"]), load_video_features(again / r["features"])
        assert a["keypoints"].tobytes() == b["keypoints"].tobytes()
        np.testing.assert_array_equal(a["dino"], b["dino"])
    # a complete corpus with the same stamp is returned without touching it
    manifest = again / "manifest.jsonl"
    before = manifest.stat().st_mtime_ns
    assert generate_corpus(again, seed=3, progress=False, **SMALL) == again
    assert manifest.stat().st_mtime_ns == before
    # another seed is another corpus; an incomplete one (no stamp) is regenerated
    other = generate_corpus(tmp_path / "other", seed=4, dino=None, progress=False, **SMALL)
    assert (other / "manifest.jsonl").read_text() != manifest.read_text()
    assert "dino" not in load_video_features(other / "features" / "train-00000.npz")
    (other / "corpus.json").unlink()
    (other / "manifest.jsonl").write_text("")
    generate_corpus(other, seed=4, dino=None, progress=False, **SMALL)
    assert len((other / "manifest.jsonl").read_text().splitlines()) == 9


def test_two_workers_match_one(small_dir, tmp_path):
    two = generate_corpus(tmp_path / "two", seed=3, workers=2, progress=False, **SMALL)
    assert (two / "manifest.jsonl").read_bytes() == (small_dir / "manifest.jsonl").read_bytes()
    a = load_video_features(small_dir / "features" / "test-00001.npz")["keypoints"]
    assert a.tobytes() == load_video_features(two / "features" / "test-00001.npz")["keypoints"].tobytes()


def test_left_handers_mirror_the_dominant_hand(default_corpus):
    lex = default_corpus.lexicon
    right = next(s for s in default_corpus.signers if not s.left_handed)
    left = render.Signer(**{**right.__dict__, "left_handed": True})
    states = render.sign_states(lex["BUY"], 9, np.random.default_rng(0), 0.0)
    neck = np.array([256.0, 290.0])
    pr = render.scene_points(states, right, neck, right.unit).points
    pl = render.scene_points(states, left, neck, left.unit).points
    # the left-hander's left hand does, mirrored about the neck, what the right-hander's right hand does
    mirrored = pl[:, PARTS["left_hand"]] * [-1, 1] + [2 * neck[0], 0]
    np.testing.assert_allclose(mirrored, pr[:, PARTS["right_hand"]], atol=1e-6)


def test_bad_config_is_one_line_error(tmp_path):
    with pytest.raises(RvlfError, match="missing_hand_rate"):
        generate_corpus(tmp_path / "x", config=CorpusConfig(missing_hand_rate=1.5), progress=False, **SMALL)
    with pytest.raises(RvlfError, match="workers"):
        generate_corpus(tmp_path / "x", workers=0, progress=False, **SMALL)
