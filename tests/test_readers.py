"""Dataset readers on the releases' real layouts (`../shared/fixtures/real_formats/`, read in
place) and on small variants of them, and `rvlf data check`."""

from __future__ import annotations

import gzip
import json
import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from rvlf.cli import main
from rvlf.data.readers import ReadNotes, SignSample, read_dataset, read_manifest
from rvlf.errors import InputFileError, RvlfError


@pytest.fixture(scope="module")
def real(fixtures_dir) -> Path:
    return fixtures_dir / "real_formats"


H2S_TEXTS = [
    "Hello everybody.",
    'Then you tell yourself, "Keep the knees soft."',
    '"Why not?" is a fair question.',
    'It\'s about 12" long, give or take.',
    "Tab inside a sentence is rare but legal.",   # the tab inside becomes one space
]

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
    ([p_row("a1", "x"), p_row("a1", "y")], r"duplicate id 'a1' in split 'train' \(first at .*:2\)", 3, "name"),
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
    root = csl_daily(tmp_path / "c", [{"name": "S1", "length": 3}], ["S1|train"])
    with pytest.raises(InputFileError, match=r"info\[0\] has no 'label_char'"):
        read_dataset("csl-daily", root)
    root = csl_daily(tmp_path / "e", [c_entry("S1", ["你"])], ["S1|holdout"])
    with pytest.raises(InputFileError, match="unknown split 'holdout'") as err:
        read_dataset("csl-daily", root)
    assert (err.value.line, err.value.column) == (2, "split")
    root = csl_daily(tmp_path / "f", [c_entry("S1", ["你"])], ["S1|train", "S1|train"])
    with pytest.raises(InputFileError, match="duplicate id 'S1' in split 'train'") as err:
        read_dataset("csl-daily", root)
    assert err.value.line == 3


def test_csl_daily_tolerates_what_data_check_reports(tmp_path, caplog):
    """Names missing from the pkl are skipped (one warning naming them all), the same name in two
    splits and an empty text are kept: `rvlf data check` and the pre-training check report them."""
    root = csl_daily(tmp_path, [c_entry("S1", ["你"]), c_entry("S2", [])],
                     ["S1|train", "S8|train", "S9|dev", "S1|test", "S2|test"])
    notes = ReadNotes()
    with caplog.at_level(logging.WARNING, logger="rvlf.data"):
        samples = read_dataset("csl-daily", root, notes=notes)
    assert [(s.split, s.id, s.text) for s in samples] == [("train", "S1", "你"), ("test", "S1", "你"), ("test", "S2", "")]
    assert notes.missing == [("train", "S8", "split_1.txt:3"), ("dev", "S9", "split_1.txt:4")]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "S8 (split_1.txt:3, train)" in warnings[0] and "S9" in warnings[0]


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


def test_how2sign_real_csvs_are_read_with_csv_quoting(real):
    """The official CSVs quote a SENTENCE holding `"` or a tab, doubling inner quotes."""
    samples = read_dataset("how2sign", real / "how2sign")
    assert len(samples) == 15 and [s.split for s in samples] == ["train"] * 5 + ["dev"] * 5 + ["test"] * 5
    for split in ("train", "dev", "test"):
        assert [s.text for s in samples if s.split == split] == H2S_TEXTS
    train = [s for s in samples if s.split == "train"]
    assert [s.id for s in train] == ["aBcDeF01_t0-1-rgb_front", "aBcDeF01_t1-1-rgb_front", "aBcDeF01_t2-1-rgb_front",
                                     "zYxW9876_t0-5-rgb_front", "zYxW9876_t1-5-rgb_front"]
    assert [s.id for s in samples if s.split == "dev"][1] == "aBcDeF01_v1-1-rgb_front"
    assert {s.lang for s in samples} == {"en"}
    assert train[1].video == real / "how2sign" / "train_rgb_front_clips" / "raw_videos" / "aBcDeF01_t1-1-rgb_front.mp4"
    # this release names train and test clips alike: kept in both splits (data check lists them)
    assert {s.id for s in samples if s.split == "test"} == {s.id for s in train}
    # data.root may be one of the CSV files
    assert [s.text for s in read_dataset("how2sign", real / "how2sign" / "how2sign_realigned_test.csv")] == H2S_TEXTS * 3


