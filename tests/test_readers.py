"""Dataset readers on small files in each release's exact format, and `rvlf data check`."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from rvlf.cli import main
from rvlf.data.readers import SignSample, read_dataset, read_manifest
from rvlf.errors import InputFileError, RvlfError

PHOENIX_HEADER = "name|video|start|end|speaker|orth|translation"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def phoenix(root: Path, rows: dict[str, list[str]]) -> Path:
    for split, lines in rows.items():
        write(root / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv",
              "\n".join([PHOENIX_HEADER, *lines]) + "\n")
    return root


def p_row(name: str, text: str, speaker: str = "Signer01") -> str:
    return f"{name}|{name}/1/*.png|-1|-1|{speaker}|REGEN MORGEN|{text}"


def test_phoenix(tmp_path):
    root = phoenix(tmp_path, {
        "train": [p_row("a1", "morgen regnet es"), p_row("a2", "am tag \"sonnig\" ")],
        "dev": [p_row("b1", "heute nacht frost", "Signer05")],
        "test": [p_row("c1", "es bleibt kalt")],
    })
    samples = read_dataset("phoenix2014t", root)
    assert [s.id for s in samples] == ["a1", "a2", "b1", "c1"]
    a1, a2, b1 = samples[0], samples[1], samples[2]
    assert (a1.split, a1.lang, a1.text, a1.signer) == ("train", "de", "morgen regnet es", "Signer01")
    assert a2.text == 'am tag "sonnig"'             # quotes kept, whitespace trimmed
    assert b1.split == "dev" and b1.signer == "Signer05"
    assert a1.video == root / "features" / "fullFrame-210x260px" / "train" / "a1"
    assert [s.id for s in read_dataset("phoenix", root, splits=["test"])] == ["c1"]


@pytest.mark.parametrize("rows, match, line, column", [
    ([p_row("a1", "x"), p_row("a1", "y")], r"duplicate id 'a1' \(first at .*:2\)", 3, "name"),
    ([p_row("a1", "x"), p_row("a2", "   ")], "empty text", 3, "translation"),
    (["a1|v|-1|-1|S|O"], "6 fields, the header has 7", 2, None),
])
def test_phoenix_errors(tmp_path, rows, match, line, column):
    root = phoenix(tmp_path, {"train": rows})
    with pytest.raises(InputFileError, match=match) as err:
        read_dataset("phoenix2014t", root, ["train"])
    assert err.value.line == line and err.value.column == column
    assert err.value.path.endswith("PHOENIX-2014-T.train.corpus.csv")


def test_phoenix_missing_column_and_file(tmp_path):
    write(tmp_path / "PHOENIX-2014-T.train.corpus.csv", "name|video|start|end|speaker|orth\nx|v|1|2|S|O\n")
    with pytest.raises(InputFileError, match="missing column 'translation'") as err:
        read_dataset("phoenix2014t", tmp_path, ["train"])
    assert (err.value.line, err.value.column) == (1, "translation")
    with pytest.raises(InputFileError, match=r"PHOENIX-2014-T\.dev\.corpus\.csv: file not found"):
        read_dataset("phoenix2014t", tmp_path, ["dev"])


def csl_daily(root: Path, info: list[dict], split_lines: list[str]) -> Path:
    (root / "sentence_label").mkdir(parents=True)
    (root / "sentence_label" / "csl2020ct_v2.pkl").write_bytes(
        pickle.dumps({"info": info, "gloss_map": ["你", "好"], "char_map": ["你"]}))
    write(root / "sentence_label" / "split_1.txt", "\n".join(["name|split", *split_lines]) + "\n")
    return root


def c_entry(name: str, chars: list[str], signer: int = 0, length: int = 40) -> dict:
    return {"name": name, "length": length, "label_gloss": ["你好"], "label_char": chars,
            "label_word": ["".join(chars)], "signer": signer}


def test_csl_daily(tmp_path):
    root = csl_daily(tmp_path, [c_entry("S1", ["你", "好"], 3, 55), c_entry("S2", ["谢", "谢", "你"]),
                                c_entry("S3", ["再", "见"])],
                     ["S1|train", "S2|dev", "S3|test"])
    samples = read_dataset("csl-daily", root)
    assert [(s.id, s.split, s.text, s.lang) for s in samples] == [
        ("S1", "train", "你好", "zh"), ("S2", "dev", "谢谢你", "zh"), ("S3", "test", "再见", "zh")]
    assert samples[0].num_frames == 55 and samples[0].signer == "3"
    assert samples[0].video == root / "sentence" / "frames_512x512" / "S1"
    assert [s.id for s in read_dataset("csl-daily", root, ["dev"])] == ["S2"]


def test_csl_daily_errors(tmp_path):
    root = csl_daily(tmp_path / "a", [c_entry("S1", ["你"])], ["S1|train", "S9|train"])
    with pytest.raises(InputFileError, match="'S9' is not in csl2020ct_v2.pkl") as err:
        read_dataset("csl-daily", root)
    assert err.value.line == 3 and err.value.path.endswith("split_1.txt")
    root = csl_daily(tmp_path / "b", [c_entry("S1", ["你"])], ["S1|train", "S1|test"])
    with pytest.raises(InputFileError, match="duplicate id 'S1'"):
        read_dataset("csl-daily", root)
    root = csl_daily(tmp_path / "c", [{"name": "S1", "length": 3}], ["S1|train"])
    with pytest.raises(InputFileError, match=r"info\[0\] has no 'label_char'"):
        read_dataset("csl-daily", root)
    root = csl_daily(tmp_path / "d", [c_entry("S1", [])], ["S1|train"])
    with pytest.raises(InputFileError, match="empty text for 'S1'"):
        read_dataset("csl-daily", root)
    root = csl_daily(tmp_path / "e", [c_entry("S1", ["你"])], ["S1|holdout"])
    with pytest.raises(InputFileError, match="unknown split 'holdout'") as err:
        read_dataset("csl-daily", root)
    assert (err.value.line, err.value.column) == (2, "split")


def test_csl_daily_pickle_with_code_is_refused(tmp_path):
    root = tmp_path
    (root / "sentence_label").mkdir()
    payload = b"cos\nsystem\n(Vtouch " + str(tmp_path / "pwned").encode() + b"\ntR."
    (root / "sentence_label" / "csl2020ct_v2.pkl").write_bytes(payload)
    write(root / "sentence_label" / "split_1.txt", "name|split\n")
    with pytest.raises(InputFileError, match="refused"):
        read_dataset("csl-daily", root)
    assert not (tmp_path / "pwned").exists()


H2S_HEADER = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE"


def test_how2sign(tmp_path):
    for tag, name in (("train", "--7E2sU6zP4_10-5-rgb_front"), ("val", "-d5dN54tH2E_0-1-rgb_front"),
                      ("test", "-fZc293MpJk_0-1-rgb_front")):
        write(tmp_path / f"how2sign_realigned_{tag}.csv",
              f'{H2S_HEADER}\n{name[:11]}\t{name[:-10]}\t{name[:-10]}_x\t{name}\t1.5\t4.2\tAnd I say "hi" to you.\n')
    samples = read_dataset("how2sign", tmp_path)
    assert [(s.split, s.lang) for s in samples] == [("train", "en"), ("dev", "en"), ("test", "en")]
    assert samples[0].text == 'And I say "hi" to you.' and samples[0].id == "--7E2sU6zP4_10-5-rgb_front"
    assert samples[1].video == tmp_path / "val_rgb_front_clips" / "raw_videos" / "-d5dN54tH2E_0-1-rgb_front.mp4"
    write(tmp_path / "how2sign_realigned_test.csv", H2S_HEADER.rsplit("\t", 1)[0] + "\tTEXT\n")
    with pytest.raises(InputFileError, match="missing column 'SENTENCE'"):
        read_dataset("how2sign", tmp_path, ["test"])


OASL_HEADER = "vid\tyid\tstart\tend\traw-text\ttokenized-text\tgloss\tsplit"


def test_openasl(tmp_path):
    write(tmp_path / "openasl-v1.0.tsv", OASL_HEADER + "\n" + "\n".join([
        "v1\tY1\t00:00:01.000\t00:00:03.000\tHello there.\thello there .\tHELLO\ttrain",
        "v2\tY1\t00:00:04.000\t00:00:06.000\tGood night.\tgood night .\tNIGHT\tvalid",
        "v3\tY2\t00:00:01.000\t00:00:02.000\tSee you.\tsee you .\tSEE\ttest",
    ]) + "\n")
    samples = read_dataset("openasl", tmp_path)
    assert [(s.id, s.split, s.text) for s in samples] == [
        ("v1", "train", "Hello there."), ("v2", "dev", "Good night."), ("v3", "test", "See you.")]
    assert [s.id for s in read_dataset("openasl", tmp_path, ["dev", "test"])] == ["v2", "v3"]
    write(tmp_path / "openasl-v1.0.tsv", OASL_HEADER + "\nv1\tY\t0\t1\t \tx\tX\ttrain\n")
    with pytest.raises(InputFileError, match="empty text") as err:
        read_dataset("openasl", tmp_path)
    assert (err.value.line, err.value.column) == (2, "raw-text")


def manifest(path: Path, records: list) -> Path:
    return write(path, "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records) + "\n")


def test_manifest(tmp_path):
    path = manifest(tmp_path / "data" / "m.jsonl", [
        {"id": "x1", "split": "train", "text": "hello world", "lang": "en", "video": "v/x1.mp4",
         "features": "f/x1.npz", "num_frames": 12, "signer": 7},
        {"id": "x2", "split": "test", "text": "今天 好", "lang": "zh"},
    ])
    a, b = read_manifest(path)
    assert a == SignSample(id="x1", split="train", text="hello world", lang="en",
                           video=tmp_path / "data" / "v/x1.mp4", features=tmp_path / "data" / "f/x1.npz",
                           num_frames=12, signer="7")
    assert b.keypoints is None and b.lang == "zh"
    assert [s.id for s in read_dataset("manifest", path, ["test"])] == ["x2"]
    (tmp_path / "data" / "manifest.jsonl").write_text(path.read_text())
    assert len(read_dataset("manifest", tmp_path / "data")) == 2


@pytest.mark.parametrize("records, match, line, column", [
    ([{"id": "a", "split": "train", "text": "t", "lang": "en"}, "{oops"], "invalid JSON", 2, None),
    ([{"id": "a", "split": "train", "lang": "en"}], "missing field 'text'", 1, "text"),
    ([{"id": "a", "split": "train", "text": "  ", "lang": "en"}], "empty text", 1, "text"),
    ([{"id": "a", "split": "train", "text": "t", "lang": "en"}] * 2, "duplicate id 'a'", 2, "id"),
    ([{"id": "a", "split": "eval", "text": "t", "lang": "en"}], "unknown split 'eval'", 1, "split"),
    ([{"id": "a", "split": "dev", "text": "t", "lang": "en", "num_frames": -3}], "num_frames", 1, "num_frames"),
])
def test_manifest_errors(tmp_path, records, match, line, column):
    path = manifest(tmp_path / "m.jsonl", records)
    with pytest.raises(InputFileError, match=match) as err:
        read_manifest(path)
    assert (err.value.line, err.value.column) == (line, column)
    assert str(err.value).startswith(f"{path}:{line}")


def test_read_dataset_rejects_unknown_kind_split_and_root(tmp_path):
    with pytest.raises(RvlfError, match="unknown dataset kind 'wlasl'"):
        read_dataset("wlasl", tmp_path)
    with pytest.raises(RvlfError, match="unknown split 'val'"):
        read_dataset("openasl", tmp_path, ["val"])
    with pytest.raises(InputFileError, match="dataset root not found"):
        read_dataset("openasl", tmp_path / "nope")


def _features(folder: Path, sample_id: str, frames: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{sample_id}.npz", keypoints=np.zeros((frames, 77, 3), np.float32), meta=np.array("{}"))


def test_data_check_reports_lengths_and_mismatches(tmp_path, capsys):
    root = tmp_path / "phoenix"
    phoenix(root, {"train": [p_row("a1", "eins zwei drei"), p_row("a2", "vier")],
                   "dev": [p_row("b1", "fünf sechs")], "test": [p_row("c1", "sieben")]})
    for split, name, n in (("train", "a1", 5), ("train", "a2", 3), ("dev", "b1", 4), ("test", "c1", 2)):
        folder = root / "features" / "fullFrame-210x260px" / split / name
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"images{i + 1:04d}.png").write_bytes(b"")
    feats = tmp_path / "feats"
    _features(feats, "a1", 5)
    _features(feats, "a2", 7)      # extracted from another cut: disagrees with the 3-frame video
    _features(feats, "b1", 4)      # c1 has no feature file
    rc = main(["data", "check", "--dataset", "phoenix2014t", "--root", str(root), "--features", str(feats), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1
    train = report["splits"]["train"]
    assert train["samples"] == 2 and train["sentence_length"]["max"] == 3 and train["sentence_length"]["min"] == 1
    assert train["video_frames"] == {"n": 2, "min": 3, "mean": 4.0, "median": 4.0, "max": 5}
    assert train["feature_frames"]["max"] == 7
    assert report["mismatches"] == [{"id": "a2", "split": "train", "video_frames": 3, "feature_frames": 7}]
    assert [m["id"] for m in report["missing_features"]] == ["c1"]
    rc = main(["data", "check", "--dataset", "phoenix2014t", "--root", str(root), "--features", str(feats)])
    out = capsys.readouterr().out
    assert rc == 1 and "train/a2: video 3, features 7" in out and "1 frame-count mismatches" in out


def test_data_check_manifest_num_frames_and_keypoint_files(tmp_path, capsys, fixtures_dir):
    pose = fixtures_dir / "holistic_97frames.pose"
    path = manifest(tmp_path / "m.jsonl", [
        {"id": "ok", "split": "train", "text": "你好 世界", "lang": "zh", "keypoints": str(pose), "num_frames": 97},
        {"id": "bad", "split": "train", "text": "再见", "lang": "zh", "keypoints": str(pose), "num_frames": 90},
    ])
    rc = main(["data", "check", "--dataset", "manifest", "--root", str(path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1 and [m["id"] for m in report["mismatches"]] == ["bad"]
    assert report["splits"]["train"]["sentence_length"]["max"] == 4          # characters for zh
    path = manifest(tmp_path / "m2.jsonl", [
        {"id": "ok", "split": "dev", "text": "a b", "lang": "en", "keypoints": str(pose), "num_frames": 97}])
    assert main(["data", "check", "--dataset", "manifest", "--root", str(path)]) == 0
    assert "dev" in capsys.readouterr().out


def test_data_check_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "check", "--dataset", "openasl", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rvlf data: error: {tmp_path / 'openasl-v1.0.tsv'}: file not found"
