"""Plan parsing and library-root checks on their own (no engine): fast, and the edge cases in one place."""

from __future__ import annotations

import json

import pytest
from rsmt_studio.service.errors import FieldError
from rsmt_studio.service.library import resolve_under
from rsmt_studio.service.plan import BadRow, PlanRow, read_plan


def test_plan_csv_and_jsonl_read_the_same_rows(tmp_path):
    rows = [{"source": "a.bvh", "source_frame": 20, "target": "/abs/b.bvh", "target_frame": 5, "style": "proud",
             "length": 30, "seed": 7, "output": "x/one.bvh"},
            {"source": "a.bvh", "source_frame": 20, "target": "a.bvh", "target_frame": 5, "style": "s.bvh",
             "length": 30, "seed": None, "output": "two.bvh"}]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "p.csv").write_text("source,source_frame,target,target_frame,style,length,seed,output\n"
                                    "a.bvh,20,/abs/b.bvh,5,proud,30,7,x/one.bvh\n"
                                    "a.bvh,20,a.bvh,5,s.bvh,30,,two.bvh\n")
    a, b = read_plan(tmp_path / "p.jsonl"), read_plan(tmp_path / "p.csv")
    assert [type(r) for r in a] == [PlanRow, PlanRow]
    assert [(r.source, r.target, r.style, r.seed, r.output) for r in a] == \
        [(r.source, r.target, r.style, r.seed, r.output) for r in b]
    assert a[0].source == str(tmp_path / "a.bvh") and a[0].target == "/abs/b.bvh" and a[0].style == "proud"
    assert a[1].style == str(tmp_path / "s.bvh") and a[1].seed is None


@pytest.mark.parametrize(("line", "column", "words"), [
    ("a.bvh,x,b.bvh,5,proud,30,1,o.bvh", "source_frame", "not an integer"),
    ("a.bvh,20,b.bvh,5,proud,30,-1,o.bvh", "seed", "negative"),
    ("a.bvh,20,b.bvh,5,proud,30,1,../o.bvh", "output", "inside --out"),
    ("a.bvh,20,b.bvh,5,proud,30,1,o.txt", "output", ".bvh"),
    (",20,b.bvh,5,proud,30,1,o.bvh", "source", "missing"),
])
def test_bad_plan_rows_name_the_column(tmp_path, line, column, words):
    (tmp_path / "p.csv").write_text("source,source_frame,target,target_frame,style,length,seed,output\n"
                                    f"{line}\na.bvh,20,b.bvh,5,proud,30,1,fine.bvh\n")
    bad, good = read_plan(tmp_path / "p.csv")
    assert isinstance(bad, BadRow) and bad.column == column and words in bad.message and bad.line == 2
    assert isinstance(good, PlanRow)


def test_plan_foot_lock_column_is_optional_and_checked(tmp_path):
    (tmp_path / "p.csv").write_text("source,source_frame,target,target_frame,style,length,seed,output,foot_lock\n"
                                    "a.bvh,20,b.bvh,5,proud,30,1,a.bvh,no\na.bvh,20,b.bvh,5,proud,30,1,b.bvh,\n"
                                    "a.bvh,20,b.bvh,5,proud,30,1,c.bvh,maybe\n")
    off, default, bad = read_plan(tmp_path / "p.csv")
    assert off.foot_lock is False and default.foot_lock is True
    assert isinstance(bad, BadRow) and bad.column == "foot_lock" and "true or false" in bad.message
    (tmp_path / "q.jsonl").write_text(json.dumps({"source": "a.bvh", "source_frame": 20, "target": "b.bvh",
                                                  "target_frame": 5, "style": "proud", "length": 30, "seed": 1,
                                                  "output": "o.bvh", "foot_lock": False}) + "\n")
    assert read_plan(tmp_path / "q.jsonl")[0].foot_lock is False


def test_plan_head_steady_column_is_optional_and_checked(tmp_path):
    (tmp_path / "p.csv").write_text("source,source_frame,target,target_frame,style,length,seed,output,head_steady\n"
                                    "a.bvh,20,b.bvh,5,proud,30,1,a.bvh,0\na.bvh,20,b.bvh,5,proud,30,1,b.bvh,\n"
                                    "a.bvh,20,b.bvh,5,proud,30,1,c.bvh,sometimes\n")
    off, default, bad = read_plan(tmp_path / "p.csv")
    assert off.head_steady is False and off.foot_lock is True and default.head_steady is True
    assert isinstance(bad, BadRow) and bad.column == "head_steady" and "'sometimes'" in bad.message


def test_plan_duplicate_outputs_and_missing_columns(tmp_path):
    (tmp_path / "p.csv").write_text("source,source_frame,target,target_frame,style,length,seed,output\n"
                                    "a.bvh,20,b.bvh,5,proud,30,1,o.bvh\na.bvh,21,b.bvh,5,proud,30,1,o.bvh\n")
    first, dup = read_plan(tmp_path / "p.csv")
    assert isinstance(first, PlanRow) and isinstance(dup, BadRow) and "line 2" in dup.message
    (tmp_path / "q.csv").write_text("source,target\na,b\n")
    with pytest.raises(ValueError, match="source_frame"):
        read_plan(tmp_path / "q.csv")


def test_library_paths_stay_under_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.bvh").write_text("x")
    (tmp_path / "secret.bvh").write_text("x")
    (root / "link.bvh").symlink_to(tmp_path / "secret.bvh")
    (root / "inner.bvh").symlink_to(root / "sub" / "a.bvh")
    assert resolve_under(root, "sub/a.bvh", "f") == (root / "sub" / "a.bvh").resolve()
    assert resolve_under(root, str(root / "sub" / "a.bvh"), "f").name == "a.bvh"
    assert resolve_under(root, "inner.bvh", "f").name == "a.bvh"  # a symlink that stays inside is fine
    for value, status in (("../secret.bvh", 403), ("sub/../../secret.bvh", 403), ("link.bvh", 403),
                          (str(tmp_path / "secret.bvh"), 403), ("nope.bvh", 404), ("", 422)):
        with pytest.raises(FieldError) as err:
            resolve_under(root, value, "source_path")
        assert err.value.status == status and err.value.field == "source_path", value
    with pytest.raises(FieldError) as err:
        resolve_under(None, "sub/a.bvh", "target_path")
    assert err.value.status == 403 and "--library-root" in err.value.message