def test_how2sign_official_download_layout(real, tmp_path):
    """`How2Sign/sentence_level/SPLIT/text/en/raw_text/re_aligned/*.csv` and `.../rgb_front/raw_videos/`."""
    base = tmp_path / "How2Sign"
    for tag in ("train", "val", "test"):
        text = base / "sentence_level" / tag / "text" / "en" / "raw_text" / "re_aligned"
        text.mkdir(parents=True)
        shutil.copy(real / "how2sign" / f"how2sign_realigned_{tag}.csv", text)
        (base / "sentence_level" / tag / "rgb_front" / "raw_videos").mkdir(parents=True)
    csv_file = base / "sentence_level" / "val" / "text" / "en" / "raw_text" / "re_aligned" / "how2sign_realigned_val.csv"
    for root in (base, base / "sentence_level", csv_file):
        samples = read_dataset("how2sign", root)
        assert [s.text for s in samples] == H2S_TEXTS * 3
        dev = [s for s in samples if s.split == "dev"][0]
        assert dev.video == base / "sentence_level" / "val" / "rgb_front" / "raw_videos" / "aBcDeF01_v0-1-rgb_front.mp4"
    with pytest.raises(InputFileError, match=r"how2sign_realigned_train\.csv: file not found \(nor sentence_level/"):
        read_dataset("how2sign", tmp_path / "How2Sign" / "sentence_level" / "train" / "rgb_front")


def test_how2sign_errors(tmp_path):
    write(tmp_path / "how2sign_realigned_test.csv", H2S_HEADER.rsplit("\t", 1)[0] + "\tTEXT\n")
    with pytest.raises(InputFileError, match="missing column 'SENTENCE'"):
        read_dataset("how2sign", tmp_path, ["test"])
    write(tmp_path / "how2sign_realigned_test.csv", H2S_HEADER + '\nv\tv-1\ts\ts-1\t0\t1\t"never closed\n')
    with pytest.raises(InputFileError, match="malformed CSV") as err:
        read_dataset("how2sign", tmp_path, ["test"])
    assert err.value.path.endswith("how2sign_realigned_test.csv")


OASL_HEADER = "vid\tyid\tstart\tend\traw-text\ttokenized-text\tgloss\tsplit"


def test_openasl_real_tsv(real):
    """One TSV for all splits, `valid` = dev, ids with colons, CSV quoting; ROOT = folder or the file."""
    for root in (real / "openasl", real / "openasl" / "openasl-v1.0.tsv"):
        samples = read_dataset("openasl", root)
        assert [(s.id, s.split, s.text) for s in samples] == [
            ("q1w2e3r4t5y-00:00:01.200-00:00:03.900", "train", "Good morning, everyone."),
            ("q1w2e3r4t5y-00:00:04.000-00:00:06.500", "train", 'She said "not today" twice.'),
            ("u7i8o9p0a1s-00:01:10.000-00:01:13.250", "dev", "Storms are moving east."),
            ("u7i8o9p0a1s-00:01:14.000-00:01:16.000", "test", "Stay safe."),
        ]
        # the release's prep/crop_video.py writes the clips with `:` as `%`
        assert samples[0].video == real / "openasl" / "clips" / "q1w2e3r4t5y-00%00%01.200-00%00%03.900.mp4"
    assert [s.id for s in read_dataset("openasl", real / "openasl", ["dev", "test"])] == [
        "u7i8o9p0a1s-00:01:10.000-00:01:13.250", "u7i8o9p0a1s-00:01:14.000-00:01:16.000"]
    clips = read_dataset("openasl", real / "openasl", ["test"], video_root="/data/openasl/video-clip")
    assert clips[0].video == Path("/data/openasl/video-clip/u7i8o9p0a1s-00%01%14.000-00%01%16.000.mp4")


def test_paper_configs_roots_work_on_the_real_layouts(real, tmp_path):
    """Each configs/paper/* `data.root` (under /path/to/) points into the real layout and reads it."""
    import yaml

    fixture = {"phoenix": real / "phoenix2014t", "csl-daily": real / "csl_daily", "how2sign": real / "how2sign",
               "openasl": real / "openasl"}
    repo = Path(__file__).resolve().parents[1]
    configs = sorted((repo / "configs" / "paper").glob("*/*.yaml"))
    assert len(configs) == 12
    for cfg in configs:
        data = yaml.safe_load(cfg.read_text())["data"]
        rel = Path(data["root"]).relative_to("/path/to")
        link = tmp_path / cfg.parent.name / rel.parts[0]
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(fixture[data["dataset"]], target_is_directory=True)
        samples = read_dataset(data["dataset"], tmp_path / cfg.parent.name / rel)
        assert {s.split for s in samples} == {"train", "dev", "test"}, cfg


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
    ([{"id": "a", "split": "train", "text": "t", "lang": "en"}] * 2, "duplicate id 'a' in split 'train'", 2, "id"),
    ([{"id": "a", "split": "eval", "text": "t", "lang": "en"}], "unknown split 'eval'", 1, "split"),
    ([{"id": "a", "split": "dev", "text": "t", "lang": "en", "num_frames": -3}], "num_frames", 1, "num_frames"),
])
def test_manifest_errors(tmp_path, records, match, line, column):
    path = manifest(tmp_path / "m.jsonl", records)
    with pytest.raises(InputFileError, match=match) as err:
        read_manifest(path)
    assert (err.value.line, err.value.column) == (line, column)
    assert str(err.value).startswith(f"{path}:{line}")


def test_manifest_key_repeated_in_one_line_is_named(tmp_path, capsys):
    """C13: a line ending `..., "text": ""}` after its real text, and a train line ending
    `..., "split": "test"}`: JSON keeps the last silently (a text emptied, a sample moved to test).
    `rvlf data check` and the reader name the file, line and key; variant: the same value twice."""
    good = [{"id": f"s{i}", "split": "train", "text": f"word {i}", "lang": "en"} for i in range(4)]
    lines = [json.dumps(r) for r in good]
    lines[1] = lines[1][:-1] + ', "text": ""}'
    lines[2] = lines[2][:-1] + ', "split": "test"}'
    path = manifest(tmp_path / "m_dupkeys.jsonl", lines)
    with pytest.raises(InputFileError, match="key 'text' appears twice") as err:
        read_manifest(path)
    assert (err.value.line, err.value.column) == (2, "text")
    path = manifest(tmp_path / "m_split.jsonl", [lines[0], lines[2]])
    assert main(["data", "check", "--dataset", "manifest", "--root", str(path)]) == 2
    err_line = capsys.readouterr().err.strip()
    assert err_line.startswith(f"rvlf data: error: {path}:2 (column 'split'): key 'split' appears twice")
    assert "\n" not in err_line
    same = manifest(tmp_path / "same.jsonl", ['{"id": "a", "id": "a", "split": "dev", "text": "t", "lang": "en"}'])
    with pytest.raises(InputFileError, match="key 'id' appears twice"):
        read_manifest(same)
    nested = manifest(tmp_path / "nested.jsonl", ['{"id": "a", "split": "dev", "text": "t", "lang": "en", '
                                                  '"extra": {"k": 1, "k": 2}}'])
    with pytest.raises(InputFileError, match="key 'k' appears twice"):
        read_manifest(nested)


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


# ---------------------------------------------------------------- the real layouts, read in place

PHOENIX_NAMES = {"train": "11August_2010_Wednesday_tagesschau-1", "dev": "03June_2011_Friday_tagesschau-2",
                 "test": "27January_2013_Sunday_tagesschau-3"}


def test_phoenix_real_release_no_quoting(real):
    """`|`-separated, no quoting; ROOT = release folder, its PHOENIX-2014-T, annotations/manual or a corpus file."""
    release = real / "phoenix2014t"
    base = release / "PHOENIX-2014-T"
    manual = base / "annotations" / "manual"
    for root in (release, base, manual, manual / "PHOENIX-2014-T.dev.corpus.csv"):
        samples = read_dataset("phoenix2014t", root)
        assert [(s.split, s.id, s.text, s.signer, s.lang) for s in samples] == [
            ("train", PHOENIX_NAMES["train"], "morgen scheint im sueden die sonne", "Signer04", "de"),
            ("dev", PHOENIX_NAMES["dev"], "in der nacht regnet es im norden", "Signer01", "de"),
            ("test", PHOENIX_NAMES["test"], "am montag wird es etwas kuehler", "Signer08", "de"),
        ]
        # the `video` column says NAME/1/*.png; the frames are in SPLIT/NAME/ (no 1/ folder)
        for s in samples:
            assert s.video == base / "features" / "fullFrame-210x260px" / s.split / s.id and s.video.is_dir()


def test_phoenix_quote_is_literal(tmp_path):
    root = phoenix(tmp_path, {"train": [p_row("a1", 'am tag "sonnig" '), p_row("a2", '"heute" regnet es')]})
    assert [s.text for s in read_dataset("phoenix2014t", root, ["train"])] == ['am tag "sonnig"', '"heute" regnet es']


def test_csl_daily_real_split_list_and_pkl_disagree(real, caplog):
    """split_1.txt lists S000005_P0004_T00 (not in the pkl): skipped with one warning naming it;
    the pkl holds S000007_P0003_T00 (in no split): counted. Nothing is renamed."""
    for root in (real / "csl_daily", real / "csl_daily" / "sentence_label",
                 real / "csl_daily" / "sentence_label" / "csl2020ct_v2.pkl",
                 real / "csl_daily" / "sentence_label" / "split_1.txt"):
        notes = ReadNotes()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rvlf.data"):
            samples = read_dataset("csl-daily", root, notes=notes)
        assert [(s.split, s.id, s.text) for s in samples] == [
            ("train", "S000000_P0000_T00", "我想喝水。"), ("train", "S000001_P0000_T00", "今天天气很好。"),
            ("train", "S000004_P0003_T00", "他不喜欢吃鱼。"), ("dev", "S000002_P0001_T00", "你叫什么名字？"),
            ("dev", "S000003_P0002_T00", "明天我们去学校。"), ("test", "S000008_P0004_T00", "谢谢你的帮助。"),
            ("test", "S000009_P0005_T00", "请慢一点说。"),
        ]
        assert [(s.num_frames, s.signer) for s in samples][:3] == [(40, "0"), (47, "0"), (68, "3")]
        assert samples[0].video == real / "csl_daily" / "sentence" / "frames_512x512" / "S000000_P0000_T00"
        assert notes.missing == [("train", "S000005_P0004_T00", "split_1.txt:4")]
        assert notes.unlisted == ["S000007_P0003_T00"]
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 1 and "S000005_P0004_T00" in messages[0] and "split_1.txt:4" in messages[0]


def test_labels_real_file_gfslt_vlp(real):
    """`labels.test`: gzip pickle of {"test/NAME": {name, gloss, text, length, imgs_path}}; frame paths
    resolve against the video root (GFSLT-VLP's img_path: PHOENIX's fullFrame-210x260px/)."""
    frames = real / "phoenix2014t" / "PHOENIX-2014-T" / "features" / "fullFrame-210x260px"
    [s] = read_dataset("labels", real / "labels.test", video_root=frames, lang="de")
    assert (s.id, s.split, s.text, s.lang, s.num_frames) == (
        PHOENIX_NAMES["test"], "test", "am montag wird es etwas kuehler", "de", 4)
    assert s.video == frames / "test" / PHOENIX_NAMES["test"] and s.video.is_dir()
    # the label file's sample is the release's test sample: same id, same text
    [ref] = read_dataset("phoenix2014t", real / "phoenix2014t", ["test"])
    assert (ref.id, ref.text, ref.video) == (s.id, s.text, s.video)
    # without a video root, paths resolve beside the label file; asking for absent splits gives none
    assert read_dataset("labels", real / "labels.test", ["test"])[0].video == real / "test" / PHOENIX_NAMES["test"]
    assert read_dataset("labels", real / "labels.test", ["train", "dev"]) == []


def _labels(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        pickle.dump(obj, f)
    return path


def test_labels_uni_sign_folder_and_list_forms(tmp_path):
    """Uni-Sign: keys `NAME.mp4`, `video_path`, gloss lists; a folder of labels.{train,dev,test}."""
    _labels(tmp_path / "CSL_Daily" / "labels.train", {"S000020_P0000_T00": {
        "name": "S000020_P0000_T00", "gloss": ["他", "今天"], "text": "他今年 四岁。", "video_path": "S000020_P0000_T00.mp4"}})
    _labels(tmp_path / "CSL_Daily" / "labels.dev", [{"name": "a.mp4", "text": "再见", "video_path": "a.mp4"}])
    samples = read_dataset("labels", tmp_path / "CSL_Daily", video_root="/data/csl/sentence-crop")
    assert [(s.id, s.split, s.text, s.lang) for s in samples] == [
        ("S000020_P0000_T00", "train", "他今年四岁。", "zh"), ("a", "dev", "再见", "zh")]
    assert samples[0].video == Path("/data/csl/sentence-crop/S000020_P0000_T00.mp4")
    _labels(tmp_path / "CSL_Daily" / "labels-2000.test", {"x": {"text": "t"}})
    with pytest.raises(InputFileError, match="label files of several sets"):
        read_dataset("labels", tmp_path / "CSL_Daily")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no label files here"):
        read_dataset("labels", tmp_path / "empty")


def test_labels_refuse_torch_tensors_and_code(tmp_path):
    """SLRT / Joey NMT files pickle torch tensors: refused with one line, nothing is run."""
    import torch

    path = _labels(tmp_path / "slrt" / "labels.train",
                   [{"name": "train/x", "gloss": "A", "text": "a b", "sign": torch.zeros(2, 4)}])
    with pytest.raises(InputFileError, match=r"holds torch tensors \(`torch\._utils\._rebuild_tensor_v2`\)") as err:
        read_dataset("labels", path)
    assert str(err.value).startswith(str(path) + ": ") and "\n" not in str(err.value)
    payload = b"cos\nsystem\n(Vtouch " + str(tmp_path / "pwned").encode() + b"\ntR."
    (tmp_path / "evil").mkdir()
    with gzip.open(tmp_path / "evil" / "labels.dev", "wb") as f:
        f.write(payload)
    with pytest.raises(InputFileError, match="refused to load `os.system`"):
        read_dataset("labels", tmp_path / "evil")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "labels.test").write_bytes(gzip.compress(pickle.dumps({"a": {"text": "t"}}))[:20])
    with pytest.raises(InputFileError, match="not a readable pickle"):
        read_dataset("labels", tmp_path / "cut")
    _labels(tmp_path / "notext" / "labels.test", {"a": {"name": "a", "gloss": "A"}})
    with pytest.raises(InputFileError, match="entry 'a' has no text string"):
        read_dataset("labels", tmp_path / "notext")


def test_data_check_lists_split_mismatches_on_real_csl_daily(real, capsys):
    rc = main(["data", "check", "--dataset", "csl-daily", "--root", str(real / "csl_daily"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1  # training would skip the listed name (and the frames are not here)
    assert report["listed_not_annotated"] == [{"id": "S000005_P0004_T00", "split": "train", "where": "split_1.txt:4"}]
    assert report["annotated_not_listed"] == ["S000007_P0003_T00"]
    assert {k: v["samples"] for k, v in report["splits"].items()} == {"train": 3, "dev": 2, "test": 2}
    assert report["splits"]["train"]["video_frames"]["max"] == 68          # the pkl's `length`
    assert report["splits"]["train"]["sentence_length"]["max"] == 7        # characters
    main(["data", "check", "--dataset", "csl-daily", "--root", str(real / "csl_daily")])
    out = capsys.readouterr().out
    assert "names in a split list but not in the annotations (skipped):\n  train/S000005_P0004_T00: split_1.txt:4" in out
    assert "annotated names in no split list (not used):\n  S000007_P0003_T00" in out


def test_data_check_shared_ids_empty_texts_and_long_samples(real, tmp_path, capsys):
    rc = main(["data", "check", "--dataset", "how2sign", "--root", str(real / "how2sign"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1 and len(report["missing_videos"]) == 15  # no clips here: rvlf extract has nothing to read
    assert [d["id"] for d in report["shared_ids"]] == [
        "aBcDeF01_t0-1-rgb_front", "aBcDeF01_t1-1-rgb_front", "aBcDeF01_t2-1-rgb_front",
        "zYxW9876_t0-5-rgb_front", "zYxW9876_t1-5-rgb_front"]
    assert report["shared_ids"][0]["splits"] == ["train", "test"]
    # empty texts, and frames over --max-frames per split (feature lengths)
    path = manifest(tmp_path / "m.jsonl", [
        {"id": f"s{i}", "split": "train" if i < 3 else "test", "text": "" if i == 1 else "a b", "lang": "en",
         "features": f"f/s{i}.npz"} for i in range(4)])
    for i, n in enumerate((5, 301, 350, 400)):
        _features(tmp_path / "f", f"s{i}", n)
    rc = main(["data", "check", "--dataset", "manifest", "--root", str(path), "--max-frames", "300", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1                                                       # an empty text stops training
    assert report["empty_texts"] == [{"id": "s1", "split": "train", "where": f"{path}:2"}]
    assert report["splits"]["train"]["over_max_frames"] == {"300": 2}
    assert report["splits"]["test"]["over_max_frames"] == {"300": 1}
    main(["data", "check", "--dataset", "manifest", "--root", str(path), "--max-frames", "300"])
    out = capsys.readouterr().out
    assert "over 300 frames" in out and "1 empty texts:\n  train/s1:" in out


def test_line_numbers_are_where_a_record_starts(real, tmp_path):
    """A quoted SENTENCE may hold a line break (CSV quoting): later records' lines, and a bad record's
    error, name the line the record starts on, not the line the parser reached."""
    src = (real / "how2sign" / "how2sign_realigned_test.csv").read_text(encoding="utf-8")
    root = tmp_path / "h2s"
    for tag in ("train", "val"):
        write(root / f"how2sign_realigned_{tag}.csv", src)
    write(root / "how2sign_realigned_test.csv", src.replace("\tHello everybody.", '\t"Hello\neverybody."', 1))
    test = read_dataset("how2sign", root, ["test"])
    assert [s.text for s in test] == H2S_TEXTS
    assert [s.source.rsplit(":", 1)[1] for s in test] == ["2", "4", "5", "6", "7"]
    # an unclosed quote on line 2 swallows line 3: the error names line 2
    write(root / "how2sign_realigned_test.csv", src.replace("\tHello everybody.", '\t"Hello everybody.', 1))
    with pytest.raises(InputFileError, match=r"malformed CSV .*unclosed quote") as err:
        read_dataset("how2sign", root, ["test"])
    assert err.value.line == 2
    # blank lines in a split list keep the numbers of the lines after them (CSL-Daily)
    csl = tmp_path / "csl" / "sentence_label"
    shutil.copytree(real / "csl_daily" / "sentence_label", csl)
    lines = (csl / "split_1.txt").read_text(encoding="utf-8").split("\n")
    (csl / "split_1.txt").write_text("\r\n".join(lines[:3] + [""] + lines[3:]) + "\r\n\r\n", encoding="utf-8")
    notes = ReadNotes()
    read_dataset("csl-daily", csl.parent, notes=notes)
    assert notes.missing == [("train", "S000005_P0004_T00", "split_1.txt:5")]


def test_frame_counts_stored_as_numpy_integers_are_read(real, tmp_path):
    """A label file / CSL-Daily pkl written from NumPy holds `length` as np.int64: still a frame count."""
    data = pickle.loads(gzip.decompress((real / "labels.test").read_bytes()))
    for rec in data.values():
        rec["length"] = np.int64(rec["length"])
    [s] = read_dataset("labels", _labels(tmp_path / "labels.test", data), lang="de")
    assert s.num_frames == 4 and isinstance(s.num_frames, int)
    csl = tmp_path / "csl" / "sentence_label"
    shutil.copytree(real / "csl_daily" / "sentence_label", csl)
    pkl = pickle.loads((csl / "csl2020ct_v2.pkl").read_bytes())
    expected = {e["name"]: e["length"] for e in pkl["info"]}
    for e in pkl["info"]:
        e["length"] = np.int64(e["length"])
    (csl / "csl2020ct_v2.pkl").write_bytes(pickle.dumps(pkl))
    samples = read_dataset("csl-daily", csl.parent)
    assert samples and all(s.num_frames == expected[s.id] for s in samples)


def test_data_check_stops_where_training_would_before_step_1(tmp_path, capsys, fixtures_dir):
    """`rvlf data check` said nothing (exit 0) about a manifest in a language the protocol does not know,
    a manifest mixing languages, an empty manifest and label files without --lang: training stops on
    each before step 1, and so does the check now, in one line."""
    pose = str(fixtures_dir / "holistic_97frames.pose")
    row = {"split": "train", "keypoints": pose, "num_frames": 97}
    cases = {
        "fr.jsonl": ([{"id": "a", "text": "bonjour", "lang": "fr", **row}], "data.lang 'fr': rvlf's tokenizers"),
        "mix.jsonl": ([{"id": "a", "text": "hello", "lang": "en", **row},
                       {"id": "b", "text": "hallo", "lang": "de", **row}], "must hold one language"),
        "empty.jsonl": ([], "no samples in the train, dev, test split(s)"),
    }
    for name, (rows, message) in cases.items():
        path = manifest(tmp_path / name, rows)
        assert main(["data", "check", "--dataset", "manifest", "--root", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    labels = fixtures_dir / "real_formats" / "labels.test"
    assert main(["data", "check", "--dataset", "labels", "--root", str(labels)]) == 2
    err = capsys.readouterr().err.strip()
    assert "label files do not say their language" in err and "--lang" in err
    assert main(["data", "check", "--dataset", "labels", "--root", str(labels), "--lang", "de"]) in (0, 1)
    path = manifest(tmp_path / "en.jsonl", cases["mix.jsonl"][0][:1])  # one language, none given: the manifest's
    assert main(["data", "check", "--dataset", "manifest", "--root", str(path)]) == 0
